"""Webhook stage against a local HTTP server, through PipelineWorkflow on the real Temporal dev server
(own worker and task queue). Pipelines run concurrently to keep the retry backoffs off the clock."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from temporalio.client import Client

import workflows.stages.webhook  # noqa: F401  (registers `type: webhook`)
from activities.webhook import MAX_RESPONSE_BYTES
from activities.webhook_paths import MAX_DOCUMENT_NODES, JsonPathError, check_document, find_scalar, find_value
from api.app import create_app
from api.settings import GatewaySettings
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


# A status document shaped like a Spinnaker execution (GET /pipelines/{id}: stages with name and
# status), polled by a webhook stage of another pipeline. Deck's help shows statusJsonPath as
# "$.buildInfo.status" (spinnaker/deck app/scripts/modules/core/src/help/help.contents.ts,
# `pipeline.config.webhook.statusJsonPath`); orca reads it with Jayway JsonPath, whose filters
# `[?(@.name == '…')]` pipelines use to pick one stage's status.
STAGE_FILTER = "$.stages[?(@.name == 'Deploy to prod')].status"
PROGRESS_FILTER = "$.stages[?(@.name == 'Deploy to prod' && @.type == 'deploy')].context.progress"


def execution(status: str, progress: str) -> dict[str, Any]:
    return {
        "id": "01J9",
        "status": "RUNNING",
        "stages": [
            {"name": "Bake", "type": "bake", "status": "SUCCEEDED", "context": {"progress": "done"}},
            {"name": "Deploy to prod", "type": "deploy", "status": status, "context": {"progress": progress}},
        ],
    }


def test_paths_read_spinnaker_shapes() -> None:
    data = {"a": {"b": [{"c": 1}], "x-y": "z"}, **execution("RUNNING", "2/4")}
    assert find_value(data, "$.a.b[0].c") == 1
    assert find_value(data, "a['x-y']") == "z"
    assert find_scalar(data, STAGE_FILTER) == "RUNNING"
    assert find_scalar(data, PROGRESS_FILTER) == "2/4"
    assert find_scalar(data, "$..id") == "01J9"
    with pytest.raises(JsonPathError, match="not found"):
        find_value(data, "$.a.missing")
    with pytest.raises(JsonPathError, match="2 different values"):
        find_value(data, "$.stages[*].status")  # which one? refused, as orca refuses a list
    with pytest.raises(JsonPathError, match="not a string or number"):
        find_scalar(data, "$.stages[0]")


def test_monitoring_needs_a_status_path() -> None:
    with pytest.raises(PipelineInvalid) as caught:
        parse_pipeline({"application": "shop", "name": "x", "stages": [hook("http://h/x", waitForCompletion=True)]})
    assert "statusJsonPath" in str(caught.value)


@pytest.mark.parametrize(
    ("field", "path", "why"),
    [
        ("statusJsonPath", "$.stages[?(@.name == ", "not valid JSONPath"),
        ("statusJsonPath", "$.items[?(@.name =~ '(a+)+$')].status", "'=~' is not allowed"),  # ReDoS
        ("progressJsonPath", "$..stages..status", "at most one '..'"),
        ("progressJsonPath", "$.a[?(@.b[?(@.c == 1)])]", "filter inside a filter"),
        ("statusJsonPath", "$.a[?($.b == 1)].c", "'$' inside a filter"),
        ("statusJsonPath", "$.stages.`sorted`", "SortedThis is not supported"),
        ("statusUrlJsonPath", "$." + "a." * 200 + "b", "at most 256"),
    ],
)
def test_bad_paths_are_refused_at_submission(field: str, path: str, why: str) -> None:
    fields = {"statusJsonPath": "$.status", "successStatuses": "DONE", field: path}
    if field == "statusUrlJsonPath":
        fields["statusUrlResolution"] = "webhookResponse"
    with pytest.raises(PipelineInvalid) as caught:
        parse_pipeline(
            {"application": "shop", "name": "x", "stages": [hook("http://h/x", waitForCompletion=True, **fields)]}
        )
    [error] = caught.value.errors
    assert error.field == f"stages[hook].{field}" and why in error.message, error


async def test_bad_path_is_a_422_naming_the_field(client: Client, store: PipelineStore) -> None:
    app = create_app(
        GatewaySettings(task_queue=QUEUE, database_url=store.database_url, auth_disabled=True),
        client=client,
        store=store,
    )
    stage = hook("http://h/x", waitForCompletion=True, statusJsonPath=STAGE_FILTER.replace("==", "=~"))
    stage["successStatuses"] = "SUCCEEDED"
    spec = {"application": "shop", "name": "x", "stages": [stage]}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gennaker.test") as api,
    ):
        answer = await api.post("/executions", json={"pipeline": spec}, headers={"X-Gennaker-User": "alice"})
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["field"] == "stages[hook].statusJsonPath" and "'=~' is not allowed" in error["message"], error


def test_documents_too_big_for_paths_are_refused() -> None:
    check_document([{"a": 1}] * (MAX_DOCUMENT_NODES // 2 - 1))
    with pytest.raises(JsonPathError, match=f"over {MAX_DOCUMENT_NODES} JSON values"):
        check_document([[1, 2]] * MAX_DOCUMENT_NODES)
    deep: Any = "x"
    for _ in range(100):
        deep = {"a": deep}
    with pytest.raises(JsonPathError, match="deeper than"):
        check_document(deep)


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
    # Filters, as Spinnaker pipelines write them: one stage's status in an execution document.
    spinnaker = http.route("POST", "/pipelines/release", Reply(202, {}, {"Location": "/executions/01J9"}))
    http.route(
        "GET",
        "/executions/01J9",
        Reply(200, {"stages": []}),  # not there yet: keep polling
        Reply(200, execution("RUNNING", "1/2")),
        Reply(200, execution("SUCCEEDED", "2/2")),
    )

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
        run(
            client,
            hook(
                spinnaker,
                waitForCompletion=True,
                statusUrlResolution="locationHeader",
                statusJsonPath=STAGE_FILTER,
                progressJsonPath=PROGRESS_FILTER,
                successStatuses="SUCCEEDED",
                terminalStatuses="TERMINAL,CANCELED",
            ),
        ),
    )
    location, body, same, filtered = (s.stage("hook") for s in states)

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

    assert filtered is not None and filtered.status is StageStatus.SUCCEEDED, filtered
    assert filtered.outputs["status"] == "SUCCEEDED"
    assert filtered.outputs["webhook"]["monitor"]["progressMessage"] == "2/2"
    assert filtered.outputs["webhook"]["monitor"]["polls"] == 3


async def test_hostile_status_documents_fail_the_stage_at_once(
    client: Client, webhook_worker: None, http: FakeHttp
) -> None:
    # Polling them again would burn the worker again: the stage fails on the first such answer.
    huge = http.route("POST", "/huge", Reply(200, {}))
    http.route("GET", "/huge", Reply(200, {"status": "RUNNING", "pad": "x" * (2 * MAX_RESPONSE_BYTES)}))
    wide = http.route("POST", "/wide", Reply(200, {}))
    http.route("GET", "/wide", Reply(200, {"status": "RUNNING", "items": [[1, 2]] * MAX_DOCUMENT_NODES}))
    states = await asyncio.gather(
        *(
            run(client, hook(url, waitForCompletion=True, statusJsonPath="$..status", successStatuses="DONE"))
            for url in (huge, wide)
        )
    )
    for state, why in zip(
        states, [f"over {MAX_RESPONSE_BYTES // 1024} KiB", f"over {MAX_DOCUMENT_NODES}"], strict=True
    ):
        stage = state.stage("hook")
        assert stage is not None and stage.status is StageStatus.TERMINAL and stage.error is not None, stage
        assert why in stage.error.message, stage.error.message
    assert len(http.received("GET", "/huge")) == len(http.received("GET", "/wide")) == 1
