"""One SQLAlchemy engine per database URL per process, shared by the pipeline and token stores.

The first store opened on a URL in a process brings the schema to the newest migration
(core/store/migrate.py, under a cross-process lock) before anyone reads; later opens in the same
process reuse the engine and skip that. `close()` of the last user disposes the engine.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL so the worker can read while the gateway writes; a busy writer is waited for, not an error.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def make_engine(database_url: str) -> Engine:
    engine = create_engine(database_url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


@dataclass
class _Shared:
    engine: Engine
    users: int


_lock = threading.Lock()
_shared: dict[str, _Shared] = {}


def acquire_engine(database_url: str, *, migrate: bool = True) -> Engine:
    """The process's engine for `database_url`, migrated on first use (unless `migrate` is False)."""
    with _lock:
        shared = _shared.get(database_url)
        if shared is None:
            engine = make_engine(database_url)
            if migrate:
                from core.store.migrate import upgrade

                try:
                    upgrade(engine)
                except BaseException:
                    engine.dispose()
                    raise
            shared = _shared[database_url] = _Shared(engine, 0)
        shared.users += 1
        return shared.engine


def release_engine(database_url: str) -> None:
    with _lock:
        shared = _shared.get(database_url)
        if shared is None:
            return
        shared.users -= 1
        if shared.users <= 0:
            del _shared[database_url]
            shared.engine.dispose()
