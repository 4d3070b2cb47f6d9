"""Reading and steering executions: state, listings and control, typed against PipelineWorkflow.

What Temporal says about how a run ended outranks what the run last said about itself: a run
terminated or canceled from the Temporal UI or CLI never had the chance to record it, so its own
state (replayed by a query) still reads RUNNING.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.service import RPCError, RPCStatusCode

from core.errors import ServiceError
from workflows.pipeline import PipelineWorkflow
from workflows.search import APPLICATION, PIPELINE, STATUS, SUPERSEDED, TRIGGER
from workflows.state import (
    PIPELINE_WORKFLOW,
    ControlRequest,
    ExecutionState,
    ExecutionStatus,
    JudgmentRecord,
    JudgmentRequest,
    SkipWaitRequest,
    TriggerInfo,
)

T = TypeVar("T")

# How a run that Temporal closed on its own terms reads in Gennaker.
CLOSED_BY_TEMPORAL = {
    WorkflowExecutionStatus.TERMINATED: ExecutionStatus.TERMINATED,
    WorkflowExecutionStatus.CANCELED: ExecutionStatus.CANCELED,
    WorkflowExecutionStatus.TIMED_OUT: ExecutionStatus.TERMINAL,
    WorkflowExecutionStatus.FAILED: ExecutionStatus.TERMINAL,
}
FINAL = {ExecutionStatus.SUCCEEDED, ExecutionStatus.TERMINAL, ExecutionStatus.CANCELED, ExecutionStatus.TERMINATED}


class ExecutionSummary(BaseModel):
    id: str
    runId: str
    application: str | None
    pipeline: str | None
    trigger: str | None
    status: str | None
    temporalStatus: str | None
    startTime: datetime | None
    closeTime: datetime | None


class ExecutionList(BaseModel):
    executions: list[ExecutionSummary]
    nextPageToken: str | None = None


def pipeline_handle(client: Client, execution_id: str) -> WorkflowHandle[PipelineWorkflow, Any]:
    return client.get_workflow_handle_for(PipelineWorkflow.run, execution_id)


def execution_application(description: WorkflowExecutionDescription) -> str | None:
    """The application an execution belongs to: its search attribute, set by us at start."""
    return description.typed_search_attributes.get(APPLICATION)


async def read_state(
    client: Client, execution_id: str, description: WorkflowExecutionDescription | None = None
) -> ExecutionState:
    handle = pipeline_handle(client, execution_id)
    description = description or await handle.describe()
    try:
        state = await handle.query(PipelineWorkflow.get_state)
    except (WorkflowQueryFailedError, RPCError) as exc:
        if isinstance(exc, RPCError) and exc.status == RPCStatusCode.NOT_FOUND:
            raise
        closed = CLOSED_BY_TEMPORAL.get(description.status) if description.status else None
        if closed is None:
            raise
        return _state_from_description(description, closed, exc)
    return _with_temporal_outcome(state, description)


def _with_temporal_outcome(state: ExecutionState, description: WorkflowExecutionDescription) -> ExecutionState:
    closed = CLOSED_BY_TEMPORAL.get(description.status) if description.status else None
    if closed is None or state.status in FINAL:
        return state
    how = "terminated" if closed == ExecutionStatus.TERMINATED else description.status.name.lower()  # type: ignore[union-attr]
    return state.model_copy(
        update={
            "status": closed,
            "endTime": state.endTime or description.close_time,
            "failure": state.failure or f"the workflow was {how} in Temporal (UI, CLI or API), outside Gennaker",
        }
    )


def _state_from_description(
    description: WorkflowExecutionDescription, status: ExecutionStatus, error: Exception
) -> ExecutionState:
    """What can be said of a closed run whose state cannot be replayed (no worker, changed code)."""
    attrs = description.typed_search_attributes
    reason = error.message if isinstance(error, RPCError) else str(error)
    return ExecutionState(
        id=description.id,
        runId=description.run_id,
        application=attrs.get(APPLICATION) or "",
        pipeline=attrs.get(PIPELINE) or "",
        status=status,
        trigger=TriggerInfo(type=attrs.get(TRIGGER) or "unknown"),
        parameters={},
        startTime=description.start_time,
        endTime=description.close_time,
        stages=[],
        failure=f"Temporal status {description.status.name if description.status else 'UNKNOWN'}; "
        f"the stages cannot be read ({reason})",
    )


def summary_status(wf: WorkflowExecution) -> str | None:
    """Temporal's own status for runs it closed itself; otherwise what Gennaker last recorded."""
    closed = CLOSED_BY_TEMPORAL.get(wf.status) if wf.status else None
    recorded = wf.typed_search_attributes.get(STATUS)
    if closed is not None and recorded not in {s.value for s in FINAL}:
        return closed.value
    return recorded


