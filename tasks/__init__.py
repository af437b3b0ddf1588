"""Prefect tasks and the plain functions they call (database, selection, rules, batches, reports, I/O)."""
