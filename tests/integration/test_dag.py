"""DAG semantics of PipelineWorkflow against the real Temporal dev server."""

from __future__ import annotations

from tests.conftest import Runner, pipeline
from workflows.state import ExecutionStatus, StageStatus


def wait(ref: str, seconds: float = 0.5, *parents: str, **flags: object) -> dict[str, object]:
    return {"refId": ref, "type": "wait", "waitTime": seconds, "requisiteStageRefIds": list(parents), **flags}


async def test_parallel_siblings_overlap_and_join_waits_for_all(runner: Runner) -> None:
    handle = await runner.start(
        pipeline(wait("start", 0.1), wait("left", 1, "start"), wait("right", 1, "start"), wait("join", 0.1, "left", "right"))
    )
    state = await runner.finish(handle)
    assert state.status is ExecutionStatus.SUCCEEDED
    by = {s.refId: s for s in state.stages}
    left, right, join = by["left"], by["right"], by["join"]
    assert left.startTime and right.startTime and left.endTime and right.endTime and join.startTime
    # Both branches ran at the same time: each started before the other ended.
    assert left.startTime < right.endTime and right.startTime < left.endTime
    assert join.startTime >= max(left.endTime, right.endTime)
