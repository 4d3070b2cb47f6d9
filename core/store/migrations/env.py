"""Alembic environment: migrations run on the connection core/store/migrate.py hands over (under its
lock); offline SQL generation is not supported."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from core.store.schema import Base

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("run migrations with `gennaker db upgrade` (core/store/migrate.py), not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot ALTER most things; batch mode copies the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
