"""Errors the CLI turns into exit codes (contract: 2 bad input, 3 export of an unknown user)."""
from __future__ import annotations


class InvalidInput(ValueError):
    """Invalid parameters or input: nothing was changed. Exit code 2."""


class UserNotFound(LookupError):
    """A user the command names does not exist. Exit code 3 for `export`."""


class JobStopped(RuntimeError):
    """A run that ended without completing its work. Calling a job's flow directly raises it (or a
    subclass); `summary` is the run summary, None when the run was stopped before it was recorded."""

    def __init__(self, message: str, summary: dict | None = None):
        super().__init__(message)
        self.summary = summary


class JobRefused(JobStopped):
    """A job stopped itself before changing anything (a guard; another real run). Exit code 1."""


class JobFailed(JobStopped):
    """Part of a real run could not be committed; the message says what was and what was not. Exit code 1."""


class RunNotApproved(JobStopped):
    """A real run that waited for approval was rejected, or nobody answered in time: nothing changed."""
