"""API tokens: only a SHA-256 of each token is stored; the token itself is shown once, at creation."""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from core.store.database import acquire_engine, release_engine
from core.store.schema import TokenRow

TOKEN_PREFIX = "gnk_"


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


def _info(row: TokenRow) -> TokenInfo:
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
    """Synchronous (the CLI, tests); the gateway reads through core/store/aio.py's cached lookup."""

    def __init__(self, database_url: str, *, migrate: bool = True) -> None:
        self.database_url = database_url
        self._engine: Engine = acquire_engine(database_url, migrate=migrate)
        self._closed = False

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            release_engine(self.database_url)

    def create(
        self, subject: str, groups: list[str], name: str, created_by: str | None = None
    ) -> tuple[str, TokenInfo]:
        """Returns the token (shown once) and what is stored about it."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with Session(self._engine) as session:
            row = TokenRow(
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
        return self.lookup_digest(token_digest(token))

    def lookup_digest(self, digest: str) -> TokenInfo | None:
        with Session(self._engine) as session:
            row = session.scalars(select(TokenRow).where(TokenRow.token_sha256 == digest)).first()
            return None if row is None or row.revoked_at is not None else _info(row)

    def list(self) -> list[TokenInfo]:
        with Session(self._engine) as session:
            return [_info(r) for r in session.scalars(select(TokenRow).order_by(TokenRow.id))]

    def revoke(self, token_id: int) -> bool:
        with Session(self._engine) as session:
            row = session.get(TokenRow, token_id)
            if row is None or row.revoked_at is not None:
                return False
            row.revoked_at = datetime.now(UTC)
            session.commit()
            return True


class TokenCache:
    """Live tokens recently looked up, by digest: bounded (least recently used goes first) and
    short-lived. A revoked token therefore keeps working on a gateway that cached it for at most
    `ttl_seconds` (every replica has its own cache; revocation is a database write they all see once
    their entry expires). Unknown and revoked tokens are not cached: a token created a moment ago
    works at once, and guessing floods cannot push live entries out."""

    def __init__(
        self, max_entries: int = 4096, ttl_seconds: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_entries = max_entries
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, TokenInfo]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, digest: str) -> TokenInfo | None:
        with self._lock:
            found = self._entries.get(digest)
            if found is None:
                return None
            expires, info = found
            if expires <= self._clock():
                del self._entries[digest]
                return None
            self._entries.move_to_end(digest)
            return info

    def put(self, digest: str, info: TokenInfo) -> None:
        with self._lock:
            self._entries[digest] = (self._clock() + self.ttl_seconds, info)
            self._entries.move_to_end(digest)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
