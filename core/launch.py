"""Starting executions: ids, idempotency, search attributes, and restarts."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import uuid
from typing import Any, TypedDict
from urllib.parse import quote

from pydantic import BaseModel, Field
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from core.directory import AccountDirectoryView, read_directory
from core.errors import ServiceError
from core.observability.metrics import record_execution_started
from core.policy import Identity, Policy
from core.settings import GennakerSettings
from core.tenancy import resolve_tenancy, submitter_of
from workflows.model import PipelineSpec, resolve_parameters
from workflows.pipeline import PipelineWorkflow
from workflows.readable import ReadableText
from workflows.search import initial_attributes
from workflows.state import (
    PARENT_DONE_OK,
    PipelineRunInput,
    RestartFrom,
    StageStatus,
    TriggerInfo,
)


class ExecutionLinks(BaseModel):
    self: str
    ui: str
    console: str = Field(description="The execution's page in the Gennaker console, on this gateway")


class ExecutionStarted(BaseModel):
    id: str
    runId: str
    application: str
    pipeline: str
    revision: int | None = None
    replayed: bool = Field(default=False, description="True if an Idempotency-Key matched an earlier start")
    links: ExecutionLinks


def execution_id(spec: PipelineSpec, idempotency_key: str | None) -> str:
    """`<app>.<pipeline>.<suffix>`; with an Idempotency-Key the suffix is derived from it, so a
    retried submission maps to the same workflow id and Temporal refuses to start it twice."""
    if idempotency_key:
        digest = hashlib.sha256(f"{spec.application}/{spec.name}/{idempotency_key}".encode()).hexdigest()
        suffix = digest[:20]
    else:
        suffix = uuid.uuid4().hex[:20]
    return f"{spec.application}.{spec.name}.{suffix}"


def links(settings: GennakerSettings, namespace: str, workflow_id: str, run_id: str) -> ExecutionLinks:
    ui = settings.temporal_ui_url.rstrip("/")
    return ExecutionLinks(
        self=f"/executions/{workflow_id}",
        console=f"/console/executions/{quote(workflow_id, safe='')}",
        ui=f"{ui}/namespaces/{namespace}/workflows/{workflow_id}/{run_id}/history",
    )


def check_accounts(spec: PipelineSpec, directory: AccountDirectoryView) -> None:
    """A stage naming an account no worker ever reported would wait for a worker that never comes:
    refuse it now, naming the stage field and the accounts that exist. Until the first report
    (a new deployment) there is nothing to check against; expressions are resolved later, and a
    stage behind `stageEnabled` may never run (the demo's optional bake names a registry that a
    stack without Docker does not have)."""
    if not directory.exists:
        return
    known = directory.known()
    for index, stage in enumerate(spec.stages):
        if stage.stageEnabled is not None:
            continue
        account = getattr(stage, "account", None)
        if isinstance(account, str) and "${{" not in account and account not in known:
            raise ServiceError(
                422,
                "unknown_account",
                f"stage {stage.refId}: no account {account!r}; known accounts: {', '.join(sorted(known)) or 'none'}",
                f"stages[{index}].account",
            )


class StartOptions(TypedDict, total=False):
    """start_execution's idempotency and tenancy keywords, for callers that pass them through."""

    idempotency_key: str | None
    policy: Policy | None
    submitter: Identity | None


async def _start_run(
    client: Client,
    settings: GennakerSettings,
    run_input: PipelineRunInput,
    workflow_id: str,
    *,
    trigger_type: str,
    summary: str,
    id_reuse_policy: WorkflowIDReusePolicy,
    id_conflict_policy: WorkflowIDConflictPolicy = WorkflowIDConflictPolicy.UNSPECIFIED,
    details: str | None = None,
) -> str:
    """Start one run of the pipeline workflow, readable in the Temporal UI, and count it; the run id."""
    spec = run_input.pipeline
    handle = await client.start_workflow(
        PipelineWorkflow.run,
        run_input,
        id=workflow_id,
        task_queue=settings.task_queue,
        id_reuse_policy=id_reuse_policy,
        id_conflict_policy=id_conflict_policy,
        search_attributes=initial_attributes(spec.application, spec.name, trigger_type),
        static_summary=ReadableText(summary),
        static_details=details,
    )
    record_execution_started(spec.application, spec.name, trigger_type)
    return handle.result_run_id or ""


def _started(
    client: Client,
    settings: GennakerSettings,
    spec: PipelineSpec,
    workflow_id: str,
    run_id: str,
    revision: int | None,
    replayed: bool = False,
) -> ExecutionStarted:
    return ExecutionStarted(
        id=workflow_id,
        runId=run_id,
        application=spec.application,
        pipeline=spec.name,
        revision=revision,
        replayed=replayed,
        links=links(settings, client.namespace, workflow_id, run_id),
    )


