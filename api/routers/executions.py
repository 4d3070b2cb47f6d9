"""Executions: start inline pipelines, read state, list, and control running executions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from api.deps import Access, AccessDep, SettingsDep, TemporalClientDep
from api.errors import ApiError
from api.launch import restart_stage, start_execution
from api.policy import Permission
from api.schemas import (
    ControlBody,
    ExecutionList,
    ExecutionRequest,
    ExecutionStarted,
    ExecutionSummary,
    JudgmentBody,
)
from workflows.model import parse_pipeline
from workflows.search import APPLICATION, PIPELINE, STATUS, TRIGGER
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

router = APIRouter(prefix="/executions", tags=["executions"])

IdempotencyKey = Annotated[
    str | None,
    Header(description="Retries with the same key return the first execution instead of starting another"),
]
NAME = r"^[a-z0-9][a-z0-9-]{0,62}$"


@router.post("", status_code=202, response_model=ExecutionStarted, summary="Run an inline pipeline")
async def run_inline(
    body: ExecutionRequest,
    client: TemporalClientDep,
    settings: SettingsDep,
    access: AccessDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> ExecutionStarted:
    spec = parse_pipeline(body.pipeline)
    access.require(spec.application, Permission.EXECUTE)
    caller = access.subject
    started = await start_execution(
        client,
        settings,
        spec,
        body.parameters,
        TriggerInfo(type="manual", user=caller),
        idempotency_key=idempotency_key,
    )
    response.headers["Location"] = started.links.self
    return started


def _visibility_query(application: str | None, pipeline: str | None, status: ExecutionStatus | None) -> str:
    clauses = [f"WorkflowType = '{PIPELINE_WORKFLOW}'"]
    # Values are validated by the Query patterns/enums below, so quoting them is safe.
    if application:
        clauses.append(f"{APPLICATION.name} = '{application}'")
    if pipeline:
        clauses.append(f"{PIPELINE.name} = '{pipeline}'")
    if status:
        clauses.append(f"{STATUS.name} = '{status.value}'")
    return " AND ".join(clauses)


@router.get("", response_model=ExecutionList, summary="List executions (Temporal visibility)")
async def list_executions(
    client: TemporalClientDep,
    access: AccessDep,
    application: Annotated[str | None, Query(pattern=NAME)] = None,
    pipeline: Annotated[str | None, Query(pattern=NAME)] = None,
    status: ExecutionStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> ExecutionList:
    if application:
        access.require(application, Permission.READ)
    found = []
    async for wf in client.list_workflows(_visibility_query(application, pipeline, status), limit=limit):
        attrs = wf.typed_search_attributes
        if not access.can(attrs.get(APPLICATION) or "", Permission.READ):
            continue  # listings show only what the caller may read
        found.append(
            ExecutionSummary(
                id=wf.id,
                runId=wf.run_id,
                application=attrs.get(APPLICATION),
                pipeline=attrs.get(PIPELINE),
                trigger=attrs.get(TRIGGER),
                status=attrs.get(STATUS),
                temporalStatus=wf.status.name if wf.status else None,
                startTime=wf.start_time,
                closeTime=wf.close_time,
            )
        )
    return ExecutionList(executions=found)


@router.get("/{execution_id}", response_model=ExecutionState, summary="The execution's full state")
async def get_execution(execution_id: str, client: TemporalClientDep, access: AccessDep) -> ExecutionState:
    handle = client.get_workflow_handle(execution_id)
    await _authorize(handle, access, Permission.READ)
    state: ExecutionState = await handle.query("state", result_type=ExecutionState)
    return state


async def _authorize(handle: WorkflowHandle[Any, Any], access: Access, permission: Permission) -> None:
    """The execution's application comes from its search attributes, set by us at start."""
    description = await handle.describe()
    application = description.typed_search_attributes.get(APPLICATION)
    if application is None:
        access.require_admin(f"execution {handle.id}, which belongs to no application,")
    else:
        access.require(application, permission)


