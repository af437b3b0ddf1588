"""Prefect flows for the library's user management jobs; `python -m flows` is the command line."""
