"""SQL store of pipeline configurations.

One table of revisions: saving writes revision N+1, deleting writes a tombstone revision, nothing is
ever updated in place, so the table is the configuration's full history. Beside it, the trigger
index (core/store/trigger_index.py) lists the event triggers of each live revision, rewritten in the
same transaction as the revision, so a delivery reads only the pipelines that watch its source.
SQLite by default; PostgreSQL when gateways are replicated.

This class is synchronous: the CLI, the worker's thread-pool activities and the tests call it as it
is; code on an event loop uses `store.aio` (core/store/aio.py), which runs the same calls on a thread.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.store.database import acquire_engine, release_engine
from core.store.schema import RevisionRow, TriggerIndexRow
from core.store.trigger_index import index_entries

if TYPE_CHECKING:
    from core.store.aio import AsyncPipelineStore


@dataclass(frozen=True)
class PipelineRevision:
    application: str
    name: str
    revision: int
    config: dict[str, Any]
    deleted: bool
    author: str | None
    created_at: datetime


def _to_revision(row: RevisionRow) -> PipelineRevision:
    created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
    return PipelineRevision(
        application=row.application,
        name=row.name,
        revision=row.revision,
        config=json.loads(row.config),
        deleted=row.deleted,
        author=row.author,
        created_at=created,
    )


def _live_revisions() -> Any:
    """Subquery: the newest revision number of each pipeline."""
    return (
        select(RevisionRow.application, RevisionRow.name, func.max(RevisionRow.revision).label("rev"))
        .group_by(RevisionRow.application, RevisionRow.name)
        .subquery()
    )


class PipelineStore:
    def __init__(self, database_url: str, *, migrate: bool = True) -> None:
        """Opens (and on first use in this process, migrates) the database; see core/store/database.py."""
        self.database_url = database_url
        self._engine: Engine = acquire_engine(database_url, migrate=migrate)
        self._closed = False

    @property
    def engine(self) -> Engine:
        return self._engine

    @cached_property
    def aio(self) -> AsyncPipelineStore:
        """The same store for code on an event loop: every call runs on a thread."""
        from core.store.aio import AsyncPipelineStore

        return AsyncPipelineStore(self)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            release_engine(self.database_url)

    def ping(self) -> None:
        with self._engine.connect() as conn:
            conn.execute(select(1))

    def _latest_row(self, session: Session, application: str, name: str) -> RevisionRow | None:
        return session.scalars(
            select(RevisionRow)
            .where(RevisionRow.application == application, RevisionRow.name == name)
            .order_by(RevisionRow.revision.desc())
            .limit(1)
        ).first()

    def _append(self, application: str, name: str, config: dict[str, Any], deleted: bool, author: str | None) -> int:
        entries = [] if deleted else index_entries(config)
        # Two writers may race for revision N+1; the unique constraint picks one, the other retries.
        for _ in range(5):
            with Session(self._engine) as session:
                latest = self._latest_row(session, application, name)
                revision = (latest.revision if latest else 0) + 1
                session.add(
                    RevisionRow(
                        application=application,
                        name=name,
                        revision=revision,
                        config=json.dumps(config, sort_keys=True),
                        deleted=deleted,
                        author=author,
                        created_at=datetime.now(UTC),
                    )
                )
                # The index follows the newest revision. Only older entries are removed: if a save of
                # a newer revision committed meanwhile, its entries stay, and ours (now stale) cost a
                # delivery at most one extra candidate, which dispatch reads at its live revision.
                session.execute(
                    delete(TriggerIndexRow).where(
                        TriggerIndexRow.application == application,
                        TriggerIndexRow.name == name,
                        TriggerIndexRow.revision < revision,
                    )
                )
                session.add_all(
                    TriggerIndexRow(kind=kind, key=key, application=application, name=name, revision=revision)
                    for kind, key in entries
                )
                try:
                    session.commit()
                except IntegrityError:
                    session.rollback()
                    continue
                return revision
        raise RuntimeError(f"could not save {application}/{name}: too many concurrent writers")

    def next_revision(self, application: str, name: str) -> int:
        with Session(self._engine) as session:
            latest = self._latest_row(session, application, name)
            return (latest.revision if latest else 0) + 1

    def trigger_candidates(self, kind: str, key: str) -> list[PipelineRevision]:
        """The live revision of each pipeline with an enabled `kind` trigger filed under `key`."""
        with Session(self._engine) as session:
            latest = _live_revisions()
            watching = (
                select(TriggerIndexRow.application, TriggerIndexRow.name)
                .where(TriggerIndexRow.key == key, TriggerIndexRow.kind == kind)
                .distinct()
                .subquery()
            )
            rows = session.scalars(
                select(RevisionRow)
                .join(
                    watching,
                    (RevisionRow.application == watching.c.application) & (RevisionRow.name == watching.c.name),
                )
                .join(
                    latest,
                    (RevisionRow.application == latest.c.application)
                    & (RevisionRow.name == latest.c.name)
                    & (RevisionRow.revision == latest.c.rev),
                )
                .where(RevisionRow.deleted.is_(False))
                .order_by(RevisionRow.application, RevisionRow.name)
            ).all()
            return [_to_revision(r) for r in rows]

    def save(self, application: str, name: str, config: dict[str, Any], author: str | None = None) -> int:
        return self._append(application, name, config, deleted=False, author=author)

    def delete(self, application: str, name: str, author: str | None = None) -> int | None:
        """Write a tombstone revision; None if there was nothing live to delete."""
        if self.get(application, name) is None:
            return None
        return self._append(application, name, {}, deleted=True, author=author)

    def get(self, application: str, name: str, revision: int | None = None) -> PipelineRevision | None:
        with Session(self._engine) as session:
            if revision is None:
                row = self._latest_row(session, application, name)
                return None if row is None or row.deleted else _to_revision(row)
            row = session.scalars(
                select(RevisionRow).where(
                    RevisionRow.application == application,
                    RevisionRow.name == name,
                    RevisionRow.revision == revision,
                )
            ).first()
            return None if row is None or row.deleted else _to_revision(row)

    def revisions(self, application: str, name: str) -> list[PipelineRevision]:
        with Session(self._engine) as session:
            rows = session.scalars(
                select(RevisionRow)
                .where(RevisionRow.application == application, RevisionRow.name == name)
                .order_by(RevisionRow.revision)
            ).all()
            return [_to_revision(r) for r in rows]

    def list_pipelines(self, application: str) -> list[PipelineRevision]:
        """The live (latest, not deleted) revision of each pipeline of an application."""
        with Session(self._engine) as session:
            latest = (
                select(RevisionRow.name, func.max(RevisionRow.revision).label("rev"))
                .where(RevisionRow.application == application)
                .group_by(RevisionRow.name)
                .subquery()
            )
            rows = session.scalars(
                select(RevisionRow)
                .join(latest, (RevisionRow.name == latest.c.name) & (RevisionRow.revision == latest.c.rev))
                .where(RevisionRow.application == application, RevisionRow.deleted.is_(False))
                .order_by(RevisionRow.name)
            ).all()
            return [_to_revision(r) for r in rows]

    def list_applications(self) -> list[str]:
        with Session(self._engine) as session:
            return list(session.scalars(select(RevisionRow.application).distinct().order_by(RevisionRow.application)))

    # SavedPipelineLookup, for the child-pipeline activity (a sync activity: it runs on a thread).
    def get_pipeline_config(
        self, application: str, name: str, revision: int | None = None
    ) -> tuple[int, dict[str, Any]] | None:
        found = self.get(application, name, revision)
        return None if found is None else (found.revision, found.config)
