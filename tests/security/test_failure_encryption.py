"""Failure messages and stack traces are encrypted with the payload codec, and secrets stay out of
log lines (issue 11 item 6).

A webhook stage whose URL carries `?token=${{ parameters.token }}` fails; so does one whose server
echoes the token back in its error answer (the answer's excerpt is part of the failure message).
Read raw, by a client without the codec, the executions' histories hold the token nowhere: not in
failure messages or stack traces, not in any payload, not in summaries. The worker's log lines,
captured while they ran, do not hold it either, nor those of notifications to URLs with tokens.
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import ActivityEnvironment

import workflows.stages.webhook  # noqa: F401  (registers `type: webhook`)
from activities.notify import NotificationRequest, NotificationSettings, NotifyActivities
from core.store import PipelineStore
from tests.support.fake_services import FakeHttp, Reply
from tests.support.runner import Runner
from tests.support.worker_policy import TEST_EGRESS
from workers.config import WorkerConfig
from workers.devserver import TemporalDevServer
from workers.runner import pipeline_worker
from workflows.state import StageStatus

QUEUE = f"failures-{uuid.uuid4().hex[:8]}"
TOKEN = f"tok-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def http() -> Iterator[FakeHttp]:
    with FakeHttp() as fake:
        yield fake


@pytest.fixture(scope="module")
async def failing_worker(client: Client, store: PipelineStore) -> AsyncIterator[None]:
    async with pipeline_worker(client, store, task_queue=QUEUE, config=WorkerConfig(egress=TEST_EGRESS)):
        yield


def _haystack(value: Any, found: list[str]) -> None:
    """Every string in a history's JSON, with base64 `data` fields decoded as well."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "data" and isinstance(item, str):
                found.append(base64.b64decode(item).decode("utf-8", "replace"))
            _haystack(item, found)
    elif isinstance(value, list):
        for item in value:
            _haystack(item, found)
    elif isinstance(value, str):
        found.append(value)


async def raw_history_text(temporal_server: TemporalDevServer, workflow_id: str) -> tuple[str, list[str]]:
    """The history as an operator without the codec key reads it; also the failure messages."""
    raw = await Client.connect(temporal_server.address, data_converter=pydantic_data_converter)
    history = await raw.get_workflow_handle(workflow_id).fetch_history()
    data = json.loads(history.to_json())
    strings: list[str] = []
    _haystack(data, strings)
    messages = [
        event["activityTaskFailedEventAttributes"]["failure"]["message"]
        for event in data["events"]
        if "activityTaskFailedEventAttributes" in event
    ]
    return "\n".join(strings), messages


def leaky(stage: dict[str, Any]) -> dict[str, Any]:
    return {
        "application": "vault",
        "name": "leaky",
        "parameters": [{"name": "token", "required": True}],
        "stages": [{"refId": "hook", "type": "webhook", **stage}],
    }


async def test_a_token_in_a_failed_webhook_url_is_in_no_history_and_no_log_line(
    client: Client,
    temporal_server: TemporalDevServer,
    failing_worker: None,
    http: FakeHttp,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rejecting = http.route("POST", "/hook", Reply(422, {"error": "token rejected"}))
    runner = Runner(client, QUEUE)
    with caplog.at_level(logging.DEBUG):
        handle = await runner.start(leaky({"url": rejecting + "?token=${{ parameters.token }}"}), {"token": TOKEN})
        state = await runner.finish(handle)
    stage = state.stage("hook")
    assert stage is not None and stage.status is StageStatus.TERMINAL and stage.error is not None, stage
    assert "HTTP 422" in stage.error.message and TOKEN not in stage.error.message
    [call] = http.received("POST", "/hook")
    assert call.query["token"] == [TOKEN]  # the request itself carried it

    text, messages = await raw_history_text(temporal_server, handle.id)
    assert messages and all(m == "Encoded failure" for m in messages), messages
    assert TOKEN not in text
    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''} {r.__dict__}" for r in caplog.records)
    assert TOKEN not in logged


async def test_an_echoed_token_in_a_failure_message_is_encrypted_in_history(
    client: Client, temporal_server: TemporalDevServer, failing_worker: None, http: FakeHttp
) -> None:
    """A server that echoes the token in its error answer puts it in the failure message: people
    with the codec key read it there; history holds it only encrypted."""
    echoing = http.route("POST", "/echo", lambda req: Reply(422, f"bad request {req.json()}"))
    token = f"echo-{uuid.uuid4().hex}"
    runner = Runner(client, QUEUE)
    handle = await runner.start(
        leaky({"url": echoing, "payload": {"token": "${{ parameters.token }}"}}), {"token": token}
    )
    state = await runner.finish(handle)
    stage = state.stage("hook")
    assert stage is not None and stage.status is StageStatus.TERMINAL and stage.error is not None, stage
    assert token in stage.error.message  # read through the codec

    text, messages = await raw_history_text(temporal_server, handle.id)
    assert messages and all(m == "Encoded failure" for m in messages), messages
    assert token not in text


def test_notification_addresses_stay_out_of_log_lines(http: FakeHttp, caplog: pytest.LogCaptureFixture) -> None:
    """A webhook address with a token, and a Slack incoming-webhook URL (the URL is the credential)."""
    hook = http.route("POST", "/notify", Reply(200, {"ok": True}))
    slack_token = f"T000/B000/{uuid.uuid4().hex}"
    http.route("POST", f"/services/{slack_token}", Reply(200, b"ok"))
    notify = NotifyActivities(NotificationSettings(), None, egress=TEST_EGRESS)
    with caplog.at_level(logging.DEBUG):
        for channel, address in (("webhook", f"{hook}?token={TOKEN}"), ("slack", f"{http.url}/services/{slack_token}")):
            request = NotificationRequest.model_validate(
                {
                    "notificationId": f"n-{channel}",
                    "channel": channel,
                    "address": address,
                    "event": "pipeline.complete",
                    "application": "vault",
                    "pipeline": "p",
                    "executionId": "e1",
                }
            )
            result = ActivityEnvironment().run(notify.send_notification, request)
            assert result.delivered
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "notified webhook" in logged and "notified slack" in logged
    assert TOKEN not in logged and slack_token not in logged
