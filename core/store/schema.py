"""The store's tables, in one SQLAlchemy metadata that the migrations (core/store/migrations/) build.

A change here needs a migration beside it: `alembic revision` against this metadata, reviewed by hand.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class RevisionRow(Base):
    """One saved revision of a pipeline; never updated, a delete is a tombstone revision."""

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


class TokenRow(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(255), index=True)
    groups: Mapped[str] = mapped_column(Text, default="[]")
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class TriggerIndexRow(Base):
    """One enabled event trigger of a live pipeline revision, found by what an event names.

    `key` is a digest of the trigger type and what identifies its source (core/store/trigger_index.py),
    so a delivery finds its candidate pipelines with one indexed equality lookup whatever the length
    of a repository name."""

    __tablename__ = "trigger_index"
    __table_args__ = (
        Index("ix_trigger_index_key", "key"),
        Index("ix_trigger_index_pipeline", "application", "name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(64))
    application: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(63))
    revision: Mapped[int] = mapped_column(Integer)
