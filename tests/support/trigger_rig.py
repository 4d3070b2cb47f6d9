"""The gateway as webhook senders meet it, holding one named trigger secret, and signed GitHub pushes
for it (tests/integration/test_triggers.py, tests/security/test_webhook_replay.py).

A module makes one `TriggerRig` with a secret of its own and wraps its `settings` and `gateway` in
its fixtures: fixtures stay in the test modules, helpers live here.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from api.app import create_app
from api.settings import GatewaySettings
from core.store import PipelineStore
from workers.devserver import TemporalDevServer


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def github_push(repo: str, after: str = "0123456789abcdef0123456789abcdef01234567", branch: str = "main") -> bytes:
    """The body of a GitHub `push` event to acme/`repo` (the fields the gateway reads)."""
    return json.dumps(
        {
            "ref": f"refs/heads/{branch}",
            "before": "0" * 40,
            "after": after,
            "repository": {"name": repo, "owner": {"login": "acme", "name": "acme"}},
            "pusher": {"name": "octocat"},
        }
    ).encode()


async def save(api: httpx.AsyncClient, spec: dict[str, Any]) -> httpx.Response:
    """Save pipeline `spec` under its own application and name."""
    return await api.put(f"/applications/{spec['application']}/pipelines/{spec['name']}", json=spec)


@dataclass(frozen=True)
class TriggerRig:
    """A gateway on the session dev server, store and the module's worker, auth off, that knows the
    trigger secret `secret_name` = `secret` (as GENNAKER_TRIGGER_SECRET_<NAME>, set for one test)."""

    secret_name: str
    secret: str

    def settings(
        self,
        temporal_server: TemporalDevServer,
        task_queue: str,
        store: PipelineStore,
        monkeypatch: pytest.MonkeyPatch,
    ) -> GatewaySettings:
        monkeypatch.setenv("GENNAKER_TRIGGER_SECRET_" + self.secret_name.upper().replace("-", "_"), self.secret)
        return GatewaySettings(
            temporal_address=temporal_server.address,
            task_queue=task_queue,
            database_url=store.database_url,
            auth_disabled=True,
            min_cron_interval_seconds=1,  # the cron test waits for a `1s` schedule to fire
        )

    @staticmethod
    @asynccontextmanager
    async def gateway(
        settings: GatewaySettings, client: Client, store: PipelineStore
    ) -> AsyncIterator[httpx.AsyncClient]:
        """An HTTP client of the gateway app, its lifespan running (in process, no port)."""
        app = create_app(settings, client=client, store=store)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
                yield http

    def signature(self, body: bytes, secret: str | None = None) -> str:
        """GitHub's X-Hub-Signature-256 of `body`: with the rig's secret unless another is given."""
        key = self.secret if secret is None else secret
        return "sha256=" + hmac.new(key.encode(), body, hashlib.sha256).hexdigest()

    async def push(
        self, api: httpx.AsyncClient, body: bytes, delivery: str | None, sig: str | None = None
    ) -> httpx.Response:
        """POST a GitHub push, signed with the rig's secret unless `sig` is given; no
        X-GitHub-Delivery header when `delivery` is None."""
        headers = {"X-GitHub-Event": "push", "Content-Type": "application/json"}
        headers["X-Hub-Signature-256"] = sig if sig is not None else self.signature(body)
        if delivery is not None:
            headers["X-GitHub-Delivery"] = delivery
        return await api.post("/webhooks/git/github", content=body, headers=headers)
