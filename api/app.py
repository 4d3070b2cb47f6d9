"""`create_app(settings)`: the gateway. The lifespan opens the Temporal client and the store once
(on a thread: opening migrates the schema first, core/store/migrate.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from temporalio.client import Client

from api.auth import authenticate
from api.console import console_router, docs_router
from api.errors import install_error_handlers
from api.limits import BodyLimit
from api.metrics_middleware import install_http_metrics
from api.policy import Policy
from api.routers import (
    accounts,
    applications,
    clusters,
    codec,
    dora,
    executions,
    imports,
    meta,
    pipelines,
    registry_events,
    webhooks,
)
from api.settings import GatewaySettings
from core.observability.tracing import install_tracing, traced_client
from core.spinnaker import MAX_BYTES as MAX_IMPORT_BYTES
from core.store import AsyncTokenLookup, PipelineStore
from core.store.tokens import TokenStore
from core.temporal import connect_with


def create_app(
    settings: GatewaySettings | None = None, *, client: Client | None = None, store: PipelineStore | None = None
) -> FastAPI:
    """`client`/`store` may be passed in (tests, the dev stack) to share already-open ones."""
    settings = settings or GatewaySettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own_store = store is None
        app.state.settings = settings
        app.state.temporal = traced_client(client or await connect_with(settings), app.state.tracer_provider)
        opened = store if store is not None else await asyncio.to_thread(PipelineStore, settings.database_url)
        # Same URL, so the same engine (core/store/database.py): one pool for pipelines and tokens.
        tokens = await asyncio.to_thread(TokenStore, opened.database_url)
        app.state.store = opened
        app.state.tokens = AsyncTokenLookup(tokens)
        yield
        tokens.close()
        if own_store:
            opened.close()

    app = FastAPI(
        title="Gennaker",
        version="0.1.0",
        description="Spinnaker-style delivery pipelines as durable Temporal workflows.",
        lifespan=lifespan,
        docs_url=None,  # served with bundled assets by api/console/docs.py (no CDN)
        redoc_url=None,
    )
    # Loaded now so a broken policy stops the gateway at start, not at the first request.
    app.state.policy = Policy.load(settings.auth_policy_file)
    app.state.tracer_provider = install_tracing()
    install_http_metrics(app)
    install_error_handlers(app)
    # Before any route reads a body; CORS (added after, so outside it) still answers preflights and
    # puts its headers on a 413, which the Temporal UI's codec calls can then read.
    app.add_middleware(
        BodyLimit,
        default_limit=settings.max_body_bytes,
        limits={
            "/codec/": (settings.codec_max_body_bytes, "codec_max_body_bytes"),
            "/import/spinnaker": (MAX_IMPORT_BYTES, "the Spinnaker import's limit"),
        },
    )
    codec.install_cors(app, settings)
    authenticated = [Depends(authenticate)]
    for router in (
        executions.router,
        pipelines.router,
        applications.router,
        accounts.router,
        clusters.router,
        imports.router,
        dora.router,
    ):
        app.include_router(router, dependencies=authenticated)
    app.include_router(codec.router, dependencies=authenticated)
    app.include_router(codec.dev_router)  # only answers when `gennaker dev` set its per-run key
    # These authenticate per route: probes need none, webhooks prove themselves by secret/signature.
    for router in (meta.router, webhooks.router, registry_events.router):
        app.include_router(router)
    # The console authenticates from its own cookie with the same authentication and policy.
    app.include_router(console_router())
    app.include_router(docs_router())
    return app
