"""API tokens: only a SHA-256 of each token is stored; the token itself is shown once, at creation."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import DateTime, Integer, String, Text, create_engine, event, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from core.store.pipelines import _sqlite_pragmas

TOKEN_PREFIX = "gnk_"


class _Base(DeclarativeBase):
    pass


class _TokenRow(_Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(255), index=True)
    groups: Mapped[str] = mapped_column(Text, default="[]")
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


@dataclass(frozen=True)
class TokenInfo:
    id: int
    name: str
    subject: str
    groups: tuple[str, ...]
    created_at: datetime
    created_by: str | None
    revoked: bool


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _info(row: _TokenRow) -> TokenInfo:
    return TokenInfo(
        id=row.id,
        name=row.name,
        subject=row.subject,
        groups=tuple(json.loads(row.groups)),
        created_at=row.created_at,
        created_by=row.created_by,
        revoked=row.revoked_at is not None,
    )


class TokenStore:
    def __init__(self, database_url: str) -> None:
        self._engine: Engine = create_engine(database_url, pool_pre_ping=True)
        if self._engine.dialect.name == "sqlite":
            event.listen(self._engine, "connect", _sqlite_pragmas)
        _Base.metadata.create_all(self._engine)

    def close(self) -> None:
        self._engine.dispose()

    def create(
        self, subject: str, groups: list[str], name: str, created_by: str | None = None
    ) -> tuple[str, TokenInfo]:
        """Returns the token (shown once) and what is stored about it."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with Session(self._engine) as session:
            row = _TokenRow(
                name=name,
                subject=subject,
                groups=json.dumps(sorted(set(groups))),
                token_sha256=token_digest(token),
                created_at=datetime.now(UTC),
                created_by=created_by,
            )
            session.add(row)
            session.commit()
            return token, _info(row)

    def lookup(self, token: str) -> TokenInfo | None:
        """The live token matching `token`; the comparison is on digests held by the database index."""
        with Session(self._engine) as session:
            row = session.scalars(select(_TokenRow).where(_TokenRow.token_sha256 == token_digest(token))).first()
            return None if row is None or row.revoked_at is not None else _info(row)

    def list(self) -> list[TokenInfo]:
        with Session(self._engine) as session:
            return [_info(r) for r in session.scalars(select(_TokenRow).order_by(_TokenRow.id))]

    def revoke(self, token_id: int) -> bool:
        with Session(self._engine) as session:
            row = session.get(_TokenRow, token_id)
            if row is None or row.revoked_at is not None:
                return False
            row.revoked_at = datetime.now(UTC)
            session.commit()
            return True
