"""Crashes: a worker process or the Temporal server SIGKILLed mid-run, and the run still finishes right.

The worker runs as its own OS process (`python -m workers.main`), configured only through GENNAKER_*
env, on a task queue of its own so the session worker never picks these workflows up. Only processes
this module started are ever signalled, by PID.

After a worker is SIGKILLed its workflows stay bound to its sticky queue until the server's sticky
schedule-to-start timeout (5 s by default, `sticky_timeout_seconds`) moves their next task to the normal queue: that, not the pipeline,
is most of this module's runtime.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle

from core.store import PipelineStore
from core.temporal import connect
from tests.support.runner import Runner, pipeline
from tests.support.worker_process import WORKFLOW_QUEUE, WorkerSubprocess
from workers.devserver import TemporalDevServer, free_port
from workflows.model import parse_pipeline
from workflows.search import initial_attributes
from workflows.state import (
    PIPELINE_WORKFLOW,
    ControlAck,
    ExecutionResult,
    ExecutionState,
    ExecutionStatus,
    JudgmentRequest,
    PipelineRunInput,
    StageStatus,
)

RESULT_TIMEOUT = 45.0


@pytest.fixture
def worker_processes(tmp_path: Path) -> Iterator[Callable[[str, str], WorkerSubprocess]]:
    """Start worker processes against an address and queue; all are stopped at the end of the test."""
    started: list[WorkerSubprocess] = []
    database_url = f"sqlite:///{tmp_path / 'store.db'}"
    PipelineStore(database_url).close()  # create the schema once, before any worker reads it

    def start(address: str, task_queue: str) -> WorkerSubprocess:
        config = {
            "temporal_address": address,
            "task_queue": task_queue,
            "database_url": database_url,
            "activity_threads": 4,
        }
        # The default takeover time (sticky_timeout_seconds) is part of what these tests exercise.
        worker = WorkerSubprocess(config, tmp_path, f"worker-{len(started)}", sticky_timeout_seconds=None)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
async def own_server(tmp_path: Path) -> AsyncIterator[TemporalDevServer]:
    """A dev server of this test alone (its own SQLite file and ports), so it may be killed."""
    server = TemporalDevServer(
        db_file=tmp_path / "own-temporal.db", port=free_port(), ui_port=None, log_file=tmp_path / "own-temporal.log"
    )
    await asyncio.to_thread(server.start)
    yield server
    await asyncio.to_thread(server.stop)


async def start_pipeline(client: Client, task_queue: str, spec: dict[str, Any]) -> WorkflowHandle[Any, ExecutionResult]:
    parsed = parse_pipeline(spec)
    return await client.start_workflow(
        PIPELINE_WORKFLOW,
        PipelineRunInput(pipeline=parsed, parameters={}),
        id=f"durability-{parsed.name}-{uuid.uuid4().hex[:8]}",
        task_queue=task_queue,
        result_type=ExecutionResult,
        search_attributes=initial_attributes(parsed.application, parsed.name, "manual"),
    )


def wait(ref: str, seconds: float, *parents: str) -> dict[str, Any]:
    return {"refId": ref, "type": "wait", "waitTime": seconds, "requisiteStageRefIds": list(parents)}


def mark(ref: str, *parents: str) -> dict[str, Any]:
    return {"refId": ref, "type": "evaluateVariables", "requisiteStageRefIds": list(parents),
            "variables": [{"key": "ranAfter", "value": "${{ execution.id }}"}]}  # fmt: skip


async def test_pipelines_survive_a_killed_worker(
    client: Client, worker_processes: Callable[[str, str], WorkerSubprocess], temporal_server: TemporalDevServer
) -> None:
    queue = f"durability-worker-{uuid.uuid4().hex[:8]}"
    first = worker_processes(temporal_server.address, queue)
    await first.wait_polling(client, {queue: WORKFLOW_QUEUE})
    timer = await start_pipeline(
        client, queue, pipeline(wait("before", 0.1), wait("nap", 2, "before"), mark("after", "nap"), name="timer")
    )
    gate = await start_pipeline(
        client,
        queue,
        pipeline(
            {"refId": "approve", "type": "manualJudgment", "judgmentInputs": ["ship", "hold"]},
            mark("after", "approve"),
            name="gate",
        ),
    )
    await Runner.wait_until(timer, lambda s: s.stage("nap").status is StageStatus.RUNNING, timeout=30)
    await Runner.wait_until(gate, lambda s: s.stage("approve").waitingForJudgment, timeout=30)

    first.kill()
    assert first.process.returncode == -signal.SIGKILL

    second = worker_processes(temporal_server.address, queue)
    await second.wait_polling(client, {queue: WORKFLOW_QUEUE})
    ack = await asyncio.wait_for(
        gate.execute_update(
            "judge",
            JudgmentRequest(refId="approve", input="ship", user="after-restart", comment="second worker"),
            result_type=ControlAck,
        ),
        RESULT_TIMEOUT,
    )
    record = ack.judgment
    assert record is not None and record.user == "after-restart" and record.via == "update"

    for handle in (timer, gate):
        result = await asyncio.wait_for(handle.result(), RESULT_TIMEOUT)
        assert result.status is ExecutionStatus.SUCCEEDED, second.log()
        assert result.outputs["after"] == {"ranAfter": handle.id}

    timer_state = await timer.query("state", result_type=ExecutionState)
    nap = timer_state.stage("nap")
    assert nap and nap.status is StageStatus.SUCCEEDED and nap.outputs["skipped"] is False
    # The whole run happened in one workflow execution: no retry restarted it from scratch.
    assert [s.status for s in timer_state.stages] == [StageStatus.SUCCEEDED] * 3
    gate_state = await gate.query("state", result_type=ExecutionState)
    approve = gate_state.stage("approve")
    assert approve and approve.outputs["judgedBy"] == "after-restart"
    assert approve.outputs["judgmentInput"] == "ship" and approve.outputs["comment"] == "second worker"
    assert first.process.returncode == -signal.SIGKILL and second.process.poll() is None


async def test_pipeline_survives_a_killed_temporal_server(
    own_server: TemporalDevServer, worker_processes: Callable[[str, str], WorkerSubprocess]
) -> None:
    queue = f"durability-server-{uuid.uuid4().hex[:8]}"
    worker = worker_processes(own_server.address, queue)
    client = await connect(own_server.address)
    await worker.wait_polling(client, {queue: WORKFLOW_QUEUE})
    handle = await start_pipeline(
        client,
        queue,
        pipeline(wait("before", 0.1), wait("nap", 2, "before"), mark("after", "nap"), name="server-crash"),
    )
    await Runner.wait_until(handle, lambda s: s.stage("nap").status is StageStatus.RUNNING, timeout=30)
    server_pid = own_server.process.pid if own_server.process else None

    own_server.kill()
    assert own_server.process and own_server.process.returncode == -signal.SIGKILL
    await asyncio.to_thread(own_server.start)
    assert own_server.process.pid != server_pid

    # A fresh client, as a gateway restarted with the server would have; the worker keeps running.
    client = await connect(own_server.address)
    again: WorkflowHandle[Any, ExecutionResult] = client.get_workflow_handle(handle.id, result_type=ExecutionResult)
    result = await asyncio.wait_for(again.result(), RESULT_TIMEOUT)
    assert result.status is ExecutionStatus.SUCCEEDED, worker.log()
    state = await again.query("state", result_type=ExecutionState)
    assert [s.status for s in state.stages] == [StageStatus.SUCCEEDED] * 3
    assert state.stage("before").startTime < state.stage("nap").startTime  # type: ignore[union-attr, operator]
    assert result.outputs["after"] == {"ranAfter": handle.id}
    assert worker.process.poll() is None, f"the worker died with the server:\n{worker.log()}"