# Visibility clauses per Gennaker status: a run Temporal closed keeps the GennakerStatus it last
# upserted (RUNNING), so Temporal's ExecutionStatus decides for those.
_STATUS_CLAUSES = {
    ExecutionStatus.TERMINATED: "ExecutionStatus = 'Terminated'",
    ExecutionStatus.CANCELED: (f"({STATUS.name} IN ('CANCELED', '{SUPERSEDED}') OR ExecutionStatus = 'Canceled')"),
    ExecutionStatus.TERMINAL: (
        f"({STATUS.name} = 'TERMINAL' OR ExecutionStatus = 'Failed' OR ExecutionStatus = 'TimedOut')"
    ),
    ExecutionStatus.SUCCEEDED: f"{STATUS.name} = 'SUCCEEDED'",
}


def visibility_query(application: str | None, pipeline: str | None, status: ExecutionStatus | None) -> str:
    """Callers validate `application` and `pipeline` against the name pattern, so quoting them is safe."""
    clauses = [f"WorkflowType = '{PIPELINE_WORKFLOW}'"]
    if application:
        clauses.append(f"{APPLICATION.name} = '{application}'")
    if pipeline:
        clauses.append(f"{PIPELINE.name} = '{pipeline}'")
    if status:
        clauses.append(
            _STATUS_CLAUSES.get(status) or f"{STATUS.name} = '{status.value}' AND ExecutionStatus = 'Running'"
        )
    return " AND ".join(clauses)


def summarize(wf: WorkflowExecution) -> ExecutionSummary:
    attrs = wf.typed_search_attributes
    return ExecutionSummary(
        id=wf.id,
        runId=wf.run_id,
        application=attrs.get(APPLICATION),
        pipeline=attrs.get(PIPELINE),
        trigger=attrs.get(TRIGGER),
        status=summary_status(wf),
        temporalStatus=wf.status.name if wf.status else None,
        startTime=wf.start_time,
        closeTime=wf.close_time,
    )


async def ensure_running(handle: WorkflowHandle[Any, Any]) -> None:
    description = await handle.describe()
    if description.status != WorkflowExecutionStatus.RUNNING:
        status = description.status.name if description.status else "UNKNOWN"
        raise ServiceError(409, "not_running", f"execution {handle.id} is not running (Temporal status {status})")


async def _on_running(handle: WorkflowHandle[PipelineWorkflow, Any], call: Callable[[], Awaitable[T]]) -> T:
    """Run an update on a running execution; one that closes meanwhile answers 409 like a closed one."""
    await ensure_running(handle)
    try:
        return await call()
    except RPCError as exc:
        # "update was aborted by closing workflow": the execution ended between check and update.
        if exc.status == RPCStatusCode.NOT_FOUND:
            await ensure_running(handle)
        raise


async def pause(client: Client, execution_id: str, request: ControlRequest) -> ExecutionState:
    handle = pipeline_handle(client, execution_id)
    await _on_running(handle, lambda: handle.execute_update(PipelineWorkflow.pause, request))
    return await read_state(client, execution_id)


async def resume(client: Client, execution_id: str, request: ControlRequest) -> ExecutionState:
    handle = pipeline_handle(client, execution_id)
    await _on_running(handle, lambda: handle.execute_update(PipelineWorkflow.resume, request))
    return await read_state(client, execution_id)


async def skip_wait(client: Client, execution_id: str, request: SkipWaitRequest) -> ExecutionState:
    handle = pipeline_handle(client, execution_id)
    await _on_running(handle, lambda: handle.execute_update(PipelineWorkflow.skip_wait, request))
    return await read_state(client, execution_id)


async def cancel(client: Client, execution_id: str, request: ControlRequest) -> ExecutionState:
    """Record who canceled and why (an update), then ask Temporal to cancel; cleanup still runs."""
    handle = pipeline_handle(client, execution_id)
    await _on_running(handle, lambda: handle.execute_update(PipelineWorkflow.record_cancel, request))
    state = await read_state(client, execution_id)
    await handle.cancel()
    return state


async def judge(client: Client, execution_id: str, request: JudgmentRequest) -> JudgmentRecord:
    handle = pipeline_handle(client, execution_id)
    ack = await _on_running(handle, lambda: handle.execute_update(PipelineWorkflow.judge, request))
    if ack.judgment is None:  # the workflow always records one when it accepts; guard the contract
        raise RuntimeError(f"execution {execution_id}: judge accepted without a judgment record")
    return ack.judgment
