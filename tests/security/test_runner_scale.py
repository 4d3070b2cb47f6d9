"""The runner at its stage limit: MAX_STAGES parallel `wait` stages start in bounded workflow tasks
(no "Potential deadlock detected", TMPRL1101), finish, and the execution answers queries and a
cancel while they run."""

from __future__ import annotations

import time

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle

from tests.support.builders import wait
from tests.support.runner import Runner, pipeline
from workflows.model import MAX_STAGES
from workflows.state import ExecutionStatus, StageStatus


def fan_out(name: str, seconds: float) -> dict[str, object]:
    return pipeline(*(wait(f"w{i}", seconds) for i in range(MAX_STAGES)), name=name)


async def failed_workflow_tasks(handle: WorkflowHandle[object, object]) -> list[str]:
    history = await handle.fetch_history()
    return [
        e.workflow_task_failed_event_attributes.failure.message
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
    ]


async def test_max_stages_of_parallel_waits_finish(runner: Runner) -> None:
    handle = await runner.start(fan_out("fanout", 1))
    # A query is answered while the stages run (and is not a 2 MB state: see the bound on outputs).
    running = await runner.wait_until(handle, lambda s: s.stages[-1].status is not StageStatus.NOT_STARTED, 60)
    assert running.status is ExecutionStatus.RUNNING
    state = await runner.finish(handle, timeout=120)
    assert state.status is ExecutionStatus.SUCCEEDED, state.failure
    assert all(s.status is StageStatus.SUCCEEDED for s in state.stages)
    assert await failed_workflow_tasks(handle) == []
    # No timing assertion (figures belong in `python -m bench scale`): the deadlock detector's verdict is
    # the failed-workflow-task check above; the slowest task is printed for the record.
    slowest = max(await workflow_task_seconds(handle))
    print(f"slowest workflow task: {slowest:.3f} s")


async def test_cancel_works_while_max_stages_run(runner: Runner) -> None:
    handle = await runner.start(fan_out("fanout-cancel", 60))
    await runner.wait_until(handle, lambda s: all(x.status is StageStatus.RUNNING for x in s.stages), 60)
    began = time.monotonic()
    await handle.execute_update("cancel", {"reason": "scale test", "user": "tester"})
    await handle.cancel()
    state = await runner.finish(handle, timeout=30)
    assert state.status is ExecutionStatus.CANCELED
    assert all(s.status is StageStatus.CANCELED for s in state.stages)
    assert time.monotonic() - began < 30
    assert await failed_workflow_tasks(handle) == []


async def workflow_task_seconds(handle: WorkflowHandle[object, object]) -> list[float]:
    """How long each workflow task took on the worker (started → completed/failed), in history."""
    history = await handle.fetch_history()
    durations: list[float] = []
    started: float | None = None
    for event in history.events:
        at = event.event_time.ToDatetime().timestamp()
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            started = at
        elif started is not None and event.event_type in (
            EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
            EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
        ):
            durations.append(at - started)
            started = None
    return durations
