"""Webhook deliveries an attacker controls (issue 11 items 7 and 10, issue 15 item 3).

Replays: a captured, correctly signed GitHub push re-sent with a new or no `X-GitHub-Delivery` (the
delivery id is not signed) starts nothing new; a genuinely new push does.
Answers: a wrong secret or signature is a 401 that does not name the secret; a source with no
trigger, a trigger whose secret the gateway lacks and a wrong secret answer exactly alike; a
trigger naming a secret the gateway lacks is refused when it is saved.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from api.settings import GatewaySettings
from core.store import PipelineStore
from tests.support.trigger_rig import TriggerRig, github_push, save, unique
from workers.devserver import TemporalDevServer

SECRET_NAME = "replay-hooks"
RIG = TriggerRig(secret_name=SECRET_NAME, secret=f"gh-{uuid.uuid4().hex}")


@pytest.fixture
def settings(
    task_queue: str,
    worker: None,
    temporal_server: TemporalDevServer,
    store: PipelineStore,
    monkeypatch: pytest.MonkeyPatch,
) -> GatewaySettings:
    return RIG.settings(temporal_server, task_queue, store, monkeypatch)


@pytest.fixture
async def api(
    settings: GatewaySettings, client: Client, store: PipelineStore, worker: None
) -> AsyncIterator[httpx.AsyncClient]:
    async with RIG.gateway(settings, client, store) as http:
        yield http


def pipeline(name: str, triggers: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "application": "replay",
        "name": name,
        "triggers": triggers,
        "stages": [{"refId": "w", "type": "evaluateVariables", "variables": [{"key": "k", "value": "v"}]}],
    }


# ---- replays -------------------------------------------------------------------------------------


async def test_a_replayed_github_push_starts_nothing_new(api: httpx.AsyncClient) -> None:
    repo, name = unique("repo"), unique("gh")
    response = await save(
        api, pipeline(name, [{"type": "git", "project": "acme", "slug": repo, "secret": SECRET_NAME}])
    )
    assert response.status_code == 201, response.text
    captured = github_push(repo, after="a" * 40)

    first = await RIG.push(api, captured, str(uuid.uuid4()))
    assert first.status_code == 202, first.text
    [started] = first.json()["started"]
    assert started["replayed"] is False
    for delivery in (str(uuid.uuid4()), None):  # a new delivery id, then none at all
        again = await RIG.push(api, captured, delivery)
        assert again.status_code == 202, again.text
        assert again.json()["started"] == [{**started, "replayed": True}], delivery

    # A new push (another commit, or the same commit pushed again: another body) is a new event.
    other = await RIG.push(api, github_push(repo, after="b" * 40), str(uuid.uuid4()))
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
        await RIG.push(api, body, None, sig=RIG.signature(body, "wrong")),
        await RIG.push(api, github_push(unique("nosuch"), after="c" * 40), None, sig=RIG.signature(body, "wrong")),
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
