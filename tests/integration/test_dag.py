"""DAG semantics of PipelineWorkflow against the real Temporal dev server."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.converter import decode_typed_search_attributes
from temporalio.exceptions import ApplicationError

from tests.support.eventually import assert_eventually
from tests.support.history import of_type
from tests.support.runner import Runner, pipeline
from workflows.context import StageContext
from workflows.model import PipelineInvalid, parse_pipeline
from workflows.search import STATUS, TRIGGER
from workflows.stages.base import StageConfig
from workflows.stages.registry import register_stage
from workflows.state import ControlAck, ExecutionStatus, JudgmentRequest, StageStatus


def wait(ref: str, seconds: float = 0.5, *parents: str, **flags: object) -> dict[str, object]:
    return {"refId": ref, "type": "wait", "waitTime": seconds, "requisiteStageRefIds": list(parents), **flags}


async def test_parallel_siblings_overlap_and_join_waits_for_all(runner: Runner) -> None:
    handle = await runner.start(
        pipeline(
            wait("start", 0.1), wait("left", 1, "start"), wait("right", 1, "start"), wait("join", 0.1, "left", "right")
        )
    )
    state = await runner.finish(handle)
    assert state.status is ExecutionStatus.SUCCEEDED
    by = {s.refId: s for s in state.stages}
    left, right, join = by["left"], by["right"], by["join"]
    assert left.startTime and right.startTime and left.endTime and right.endTime and join.startTime
    # Both branches ran at the same time: each started before the other ended.
    assert left.startTime < right.endTime and right.startTime < left.endTime
    assert join.startTime >= max(left.endTime, right.endTime)


def fail(ref: str, *parents: str, **flags: object) -> dict[str, object]:
    """A stage that fails as soon as it runs: a precondition that does not hold."""
    return {
        "refId": ref,
        "type": "checkPreconditions",
        "preconditions": [{"context": {"expression": "1 == 2", "failureMessage": f"{ref} is meant to fail"}}],
        "requisiteStageRefIds": list(parents),
        **flags,
    }


async def test_join_waits_for_every_parent(runner: Runner) -> None:
    # The slow parent is a judgment, so the order does not depend on timer precision (the dev server
    # fires timers with up to ~1 s of slack).
    handle = await runner.start(
        pipeline(wait("fast", 0.1), {"refId": "gate", "type": "manualJudgment"}, wait("join", 0.1, "fast", "gate"))
    )
    state = await runner.wait_until(handle, lambda s: s.stage("fast").status is StageStatus.SUCCEEDED)
    gate, join = state.stage("gate"), state.stage("join")
    assert gate and gate.status is StageStatus.RUNNING
    assert join and join.status is StageStatus.NOT_STARTED
    await runner.wait_until(handle, lambda s: s.stage("gate").waitingForJudgment)
    await handle.execute_update("judge", JudgmentRequest(refId="gate"), result_type=ControlAck)
    state = await runner.finish(handle)
    assert state.status is ExecutionStatus.SUCCEEDED
    fast, gate, join = state.stage("fast"), state.stage("gate"), state.stage("join")
    assert fast and gate and join and fast.endTime and gate.endTime and join.startTime
    assert join.status is StageStatus.SUCCEEDED
    assert join.startTime >= max(fast.endTime, gate.endTime)


async def test_fail_pipeline_cancels_running_siblings_and_blocks_downstream(runner: Runner) -> None:
    handle = await runner.start(
        pipeline(wait("slow", 30), wait("pre", 0.2), fail("bad", "pre"), wait("after", 0.1, "bad"))
    )
    with pytest.raises(WorkflowFailureError) as raised:
        await asyncio.wait_for(handle.result(), 15)
    state = await runner.state(handle)
    assert state.status is ExecutionStatus.TERMINAL
    statuses = {s.refId: s.status for s in state.stages}
    assert statuses == {
        "slow": StageStatus.CANCELED,
        "pre": StageStatus.SUCCEEDED,
        "bad": StageStatus.TERMINAL,
        "after": StageStatus.NOT_STARTED,
    }
    bad, slow = state.stage("bad"), state.stage("slow")
    assert bad and bad.error and "bad is meant to fail" in bad.error.message
    assert slow and slow.error and slow.error.kind == "canceled" and "bad" in slow.error.message
    assert state.failure and "bad" in state.failure
    cause = raised.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "PipelineFailed"
    assert "'bad'" in cause.message and "bad is meant to fail" in cause.message
    assert (await handle.describe()).status is WorkflowExecutionStatus.FAILED


async def test_continue_pipeline_marks_failed_continue_and_runs_downstream(runner: Runner) -> None:
    handle = await runner.start(pipeline(fail("bad", continuePipeline=True), wait("after", 0.1, "bad")))
    result = await asyncio.wait_for(handle.result(), 15)
    assert result.status is ExecutionStatus.SUCCEEDED
    state = await runner.state(handle)
    assert state.status is ExecutionStatus.SUCCEEDED
    bad, after = state.stage("bad"), state.stage("after")
    assert bad and bad.status is StageStatus.FAILED_CONTINUE and bad.error and "meant to fail" in bad.error.message
    assert after and after.status is StageStatus.SUCCEEDED
    assert state.failure is None


async def test_complete_other_branches_then_fail(runner: Runner) -> None:
    handle = await runner.start(
        pipeline(fail("bad", completeOtherBranchesThenFail=True), wait("below-bad", 0.1, "bad"), wait("other", 0.6))
    )
    with pytest.raises(WorkflowFailureError) as raised:
        await asyncio.wait_for(handle.result(), 15)
    state = await runner.state(handle)
    assert state.status is ExecutionStatus.TERMINAL
    bad, below, other = state.stage("bad"), state.stage("below-bad"), state.stage("other")
    assert bad and below and other
    assert (bad.status, below.status, other.status) == (
        StageStatus.TERMINAL,
        StageStatus.NOT_STARTED,
        StageStatus.SUCCEEDED,
    )
    # The other branch ran to its end after the failure; only then did the pipeline fail.
    assert bad.endTime and other.endTime and state.endTime
    assert bad.endTime < other.endTime <= state.endTime
    assert isinstance(raised.value.cause, ApplicationError) and "bad" in raised.value.cause.message


async def test_stage_neither_failing_nor_continuing_stops_only_its_branch(runner: Runner) -> None:
    handle = await runner.start(
        pipeline(fail("bad", failPipeline=False), wait("below-bad", 0.1, "bad"), wait("other", 0.4))
    )
    result = await asyncio.wait_for(handle.result(), 15)
    assert result.status is ExecutionStatus.SUCCEEDED
    state = await runner.state(handle)
    statuses = {s.refId: s.status for s in state.stages}
    assert statuses == {
        "bad": StageStatus.STOPPED,
        "below-bad": StageStatus.NOT_STARTED,
        "other": StageStatus.SUCCEEDED,
    }
    assert state.status is ExecutionStatus.SUCCEEDED


async def test_disabled_stage_is_skipped_and_its_children_run(runner: Runner) -> None:
    handle = await runner.start(
        pipeline(
            wait("prod-only", 5, stageEnabled={"expression": 'parameters.env == "prod"'}),
            wait("staging-only", 0.1, stageEnabled={"expression": '${{ parameters.env == "staging" }}'}),
            wait("after", 0.1, "prod-only"),
            parameters=[{"name": "env"}],
        ),
        {"env": "staging"},
    )
    state = await runner.finish(handle)
    assert state.status is ExecutionStatus.SUCCEEDED
    statuses = {s.refId: s.status for s in state.stages}
    assert statuses == {
        "prod-only": StageStatus.SKIPPED,
        "staging-only": StageStatus.SUCCEEDED,
        "after": StageStatus.SUCCEEDED,
    }
    skipped = state.stage("prod-only")
    assert skipped and skipped.outputs == {} and skipped.details and "stageEnabled" in skipped.details


async def test_stage_timeout_fails_the_stage_with_kind_timeout(runner: Runner) -> None:
    handle = await runner.start(pipeline(wait("slow", 30, stageTimeoutMs=300), wait("after", 0.1, "slow")))
    with pytest.raises(WorkflowFailureError):
        await asyncio.wait_for(handle.result(), 15)
    state = await runner.state(handle)
    slow, after = state.stage("slow"), state.stage("after")
    assert slow and slow.status is StageStatus.TERMINAL
    assert slow.error and slow.error.kind == "timeout" and "stageTimeoutMs=300" in slow.error.message
    assert after and after.status is StageStatus.NOT_STARTED
    assert state.status is ExecutionStatus.TERMINAL


async def test_stage_within_its_timeout_succeeds(runner: Runner) -> None:
    handle = await runner.start(pipeline(wait("quick", 0.1, stageTimeoutMs=5000)))
    state = await runner.finish(handle)
    quick = state.stage("quick")
    assert quick and quick.status is StageStatus.SUCCEEDED and quick.error is None


@register_stage
class ExplodingStage(StageConfig):
    """A stage with a bug: its run() raises something no stage is expected to raise."""

    type: Literal["testExploding"] = "testExploding"

    async def run(self, ctx: StageContext) -> dict[str, Any]:
        raise ValueError("boom from a buggy stage")


async def test_unexpected_error_in_a_stage_fails_it(runner: Runner) -> None:
    handle = await runner.start(pipeline({"refId": "buggy", "type": "testExploding"}, wait("after", 0.1, "buggy")))
    state = await runner.finish(handle, timeout=15)
    buggy, after = state.stage("buggy"), state.stage("after")
    assert buggy and buggy.status is StageStatus.TERMINAL
    assert buggy.error and "ValueError: boom from a buggy stage" in buggy.error.message
    assert after and after.status is StageStatus.NOT_STARTED
    assert state.status is ExecutionStatus.TERMINAL


def test_negative_wait_is_rejected_at_submission() -> None:
    with pytest.raises(PipelineInvalid) as caught:
        parse_pipeline(pipeline(wait("negative", -1)))
    assert caught.value.errors[0].field.startswith("stages[negative].waitTime")


async def _visible(client: Client, query: str, timeout: float = 10) -> list[str]:
    async def listed() -> list[str]:
        return [wf.id async for wf in client.list_workflows(query)]

    return await assert_eventually(listed, what=f"runs listed by {query}", timeout=timeout, interval=0.2)


def status_writes(events: list[HistoryEvent]) -> list[str]:
    """The GennakerStatus values a run set, in history order: at its start, then each upsert."""
    written = [events[0].workflow_execution_started_event_attributes.search_attributes]
    written += [
        event.upsert_workflow_search_attributes_event_attributes.search_attributes
        for event in of_type(events, EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES)
    ]
    values = [decode_typed_search_attributes(attributes).get(STATUS) for attributes in written]
    return [value for value in values if value is not None]


async def test_search_attributes_follow_the_execution_status(runner: Runner, client: Client) -> None:
    ok = await runner.start(pipeline(wait("w", 0.1), name="search-ok"))
    bad = await runner.start(pipeline(fail("bad"), name="search-bad"))
    await runner.finish(ok)
    await runner.finish(bad)
    # The status is not left at what the start set: a closed run's history is final (nothing is
    # written after its close event), so it shows every value the run set, and the last one stands.
    for handle, closed, final in (
        (ok, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, "SUCCEEDED"),
        (bad, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED, "TERMINAL"),
    ):
        events = list((await handle.fetch_history()).events)
        assert events[-1].event_type == closed
        writes = status_writes(events)
        assert writes[0] == "RUNNING" and writes[-1] == final, writes
    # Visibility, which lists and the Web UI read, catches up to the same values.
    assert await _visible(
        client, f'WorkflowId="{ok.id}" AND GennakerApplication="shop" AND GennakerStatus="SUCCEEDED"'
    ) == [ok.id]
    assert await _visible(
        client, f'WorkflowId="{bad.id}" AND GennakerPipeline="search-bad" AND GennakerStatus="TERMINAL"'
    ) == [bad.id]
    described = await ok.describe()
    assert described.typed_search_attributes.get(STATUS) == "SUCCEEDED"
    assert described.typed_search_attributes.get(TRIGGER) == "manual"
