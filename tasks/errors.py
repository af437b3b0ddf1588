"""Errors the CLI turns into exit codes (contract: 2 bad input, 3 export of an unknown user)."""
from __future__ import annotations


class InvalidInput(ValueError):
    """Invalid parameters or input: nothing was changed. Exit code 2."""


class UserNotFound(LookupError):
    """A user the command names does not exist. Exit code 3 for `export`."""


class JobRefused(RuntimeError):
    """A job stopped itself before changing anything (e.g. the blast-radius guard). Exit code 1."""
