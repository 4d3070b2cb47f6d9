"""limitConcurrent / keepWaitingPipelines through the PipelineGate, on the real dev server."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from tests.support.runner import Runner, pipeline
from workflows.state import ExecutionState, ExecutionStatus, StageStatus


def gated(name: str, keep_waiting: bool, seconds: float = 0.6) -> dict[str, Any]:
    return pipeline(
        {"refId": "work", "type": "wait", "waitTime": seconds},
        name=name,
        limitConcurrent=True,
        keepWaitingPipelines=keep_waiting,
    )


def overlapping(states: list[ExecutionState]) -> bool:
    spans = sorted(
        (s.stages[0].startTime, s.stages[0].endTime) for s in states if s.stages[0].status is StageStatus.SUCCEEDED
    )
    return any(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans) if earlier[1] and later[0])


async def test_twenty_simultaneous_triggers_never_run_two_at_once(runner: Runner) -> None:
    spec = gated("gate-supersede", keep_waiting=False)
    handles = await asyncio.gather(*(runner.start(spec) for _ in range(20)))
    states = [await runner.finish(h, timeout=60) for h in handles]
    ran = [s for s in states if s.stages[0].status is StageStatus.SUCCEEDED]
    superseded = [s for s in states if s.status is ExecutionStatus.CANCELED]
    # The first holds the gate; each newer request supersedes the one waiting, so at most two run
    # in all (the first, and whichever was waiting last) and never at the same time.
    assert 1 <= len(ran) <= 2
    assert len(ran) + len(superseded) == 20
    assert all("superseded by" in (s.cancelReason or "") for s in superseded)
    assert not overlapping(states)


async def test_keep_waiting_pipelines_run_one_after_another(runner: Runner) -> None:
    spec = gated("gate-queue", keep_waiting=True, seconds=0.3)
    handles = await asyncio.gather(*(runner.start(spec) for _ in range(4)))
    states = [await runner.finish(h, timeout=60) for h in handles]
    assert [s.status for s in states] == [ExecutionStatus.SUCCEEDED] * 4
    assert not overlapping(states)


async def test_canceling_the_running_execution_opens_the_gate(runner: Runner) -> None:
    spec = gated("gate-cancel", keep_waiting=True, seconds=30)
    first = await runner.start(spec)
    await runner.wait_until(first, lambda s: s.status is ExecutionStatus.RUNNING)
    second = await runner.start(spec)
    await runner.wait_until(second, lambda s: s.status is ExecutionStatus.WAITING)
    await first.cancel()
    state = await runner.wait_until(second, lambda s: s.stages[0].status is StageStatus.RUNNING, timeout=20)
    assert state.status is ExecutionStatus.RUNNING
    await second.cancel()
