"""A real gateway on a loopback port (uvicorn, in the test's event loop) for the console tests, and
where their screenshots go (.data/screenshots/, git-ignored)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from temporalio.client import Client

from api.app import create_app
from api.console import console_router, docs_router
from api.settings import GatewaySettings
from core.store import PipelineStore
from workers.devserver import free_port

SCREENSHOTS = Path(__file__).resolve().parents[2] / ".data" / "screenshots"


async def serve(settings: GatewaySettings, client: Client, store: PipelineStore) -> AsyncIterator[str]:
    """The gateway as browsers meet it: HTTP on a loopback port. Yields its base URL."""
    port = free_port()
    app = console_app(settings, client, store)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # raises why it could not start
            raise RuntimeError("gateway stopped before it started")
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def console_app(settings: GatewaySettings, client: Client, store: PipelineStore) -> FastAPI:
    """The gateway app with the console and the offline docs, whether or not api/app.py wires them
    in yet (the integrator adds them there; this keeps the tests valid either way)."""
    app = create_app(settings, client=client, store=store)
    paths = {getattr(route, "path", "") for route in app.routes}
    if "/console/" not in paths:
        app.include_router(console_router())
    if "/docs-assets/{name}" not in paths:
        # FastAPI's own /docs and /redoc (CDN assets) would answer first: take them out.
        app.router.routes[:] = [
            r for r in app.router.routes if getattr(r, "path", "") not in {"/docs", "/redoc", "/docs/oauth2-redirect"}
        ]
        app.include_router(docs_router())
    return app


def screenshot_path(name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / f"{name}.png"
