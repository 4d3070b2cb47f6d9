"""POST /webhooks/registry/{account}: the distribution registry's push notifications, checked with a
shared secret, parsed into ImagePushed events and kept for the trigger machinery (GET …/events).

The last test points a real `docker-registry` at a real gateway (uvicorn on loopback) and pushes.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from temporalio.client import Client

from api.app import create_app
from api.routers import registry_events
from api.routers.registry_events import ImagePushed, registry_event_log
from api.settings import GatewaySettings
from core.store import PipelineStore
from tests.support.docker_rig import DockerRig, LocalRegistry, docker_rig_fixture  # noqa: F401
from tests.support.eventually import assert_eventually
from workers.devserver import TemporalDevServer, free_port

SECRET = "hook-" + uuid.uuid4().hex
MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


@pytest.fixture(scope="module")
def gateway(
    task_queue: str, worker: None, temporal_server: TemporalDevServer, client: Client, store: PipelineStore
) -> FastAPI:
    settings = GatewaySettings(
        temporal_address=temporal_server.address,
        database_url=store.database_url,
        task_queue=task_queue,
        auth_disabled=True,
    )
    app = create_app(settings, client=client, store=store)
    return app


@pytest.fixture
async def api(gateway: FastAPI, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.setenv(registry_events.SECRET_ENV, SECRET)
    transport = httpx.ASGITransport(app=gateway, raise_app_exceptions=False)
    async with (
        gateway.router.lifespan_context(gateway),
        httpx.AsyncClient(transport=transport, base_url="http://gennaker.test") as http,
    ):
        yield http


def event(action: str, repository: str, tag: str | None, media_type: str = MANIFEST, **extra: Any) -> dict[str, Any]:
    target = {
        "mediaType": media_type,
        "size": 528,
        "digest": "sha256:" + "ab" * 32,
        "length": 528,
        "repository": repository,
        "url": f"http://127.0.0.1:5000/v2/{repository}/manifests/sha256:{'ab' * 32}",
    }
    if tag is not None:
        target["tag"] = tag
    return {
        "id": str(uuid.uuid4()),
        "timestamp": "2026-11-25T10:00:00.123456789Z",
        "action": action,
        "target": target,
        "request": {
            "id": "r1",
            "addr": "127.0.0.1:40000",
            "host": "registry.local:5000",
            "method": "PUT",
            "useragent": "docker/20.10",
        },
        "actor": {"name": "ci-robot"},
        "source": {"addr": "registry:5000", "instanceID": "i1"},
        **extra,
    }


def envelope(*events: dict[str, Any]) -> dict[str, Any]:
    return {"events": list(events)}


HEADERS = {"Content-Type": "application/vnd.docker.distribution.events.v1+json"}


async def test_secret_is_required(api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    body = envelope(event("push", "shop/web", "v1"))
    missing = await api.post("/webhooks/registry/local", json=body, headers=HEADERS)
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "unauthorized"
    wrong = await api.post("/webhooks/registry/local", json=body, headers={**HEADERS, "Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    monkeypatch.delenv(registry_events.SECRET_ENV)
    unset = await api.post("/webhooks/registry/local", json=body, headers={**HEADERS, "Authorization": "Bearer x"})
    # No secret configured answers like a wrong secret (the reason is in the gateway log only).
    assert unset.status_code == 401 and unset.content == wrong.content


async def test_push_events_are_parsed_recorded_and_deduplicated(api: httpx.AsyncClient, gateway: FastAPI) -> None:
    repository = f"shop/{uuid.uuid4().hex[:6]}"
    received: list[ImagePushed] = []

    async def trigger(pushed: ImagePushed) -> None:  # what #6's trigger machinery will subscribe
        received.append(pushed)

    registry_event_log(gateway).subscribe(trigger)
    pushed = event("push", repository, "v1.2.3")
    body = envelope(
        event("push", repository, None, media_type="application/octet-stream"),  # a layer upload
        pushed,
        event("pull", repository, "v1.2.3"),
        event("delete", repository, None),
    )
    headers = {**HEADERS, "Authorization": f"Bearer {SECRET}"}
    answer = await api.post(
        "/webhooks/registry/local", content=httpx.Request("POST", "/", json=body).content, headers=headers
    )
    assert answer.status_code == 202, answer.text
    data = answer.json()
    assert data["ignored"] == 3
    [accepted] = data["accepted"]
    assert accepted["image"] == f"registry.local:5000/{repository}:v1.2.3"
    assert accepted["account"] == "local" and accepted["actor"] == "ci-robot"
    assert accepted["digest"] == "sha256:" + "ab" * 32
    assert [r.image for r in received] == [accepted["image"]]

    # The registry redelivers when unsure: the same event id is not recorded twice.
    again = await api.post("/webhooks/registry/local", json=envelope(pushed), headers=headers)
    assert again.status_code == 202 and again.json() == {"accepted": [], "ignored": 1, "started": []}

    listed = await api.get("/webhooks/registry/events", params={"account": "local", "repository": repository})
    assert [e["tag"] for e in listed.json()] == ["v1.2.3"]


async def test_a_push_starts_pipelines_with_a_matching_docker_trigger(
    api: httpx.AsyncClient, client: Client, store: PipelineStore, worker: None
) -> None:
    repository = f"shop/{uuid.uuid4().hex[:6]}"
    name = f"on-push-{uuid.uuid4().hex[:6]}"
    store.save(
        "shop",
        name,
        {
            "application": "shop",
            "name": name,
            "triggers": [{"type": "docker", "account": "local", "repository": repository, "tag": r"v\d+.*"}],
            "stages": [{"refId": "w", "type": "wait", "waitTime": 0.05}],
        },
    )
    headers = {**HEADERS, "Authorization": f"Bearer {SECRET}"}
    body = envelope(event("push", repository, "v2.0.1"), event("push", repository, "nightly"))
    answer = await api.post("/webhooks/registry/local", json=body, headers=headers)
    assert answer.status_code == 202, answer.text
    [started] = answer.json()["started"]
    assert started["pipeline"] == name and not started["replayed"]
    result = await client.get_workflow_handle(started["id"]).result()
    assert result["status"] == "SUCCEEDED"
    state = await client.get_workflow_handle(started["id"]).query("state")
    assert state["trigger"]["type"] == "docker"
    assert state["trigger"]["payload"]["tag"] == "v2.0.1"
    store.delete("shop", name)


async def test_bad_envelopes_are_422(api: httpx.AsyncClient) -> None:
    headers = {**HEADERS, "Authorization": f"Bearer {SECRET}"}
    for content in (b"not json", b'{"events": [{"action": "push"}]}'):
        answer = await api.post("/webhooks/registry/local", content=content, headers=headers)
        assert answer.status_code == 422 and answer.json()["error"]["code"] == "invalid_notification"
    bad_account = await api.post("/webhooks/registry/Not_An_Account", json=envelope(), headers=headers)
    assert bad_account.status_code == 422


async def test_real_registry_notifies_the_gateway(
    gateway: FastAPI, docker_rig: DockerRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(registry_events.SECRET_ENV, SECRET)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(gateway, host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    registry: LocalRegistry | None = None
    try:
        while not server.started:
            await asyncio.sleep(0.02)
        registry = LocalRegistry.start(
            docker_rig.workdir / f"notifying-{uuid.uuid4().hex[:6]}",
            auth=False,
            notify={
                "url": f"http://127.0.0.1:{port}/webhooks/registry/notifying",
                "headers": {"Authorization": [f"Bearer {SECRET}"]},
                "ignoredmediatypes": ["application/octet-stream"],
            },
        )
        repository = f"shop/{uuid.uuid4().hex[:6]}"
        digest = await asyncio.to_thread(registry.push_synthetic, repository, "v7", datetime.now(UTC))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:

            async def received() -> list[dict[str, Any]]:
                return list((await http.get("/webhooks/registry/events", params={"account": "notifying"})).json())

            events = await assert_eventually(received, what="the registry's push event received", timeout=10)
        assert [(e["repository"], e["tag"], e["digest"]) for e in events] == [(repository, "v7", digest)]
        assert events[0]["image"] == f"{registry.address}/{repository}:v7"
    finally:
        if registry is not None:
            registry.stop()
        server.should_exit = True
        await serving
