"""Stage types, expressions, judgments and execution control against the real Temporal dev server.

Timers on the dev server fire with up to ~1 s of slack, so ordering is asserted through states
(a stage still RUNNING / NOT_STARTED at a point we control), never through durations.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ApplicationError, CancelledError

from core.store import PipelineStore
from tests.support.builders import judgment, variables, wait
from tests.support.history import of_type, pending_timers, settled_history
from tests.support.runner import Runner, pipeline
from workers.devserver import TemporalDevServer, temporal_cli
from workflows.pipeline import PipelineWorkflow
from workflows.state import (
    ControlRequest,
    ExecutionResult,
    ExecutionState,
    ExecutionStatus,
    JudgmentRequest,
    SkipWaitRequest,
    StageStatus,
)


async def waiting_for_judgment(runner: Runner, handle: WorkflowHandle[Any, Any], ref: str) -> ExecutionState:
    return await runner.wait_until(handle, lambda s: s.stage(ref) is not None and s.stage(ref).waitingForJudgment)


async def update_error(call: Any) -> ApplicationError:
    """Run an update that must be rejected; return the ApplicationError its validator raised."""
    with pytest.raises(WorkflowUpdateFailedError) as raised:
        await call
    cause = raised.value.cause
    assert isinstance(cause, ApplicationError), cause
    return cause


def outputs_of(state: ExecutionState, ref: str) -> dict[str, Any]:
    stage = state.stage(ref)
    assert stage is not None, ref
    return stage.outputs


# ---- expressions ---------------------------------------------------------------------------------


async def test_whole_expression_keeps_the_type_of_its_result(runner: Runner) -> None:
    handle = await runner.start(pipeline(wait("w", "${{ parameters.t }}"), parameters=[{"name": "t"}]), {"t": 0.2})
    state = await runner.finish(handle)
    assert state.status is ExecutionStatus.SUCCEEDED
    out = outputs_of(state, "w")
    assert out["waitTime"] == 0.2 and out["skipped"] is False


async def test_interpolation_and_earlier_stage_outputs_and_sequential_variables(runner: Runner) -> None:
    handle = await runner.start(
        pipeline(
            {
                "refId": "vars",
                "type": "evaluateVariables",
                "variables": [
                    {"key": "base", "value": "${{ parameters.n * 2 }}"},
                    {"key": "total", "value": "${{ variables.base + 1 }}"},
                    {"key": "label", "value": "shop-${{ parameters.env }}-${{ variables.total }}-${{ true }}"},
                    {"key": "seconds", "value": 0.2},
                ],
            },
            wait("w", '${{ stages["vars"].outputs.seconds }}', "vars"),
            variables(
                "later",
                "w",
                fromVariables="${{ variables.label }}",
                fromStage='waited ${{ stages["w"].outputs.waitTime }}s, status ${{ stages["vars"].status }}',
                execution="in ${{ execution.application }}/${{ execution.pipeline }}",
                listed="${{ [1, 2] }}",
            ),
            parameters=[{"name": "n"}, {"name": "env"}],
        ),
        {"n": 3, "env": "prod"},
    )
    state = await runner.finish(handle)
    assert state.status is ExecutionStatus.SUCCEEDED, state.failure
    assert outputs_of(state, "vars") == {"base": 6, "total": 7, "label": "shop-prod-7-true", "seconds": 0.2}
    assert outputs_of(state, "w")["waitTime"] == 0.2
    assert outputs_of(state, "later") == {
        "fromVariables": "shop-prod-7-true",
        "fromStage": "waited 0.2s, status SUCCEEDED",
        "execution": "in shop/test",
        "listed": [1, 2],
    }


async def test_judgments_are_visible_to_later_expressions(runner: Runner) -> None:
    handle = await runner.start(
        pipeline(
            judgment("approve", judgmentInputs=["ship", "hold"], name="Approve release"),
            variables(
                "read", "approve", choice="${{ judgments.approve }}", byName='${{ judgments["Approve release"] }}'
            ),
            wait("on-hold", 5, "approve", stageEnabled={"expression": 'judgments.approve == "hold"'}),
        )
    )
    await waiting_for_judgment(runner, handle, "approve")
    await handle.execute_update(PipelineWorkflow.judge, JudgmentRequest(refId="approve", input="ship"))
    state = await runner.finish(handle)
    assert state.status is ExecutionStatus.SUCCEEDED
    assert outputs_of(state, "read") == {"choice": "ship", "byName": "ship"}
    on_hold = state.stage("on-hold")
    assert on_hold and on_hold.status is StageStatus.SKIPPED


async def test_expression_failing_at_runtime_fails_the_stage_quoting_it(runner: Runner) -> None:
    handle = await runner.start(pipeline(wait("w", "${{ nosuchthing + 1 }}"), wait("after", 0.1, "w")))
    state = await runner.finish(handle)
    w = state.stage("w")
    assert w and w.status is StageStatus.TERMINAL
    assert w.error and w.error.kind == "expression" and "nosuchthing + 1" in w.error.message
    assert state.status is ExecutionStatus.TERMINAL
    assert state.failure and "nosuchthing + 1" in state.failure


async def test_expression_reading_a_missing_parameter_fails_the_stage(runner: Runner) -> None:
    handle = await runner.start(pipeline(wait("w", "${{ parameters.missing }}"), wait("after", 0.1, "w")))
    state = await runner.finish(handle)
    w = state.stage("w")
    assert w and w.status is StageStatus.TERMINAL
    assert w.error and w.error.kind == "expression" and "parameters.missing" in w.error.message
    assert state.status is ExecutionStatus.TERMINAL


async def test_expression_result_of_the_wrong_type_fails_the_stage(runner: Runner) -> None:
    handle = await runner.start(pipeline(wait("w", '${{ "soon" }}')))
    state = await runner.finish(handle)
    w = state.stage("w")
    assert w and w.status is StageStatus.TERMINAL
    assert w.error and w.error.kind == "expression" and "waitTime" in w.error.message


async def test_check_preconditions_pass_and_report_results(runner: Runner) -> None:
    handle = await runner.start(
        pipeline(
            {
                "refId": "check",
                "type": "checkPreconditions",
                "preconditions": [
                    {"context": {"expression": "parameters.replicas > 2"}},
                    {"context": {"expression": '${{ parameters.env == "prod" }}'}},
                    {"context": {"expression": "parameters.replicas > 100"}, "failPipeline": False},
                ],
            },
            parameters=[{"name": "replicas"}, {"name": "env"}],
        ),
        {"replicas": 3, "env": "prod"},
    )
    state = await runner.finish(handle)
    assert state.status is ExecutionStatus.SUCCEEDED
    assert [r["passed"] for r in outputs_of(state, "check")["preconditions"]] == [True, True, False]


# ---- manual judgment -----------------------------------------------------------------------------


async def test_judge_update_records_who_what_and_how(runner: Runner) -> None:
    handle = await runner.start(
        pipeline(judgment("approve", judgmentInputs=["ship", "hold"]), wait("after", 0.1, "approve"))
    )
    state = await waiting_for_judgment(runner, handle, "approve")
    approve = state.stage("approve")
    assert approve and approve.details and "ship, hold" in approve.details
    ack = await handle.execute_update(
        PipelineWorkflow.judge,
        JudgmentRequest(refId="approve", input="ship", comment="looks good", user="alice"),
    )
    record = ack.judgment
    assert ack.accepted and record is not None and "alice" in ack.message
    assert (record.judgmentStatus, record.input, record.user, record.via) == ("continue", "ship", "alice", "update")
    assert record.verified
    state = await runner.finish(handle)
    assert state.status is ExecutionStatus.SUCCEEDED
    out = outputs_of(state, "approve")
    assert out["judgmentStatus"] == "continue"
    assert out["judgmentInput"] == "ship"
    assert out["comment"] == "looks good"
    assert out["judgedBy"] == "alice"
    assert out["via"] == "update"
    approve = state.stage("approve")
    assert approve and approve.judgment and approve.judgment.user == "alice" and not approve.waitingForJudgment


async def test_judgment_signal_continues_the_pipeline(runner: Runner) -> None:
    handle = await runner.start(pipeline(judgment("approve"), wait("after", 0.1, "approve")))
    await waiting_for_judgment(runner, handle, "approve")
    await handle.signal("judgment", JudgmentRequest(refId="approve", comment="by signal", user="bob"))
    state = await runner.finish(handle)
    assert state.status is ExecutionStatus.SUCCEEDED
    out = outputs_of(state, "approve")
    # Anyone who reaches Temporal can send the signal: the name is only a claim.
    assert (out["via"], out["judgedBy"], out["comment"]) == ("signal", "bob (unverified, signal)", "by signal")
    assert out["verified"] is False


async def test_judgment_signal_from_the_temporal_cli(runner: Runner, temporal_server: TemporalDevServer) -> None:
    handle = await runner.start(
        pipeline(judgment("approve", judgmentInputs=["ship", "hold"]), wait("after", 0.1, "approve"))
    )
    await waiting_for_judgment(runner, handle, "approve")
    body = {"refId": "approve", "judgmentStatus": "continue", "input": "hold", "user": "cli-user"}
    process = await asyncio.create_subprocess_exec(
        temporal_cli(), "workflow", "signal",
        "--address", temporal_server.address,
        "--workflow-id", handle.id,
        "--name", "judgment",
        "--input", json.dumps(body),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, output.decode()
    state = await runner.finish(handle)
    assert state.status is ExecutionStatus.SUCCEEDED
    out = outputs_of(state, "approve")
    assert (out["via"], out["judgmentInput"], out["judgedBy"]) == ("signal", "hold", "cli-user (unverified, signal)")


async def test_judging_a_stage_that_is_not_waiting_is_rejected(runner: Runner) -> None:
    handle = await runner.start(
        pipeline(wait("first", 0.2), judgment("approve", "first"), judgment("second", "approve"))
    )
    # Not started yet.
    cause = await update_error(handle.execute_update(PipelineWorkflow.judge, JudgmentRequest(refId="approve")))
    assert cause.type == "NotWaiting" and "NOT_STARTED" in cause.message
    # Not a judgment at all, and not a stage at all.
    cause = await update_error(handle.execute_update(PipelineWorkflow.judge, JudgmentRequest(refId="first")))
    assert cause.type == "NotJudgment"
    cause = await update_error(handle.execute_update(PipelineWorkflow.judge, JudgmentRequest(refId="nope")))
    assert cause.type == "UnknownStage"
    # A signal for a stage that is not waiting is ignored, not kept for later.
    await handle.signal("judgment", JudgmentRequest(refId="approve", judgmentStatus="stop"))
    await waiting_for_judgment(runner, handle, "approve")
    await handle.execute_update(PipelineWorkflow.judge, JudgmentRequest(refId="approve", user="alice"))
    # Already judged.
    cause = await update_error(
        handle.execute_update(
            PipelineWorkflow.judge,
            JudgmentRequest(refId="approve", judgmentStatus="stop"),
        )
    )
    assert cause.type == "NotWaiting"
    await waiting_for_judgment(runner, handle, "second")
    await handle.execute_update(PipelineWorkflow.judge, JudgmentRequest(refId="second"))
    state = await runner.finish(handle)
    assert state.status is ExecutionStatus.SUCCEEDED
    assert outputs_of(state, "approve")["judgedBy"] == "alice"


async def test_judging_with_an_unknown_option_is_rejected(runner: Runner) -> None:
    handle = await runner.start(pipeline(judgment("approve", judgmentInputs=["ship", "hold"])))
    await waiting_for_judgment(runner, handle, "approve")
    cause = await update_error(
        handle.execute_update(PipelineWorkflow.judge, JudgmentRequest(refId="approve", input="yolo"))
    )
    assert cause.type == "UnknownOption" and "ship, hold" in cause.message
    state = await runner.state(handle)
    approve = state.stage("approve")
    assert approve and approve.status is StageStatus.RUNNING and approve.waitingForJudgment
    await handle.execute_update(PipelineWorkflow.judge, JudgmentRequest(refId="approve", input="hold"))
    state = await runner.finish(handle)
    assert outputs_of(state, "approve")["judgmentInput"] == "hold"


async def test_a_judgment_with_options_needs_one_to_continue(runner: Runner) -> None:
    handle = await runner.start(pipeline(judgment("approve", judgmentInputs=["ship", "hold"])))
    await waiting_for_judgment(runner, handle, "approve")
    cause = await update_error(handle.execute_update(PipelineWorkflow.judge, JudgmentRequest(refId="approve")))
    assert cause.type == "OptionRequired" and "ship, hold" in cause.message
    await handle.execute_update(PipelineWorkflow.judge, JudgmentRequest(refId="approve", input="ship"))
    state = await runner.finish(handle)
    assert outputs_of(state, "approve")["judgmentInput"] == "ship"


async def test_a_signal_cannot_satisfy_approvers_whatever_it_claims(runner: Runner) -> None:
    handle = await runner.start(pipeline(judgment("approve", approvers=["alice"])))
    await waiting_for_judgment(runner, handle, "approve")
    # A forged signal (issue 11): the name of an approver, admin and groups claimed in the payload.
    forged = JudgmentRequest(refId="approve", user="alice", admin=True, groups=["admins"])
    await handle.signal("judgment", forged)
    # The update from someone else is refused; then the real approver's (via the gateway) passes,
    # which proves the forged signal did not judge the stage.
    cause = await update_error(
        handle.execute_update(PipelineWorkflow.judge, JudgmentRequest(refId="approve", user="eve"))
    )
    assert cause.type == "Forbidden" and "alice" in cause.message
    ack = await handle.execute_update(PipelineWorkflow.judge, JudgmentRequest(refId="approve", user="alice"))
    assert ack.judgment is not None and ack.judgment.verified
    state = await runner.finish(handle)
    assert outputs_of(state, "approve")["judgedBy"] == "alice"


async def test_judged_stop_fails_the_stage_and_the_pipeline(runner: Runner) -> None:
    handle = await runner.start(pipeline(judgment("approve"), wait("deploy", 0.1, "approve")))
    await waiting_for_judgment(runner, handle, "approve")
    await handle.execute_update(
        PipelineWorkflow.judge,
        JudgmentRequest(refId="approve", judgmentStatus="stop", comment="not today", user="bob"),
    )
    with pytest.raises(WorkflowFailureError):
        await asyncio.wait_for(handle.result(), 15)
    state = await runner.state(handle)
    approve, deploy = state.stage("approve"), state.stage("deploy")
    assert approve and approve.status is StageStatus.TERMINAL
    assert approve.error and "judged stop by bob: not today" in approve.error.message
    assert approve.outputs["judgmentStatus"] == "stop" and approve.outputs["judgedBy"] == "bob"
    assert deploy and deploy.status is StageStatus.NOT_STARTED
    assert state.status is ExecutionStatus.TERMINAL


@pytest.mark.parametrize(
    ("outcome", "stage_status", "pipeline_status"),
    [
        ("continue", StageStatus.SUCCEEDED, ExecutionStatus.SUCCEEDED),
        ("stop", StageStatus.TERMINAL, ExecutionStatus.TERMINAL),
    ],
)
async def test_judgment_timeout_decides_the_timeout_outcome(
    runner: Runner, outcome: str, stage_status: StageStatus, pipeline_status: ExecutionStatus
) -> None:
    handle = await runner.start(
        pipeline(judgment("approve", timeoutMs=300, timeoutOutcome=outcome), wait("after", 0.1, "approve"))
    )
    state = await runner.finish(handle)
    approve, after = state.stage("approve"), state.stage("after")
    assert approve and approve.status is stage_status
    assert approve.outputs["via"] == "timeout" and approve.outputs["judgmentStatus"] == outcome
    assert approve.outputs["judgedBy"] is None
    assert after and after.status is (StageStatus.SUCCEEDED if outcome == "continue" else StageStatus.NOT_STARTED)
    assert state.status is pipeline_status


# ---- control: pause, resume, skip, cancel --------------------------------------------------------


async def test_pause_holds_new_stages_until_resume(runner: Runner) -> None:
    handle = await runner.start(pipeline(judgment("approve"), wait("next", 0.1, "approve")))
    await waiting_for_judgment(runner, handle, "approve")
    paused = await handle.execute_update(PipelineWorkflow.pause, ControlRequest(reason="freeze"))
    assert paused.accepted and paused.status is ExecutionStatus.PAUSED and paused.judgment is None
    await handle.execute_update(PipelineWorkflow.judge, JudgmentRequest(refId="approve"))
    await runner.wait_until(handle, lambda s: s.stage("approve").status is StageStatus.SUCCEEDED)
    # The workflow took the judgment and went idle without starting `next`'s timer: with nothing in
    # flight, nothing but a resume can start it.
    events = await settled_history(handle)
    assert of_type(events, EventType.EVENT_TYPE_TIMER_STARTED) == []
    state = await runner.state(handle)
    nxt = state.stage("next")
    assert nxt and nxt.status is StageStatus.NOT_STARTED
    assert state.status is ExecutionStatus.PAUSED
    resumed = await handle.execute_update(PipelineWorkflow.resume, ControlRequest())
    assert resumed.accepted and resumed.status is ExecutionStatus.RUNNING
    state = await runner.finish(handle)
    assert state.status is ExecutionStatus.SUCCEEDED
    nxt, approve = state.stage("next"), state.stage("approve")
    assert nxt and approve and nxt.status is StageStatus.SUCCEEDED
    assert nxt.startTime and approve.endTime and nxt.startTime > approve.endTime


async def test_pause_freezes_a_running_wait(runner: Runner) -> None:
    handle = await runner.start(pipeline(wait("w", 1)))
    await runner.wait_until(handle, lambda s: s.stage("w").status is StageStatus.RUNNING)
    await handle.execute_update(PipelineWorkflow.pause, ControlRequest())
    # The pause canceled the wait's timer and started none: the wait cannot end while paused.
    events = await settled_history(handle)
    assert of_type(events, EventType.EVENT_TYPE_TIMER_CANCELED), "the pause did not cancel the wait's timer"
    assert of_type(events, EventType.EVENT_TYPE_TIMER_FIRED) == []
    assert pending_timers(events) == []
    state = await runner.state(handle)
    w = state.stage("w")
    assert w and w.status is StageStatus.RUNNING and state.status is ExecutionStatus.PAUSED
    await handle.execute_update(PipelineWorkflow.resume, ControlRequest())
    state = await runner.finish(handle)
    w = state.stage("w")
    assert w and w.status is StageStatus.SUCCEEDED and w.outputs["skipped"] is False
    assert state.status is ExecutionStatus.SUCCEEDED


async def test_skip_wait_ends_the_wait_early(runner: Runner) -> None:
    handle = await runner.start(pipeline(wait("long", 60), wait("after", 0.1, "long")))
    cause = await update_error(handle.execute_update(PipelineWorkflow.skip_wait, SkipWaitRequest(refId="after")))
    assert cause.type == "NotWaiting"
    await runner.wait_until(handle, lambda s: s.stage("long").status is StageStatus.RUNNING)
    await handle.execute_update(PipelineWorkflow.skip_wait, SkipWaitRequest(refId="long", user="carol"))
    state = await runner.finish(handle, timeout=20)
    long = state.stage("long")
    assert long and long.status is StageStatus.SUCCEEDED
    assert long.outputs["skipped"] is True and long.outputs["waitTime"] == 60
    assert state.status is ExecutionStatus.SUCCEEDED


async def test_only_skippable_stages_can_be_skipped(runner: Runner) -> None:
    handle = await runner.start(pipeline(judgment("approve")))
    await waiting_for_judgment(runner, handle, "approve")
    cause = await update_error(handle.execute_update(PipelineWorkflow.skip_wait, SkipWaitRequest(refId="approve")))
    assert cause.type == "NotSkippable" and "manualJudgment" in cause.message
    await handle.execute_update(PipelineWorkflow.judge, JudgmentRequest(refId="approve"))
    await runner.finish(handle)


async def test_skip_wait_signal_ends_a_paused_wait(runner: Runner) -> None:
    handle = await runner.start(pipeline(wait("long", 60), wait("after", 0.1, "long")))
    await runner.wait_until(handle, lambda s: s.stage("long").status is StageStatus.RUNNING)
    await handle.signal("pause", ControlRequest())
    await handle.signal("skipWait", SkipWaitRequest(refId="long"))
    state = await runner.wait_until(handle, lambda s: s.stage("long").status is StageStatus.SUCCEEDED)
    assert outputs_of(state, "long")["skipped"] is True
    # Still paused: the next stage is held.
    assert state.paused and state.status is ExecutionStatus.PAUSED
    after = state.stage("after")
    assert after and after.status is StageStatus.NOT_STARTED
    await handle.signal("resume", ControlRequest())
    state = await runner.finish(handle)
    assert state.status is ExecutionStatus.SUCCEEDED


async def test_cancel_records_the_reason_and_cancels_the_running_stage(runner: Runner) -> None:
    handle = await runner.start(pipeline(wait("long", 60), wait("after", 0.1, "long")))
    await runner.wait_until(handle, lambda s: s.stage("long").status is StageStatus.RUNNING)
    recorded = await handle.execute_update(
        PipelineWorkflow.record_cancel, ControlRequest(reason="bad build", user="carol")
    )
    assert recorded.accepted and recorded.status is ExecutionStatus.RUNNING
    assert (await runner.state(handle)).cancelReason == "bad build"
    await handle.cancel()
    with pytest.raises(WorkflowFailureError) as raised:
        await asyncio.wait_for(handle.result(), 15)
    assert isinstance(raised.value.cause, CancelledError)
    assert (await handle.describe()).status is WorkflowExecutionStatus.CANCELED
    state = await runner.state(handle)
    assert state.status is ExecutionStatus.CANCELED
    assert (state.cancelReason, state.canceledBy) == ("bad build", "carol")
    long, after = state.stage("long"), state.stage("after")
    assert long and long.status is StageStatus.CANCELED and long.error and long.error.kind == "canceled"
    assert "bad build" in long.error.message
    assert after and after.status is StageStatus.NOT_STARTED
    assert state.endTime is not None


# ---- child pipelines -----------------------------------------------------------------------------


def child_config(name: str, *stages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"application": "shop", "name": name, "stages": list(stages), **extra}


async def test_inline_child_pipeline_waits_and_returns_its_outputs(runner: Runner, client: Client) -> None:
    child = child_config("child-inline", variables("vars", image="shop:1.2"), wait("w", 0.1, "vars"))
    handle = await runner.start(pipeline({"refId": "run-child", "type": "pipeline", "pipelineConfig": child}))
    state = await runner.finish(handle)
    assert state.status is ExecutionStatus.SUCCEEDED, state.failure
    child_id = f"{handle.id}.run-child"
    out = outputs_of(state, "run-child")
    assert out["executionId"] == child_id
    assert (out["application"], out["pipeline"], out["status"]) == ("shop", "child-inline", "SUCCEEDED")
    assert out["outputs"]["vars"] == {"image": "shop:1.2"}
    assert out["outputs"]["w"]["waitTime"] == 0.1
    child_handle = client.get_workflow_handle(child_id)
    described = await child_handle.describe()
    assert described.status is WorkflowExecutionStatus.COMPLETED
    assert described.parent_id == handle.id
    child_state = await child_handle.query(PipelineWorkflow.get_state)
    assert child_state.trigger.type == "pipeline" and child_state.trigger.source == handle.id


async def test_saved_child_pipeline_with_parameters(runner: Runner, store: PipelineStore) -> None:
    name = f"saved-{uuid.uuid4().hex[:8]}"
    config = child_config(
        name, variables("vars", greeting="hello ${{ parameters.who }}"), parameters=[{"name": "who", "required": True}]
    )
    store.save("shop", name, {**config, "stages": [variables("old", x=1)]})
    revision = store.save("shop", name, config)
    handle = await runner.start(
        pipeline(
            {
                "refId": "child",
                "type": "pipeline",
                "pipeline": name,
                "pipelineParameters": {"who": "${{ parameters.user }}"},
            },
            parameters=[{"name": "user"}],
        ),
        {"user": "dora"},
    )
    state = await runner.finish(handle)
    assert state.status is ExecutionStatus.SUCCEEDED, state.failure
    out = outputs_of(state, "child")
    assert out["revision"] == revision == 2
    assert out["outputs"] == {"vars": {"greeting": "hello dora"}}


async def test_missing_saved_child_pipeline_fails_the_stage(runner: Runner) -> None:
    handle = await runner.start(pipeline({"refId": "child", "type": "pipeline", "pipeline": "no-such-pipeline"}))
    state = await runner.finish(handle)
    child = state.stage("child")
    assert child and child.status is StageStatus.TERMINAL
    assert child.error and "no saved pipeline shop/no-such-pipeline" in child.error.message


async def test_fire_and_forget_child_outlives_the_parent_step(runner: Runner, client: Client) -> None:
    child = child_config("child-async", judgment("gate"))
    handle = await runner.start(
        pipeline({"refId": "spawn", "type": "pipeline", "pipelineConfig": child, "waitForCompletion": False})
    )
    result: ExecutionResult = await asyncio.wait_for(handle.result(), 15)
    assert result.status is ExecutionStatus.SUCCEEDED
    child_id = f"{handle.id}.spawn"
    assert result.outputs["spawn"]["status"] == "STARTED" and result.outputs["spawn"]["executionId"] == child_id
    # The parent is done while the child still waits for its judgment.
    child_handle = client.get_workflow_handle(child_id, result_type=ExecutionResult)
    await runner.wait_until(child_handle, lambda s: s.stage("gate").waitingForJudgment)
    assert (await child_handle.describe()).status is WorkflowExecutionStatus.RUNNING
    await child_handle.execute_update(PipelineWorkflow.judge, JudgmentRequest(refId="gate"))
    child_result = await asyncio.wait_for(child_handle.result(), 15)
    assert child_result.status is ExecutionStatus.SUCCEEDED


async def test_child_failure_fails_the_parent_stage_naming_the_child(runner: Runner) -> None:
    child = child_config(
        "child-fails",
        {"refId": "check", "type": "checkPreconditions", "preconditions": [{"context": {"expression": "false"}}]},
    )
    handle = await runner.start(
        pipeline({"refId": "run-child", "type": "pipeline", "pipelineConfig": child}, wait("after", 0.1, "run-child"))
    )
    with pytest.raises(WorkflowFailureError):
        await asyncio.wait_for(handle.result(), 15)
    state = await runner.state(handle)
    stage = state.stage("run-child")
    assert stage and stage.status is StageStatus.TERMINAL and stage.error
    assert f"shop/child-fails ({handle.id}.run-child) failed" in stage.error.message
    assert "check" in stage.error.message
    after = state.stage("after")
    assert after and after.status is StageStatus.NOT_STARTED
    assert state.failure and "run-child" in state.failure


async def test_inline_child_expressions_use_the_childs_parameters(runner: Runner) -> None:
    child = child_config(
        "child-params", variables("vars", doubled="${{ parameters.t * 2 }}"), parameters=[{"name": "t"}]
    )
    handle = await runner.start(
        pipeline({"refId": "run-child", "type": "pipeline", "pipelineConfig": child, "pipelineParameters": {"t": 21}})
    )
    state = await runner.finish(handle)
    stage = state.stage("run-child")
    assert stage and stage.status is StageStatus.SUCCEEDED, (stage and stage.status, stage and stage.error)
    assert state.status is ExecutionStatus.SUCCEEDED, state.failure
    assert stage.outputs["outputs"] == {"vars": {"doubled": 42}}
