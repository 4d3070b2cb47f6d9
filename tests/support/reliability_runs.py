"""Runs under fault for the reliability tests (issue #7): a Temporal server a test may kill, worker
configs for worker processes that can be SIGKILLed, and what a run's history says it did when.

Every wait is bounded and says what it waited for.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle

from core.store import PipelineStore
from tests.reliability.report import (  # noqa: F401  (hooks pytest finds in this conftest)
    ReliabilityReport,
    pytest_collection_finish,
    pytest_deselected,
    pytest_runtest_logreport,
    pytest_sessionfinish,
    pytest_terminal_summary,
    report_of,
)
from tests.support.docker_rig import SCRATCH_DOCKERFILE, docker_rig_fixture  # noqa: F401  (session `docker_rig`)
from tests.support.eventually import assert_eventually
from tests.support.kube_rig import KubeRig, serve_rig, start_rig
from tests.support.worker_policy import TEST_BAKE, TEST_EGRESS
from tests.support.worker_process import ACTIVITY_QUEUE, WORKFLOW_QUEUE, WorkerSubprocess  # noqa: F401
from workers.devserver import TemporalDevServer, free_port
from workflows.model import parse_pipeline
from workflows.search import initial_attributes
from workflows.state import PIPELINE_WORKFLOW, ExecutionResult, ExecutionState, PipelineRunInput

# A bake context: the rig's FROM-scratch busybox image plus a file that makes each bake's content unique.
SCRATCH_BAKE = SCRATCH_DOCKERFILE + "COPY trial.txt /trial.txt\n"


@contextlib.asynccontextmanager
async def own_temporal(directory: Path, name: str) -> AsyncIterator[TemporalDevServer]:
    """A dev server of this test alone (own SQLite file and ports): it may be killed, and workers that
    die with a half-reported account directory never touch the session server."""
    server = TemporalDevServer(
        db_file=directory / f"{name}.db", port=free_port(), ui_port=None, log_file=directory / f"{name}.log"
    )
    await asyncio.to_thread(server.start)
    try:
        yield server
    finally:
        await asyncio.to_thread(server.stop)


@contextlib.asynccontextmanager
async def served_kube(client: Client, ready_delay: float) -> AsyncIterator[KubeRig]:
    """A kubesim account (pods ready after `ready_delay` s) served by an in-process account worker."""
    rig = await asyncio.to_thread(start_rig, ready_delay)
    if rig.sim is None:
        pytest.skip("needs kubesim (fault injection, ready delay)")
    # The reliability suite runs its own workers, not the session's directory worker.
    async for served in serve_rig(client, rig, directory_served=False):
        yield served


async def start_pipeline(
    client: Client,
    queue: str,
    spec: dict[str, Any],
    *,
    prefix: str = "rel",
    account_queues: dict[str, str] | None = None,
) -> WorkflowHandle[Any, ExecutionResult]:
    parsed = parse_pipeline(spec)
    return await client.start_workflow(
        PIPELINE_WORKFLOW,
        PipelineRunInput(pipeline=parsed, parameters={}, accountQueues=account_queues or {}),
        id=f"{prefix}-{parsed.name}-{uuid.uuid4().hex[:8]}",
        task_queue=queue,
        result_type=ExecutionResult,
        search_attributes=initial_attributes(parsed.application, parsed.name, "manual"),
    )


async def state_of(handle: WorkflowHandle[Any, Any]) -> ExecutionState:
    state: ExecutionState = await handle.query("state", result_type=ExecutionState)
    return state


async def query_until(
    handle: WorkflowHandle[Any, Any], predicate: Callable[[ExecutionState], bool], timeout: float, what: str
) -> ExecutionState:
    """The run's state once `predicate` holds; a query may fail or hang while a worker takes over."""
    return await assert_eventually(
        lambda: asyncio.wait_for(state_of(handle), 10),
        predicate,
        what=f"{handle.id}: {what}",
        timeout=timeout,
        interval=0.1,
        retry_on=(Exception,),
    )