async def start_execution(
    client: Client,
    settings: GennakerSettings,
    spec: PipelineSpec,
    parameters: dict[str, Any],
    trigger: TriggerInfo,
    *,
    revision: int | None = None,
    idempotency_key: str | None = None,
    policy: Policy | None = None,
    submitter: Identity | None = None,
) -> ExecutionStarted:
    """Start `spec`. With a `policy` (auth on), `submitter` is who the gateway authenticated (or
    the pipeline's serviceAccount for a triggered run): the execution records it with the grants of
    its application, and `application:` fields naming another application are checked now."""
    values = resolve_parameters(spec, parameters)
    grants, delegations = resolve_tenancy(spec, policy, submitter)
    workflow_id = execution_id(spec, idempotency_key)
    directory = await read_directory(client)
    check_accounts(spec, directory)
    run_input = PipelineRunInput(
        pipeline=spec,
        parameters=values,
        trigger=trigger,
        revision=revision,
        accountQueues=directory.queues(),
        submitter=submitter_of(submitter),
        grants=grants,
        delegations=delegations,
    )
    replayed = False
    try:
        run_id = await _start_run(
            client,
            settings,
            run_input,
            workflow_id,
            trigger_type=trigger.type,
            summary=f"{spec.application}/{spec.name}" + (f" r{revision}" if revision else ""),
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            details=spec.description,
        )
    except WorkflowAlreadyStartedError:
        if not idempotency_key:
            raise
        description = await client.get_workflow_handle(workflow_id).describe()
        run_id = description.run_id
        replayed = True
    return _started(client, settings, spec, workflow_id, run_id, revision, replayed)


async def restart_stage(
    client: Client,
    settings: GennakerSettings,
    workflow_id: str,
    ref_id: str,
    user: str,
    *,
    policy: Policy | None = None,
    submitter: Identity | None = None,
) -> ExecutionStarted:
    """Restart a finished execution from `ref_id`.

    A Temporal workflow cannot run again once closed, so a restart is a new run under the same
    workflow id (same execution id for people and links). Stages that finished well (SUCCEEDED,
    SKIPPED, FAILED_CONTINUE) and are neither `ref_id` nor downstream of it keep their status and
    outputs; `ref_id`, everything downstream of it, and anything that had not finished run again.

    With a `policy` (auth on) the new run acts as `submitter`, the one who restarts, with the
    tenancy resolved now as for a submission: the original submitter's delegations would let
    someone who may EXECUTE only this application re-run a child or deploy it names for another
    (a confused deputy), so a name `submitter` may not EXECUTE is refused with the same 403.
    """
    handle = client.get_workflow_handle(workflow_id)
    description = await handle.describe()
    state = await handle.query(PipelineWorkflow.get_state)
    if description.status == WorkflowExecutionStatus.RUNNING and state.endTime is not None:
        # Its stages are done and it is closing (firing pipeline triggers): give it a moment.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(handle.result(), timeout=10)
        description = await handle.describe()
    if description.status == WorkflowExecutionStatus.RUNNING:
        raise ServiceError(409, "still_running", f"execution {workflow_id} is still running; cancel it or wait")
    history = await handle.fetch_history()
    original = await _first_input(history, client)
    spec = original.pipeline
    if state.stage(ref_id) is None:
        raise ServiceError(404, "unknown_stage", f"no stage with refId {ref_id!r} in {workflow_id}")
    rerun = spec.descendants(ref_id) | {ref_id}
    kept = [s for s in state.stages if s.refId not in rerun and s.status in PARENT_DONE_OK | {StageStatus.SKIPPED}]
    update: dict[str, Any] = {
        "restart": RestartFrom(previousRunId=description.run_id, refId=ref_id, keptStages=kept, user=user)
    }
    if policy is not None:
        grants, delegations = resolve_tenancy(spec, policy, submitter)
        update.update(submitter=submitter_of(submitter), grants=grants, delegations=delegations)
    run_input = original.model_copy(update=update)
    try:
        run_id = await _start_run(
            client,
            settings,
            run_input,
            workflow_id,
            trigger_type="restart",
            summary=f"{spec.application}/{spec.name} restarted from {ref_id}",
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        )
    except WorkflowAlreadyStartedError:
        # Someone else restarted it between our check and our start.
        raise ServiceError(409, "still_running", f"execution {workflow_id} was restarted by someone else") from None
    return _started(client, settings, spec, workflow_id, run_id, original.revision)


async def _first_input(history: Any, client: Client) -> PipelineRunInput:
    started = history.events[0].workflow_execution_started_event_attributes
    # decode() runs the payload codec too, so this keeps working once payloads are encrypted.
    (decoded,) = await client.data_converter.decode(list(started.input.payloads), [PipelineRunInput])
    if not isinstance(decoded, PipelineRunInput):
        raise ServiceError(409, "unreadable_history", "the execution's input cannot be read for a restart")
    return decoded
