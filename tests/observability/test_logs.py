"""JSON-lines logging: fields from Temporal's loggers, and no secrets in any line."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from temporalio.client import Client

import workflows.stages.webhook  # noqa: F401  (registers `type: webhook`)
from core.observability.logs import JsonLinesFormatter, redact
from core.store import PipelineStore
from tests.support.fake_services import FakeHttp, Reply
from tests.support.runner import Runner
from tests.support.worker_policy import TEST_EGRESS
from workers.config import WorkerConfig
from workers.runner import pipeline_worker
from workers.telemetry import observe_worker_client
from workflows.observe.context import STAGE_REF
from workflows.state import StageStatus

SECRET = "s3cr3t-T0ken-value-42"
QUEUE = f"logs-{uuid.uuid4().hex[:8]}"


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("gennaker.test", logging.INFO, __file__, 1, message, args, None)
    made.__dict__.update(extra)
    return made


def test_json_line_carries_execution_stage_and_account() -> None:
    token = STAGE_REF.set("deploy-prod")
    try:
        line = JsonLinesFormatter().format(
            record(
                "created %s",
                "shop-v001",
                temporal_activity={
                    "activity_type": "create_server_group",
                    "workflow_id": "shop.release.abc",
                    "workflow_run_id": "run-1",
                    "task_queue": "k8s-prod",
                    "attempt": 1,
                },
            )
        )
    finally:
        STAGE_REF.reset(token)
    entry = json.loads(line)
    assert entry["message"] == "created shop-v001"
    assert entry["execution_id"] == "shop.release.abc" and entry["run_id"] == "run-1"
    assert entry["stage"] == "deploy-prod" and entry["account"] == "prod"
    assert entry["activity_type"] == "create_server_group" and entry["level"] == "INFO"


def test_credentials_are_redacted_wherever_they_appear() -> None:
    lines = [
        f"HTTP Request: POST http://hooks.local/notify?token={SECRET}&x=1",
        f"headers {{'Authorization': 'Bearer {SECRET}'}}",
        f'{{"password": "{SECRET}"}}',
        f"connecting to https://deploy:{SECRET}@registry.local/v2/",
        f"api_key={SECRET}",
    ]
    for line in lines:
        assert SECRET not in redact(line), line
    assert redact("deployed shop-v001 to prod") == "deployed shop-v001 to prod"


@pytest.fixture(scope="module")
def http() -> Iterator[FakeHttp]:
    with FakeHttp() as fake:
        yield fake


@pytest.fixture(scope="module")
async def logs_worker(client: Client, store: PipelineStore) -> AsyncIterator[None]:
    # With the worker's interceptors, as `gennaker worker` runs: activities learn their stage.
    config = WorkerConfig(egress=TEST_EGRESS)  # the webhook's receiver listens on loopback
    async with pipeline_worker(observe_worker_client(client, None), store, task_queue=QUEUE, config=config):
        yield


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonLinesFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


async def test_a_webhook_token_passed_as_parameter_never_reaches_a_log_line(
    client: Client, logs_worker: None, http: FakeHttp
) -> None:
    ok = http.route("POST", "/deploy-hook", Reply(200, {"ok": True}))
    failing = http.route("POST", "/broken-hook", Reply(500, {"error": "down"}))
    notify = http.route("POST", "/notify", Reply(200, {"ok": True}))
    stages = [
        {
            "refId": "hook",
            "type": "webhook",
            "url": ok + "?token=${{ parameters.token }}",
            "customHeaders": {"Authorization": "Bearer ${{ parameters.token }}"},
            "payload": {"token": "${{ parameters.token }}"},
            "sendNotifications": True,
            "notifications": [{"type": "webhook", "address": notify, "when": ["stage.complete"]}],
        },
        {
            # A failing call: its error (with the URL) goes through workflow.logger and the stage error.
            "refId": "broken",
            "type": "webhook",
            "requisiteStageRefIds": ["hook"],
            "url": failing + "?token=${{ parameters.token }}",
            "maxRetries": 0,
            "failFastStatusCodes": [500],
        },
    ]
    captured = Captured()
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(captured)
    # INFO, as `configure_logging` runs the workers: at DEBUG the SDK itself prints whole activity
    # tasks, inputs included (encrypted when the codec is on; docs/observability.md says so).
    root.setLevel(logging.INFO)
    try:
        handle = await Runner(client, QUEUE).start(
            {"application": "shop", "name": "secret-logs", "parameters": [{"name": "token"}], "stages": stages},
            {"token": SECRET},
        )
        state = await Runner.finish(handle)
    finally:
        root.removeHandler(captured)
        root.setLevel(previous_level)
    assert state.stage("hook") is not None and state.stage("hook").status is StageStatus.SUCCEEDED  # type: ignore[union-attr]
    (called,) = [r for r in http.requests if r.path == "/deploy-hook"]
    assert called.query["token"] == [SECRET]  # the secret was really used
    ours = [json.loads(line) for line in captured.lines if handle.id in line]
    assert ours, "no log line names the execution: the test would prove nothing"
    assert any(entry.get("stage") == "broken" for entry in ours), ours
    leaked = [line for line in captured.lines if SECRET in line]
    assert not leaked, leaked
    # A line logged inside an activity carries the stage that started it (header set by the worker's
    # interceptor from the stage's task).
    notified = [e for e in ours if e["message"].startswith("notified webhook")]
    assert notified and notified[0]["stage"] == "hook" and notified[0]["activity_type"], notified
    # The leak path is real: the failed call's message (with the URL) was logged, its query left out.
    assert any("broken-hook?" in line for line in captured.lines), captured.lines
