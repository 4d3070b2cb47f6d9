"""What the Temporal UI reads from a history: stage-named summaries and current details in clear,
inputs still encrypted; a stage whose account has no worker fails after its own bounded wait."""

from __future__ import annotations

import asyncio
import base64
import json

from temporalio.api.enums.v1 import EventType
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client

from core.codec import READABLE
from tests.conftest import Runner, pipeline
from workers.devserver import TemporalDevServer
from workflows.state import StageStatus

SECRET_PARAMETER = "hunter2-never-in-a-summary"


async def _raw(temporal_server: TemporalDevServer) -> Client:
    return await Client.connect(temporal_server.address)  # no codec, no key: what the server stores


async def test_summaries_and_details_are_readable_and_name_the_stage(
    runner: Runner, temporal_server: TemporalDevServer
) -> None:
    spec = pipeline(
        {"refId": "pause", "name": "settle", "type": "wait", "waitTime": 1},
        {
            "refId": "approve",
            "type": "manualJudgment",
            "requisiteStageRefIds": ["pause"],
            "instructions": "Check the canary dashboard",
            "judgmentInputs": ["ship", "hold"],
        },
        name="readable",
        parameters=[{"name": "p"}],
    )
    handle = await runner.start(spec, {"p": SECRET_PARAMETER})
    raw = (await _raw(temporal_server)).get_workflow_handle(handle.id)

    async def waiting_details() -> str:
        for _ in range(200):
            answer = await raw.query("__temporal_workflow_metadata")
            # A client without the key reads it: the answer is stored in clear (json/protobuf).
            assert isinstance(answer, WorkflowMetadata), answer
            text = answer.current_details
            if "waits for a judgment" in text:
                return text
            await asyncio.sleep(0.05)
        raise AssertionError("the current details never showed the waiting judgment")

    details = await waiting_details()
    assert "**approve** (manualJudgment)" in details and "**approve** waits for a judgment" in details
    assert "instructions: Check the canary dashboard" in details
    assert "options: ship, hold" in details
    assert f"gennaker approve {handle.id} approve --option ship" in details
    assert f"/console/executions/{handle.id}" in details

    history = await raw.fetch_history()
    timers = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED]
    assert timers, "the wait stage started no timer"
    summary = timers[0].user_metadata.summary
    assert summary.metadata.get(READABLE) == b"1"
    assert json.loads(summary.data) == "settle · Wait 1s"
    started = history.events[0].workflow_execution_started_event_attributes
    assert started.input.payloads[0].metadata["encoding"] == b"binary/encrypted"
    assert SECRET_PARAMETER not in history.to_json()
    assert base64.b64encode(SECRET_PARAMETER.encode()).decode() not in history.to_json()
    await handle.cancel()


async def test_a_stage_whose_account_has_no_worker_fails_after_its_own_limit(runner: Runner) -> None:
    spec = pipeline(
        {
            "refId": "resize",
            "type": "resizeServerGroup",
            "account": "nowhere",
            "namespace": "default",
            "cluster": "shop",
            "resizeType": "exact",
            "capacity": {"min": 1, "max": 1, "desired": 1},
            "noWorkerTimeoutMs": 1500,
        },
        name="noworker",
    )
    state = await runner.finish(await runner.start(spec), timeout=30)
    stage = state.stage("resize")
    assert stage is not None and stage.status is StageStatus.TERMINAL
    assert stage.error is not None and stage.error.kind == "noWorker"
    assert "no worker for kubernetes account nowhere" in stage.error.message
    assert " in 1 s" in stage.error.message
