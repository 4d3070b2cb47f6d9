"""Triggers end to end: cron Schedules, GitHub/generic/Jenkins webhooks, registry pushes, and
pipelines triggered by other pipelines — through the gateway on the real dev server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from temporalio.client import Client
from temporalio.service import RPCError

from api.settings import GatewaySettings
from core.store import PipelineStore
from core.triggers import dispatch_registry_push
from tests.support.eventually import assert_eventually
from tests.support.trigger_rig import TriggerRig, github_push, save, unique
from workers.devserver import TemporalDevServer
from workflows.search import PIPELINE, TRIGGER
from workflows.state import ExecutionState

SECRET = "s3cret-value"
RIG = TriggerRig(secret_name="hooks", secret=SECRET)


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


def saved(name: str, triggers: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "application": "trig",
        "name": name,
        "triggers": triggers,
        "stages": [
            {"refId": "w", "type": "evaluateVariables", "variables": [{"key": "via", "value": "${{ trigger.type }}"}]}
        ],
        **extra,
    }


async def executions_of(client: Client, pipeline: str, timeout: float = 15, at_least: int = 1) -> list[str]:
    """The runs of `pipeline` visibility lists, once there are `at_least` of them."""

    async def listed() -> list[str]:
        return [wf.id async for wf in client.list_workflows(f'{PIPELINE.name}="{pipeline}"')]

    return await assert_eventually(
        listed,
        lambda found: len(found) >= at_least,
        what=f"{at_least} run(s) of {pipeline}",
        timeout=timeout,
        interval=0.2,
    )


# ---- cron ----------------------------------------------------------------------------------------


async def test_cron_trigger_is_a_schedule_that_starts_runs_and_goes_away(
    api: httpx.AsyncClient, client: Client
) -> None:
    name = unique("cron")
    response = await save(api, saved(name, [{"type": "cron", "interval": "1s", "id": "tick"}]))
    assert response.status_code == 201, response.text
    schedule = client.get_schedule_handle(f"cron.trig.{name}.tick")
    described = await schedule.describe()
    assert described.schedule.spec.intervals[0].every.total_seconds() == 1
    runs = await executions_of(client, name, timeout=20)
    assert runs, "the schedule started no execution"
    state = await client.get_workflow_handle(runs[0]).query("state", result_type=ExecutionState)
    assert state.trigger.type == "cron"
    assert state.trigger.source == f"cron.trig.{name}.tick"
    # Saving without the trigger removes its schedule.
    assert (await save(api, saved(name, []))).status_code == 200
    with pytest.raises(RPCError):
        await schedule.describe()


async def test_deleting_a_pipeline_deletes_its_schedules(api: httpx.AsyncClient, client: Client) -> None:
    name = unique("cron-del")
    await save(api, saved(name, [{"type": "cron", "cron": "0 3 * * 1-5", "timezone": "Europe/Paris"}]))
    schedule = client.get_schedule_handle(f"cron.trig.{name}.0")
    assert (await schedule.describe()).schedule.spec.time_zone_name == "Europe/Paris"
    assert (await api.delete(f"/applications/trig/pipelines/{name}")).status_code == 200
    with pytest.raises(RPCError):
        await schedule.describe()


async def test_a_refused_schedule_fails_the_save_whole(api: httpx.AsyncClient, client: Client) -> None:
    name = unique("cron-bad")
    response = await save(
        api,
        saved(
            name,
            [
                {"type": "cron", "interval": "1h", "id": "ok"},
                {"type": "cron", "cron": "0 3 * * *", "timezone": "Mars/Olympus"},
            ],
        ),
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == "triggers[1]"
    assert (await api.get(f"/applications/trig/pipelines/{name}")).status_code == 404
    with pytest.raises(RPCError):  # the first schedule, created before the refusal, was undone
        await client.get_schedule_handle(f"cron.trig.{name}.ok").describe()


async def test_invalid_cron_is_rejected_with_the_field(api: httpx.AsyncClient) -> None:
    response = await save(api, saved(unique("cron-syntax"), [{"type": "cron", "cron": "every day"}]))
    assert response.status_code == 422
    assert response.json()["error"]["field"].startswith("triggers[0]")


# ---- GitHub --------------------------------------------------------------------------------------


async def test_github_push_starts_once_per_delivery(api: httpx.AsyncClient, client: Client) -> None:
    repo, name = unique("repo"), unique("git")
    await save(
        api,
        saved(name, [{"type": "git", "project": "acme", "slug": repo, "branch": "main|release/.*", "secret": "hooks"}]),
    )
    body = github_push(repo)
    first = await RIG.push(api, body, "delivery-1")
    assert first.status_code == 202, first.text
    assert [s["pipeline"] for s in first.json()["started"]] == [name]
    again = await RIG.push(api, body, "delivery-1")
    # The replay reports every run the delivery maps to: the one it started before, and no other.
    assert [(s["id"], s["replayed"]) for s in again.json()["started"]] == [(first.json()["started"][0]["id"], True)]
    state = await client.get_workflow_handle(first.json()["started"][0]["id"]).query(
        "state", result_type=ExecutionState
    )
    assert state.trigger.type == "git" and state.trigger.user == "github:octocat"
    assert state.trigger.runAs == "git-trigger"  # no serviceAccount configured
    assert state.trigger.payload["branch"] == "main"
    assert await executions_of(client, name) == [first.json()["started"][0]["id"]]


async def test_github_bad_signature_is_401_and_starts_nothing(api: httpx.AsyncClient, client: Client) -> None:
    repo, name = unique("repo"), unique("git-bad")
    await save(api, saved(name, [{"type": "git", "project": "acme", "slug": repo, "secret": "hooks"}]))
    body = github_push(repo)
    response = await RIG.push(api, body, "delivery-x", sig=RIG.signature(body, "wrong"))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert "hooks" not in response.json()["error"]["message"]  # the secret's name is not told
    # The same push, signed right: a run the forged push had started would come back as a replay
    # (a GitHub delivery is keyed by its body, not its unsigned delivery id), so `replayed: false`
    # from the start itself, not a visibility read that may lag, shows the 401 started nothing.
    genuine = await RIG.push(api, body, "delivery-y")
    assert genuine.status_code == 202, genuine.text
    [started] = genuine.json()["started"]
    assert (started["pipeline"], started["replayed"]) == (name, False)
    assert await executions_of(client, name) == [started["id"]]


async def test_github_other_branch_matches_nothing_with_a_reason(api: httpx.AsyncClient) -> None:
    repo = unique("repo")
    await save(
        api,
        saved(
            unique("git-branch"),
            [{"type": "git", "project": "acme", "slug": repo, "branch": "main", "secret": "hooks"}],
        ),
    )
    response = await RIG.push(api, github_push(repo, branch="feature/x"), "delivery-b")
    assert response.status_code == 202
    assert response.json()["message"] == "no pipeline matched"
    assert any("feature/x" in n["reason"] for n in response.json()["notStarted"])


async def test_malformed_github_payload_is_422(api: httpx.AsyncClient) -> None:
    body = b'{"ref": "refs/heads/main"}'
    response = await RIG.push(api, body, "delivery-m")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_payload"


# ---- generic webhook, Jenkins, registry, pipeline ---------------------------------------------------


async def test_generic_webhook_with_payload_constraints(api: httpx.AsyncClient, client: Client) -> None:
    source, name = unique("src"), unique("hook")
    await save(
        api,
        saved(
            name,
            [{"type": "webhook", "source": source, "secret": "hooks", "payloadConstraints": {"env": "prod|staging"}}],
        ),
    )
    headers = {"X-Gennaker-Secret": SECRET, "X-Gennaker-Delivery": "d1"}
    started = await api.post(f"/webhooks/webhook/{source}", json={"env": "prod", "who": "ci"}, headers=headers)
    assert started.status_code == 202 and len(started.json()["started"]) == 1
    refused = await api.post(
        f"/webhooks/webhook/{source}", json={"env": "dev"}, headers={**headers, "X-Gennaker-Delivery": "d2"}
    )
    assert refused.json()["message"] == "no pipeline matched"
    assert "payloadConstraints" in refused.json()["notStarted"][0]["reason"]
    unauthorized = await api.post(
        f"/webhooks/webhook/{source}", json={"env": "prod"}, headers={"X-Gennaker-Secret": "nope"}
    )
    assert unauthorized.status_code == 401
    not_json = await api.post(f"/webhooks/webhook/{source}", content=b"[1, 2", headers=headers)
    assert not_json.status_code == 422


async def test_jenkins_finished_build_triggers(api: httpx.AsyncClient, client: Client) -> None:
    job, name = unique("job"), unique("jenkins")
    await save(
        api, saved(name, [{"type": "jenkins", "master": "ci", "job": job, "secret": "hooks"}], serviceAccount="ci-bot")
    )
    build = {
        "name": job,
        "url": f"job/{job}/",
        "build": {"number": 7, "phase": "FINALIZED", "status": "SUCCESS", "full_url": "http://ci/job/7/"},
    }
    headers = {"X-Gennaker-Secret": SECRET}
    response = await api.post("/webhooks/jenkins/ci", json=build, headers=headers)
    assert response.status_code == 202 and len(response.json()["started"]) == 1
    execution = response.json()["started"][0]["id"]
    state = await client.get_workflow_handle(execution).query("state", result_type=ExecutionState)
    assert state.trigger.payload["buildNumber"] == 7
    assert state.trigger.runAs == "ci-bot"
    failed = {**build, "build": {**build["build"], "number": 8, "status": "FAILURE"}}
    assert (await api.post("/webhooks/jenkins/ci", json=failed, headers=headers)).json()[
        "message"
    ] == "no pipeline matched"


async def test_registry_push_triggers_docker_pipelines(
    settings: GatewaySettings, client: Client, store: PipelineStore, api: httpx.AsyncClient
) -> None:
    repo, name = unique("shop/frontend"), unique("docker")
    await save(api, saved(name, [{"type": "docker", "account": "local", "repository": repo, "tag": r"v\d+\.\d+\.\d+"}]))
    kwargs = {"account": "local", "repository": repo, "digest": "sha256:abc"}
    result = await dispatch_registry_push(client, settings, store.aio, tag="v1.2.3", delivery_id="evt-1", **kwargs)
    assert [s.pipeline for s in result.started] == [name]
    skipped = await dispatch_registry_push(client, settings, store.aio, tag="latest", delivery_id="evt-2", **kwargs)
    assert not skipped.started and "latest" in skipped.notStarted[0].reason


async def test_pipeline_trigger_starts_after_upstream_succeeds(api: httpx.AsyncClient, client: Client) -> None:
    upstream, downstream = unique("upstream"), unique("downstream")
    await save(api, saved(upstream, []))
    await save(api, saved(downstream, [{"type": "pipeline", "application": "trig", "pipeline": upstream}]))
    started = await api.post(f"/pipelines/trig/{upstream}", json={})
    assert started.status_code == 202
    upstream_id = started.json()["id"]
    runs = await executions_of(client, downstream, timeout=20)
    assert len(runs) == 1
    state = await client.get_workflow_handle(runs[0]).query("state", result_type=ExecutionState)
    assert state.trigger.type == "pipeline" and state.trigger.source == upstream_id
    upstream_state = await client.get_workflow_handle(upstream_id).query("state", result_type=ExecutionState)
    assert upstream_state.triggered == [runs[0]]
    found = [
        wf.id async for wf in client.list_workflows(f'{TRIGGER.name}="pipeline" AND {PIPELINE.name}="{downstream}"')
    ]
    assert found == runs or found == []  # visibility may lag; the query above is authoritative
