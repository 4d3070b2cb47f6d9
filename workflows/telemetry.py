"""Workflow-side telemetry: stage durations, judgment waits, deploy outcomes, executions finished.

Recorded through `workflow.metric_meter()`, whose instruments the SDK wraps so that nothing is
recorded while a workflow replays (temporalio 1.35 `worker/_workflow_instance.py`,
`_ReplaySafeMetricCounter.add` checks `workflow.unsafe.is_replaying()`): a worker restart or a cache
eviction never counts a stage twice. Metrics are not commands, so calling these changes no history.
The meter adds `namespace`, `task_queue` and `workflow_type` labels by itself.

The runner calls `stage_started` / `stage_finished` around each stage and `execution_finished`
when the execution ends; nothing here names the runner's internals.
"""

from __future__ import annotations

from temporalio import workflow

from workflows.stages.base import StageConfig
from workflows.state import ExecutionState, StageState

with workflow.unsafe.imports_passed_through():
    from temporalio.contrib.opentelemetry import TracingWorkflowInboundInterceptor
    from temporalio.contrib.opentelemetry.workflow import completed_span

    from workflows.observe import names
    from workflows.observe.context import STAGE_REF
    from workflows.observe.deploys import DEPLOY_STAGE_TYPES, deploy_outcome
    from workflows.observe.labels import LabelBudget

# Process-wide (the module is passed through the sandbox): the first N application/pipeline pairs
# keep their names as labels, later ones count as `_other`. Only metrics depend on it, never history.
_budget = LabelBudget()


def label_budget() -> LabelBudget:
    """The workers' budget; its limit is set from GENNAKER_MAX_LABEL_VALUES by workers/telemetry.py."""
    return _budget


def stage_started(state: StageState) -> None:
    """Tag this stage's asyncio task, so log lines from it carry the stage refId."""
    STAGE_REF.set(state.refId)


def stage_finished(config: StageConfig, state: StageState) -> None:
    meter = workflow.metric_meter()
    seconds = (state.endTime - state.startTime).total_seconds() if state.startTime and state.endTime else 0.0
    status = state.status.value
    meter.create_histogram_float(names.STAGE_DURATION, "Stage run time by type and final status", "s").record(
        seconds, {"stage_type": state.type, "status": status}
    )
    if state.judgment is not None and state.startTime is not None:
        waited = max(0.0, (state.judgment.judgedAt - state.startTime).total_seconds())
        meter.create_histogram_float(names.JUDGMENT_WAIT, "Time from judgment requested to decided", "s").record(
            waited, {"outcome": state.judgment.judgmentStatus, "via": state.judgment.via}
        )
    if state.type in DEPLOY_STAGE_TYPES:
        error = state.error.model_dump() if state.error is not None else None
        outcome, reason = deploy_outcome(status, error)
        strategy = str(getattr(config, "strategy", None) or ("manifest" if state.type == "deployManifest" else "none"))
        meter.create_counter(names.DEPLOYS, "Deploy stages by strategy, outcome and rollback reason").add(
            1, {"stage_type": state.type, "strategy": strategy, "outcome": outcome, "rollback_reason": reason}
        )
    _stage_span(state, seconds)


def execution_finished(state: ExecutionState) -> None:
    application, pipeline = _budget.admit(state.application, state.pipeline)
    workflow.metric_meter().create_counter(names.EXECUTIONS_FINISHED, "Executions finished by final status").add(
        1, {"application": application, "pipeline": pipeline, "status": state.status.value}
    )


def _stage_span(state: StageState, seconds: float) -> None:
    # With the legacy TracingInterceptor, workflow spans are zero-length markers created when the
    # workflow is not replaying; the stage's real duration is an attribute. Only when the worker
    # traces (otherwise completed_span would fall back to the global tracer and warn).
    if TracingWorkflowInboundInterceptor._from_context() is None:
        return
    completed_span(
        f"Stage:{state.type}",
        attributes={
            "gennaker.stage.ref_id": state.refId,
            "gennaker.stage.type": state.type,
            "gennaker.stage.status": state.status.value,
            "gennaker.stage.duration_ms": int(seconds * 1000),
        },
    )
