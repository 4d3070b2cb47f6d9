"""Webhook deliveries an attacker controls (issue 11 items 7 and 10, issue 15 item 3).

Replays: a captured, correctly signed GitHub push re-sent with a new or no `X-GitHub-Delivery` (the
delivery id is not signed) starts nothing new; a genuinely new push does.
Answers: a wrong secret or signature is a 401 that does not name the secret; a source with no
trigger, a trigger whose secret the gateway lacks and a wrong secret answer exactly alike; a
trigger naming a secret the gateway lacks is refused when it is saved.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from api.app import create_app
from api.settings import GatewaySettings
from core.store import PipelineStore
from workers.devserver import TemporalDevServer

SECRET = f"gh-{uuid.uuid4().hex}"
SECRET_NAME = "replay-hooks"


@pytest.fixture
def settings(
    task_queue: str,
    worker: None,
    temporal_server: TemporalDevServer,
    store: PipelineStore,
    monkeypatch: pytest.MonkeyPatch,
) -> GatewaySettings:
    monkeypatch.setenv("GENNAKER_TRIGGER_SECRET_REPLAY_HOOKS", SECRET)
    return GatewaySettings(
        temporal_address=temporal_server.address,
        task_queue=task_queue,
        database_url=store.database_url,
        auth_disabled=True,
    )


@pytest.fixture
async def api(
    settings: GatewaySettings, client: Client, store: PipelineStore, worker: None
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, client=client, store=store)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            yield http


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def pipeline(name: str, triggers: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "application": "replay",
        "name": name,
        "triggers": triggers,
        "stages": [{"refId": "w", "type": "evaluateVariables", "variables": [{"key": "k", "value": "v"}]}],
    }


async def save(api: httpx.AsyncClient, spec: dict[str, Any]) -> httpx.Response:
    return await api.put(f"/applications/replay/pipelines/{spec['name']}", json=spec)


def github_push(repo: str, after: str, pusher: str = "octocat") -> bytes:
    return json.dumps(
        {
            "ref": "refs/heads/main",
            "before": "0" * 40,
            "after": after,
            "repository": {"name": repo, "owner": {"login": "acme", "name": "acme"}},
            "pusher": {"name": pusher},
        }
    ).encode()


def signed(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def push(api: httpx.AsyncClient, body: bytes, delivery: str | None, sig: str | None = None) -> httpx.Response:
    headers = {"X-GitHub-Event": "push", "Content-Type": "application/json"}
    headers["X-Hub-Signature-256"] = sig if sig is not None else signed(body)
    if delivery is not None:
        headers["X-GitHub-Delivery"] = delivery
    return await api.post("/webhooks/git/github", content=body, headers=headers)


# ---- replays -------------------------------------------------------------------------------------


async def test_a_replayed_github_push_starts_nothing_new(api: httpx.AsyncClient) -> None:
    repo, name = unique("repo"), unique("gh")
    response = await save(
        api, pipeline(name, [{"type": "git", "project": "acme", "slug": repo, "secret": SECRET_NAME}])
    )
    assert response.status_code == 201, response.text
    captured = github_push(repo, after="a" * 40)

    first = await push(api, captured, str(uuid.uuid4()))
    assert first.status_code == 202, first.text
    [started] = first.json()["started"]
    assert started["replayed"] is False
    for delivery in (str(uuid.uuid4()), None):  # a new delivery id, then none at all
        again = await push(api, captured, delivery)
        assert again.status_code == 202, again.text
        assert again.json()["started"] == [{**started, "replayed": True}], delivery

    # A new push (another commit, or the same commit pushed again: another body) is a new event.
    other = await push(api, github_push(repo, after="b" * 40), str(uuid.uuid4()))
    [next_run] = other.json()["started"]
    assert next_run["replayed"] is False and next_run["id"] != started["id"]


# ---- answers -------------------------------------------------------------------------------------


async def test_bad_secret_unknown_source_and_unconfigured_secret_answer_alike(
    api: httpx.AsyncClient, store: PipelineStore, caplog: pytest.LogCaptureFixture
) -> None:
    known, unconfigured = unique("src"), unique("src")
    response = await save(api, pipeline(unique("hook"), [{"type": "webhook", "source": known, "secret": SECRET_NAME}]))
    assert response.status_code == 201, response.text
    # Saved before the gateway lost the secret (or by an older version): stored directly.
    store.save(
        "replay",
        unique("stale"),
        pipeline("stale", [{"type": "webhook", "source": unconfigured, "secret": "gone-secret"}]),
        author="test",
    )
    with caplog.at_level(logging.WARNING):
        answers = [
            await api.post(f"/webhooks/webhook/{known}", json={}, headers={"X-Gennaker-Secret": "wrong"}),
            await api.post(f"/webhooks/webhook/{known}", json={}),
            await api.post(f"/webhooks/webhook/{unique('nosuch')}", json={}, headers={"X-Gennaker-Secret": "x"}),
            await api.post(f"/webhooks/webhook/{unconfigured}", json={}, headers={"X-Gennaker-Secret": "x"}),
        ]
    assert [a.status_code for a in answers] == [401] * 4
    assert len({a.content for a in answers}) == 1, [a.text for a in answers]
    message = answers[0].json()["error"]["message"]
    assert SECRET_NAME not in message and "gone-secret" not in message
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "'gone-secret' is not configured on the gateway" in logged  # the operator learns why

    repo = unique("repo")
    await save(api, pipeline(unique("gh"), [{"type": "git", "project": "acme", "slug": repo, "secret": SECRET_NAME}]))
    body = github_push(repo, after="c" * 40)
    github = [
        await push(api, body, None, sig=signed(body, "wrong")),
        await push(api, github_push(unique("nosuch"), after="c" * 40), None, sig=signed(body, "wrong")),
    ]
    assert [g.status_code for g in github] == [401, 401] and github[0].content == github[1].content
    assert SECRET_NAME not in github[0].text


async def test_a_trigger_whose_secret_the_gateway_lacks_is_refused_at_save(api: httpx.AsyncClient) -> None:
    name = unique("nosecret")
    triggers = [
        {"type": "cron", "cron": "0 3 * * *"},
        {"type": "webhook", "source": unique("src"), "secret": "not-here"},
    ]
    response = await save(api, pipeline(name, triggers))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == "triggers[1].secret"
    assert "secret 'not-here' is not configured on the gateway" in error["message"]
    assert (await api.get(f"/applications/replay/pipelines/{name}")).status_code == 404
