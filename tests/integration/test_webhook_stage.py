"""Webhook stage against a local HTTP server, through PipelineWorkflow on the real Temporal dev server
(own worker and task queue). Pipelines run concurrently to keep the retry backoffs off the clock."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from temporalio.client import Client

import workflows.stages.webhook  # noqa: F401  (registers `type: webhook`)
from activities.webhook import JsonPathError, json_path
from core.store import PipelineStore
from tests.support.fake_services import FakeHttp, Reply
from tests.support.runner import Runner
from tests.support.worker_policy import TEST_EGRESS
from workers.config import WorkerConfig
from workers.runner import pipeline_worker
from workflows.model import PipelineInvalid, parse_pipeline
from workflows.state import ExecutionState, StageStatus

QUEUE = f"webhook-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def http() -> Iterator[FakeHttp]:
    with FakeHttp() as fake:
        yield fake


@pytest.fixture(scope="module")
async def webhook_worker(client: Client, store: PipelineStore) -> AsyncIterator[None]:
    # The pipeline worker registers the webhook activities itself (workers/runner.py).
    worker = pipeline_worker(client, store, task_queue=QUEUE, config=WorkerConfig(egress=TEST_EGRESS))
    async with worker:
        yield


def hook(url: str, **fields: Any) -> dict[str, Any]:
    return {"refId": "hook", "type": "webhook", "url": url, "pollIntervalSeconds": 0.1, **fields}


async def run(client: Client, stage: dict[str, Any]) -> ExecutionState:
    return await Runner(client, QUEUE).run({"application": "shop", "name": "hooks", "stages": [stage]})


def test_json_path() -> None:
    data = {"a": {"b": [{"c": 1}], "x-y": "z"}}
    assert json_path(data, "$.a.b[0].c") == 1
    assert json_path(data, "a['x-y']") == "z"
    with pytest.raises(JsonPathError):
        json_path(data, "$.a.missing")


def test_monitoring_needs_a_status_path() -> None:
    with pytest.raises(PipelineInvalid) as caught:
        parse_pipeline({"application": "shop", "name": "x", "stages": [hook("http://h/x", waitForCompletion=True)]})
    assert "statusJsonPath" in str(caught.value)


async def test_calls_and_outcomes(client: Client, webhook_worker: None, http: FakeHttp) -> None:
    ok = http.route("POST", "/deploy", Reply(200, {"accepted": True, "id": 7}))
    rejected = http.route("POST", "/rejected", Reply(422, {"error": "bad tag"}))
    flaky = http.route("POST", "/flaky", Reply(503, "busy"), Reply(429, "slow down"), Reply(201, {"ok": 1}))
    broken = http.route("POST", "/broken", Reply(500, "down"))
    states = await asyncio.gather(
        run(client, hook(ok, payload={"tag": "${{ execution.application }}-v1"}, customHeaders={"X-Team": "shop"})),
        run(client, hook(rejected)),
        run(client, hook(flaky)),
        run(client, hook(broken, maxRetries=1)),
    )
    ok_state, rejected_state, flaky_state, broken_state = (s.stage("hook") for s in states)

    assert ok_state is not None and ok_state.status is StageStatus.SUCCEEDED, ok_state
    assert ok_state.outputs["webhook"]["statusCode"] == 200
    assert ok_state.outputs["webhook"]["body"] == {"accepted": True, "id": 7}
    [call] = http.received("POST", "/deploy")
    assert call.json() == {"tag": "shop-v1"} and call.headers["x-team"] == "shop"
    assert call.headers["x-gennaker-delivery"].endswith("/hook")

    assert rejected_state is not None and rejected_state.status is StageStatus.TERMINAL
    assert rejected_state.error is not None and "HTTP 422" in rejected_state.error.message
    assert "bad tag" in rejected_state.error.message
    assert len(http.received("POST", "/rejected")) == 1  # 4xx is not retried

    assert flaky_state is not None and flaky_state.status is StageStatus.SUCCEEDED
    assert len(http.received("POST", "/flaky")) == 3 and flaky_state.outputs["webhook"]["statusCode"] == 201

    assert broken_state is not None and broken_state.status is StageStatus.TERMINAL
    assert len(http.received("POST", "/broken")) == 2 and "HTTP 500" in str(broken_state.error)


async def test_wait_for_completion(client: Client, webhook_worker: None, http: FakeHttp) -> None:
    # locationHeader: 202 + Location, then a status document that moves RUNNING -> SUCCESS.
    start = http.route("POST", "/jobs", Reply(202, {"queued": True}, {"Location": "/jobs/7"}))
    http.route(
        "GET",
        "/jobs/7",
        Reply(200, {"job": {"state": "RUNNING", "progress": "1/3"}}),
        Reply(200, {"job": {"state": "RUNNING", "progress": "2/3"}}),
        Reply(200, {"job": {"state": "Success", "progress": "3/3"}}),
    )
    # webhookResponse: the status URL is in the body; the job ends in a terminal status.
    body_url = http.route("POST", "/runs", Reply(200, {"links": {"status": f"{http.url}/runs/9"}}))
    http.route("GET", "/runs/9", Reply(200, {"state": "FAILED", "message": "tests failed"}))
    # getMethod: poll the same URL; the remote side reports it canceled.
    same_url = http.route("POST", "/tasks/3", Reply(200, {}))
    http.route("GET", "/tasks/3", Reply(503, "warming up"), Reply(200, {"status": "ABORTED"}))

    states = await asyncio.gather(
        run(
            client,
            hook(
                start,
                waitForCompletion=True,
                statusUrlResolution="locationHeader",
                statusJsonPath="$.job.state",
                progressJsonPath="$.job.progress",
                successStatuses="SUCCESS",
                terminalStatuses="FAILED,ERROR",
            ),
        ),
        run(
            client,
            hook(
                body_url,
                waitForCompletion=True,
                statusUrlResolution="webhookResponse",
                statusUrlJsonPath="$.links.status",
                statusJsonPath="$.state",
                progressJsonPath="$.message",
                successStatuses=["SUCCEEDED"],
                terminalStatuses=["FAILED"],
            ),
        ),
        run(
            client,
            hook(
                same_url,
                waitForCompletion=True,
                statusJsonPath="status",
                successStatuses="DONE",
                canceledStatuses="ABORTED",
            ),
        ),
    )
    location, body, same = (s.stage("hook") for s in states)

    assert location is not None and location.status is StageStatus.SUCCEEDED, location
    assert location.outputs["status"] == "Success"
    monitor = location.outputs["webhook"]["monitor"]
    assert monitor["progressMessage"] == "3/3" and monitor["polls"] == 3
    assert location.outputs["webhook"]["statusUrl"] == f"{http.url}/jobs/7"

    assert body is not None and body.status is StageStatus.TERMINAL and body.error is not None
    assert "status 'FAILED'" in body.error.message and "tests failed" in body.error.message
    assert body.outputs["status"] == "FAILED"

    assert same is not None and same.status is StageStatus.TERMINAL and same.error is not None
    assert same.error.kind == "canceled" and "ABORTED" in same.error.message
    assert len(http.received("GET", "/tasks/3")) == 2  # the 503 was polled through
