"""The store for code on an event loop (the gateway, async activities): the same calls, on a thread.

Why a thread and not async SQLAlchemy (aiosqlite / psycopg async): SQLite has no asynchronous
driver — aiosqlite runs each connection on a thread of its own anyway — and the same synchronous
store serves the CLI, the worker's thread-pool activities, Alembic and the tests, so one code path
is tested against both databases. What costs most on the gateway's hot path, checking a bearer
token, is answered from memory (TokenCache) without leaving the event loop; the remaining store
calls are a save or a read of pipelines, where a thread hop (tens of microseconds) is noise beside
the query. mypy keeps the loop honest: these methods are coroutines, so a caller that forgets to
await one gets a type error rather than a blocking call.
"""

from __future__ import annotations

import asyncio
from typing import Any

from core.store.pipelines import PipelineRevision, PipelineStore
from core.store.tokens import TokenCache, TokenInfo, TokenStore, token_digest


class AsyncPipelineStore:
    def __init__(self, store: PipelineStore) -> None:
        self.sync = store

    @property
    def database_url(self) -> str:
        return self.sync.database_url

    async def ping(self) -> None:
        await asyncio.to_thread(self.sync.ping)

    async def get(self, application: str, name: str, revision: int | None = None) -> PipelineRevision | None:
        return await asyncio.to_thread(self.sync.get, application, name, revision)

    async def next_revision(self, application: str, name: str) -> int:
        return await asyncio.to_thread(self.sync.next_revision, application, name)

    async def save(self, application: str, name: str, config: dict[str, Any], author: str | None = None) -> int:
        return await asyncio.to_thread(self.sync.save, application, name, config, author)

    async def delete(self, application: str, name: str, author: str | None = None) -> int | None:
        return await asyncio.to_thread(self.sync.delete, application, name, author)

    async def revisions(self, application: str, name: str) -> list[PipelineRevision]:
        return await asyncio.to_thread(self.sync.revisions, application, name)

    async def list_pipelines(self, application: str) -> list[PipelineRevision]:
        return await asyncio.to_thread(self.sync.list_pipelines, application)

    async def list_applications(self) -> list[str]:
        return await asyncio.to_thread(self.sync.list_applications)

    async def trigger_candidates(self, kind: str, key: str) -> list[PipelineRevision]:
        return await asyncio.to_thread(self.sync.trigger_candidates, kind, key)


class AsyncTokenLookup:
    """Bearer-token checks for the gateway: a cache hit never leaves the event loop."""

    def __init__(self, tokens: TokenStore, cache: TokenCache | None = None) -> None:
        self.tokens = tokens
        self.cache = cache if cache is not None else TokenCache()  # an empty cache is falsy (__len__)

    async def lookup(self, token: str) -> TokenInfo | None:
        digest = token_digest(token)
        info = self.cache.get(digest)
        if info is None:
            info = await asyncio.to_thread(self.tokens.lookup_digest, digest)
            if info is not None:
                self.cache.put(digest, info)
        return info