async def _ensure_running(handle: WorkflowHandle[Any, Any], execution_id: str) -> None:
    description = await handle.describe()
    if description.status != WorkflowExecutionStatus.RUNNING:
        status = description.status.name if description.status else "UNKNOWN"
        raise ApiError(409, "not_running", f"execution {execution_id} is not running (Temporal status {status})")


async def _update(
    client: TemporalClientDep, access: Access, execution_id: str, name: str, arg: Any, result_type: type
) -> Any:
    handle = client.get_workflow_handle(execution_id)
    await _authorize(handle, access, Permission.EXECUTE)
    await _ensure_running(handle, execution_id)
    try:
        return await handle.execute_update(name, arg, result_type=result_type)
    except RPCError as exc:
        # The execution closed between the check and the update ("update was aborted by closing
        # workflow"): that is a 409 like any other update on a finished execution.
        if exc.status == RPCStatusCode.NOT_FOUND:
            await _ensure_running(handle, execution_id)
        raise


@router.put("/{execution_id}/cancel", status_code=202, response_model=ExecutionState, summary="Cancel; cleanup runs")
async def cancel_execution(
    execution_id: str, client: TemporalClientDep, access: AccessDep, body: ControlBody | None = None
) -> ExecutionState:
    reason = body.reason if body else None
    state: ExecutionState = await _update(
        client, access, execution_id, "cancel", ControlRequest(reason=reason, user=access.subject), ExecutionState
    )
    await client.get_workflow_handle(execution_id).cancel()
    return state


@router.put("/{execution_id}/pause", response_model=ExecutionState, summary="Start no new stages; freeze waits")
async def pause_execution(
    execution_id: str, client: TemporalClientDep, access: AccessDep, body: ControlBody | None = None
) -> ExecutionState:
    req = ControlRequest(reason=body.reason if body else None, user=access.subject)
    state: ExecutionState = await _update(client, access, execution_id, "pause", req, ExecutionState)
    return state


@router.put("/{execution_id}/resume", response_model=ExecutionState, summary="Resume a paused execution")
async def resume_execution(
    execution_id: str, client: TemporalClientDep, access: AccessDep, body: ControlBody | None = None
) -> ExecutionState:
    req = ControlRequest(reason=body.reason if body else None, user=access.subject)
    state: ExecutionState = await _update(client, access, execution_id, "resume", req, ExecutionState)
    return state


@router.post(
    "/{execution_id}/stages/{ref_id}/judgment", response_model=JudgmentRecord, summary="Judge a manual judgment"
)
async def judge_stage(
    execution_id: str, ref_id: str, body: JudgmentBody, client: TemporalClientDep, access: AccessDep
) -> JudgmentRecord:
    request = JudgmentRequest(
        refId=ref_id,
        judgmentStatus=body.judgmentStatus,
        input=body.input,
        comment=body.comment,
        user=access.subject,
        groups=sorted(access.identity.groups),
        admin=access.settings.auth_disabled or access.policy.is_admin(access.identity),
    )
    record: JudgmentRecord = await _update(client, access, execution_id, "judge", request, JudgmentRecord)
    return record


@router.post("/{execution_id}/stages/{ref_id}/skip", response_model=ExecutionState, summary="Skip a running wait")
async def skip_wait(execution_id: str, ref_id: str, client: TemporalClientDep, access: AccessDep) -> ExecutionState:
    state: ExecutionState = await _update(
        client, access, execution_id, "skipWait", SkipWaitRequest(refId=ref_id, user=access.subject), ExecutionState
    )
    return state


@router.post(
    "/{execution_id}/stages/{ref_id}/restart",
    status_code=202,
    response_model=ExecutionStarted,
    summary="Restart a finished execution from a stage (new run, same id)",
)
async def restart_from_stage(
    execution_id: str, ref_id: str, client: TemporalClientDep, settings: SettingsDep, access: AccessDep
) -> ExecutionStarted:
    await _authorize(client.get_workflow_handle(execution_id), access, Permission.EXECUTE)
    return await restart_stage(client, settings, execution_id, ref_id, access.subject)
