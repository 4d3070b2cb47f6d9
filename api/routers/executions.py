"""Executions: start inline pipelines, read state, list, and control running executions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response
from temporalio.client import Client, WorkflowExecutionDescription

from api.deps import Access, AccessDep, SettingsDep, TemporalClientDep
from api.policy import Permission
from api.schemas import (
    ControlBody,
    ExecutionList,
    ExecutionRequest,
    ExecutionStarted,
    JudgmentBody,
)
from core import executions
from core.launch import restart_stage, start_execution
from workflows.model import parse_pipeline
from workflows.search import APPLICATION
from workflows.spel_lint import reject_spel
from workflows.state import (
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
    reject_spel(body.pipeline)
    spec = parse_pipeline(body.pipeline)
    access.require(spec.application, Permission.EXECUTE)
    caller = access.subject
    started = await start_execution(
        client,
        settings,
        spec,
        body.parameters,
        TriggerInfo(type="manual", user=caller, artifacts=body.artifacts),
        idempotency_key=idempotency_key,
        **access.launch_as(),
    )
    response.headers["Location"] = started.links.self
    return started


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
    found = [
        executions.summarize(wf)
        async for wf in client.list_workflows(executions.visibility_query(application, pipeline, status), limit=limit)
        # listings show only what the caller may read
        if access.can(wf.typed_search_attributes.get(APPLICATION) or "", Permission.READ)
    ]
    return ExecutionList(executions=found)


@router.get("/{execution_id}", response_model=ExecutionState, summary="The execution's full state")
async def get_execution(execution_id: str, client: TemporalClientDep, access: AccessDep) -> ExecutionState:
    description = await _authorize(client, execution_id, access, Permission.READ)
    return await executions.read_state(client, execution_id, description)


async def _authorize(
    client: Client, execution_id: str, access: Access, permission: Permission
) -> WorkflowExecutionDescription:
    description = await client.get_workflow_handle(execution_id).describe()
    application = executions.execution_application(description)
    if application is None:
        access.require_admin(f"execution {execution_id}, which belongs to no application,")
    else:
        access.require(application, permission)
    return description


def _control(access: Access, body: ControlBody | None) -> ControlRequest:
    return ControlRequest(reason=body.reason if body else None, user=access.subject)


@router.put("/{execution_id}/cancel", status_code=202, response_model=ExecutionState, summary="Cancel; cleanup runs")
async def cancel_execution(
    execution_id: str, client: TemporalClientDep, access: AccessDep, body: ControlBody | None = None
) -> ExecutionState:
    await _authorize(client, execution_id, access, Permission.EXECUTE)
    return await executions.cancel(client, execution_id, _control(access, body))


@router.put("/{execution_id}/pause", response_model=ExecutionState, summary="Start no new stages; freeze waits")
async def pause_execution(
    execution_id: str, client: TemporalClientDep, access: AccessDep, body: ControlBody | None = None
) -> ExecutionState:
    await _authorize(client, execution_id, access, Permission.EXECUTE)
    return await executions.pause(client, execution_id, _control(access, body))


@router.put("/{execution_id}/resume", response_model=ExecutionState, summary="Resume a paused execution")
async def resume_execution(
    execution_id: str, client: TemporalClientDep, access: AccessDep, body: ControlBody | None = None
) -> ExecutionState:
    await _authorize(client, execution_id, access, Permission.EXECUTE)
    return await executions.resume(client, execution_id, _control(access, body))


@router.post(
    "/{execution_id}/stages/{ref_id}/judgment", response_model=JudgmentRecord, summary="Judge a manual judgment"
)
async def judge_stage(
    execution_id: str, ref_id: str, body: JudgmentBody, client: TemporalClientDep, access: AccessDep
) -> JudgmentRecord:
    await _authorize(client, execution_id, access, Permission.EXECUTE)
    request = JudgmentRequest(
        refId=ref_id,
        judgmentStatus=body.judgmentStatus,
        input=body.input,
        comment=body.comment,
        user=access.subject,
        groups=sorted(access.identity.groups),
        admin=access.settings.auth_disabled or access.policy.is_admin(access.identity),
    )
    return await executions.judge(client, execution_id, request)


@router.post("/{execution_id}/stages/{ref_id}/skip", response_model=ExecutionState, summary="Skip a running wait")
async def skip_wait(execution_id: str, ref_id: str, client: TemporalClientDep, access: AccessDep) -> ExecutionState:
    await _authorize(client, execution_id, access, Permission.EXECUTE)
    return await executions.skip_wait(client, execution_id, SkipWaitRequest(refId=ref_id, user=access.subject))


@router.post(
    "/{execution_id}/stages/{ref_id}/restart",
    status_code=202,
    response_model=ExecutionStarted,
    summary="Restart a finished execution from a stage (new run, same id)",
)
async def restart_from_stage(
    execution_id: str, ref_id: str, client: TemporalClientDep, settings: SettingsDep, access: AccessDep
) -> ExecutionStarted:
    await _authorize(client, execution_id, access, Permission.EXECUTE)
    return await restart_stage(client, settings, execution_id, ref_id, access.subject, **access.launch_as())
