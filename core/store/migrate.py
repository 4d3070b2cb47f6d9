"""Bringing a store's schema to the newest migration, once, whichever replica starts first.

Migrations live in this package (core/store/migrations/, Alembic), so every process that opens the
store (gateway, worker, `gennaker dev`, `gennaker db upgrade`) can run them. Replicas starting at
once on one fresh database must not both create tables: the upgrade runs under a lock the database
users share — a PostgreSQL session advisory lock, or for SQLite an exclusive `flock` on a file
beside the database — and the second replica, once it has the lock, finds nothing left to do.

A database made by the `create_all` of earlier versions is adopted: the first migration creates
only the tables that are missing, so it records its revision over the existing tables without
touching their rows, and later migrations (the trigger index and its backfill) run as usual.
A database migrated by a newer Gennaker than this one (a rolling upgrade) is left alone: this
process logs it and carries on with the tables it knows.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

log = logging.getLogger("gennaker.store")

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# Any fixed 64-bit number that other users of the same PostgreSQL database do not pick:
# int.from_bytes(b"gennaker", "big") >> 1.
ADVISORY_LOCK_ID = 3725062911593187141


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@contextlib.contextmanager
def migration_lock(engine: Engine) -> Iterator[None]:
    """Held by one process at a time across every process using this database."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": ADVISORY_LOCK_ID})
            connection.commit()  # a session lock outlives the transaction; do not sit idle in one
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": ADVISORY_LOCK_ID})
                connection.commit()
        return
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:" or database.startswith("file:"):
        yield  # one process only (in-memory), or a database we cannot put a file beside
        return
    lock_path = Path(database).resolve().with_name(Path(database).name + ".migrate-lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)  # blocks until the other migrating process is done
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Migrate to `revision` (default the newest); returns the revision the database is at."""
    script = ScriptDirectory.from_config(alembic_config())
    with migration_lock(engine), engine.begin() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
        try:
            known = current is None or script.get_revision(current) is not None
        except CommandError:
            known = False
        if not known:
            log.warning(
                "store schema is at revision %s, which this Gennaker does not know (newer?); not migrating", current
            )
            return current
        if current != script.get_current_head() or revision != "head":
            command.upgrade(alembic_config(connection), revision)
        return MigrationContext.configure(connection).get_current_revision()
