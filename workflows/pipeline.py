"""PipelineWorkflow: runs a pipeline's stage DAG as one durable Temporal workflow.

The scheduling and failure-flag rules (Spinnaker's, see README "Pipeline semantics") are decided by
`DagScheduler` (workflows/dag.py); this class carries them out with tasks, timers and activities.
A TERMINAL pipeline fails the Temporal workflow too, so the Web UI's "Failed" filter finds it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from pydantic import ValidationError
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError, TemporalError

import workflows.stages.builtin  # noqa: F401  (load every stage type with the workflow, not inside its first task)
from workflows import telemetry
from workflows.context import StageContext
from workflows.dag import DagScheduler, check_output_size
from workflows.handlers import ExecutionHandlers
from workflows.notifications import Notifier

with workflow.unsafe.imports_passed_through():
    from activities.gate import GateAcquire, GateActivities
    from activities.triggers import PipelineFinished, PipelineTriggerActivities
from workflows.account_calls import CURRENT_STAGE, NO_WORKER_LIMIT, failure_reason
from workflows.artifacts import ArtifactError
from workflows.cluster_lease import LEASE_GRANTED_SIGNAL
from workflows.details import current_details
from workflows.expressions import ExpressionError, contains_expression, evaluate_condition, evaluate_value
from workflows.gate import GATE_OPEN_SIGNAL, SUPERSEDED_SIGNAL, gate_id
from workflows.readable import ReadableText
from workflows.search import STATUS, SUPERSEDED
from workflows.stages.base import StageConfig, StageFailed
from workflows.start_artifacts import bind_start_artifacts
from workflows.state import (
    PIPELINE_WORKFLOW,
    ExecutionResult,
    ExecutionState,
    ExecutionStatus,
    JudgmentRecord,
    PipelineRunInput,
    StageError,
    StageState,
    StageStatus,
)


@workflow.defn(name=PIPELINE_WORKFLOW)
class PipelineWorkflow(ExecutionHandlers):
    @workflow.init
    def __init__(self, input: PipelineRunInput) -> None:
        info = workflow.info()
        self._input = input
        self._spec = input.pipeline
        kept = {s.refId: s for s in input.restart.keptStages} if input.restart else {}
        stages = []
        for stage in self._spec.stages:
            if stage.refId in kept:
                previous = kept[stage.refId].model_copy(deep=True)
                if input.restart is not None and previous.restoredFromRun is None:
                    previous.restoredFromRun = input.restart.previousRunId
                stages.append(previous)
            else:
                stages.append(
                    StageState(
                        refId=stage.refId,
                        name=stage.display_name,
                        type=stage.type,
                        requisiteStageRefIds=list(stage.requisiteStageRefIds),
                    )
                )
        self._state = ExecutionState(
            id=info.workflow_id,
            runId=info.run_id,
            application=self._spec.application,
            pipeline=self._spec.name,
            revision=input.revision,
            status=ExecutionStatus.RUNNING,
            trigger=input.trigger,
            parameters=input.parameters,
            startTime=workflow.now(),
            stages=stages,
            restartedFrom=input.restart,
        )
        self._by_ref = {s.refId: s for s in stages}
        self._config_of = {s.refId: s for s in self._spec.stages}
        self._judgments: dict[str, JudgmentRecord] = {}
        self._skips: set[str] = set()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._tick = 0
        self._dag = DagScheduler(self._spec.stages, self._by_ref)
        self._notifier = Notifier(self._spec, self._state)
        self._stage_configs: dict[str, StageConfig] = {}  # as resolved for their run
        self._gate_open = False
        self._superseded_by: str | None = None
        self._leases_granted: set[str] = set()  # cluster lease tokens (workflows/cluster_lease.py)
        self._details_stale = False

    # ---- the DAG runner -------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: PipelineRunInput) -> ExecutionResult:
        self._publish_status()
        refused = await self._bind_start_artifacts()
        if refused is not None:
            return await self._refuse(refused)
        collected = False
        try:
            if self._spec.limitConcurrent:
                await self._wait_for_gate()
                if self._superseded_by is not None:
                    return self._superseded()
            self._notifier.emit("pipeline.starting")
            await self._run_dag()
        except asyncio.CancelledError:
            who = f" by {self._state.canceledBy}" if self._state.canceledBy else ""
            why = f": {self._state.cancelReason}" if self._state.cancelReason else ""
            await self._stop_running_stages(f"execution canceled{who}{why}")
            self._finish(ExecutionStatus.CANCELED)
            await self._fire_pipeline_triggers()
            await self._notifier.drain()
            raise
        except GeneratorExit:
            # Python is closing this run's coroutines because its worker dropped it without an
            # eviction (a worker shut down with the run cached: sdk-python issues #494 and #1849).
            # That can happen on any thread, inside another workflow's activation: a command issued
            # now would land in that other workflow's history and break its replay.
            collected = True
            raise
        finally:
            if self._spec.limitConcurrent and not collected:
                await self._release_gate()
        failed = self._dag.failed
        self._finish(self._dag.final_status())
        self._notifier.emit("pipeline.failed" if failed else "pipeline.complete")
        await self._fire_pipeline_triggers()
        await self._notifier.drain()
        await workflow.wait_condition(workflow.all_handlers_finished)
        if failed:
            raise ApplicationError(self._state.failure or "pipeline failed", type="PipelineFailed", non_retryable=True)
        return ExecutionResult(
            status=self._state.status, outputs={s.refId: s.outputs for s in self._state.stages if s.outputs}
        )

    async def _bind_start_artifacts(self) -> str | None:
        """Bind the start artifacts (workflows/start_artifacts.py); returns why the run cannot start."""
        kept = [s for s in self._state.stages if s.restoredFromRun is not None and s.status is StageStatus.SUCCEEDED]
        found = await bind_start_artifacts(self._spec, self._input.trigger, self._state.id, kept, self._config_of)
        if isinstance(found, str):
            return found
        self._state.artifacts = found
        return None

    async def _refuse(self, reason: str) -> ExecutionResult:
        """End TERMINAL before any stage ran (an expected artifact that cannot be bound)."""
        self._state.failure = reason
        workflow.logger.warning(reason)
        self._finish(ExecutionStatus.TERMINAL)
        self._notifier.emit("pipeline.failed")
        await self._notifier.drain()
        await workflow.wait_condition(workflow.all_handlers_finished)
        raise ApplicationError(reason, type="PipelineFailed", non_retryable=True)

    async def _fire_pipeline_triggers(self) -> None:
        """Start pipelines whose `pipeline` trigger waits for this one; never fails this execution."""
        if not workflow.patched("fire-pipeline-triggers"):
            return
        finished = PipelineFinished(
            application=self._spec.application,
            pipeline=self._spec.name,
            executionId=self._state.id,
            status=self._state.status.value,
        )
        summary = f"Start pipelines triggered by {self._spec.application}/{self._spec.name} {finished.status}"
        try:
            # A local activity: the check reads the store in this same worker, and a task-queue round
            # trip at the end of every execution cost ~10% of a short pipeline's run time.
            if workflow.patched("pipeline-triggers-local-activity"):
                started = await workflow.execute_local_activity_method(
                    PipelineTriggerActivities.fire_pipeline_triggers,
                    finished,
                    start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=RetryPolicy(maximum_attempts=5),
                    summary=summary,
                )
            else:  # executions recorded before the change replay the way they ran
                started = await workflow.execute_activity_method(
                    PipelineTriggerActivities.fire_pipeline_triggers,
                    finished,
                    start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=RetryPolicy(maximum_attempts=5),
                    summary=summary,
                )
            self._state.triggered = started
        except ActivityError as exc:
            self._state.triggerError = f"pipeline triggers not fired: {failure_reason(exc)}"
            workflow.logger.warning(self._state.triggerError)

    # ---- limitConcurrent (see workflows/gate.py) --------------------------------------------------

    async def _wait_for_gate(self) -> None:
        gate = gate_id(self._spec.application, self._spec.name)
        self._state.status = ExecutionStatus.WAITING
        self._publish_status()
        await workflow.execute_local_activity_method(
            GateActivities.request_gate,
            GateAcquire(
                gateId=gate,
                executionId=self._state.id,
                keepWaiting=self._spec.keepWaitingPipelines,
                taskQueue=workflow.info().task_queue,
            ),
            start_to_close_timeout=timedelta(seconds=10),
            summary=f"Queue behind running {self._spec.application}/{self._spec.name} (limitConcurrent)",
        )
        workflow.set_current_details("waiting for the running execution of this pipeline to finish")
        await workflow.wait_condition(lambda: self._gate_open or self._superseded_by is not None)
        if self._superseded_by is None:
            self._state.status = ExecutionStatus.RUNNING
            self._publish_status()

    async def _release_gate(self) -> None:
        gate = workflow.get_external_workflow_handle(gate_id(self._spec.application, self._spec.name))
        with contextlib.suppress(FailureError):
            await gate.signal("release", self._state.id)

    def _superseded(self) -> ExecutionResult:
        self._state.cancelReason = (
            f"superseded by {self._superseded_by} while waiting (limitConcurrent, keepWaitingPipelines: false)"
        )
        self._finish(ExecutionStatus.CANCELED)
        # The list in the Temporal UI shows Temporal's COMPLETED for this run: say what happened.
        if workflow.patched("gennaker-status-superseded"):
            workflow.upsert_search_attributes([STATUS.value_set(SUPERSEDED)])
        workflow.set_current_details(f"{current_details(self._state, self._config_of)}\n\n{self._state.cancelReason}")
        return ExecutionResult(status=ExecutionStatus.CANCELED)

    @workflow.signal(name=GATE_OPEN_SIGNAL)
    def gate_open(self, holder: str) -> None:
        self._gate_open = True

    @workflow.signal(name=LEASE_GRANTED_SIGNAL)
    def cluster_lease_granted(self, token: str) -> None:
        self._leases_granted.add(token)

    def lease_granted(self, token: str) -> bool:
        return token in self._leases_granted

    @workflow.signal(name=SUPERSEDED_SIGNAL)
    def superseded(self, newer: str) -> None:
        if not self._gate_open:
            self._superseded_by = newer

    async def _publish_details_when_stale(self) -> None:
        """Current details are rebuilt once per workflow task, not once per stage: with hundreds of
        stages starting in one task, per-stage rebuilding is quadratic and trips the deadlock detector."""
        while True:
            await workflow.wait_condition(lambda: self._details_stale)
            self._details_stale = False
            self.publish_details()

    async def _run_dag(self) -> None:
        publisher = asyncio.create_task(self._publish_details_when_stale())
        try:
            await self._run_ready_stages()
        finally:
            publisher.cancel()

    async def _run_ready_stages(self) -> None:
        while True:
            if not self._state.paused:
                for stage in self._dag.ready(self._tasks):
                    self._tasks[stage.refId] = asyncio.create_task(self._run_stage(stage))
            running = any(not t.done() for t in self._tasks.values())
            if self._dag.finished(running, self._tasks):
                return
            await workflow.wait_condition(self._tick_changed(self._tick))

    def _tick_changed(self, seen: int) -> Callable[[], bool]:
        return lambda: self._tick != seen

    async def _stop_running_stages(self, reason: str) -> None:
        running = [(ref, t) for ref, t in self._tasks.items() if not t.done()]
        for ref, task in running:
            self._by_ref[ref].error = StageError(message=reason, kind="canceled")
            task.cancel()
        # Awaiting lets each stage's `finally` cleanup (activities included) run to completion.
        for _, task in running:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for state in self._state.stages:
            if state.status is StageStatus.RUNNING:
                state.status = StageStatus.CANCELED
                state.error = StageError(message=reason, kind="canceled")
                state.endTime = workflow.now()

    async def _run_stage(self, stage: StageConfig) -> None:
        state = self._by_ref[stage.refId]
        state.status = StageStatus.RUNNING
        state.startTime = workflow.now()
        state.error = None
        telemetry.stage_started(state)
        evicted = False
        CURRENT_STAGE.set(state.name)  # this task's summaries name their stage (account_calls.py)
        self._details_stale = True
        try:
            if stage.stageEnabled is not None and not evaluate_condition(
                stage.stageEnabled.expression, self.expression_context()
            ):
                state.status = StageStatus.SKIPPED
                state.details = f"skipped: stageEnabled {stage.stageEnabled.expression!r} is false"
                return
            resolved = self._resolve(stage)
            self._stage_configs[stage.refId] = resolved
            if resolved.noWorkerTimeoutMs is not None:
                NO_WORKER_LIMIT.set(timedelta(milliseconds=resolved.noWorkerTimeoutMs))
            self._notifier.emit("stage.starting", resolved, state)
            outputs = await self._run_with_timeout(resolved, StageContext(self, state))
            if workflow.patched("bounded-stage-outputs"):
                check_output_size(outputs)
            state.outputs = outputs
            try:
                self._state.artifacts = resolved.bind_artifacts(self._state.artifacts, state.outputs)
            except ArtifactError as exc:
                raise StageFailed(str(exc), details={"kind": "artifact"}) from None
            state.status = StageStatus.SUCCEEDED
            self._notifier.emit("stage.complete", resolved, state)
        except asyncio.CancelledError:
            self._mark_canceled(state)
        except Exception as exc:
            if self._being_canceled(state):
                # The stage caught its own cancellation, ran its cleanup and reported the result
                # as a failure (a rolled-back deploy, a canceled child…): it was canceled.
                self._mark_canceled(state, cleanup=exc.message if isinstance(exc, StageFailed) else None)
            else:
                self._fail_from(stage, state, exc)
        except GeneratorExit:
            # The worker is evicting this run from its cache (shutdown, cache pressure): no workflow
            # API may be called any more, and the run resumes elsewhere by replay.
            evicted = True
            raise
        finally:
            if not evicted:
                state.endTime = workflow.now()
                state.waitingForJudgment = False
                if state.status is not StageStatus.SKIPPED:
                    state.details = None
                telemetry.stage_finished(self._stage_configs.get(stage.refId, stage), state)
                self._tick += 1
                self._details_stale = True

    def _being_canceled(self, state: StageState) -> bool:
        """The runner marks a stage before canceling it; the task also knows it is being canceled."""
        task = asyncio.current_task()
        marked = state.error is not None and state.error.kind == "canceled"
        return marked or (task is not None and task.cancelling() > 0)

    def _mark_canceled(self, state: StageState, cleanup: str | None = None) -> None:
        state.status = StageStatus.CANCELED
        reason = state.error.message if state.error is not None and state.error.kind == "canceled" else None
        reason = reason or (self._state.failure and f"canceled: {self._state.failure}") or "canceled"
        state.error = StageError(message=f"{reason} (stage cleanup: {cleanup})" if cleanup else reason, kind="canceled")

    def _fail_from(self, stage: StageConfig, state: StageState, exc: Exception) -> None:
        if isinstance(exc, ExpressionError):
            self._fail(stage, state, str(exc), kind="expression")
        elif isinstance(exc, StageFailed):
            self._fail(stage, state, exc.message, kind=exc.details.pop("kind", "failure"), details=exc.details)
        elif isinstance(exc, TemporalError):
            self._fail(stage, state, failure_reason(exc))
        else:
            # A stage bug or an unexpected value must fail the stage visibly, never leave it
            # RUNNING while the pipeline reports success.
            self._fail(stage, state, f"{type(exc).__name__}: {exc}", kind="error")

    def _resolve(self, stage: StageConfig) -> StageConfig:
        """Evaluate `${{ }}` in the stage's fields, then validate the result against its model."""
        keep = stage.structural_fields | stage.raw_fields
        raw = stage.model_dump(mode="json")
        if not any(contains_expression(v) for k, v in raw.items() if k not in keep):
            # The expression context costs O(stages) to build: a fan-out of hundreds of plain
            # stages started in one workflow task must not pay it per stage (issue 11, TMPRL1101).
            return stage.model_copy(deep=True)
        context = self.expression_context()
        resolved = {k: (v if k in keep else evaluate_value(v, context)) for k, v in raw.items()}
        try:
            return type(stage).model_validate(resolved)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False)
            )
            raise StageFailed(f"after evaluating expressions: {problems}", details={"kind": "expression"}) from None

    async def _run_with_timeout(self, stage: StageConfig, ctx: StageContext) -> dict[str, Any]:
        if stage.stageTimeoutMs is None:
            return await stage.run(ctx)
        limit = timedelta(milliseconds=stage.stageTimeoutMs)
        body = asyncio.create_task(stage.run(ctx))
        summary = ReadableText(f"{stage.display_name} · timeout ({limit})")
        timer = asyncio.create_task(workflow.sleep(limit, summary=summary))
        try:
            await workflow.wait([body, timer], return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            timer.cancel()
            body.cancel()
            await asyncio.gather(body, return_exceptions=True)
            raise
        if body.done():
            timer.cancel()
            return body.result()
        body.cancel()
        await asyncio.gather(body, return_exceptions=True)
        raise StageFailed(
            f"timed out after {limit} (stageTimeoutMs={stage.stageTimeoutMs})", details={"kind": "timeout"}
        )

    def _fail(
        self,
        stage: StageConfig,
        state: StageState,
        reason: str,
        kind: str = "failure",
        details: dict[str, Any] | None = None,
    ) -> None:
        state.error = StageError(message=reason, kind=kind, details=details or {})
        decision = self._dag.stage_failed(stage, reason)
        state.status = decision.status
        self._state.failure = self._state.failure or self._dag.failure
        if decision.cancel_others:
            current = self._tasks.get(stage.refId)
            for ref, task in self._tasks.items():
                if task is not current and not task.done():
                    self._by_ref[ref].error = StageError(message=f"canceled: {decision.message}", kind="canceled")
                    task.cancel()
        workflow.logger.warning(decision.message)
        self._notifier.emit("stage.failed", self._stage_configs.get(stage.refId, stage), state)

    def _finish(self, status: ExecutionStatus) -> None:
        self._state.status = status
        self._state.paused = False
        self._state.endTime = workflow.now()
        telemetry.execution_finished(self._state)
        self._publish_status()
        self.publish_details()

    def details_changed(self) -> None:
        """A stage's details changed: republished once at the end of this workflow task (a stage
        that set them directly would rebuild them once per stage — quadratic when hundreds of
        stages start in one task, which trips the SDK's deadlock detector on a loaded worker)."""
        self._details_stale = True

    def publish_details(self) -> None:
        """The Temporal UI's current details: running stages and what each waits for (details.py)."""
        workflow.set_current_details(current_details(self._state, self._config_of))