async def finish(handle: WorkflowHandle[Any, Any], timeout: float, what: str = "the run") -> ExecutionState:
    """Wait for the workflow to close (any outcome) and return its final state."""
    try:
        await asyncio.wait_for(handle.result(), timeout)
    except TimeoutError:
        state = None
        with contextlib.suppress(Exception):
            state = await asyncio.wait_for(state_of(handle), 5)
        shown = state.model_dump_json(indent=1) if state else "(no answer)"
        raise AssertionError(f"{handle.id}: {what} did not finish within {timeout:g}s; state: {shown}") from None
    except Exception:
        pass  # TERMINAL / CANCELED runs raise; the state says what happened
    return await state_of(handle)


@dataclass(frozen=True)
class Attempt:
    activity: str
    attempt: int
    last_failure: str


async def activity_attempts(handle: WorkflowHandle[Any, Any]) -> list[Attempt]:
    """Every ActivityTaskStarted of the run with its attempt number (the server writes one Started event
    per activity, carrying the attempt that finished it and the failure of the one before)."""
    history = await handle.fetch_history()
    scheduled: dict[int, str] = {}
    found: list[Attempt] = []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled[event.event_id] = event.activity_task_scheduled_event_attributes.activity_type.name
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attrs = event.activity_task_started_event_attributes
            found.append(
                Attempt(scheduled.get(attrs.scheduled_event_id, "?"), attrs.attempt, attrs.last_failure.message)
            )
    return found


async def running_at(handle: WorkflowHandle[Any, Any], at: datetime) -> list[str] | None:
    """What the run was doing at wall-clock time `at`, from its history: the activities scheduled before
    and closed after it (`timer` for a timer); [] for a running workflow with nothing in flight, None if
    the run had already closed."""
    history = await handle.fetch_history()
    opened: dict[int, tuple[str, datetime]] = {}
    closed: dict[int, datetime] = {}
    ended: datetime | None = None
    for event in history.events:
        when = event.event_time.ToDatetime(tzinfo=UTC)
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            opened[event.event_id] = (event.activity_task_scheduled_event_attributes.activity_type.name, when)
        elif kind == EventType.EVENT_TYPE_TIMER_STARTED:
            opened[event.event_id] = ("timer", when)
        elif kind in ACTIVITY_CLOSED:
            closed[getattr(event, ACTIVITY_CLOSED[kind]).scheduled_event_id] = when
        elif kind == EventType.EVENT_TYPE_TIMER_FIRED:
            closed[event.timer_fired_event_attributes.started_event_id] = when
        elif kind == EventType.EVENT_TYPE_TIMER_CANCELED:
            closed[event.timer_canceled_event_attributes.started_event_id] = when
        elif kind in WORKFLOW_CLOSED:
            ended = when
    if ended is not None and ended <= at:
        return None
    return sorted(name for key, (name, since) in opened.items() if since <= at and closed.get(key, at) >= at)


ACTIVITY_CLOSED = {
    EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: "activity_task_completed_event_attributes",
    EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED: "activity_task_failed_event_attributes",
    EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: "activity_task_timed_out_event_attributes",
    EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED: "activity_task_canceled_event_attributes",
}
WORKFLOW_CLOSED = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT,
}


# ---- worker processes -------------------------------------------------------------------------------


def worker_config(
    address: str,
    queue: str,
    directory: Path,
    *,
    kubernetes: list[dict[str, Any]] = (),  # type: ignore[assignment]
    registries: list[dict[str, Any]] = (),  # type: ignore[assignment]
) -> dict[str, Any]:
    database_url = f"sqlite:///{directory / 'store.db'}"
    PipelineStore(database_url).close()  # the schema exists before any worker reads it
    return {
        "temporal_address": address,
        "task_queue": queue,
        "database_url": database_url,
        "activity_threads": 16,
        "health_interval_seconds": 3600,
        "serve_pipelines": True,
        "kubernetes": list(kubernetes),
        "registries": list(registries),
        # The suite's fake services and build contexts are on loopback and in temp dirs.
        "egress": TEST_EGRESS.model_dump(mode="json"),
        "bake": TEST_BAKE.model_dump(mode="json"),
    }
