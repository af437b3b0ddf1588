"""Alembic migrations of the library database (see tasks/db/migrate.py)."""
