"""SQL store of pipeline configurations.

One table of revisions: saving writes revision N+1, deleting writes a tombstone revision, nothing is
ever updated in place, so the table is the configuration's full history. SQLite by default (WAL, so
the worker can read while the gateway writes); PostgreSQL when gateways are replicated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class _Base(DeclarativeBase):
    pass


class _RevisionRow(_Base):
    __tablename__ = "pipeline_revisions"
    __table_args__ = (UniqueConstraint("application", "name", "revision"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    application: Mapped[str] = mapped_column(String(63), index=True)
    name: Mapped[str] = mapped_column(String(63))
    revision: Mapped[int] = mapped_column(Integer)
    config: Mapped[str] = mapped_column(Text)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    author: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class PipelineRevision:
    application: str
    name: str
    revision: int
    config: dict[str, Any]
    deleted: bool
    author: str | None
    created_at: datetime


def _to_revision(row: _RevisionRow) -> PipelineRevision:
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


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


class PipelineStore:
    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self._engine: Engine = create_engine(database_url, pool_pre_ping=True)
        if self._engine.dialect.name == "sqlite":
            event.listen(self._engine, "connect", _sqlite_pragmas)
        _Base.metadata.create_all(self._engine)

    def close(self) -> None:
        self._engine.dispose()

    def ping(self) -> None:
        with self._engine.connect() as conn:
            conn.execute(select(1))

    def _latest_row(self, session: Session, application: str, name: str) -> _RevisionRow | None:
        return session.scalars(
            select(_RevisionRow)
            .where(_RevisionRow.application == application, _RevisionRow.name == name)
            .order_by(_RevisionRow.revision.desc())
            .limit(1)
        ).first()

    def _append(self, application: str, name: str, config: dict[str, Any], deleted: bool, author: str | None) -> int:
        # Two writers may race for revision N+1; the unique constraint picks one, the other retries.
        for _ in range(5):
            with Session(self._engine) as session:
                latest = self._latest_row(session, application, name)
                revision = (latest.revision if latest else 0) + 1
                session.add(
                    _RevisionRow(
                        application=application,
                        name=name,
                        revision=revision,
                        config=json.dumps(config, sort_keys=True),
                        deleted=deleted,
                        author=author,
                        created_at=datetime.now(UTC),
                    )
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

    def live_pipelines(self) -> list[PipelineRevision]:
        """The live revision of every pipeline of every application (for trigger matching), in one query."""
        with Session(self._engine) as session:
            latest = (
                select(_RevisionRow.application, _RevisionRow.name, func.max(_RevisionRow.revision).label("rev"))
                .group_by(_RevisionRow.application, _RevisionRow.name)
                .subquery()
            )
            rows = session.scalars(
                select(_RevisionRow)
                .join(
                    latest,
                    (_RevisionRow.application == latest.c.application)
                    & (_RevisionRow.name == latest.c.name)
                    & (_RevisionRow.revision == latest.c.rev),
                )
                .where(_RevisionRow.deleted.is_(False))
                .order_by(_RevisionRow.application, _RevisionRow.name)
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
                select(_RevisionRow).where(
                    _RevisionRow.application == application,
                    _RevisionRow.name == name,
                    _RevisionRow.revision == revision,
                )
            ).first()
            return None if row is None or row.deleted else _to_revision(row)

    def revisions(self, application: str, name: str) -> list[PipelineRevision]:
        with Session(self._engine) as session:
            rows = session.scalars(
                select(_RevisionRow)
                .where(_RevisionRow.application == application, _RevisionRow.name == name)
                .order_by(_RevisionRow.revision)
            ).all()
            return [_to_revision(r) for r in rows]

    def list_pipelines(self, application: str) -> list[PipelineRevision]:
        """The live (latest, not deleted) revision of each pipeline of an application."""
        with Session(self._engine) as session:
            latest = (
                select(_RevisionRow.name, func.max(_RevisionRow.revision).label("rev"))
                .where(_RevisionRow.application == application)
                .group_by(_RevisionRow.name)
                .subquery()
            )
            rows = session.scalars(
                select(_RevisionRow)
                .join(latest, (_RevisionRow.name == latest.c.name) & (_RevisionRow.revision == latest.c.rev))
                .where(_RevisionRow.application == application, _RevisionRow.deleted.is_(False))
                .order_by(_RevisionRow.name)
            ).all()
            return [_to_revision(r) for r in rows]

    def list_applications(self) -> list[str]:
        with Session(self._engine) as session:
            return list(session.scalars(select(_RevisionRow.application).distinct().order_by(_RevisionRow.application)))

    # SavedPipelineLookup, for the child-pipeline activity.
    def get_pipeline_config(
        self, application: str, name: str, revision: int | None = None
    ) -> tuple[int, dict[str, Any]] | None:
        found = self.get(application, name, revision)
        return None if found is None else (found.revision, found.config)
