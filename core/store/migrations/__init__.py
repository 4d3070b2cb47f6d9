"""Alembic migrations of the store (see core/store/migrate.py)."""
