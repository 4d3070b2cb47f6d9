"""Console pages for applications, their pipelines and executions (graph, stages, approve, stop)."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from api.console import graph
from api.console.services import ExecutionState, Permission
from api.console.web import Caller, ConsoleRoute, caller, checked_form, redirect, render
from api.errors import ApiError
from workflows.model import NAME_PATTERN
from workflows.stages.judgment import ManualJudgmentStage
from workflows.state import ExecutionStatus, StageStatus

log = logging.getLogger("gennaker.console")
CallerDep = Annotated[Caller, Depends(caller)]
AppName = Annotated[str, Path(pattern=NAME_PATTERN)]
ExecutionId = Annotated[str, Path(min_length=1, max_length=255)]
RefId = Annotated[str, Path(min_length=1, max_length=255)]
MAX_COMMENT = 2000
MAX_PARAMETER = 4096
FINISHED = {ExecutionStatus.SUCCEEDED, ExecutionStatus.TERMINAL, ExecutionStatus.CANCELED}
POLL_SECONDS = 2


@dataclass(frozen=True)
class JudgmentPanel:
    """What an approver needs beside the stage's state; from the execution's own spec."""

    ref_id: str
    instructions: str | None
    options: list[str]
    approvers: list[str]
    may_judge: bool


def pages_router() -> APIRouter:
    router = APIRouter(route_class=ConsoleRoute)

    @router.get("/")
    async def applications(request: Request, who: CallerDep) -> Response:
        return render(request, who, "applications.html", {"applications": await who.gateway.readable_applications()})

    @router.get("/applications/{application}")
    async def application(request: Request, application: AppName, who: CallerDep) -> Response:
        gateway = who.gateway
        pipelines = await gateway.pipelines(application)  # checks READ
        context = {
            "application": application,
            "pipelines": pipelines,
            "executions": await gateway.executions(application),
            "may_execute": gateway.can(application, Permission.EXECUTE),
        }
        return render(request, who, "application.html", context)

    @router.post("/applications/{application}/pipelines/{name}/run")
    async def run_pipeline(
        request: Request, application: AppName, name: Annotated[str, Path(pattern=NAME_PATTERN)], who: CallerDep
    ) -> Response:
        form = await checked_form(request, who)
        parameters: dict[str, Any] = {}
        for key, value in form.items():
            if key.startswith("param.") and value != "":
                if len(value) > MAX_PARAMETER:
                    raise ApiError(422, "too_long", f"parameter {key[6:]} exceeds {MAX_PARAMETER} characters", key)
                parameters[key[6:]] = value
        started = await who.gateway.run_saved(application, name, parameters)
        return redirect(f"/console/executions/{_seg(started.id)}")

    @router.get("/executions/{execution_id}")
    async def execution(request: Request, execution_id: ExecutionId, who: CallerDep) -> Response:
        state = await who.gateway.execution(execution_id)  # checks READ
        return render(request, who, "execution.html", await _execution_context(who, state))

    @router.get("/executions/{execution_id}/live")
    async def execution_live(
        request: Request,
        execution_id: ExecutionId,
        who: CallerDep,
        since: Annotated[str | None, Query(max_length=64)] = None,
    ) -> Response:
        """The polled part of the execution page; 204 (htmx keeps what it shows) while nothing
        changed, so a half-typed judgment comment is not wiped by a refresh."""
        state = await who.gateway.execution(execution_id)
        if since is not None and since == fingerprint(state):
            return Response(status_code=204)
        return render(request, who, "_execution_live.html", await _execution_context(who, state))

    @router.post("/executions/{execution_id}/stages/{ref_id}/judgment")
    async def judge(request: Request, execution_id: ExecutionId, ref_id: RefId, who: CallerDep) -> Response:
        form = await checked_form(request, who)
        status = form.get("judgmentStatus", "")
        if status not in ("continue", "stop"):
            raise ApiError(422, "invalid_request", "judgmentStatus must be continue or stop", "judgmentStatus")
        option = form.get("input") or None
        comment = (form.get("comment") or "").strip() or None
        if comment is not None and len(comment) > MAX_COMMENT:
            raise ApiError(422, "too_long", f"comment exceeds {MAX_COMMENT} characters", "comment")
        state = await who.gateway.execution(execution_id)
        panel = await _judgment_panel(who, state, ref_id)
        if status == "continue" and panel is not None and panel.options and option is None:
            # Approving without a choice would skip every branch that tests the judgment.
            raise ApiError(
                422, "option_required", f"choose one of: {', '.join(panel.options)} (stage {ref_id})", "input"
            )
        await who.gateway.judge(execution_id, ref_id, status, option, comment)
        return redirect(f"/console/executions/{_seg(execution_id)}")

    @router.post("/executions/{execution_id}/cancel")
    async def cancel(request: Request, execution_id: ExecutionId, who: CallerDep) -> Response:
        form = await checked_form(request, who)
        reason = (form.get("reason") or "").strip()[:MAX_COMMENT] or "stopped from the console"
        await who.gateway.cancel(execution_id, reason)
        return redirect(f"/console/executions/{_seg(execution_id)}")

    return router


def _seg(value: str) -> str:
    return quote(value, safe="")


def fingerprint(state: ExecutionState) -> str:
    return hashlib.sha256(state.model_dump_json().encode()).hexdigest()[:32]


async def _judgment_panel(who: Caller, state: ExecutionState, ref_id: str) -> JudgmentPanel | None:
    stage_state = state.stage(ref_id)
    if stage_state is None or stage_state.type != "manualJudgment":
        return None
    try:
        stage = (await who.gateway.pipeline_of(state)).stage(ref_id)
    except KeyError:
        return None
    except Exception:  # an unreadable input (e.g. a payload key since removed) must not break the page
        log.warning("cannot read the pipeline of %s for its judgment panel", state.id, exc_info=True)
        stage = None
    if stage is None:
        gateway = who.gateway
        return JudgmentPanel(
            ref_id, "(instructions unavailable)", [], [], gateway.can(state.application, Permission.EXECUTE)
        )
    if not isinstance(stage, ManualJudgmentStage):
        return None
    gateway = who.gateway
    identity = gateway.access.identity
    allowed = not stage.approvers or gateway.is_admin() or bool(identity.principals() & set(stage.approvers))
    return JudgmentPanel(
        ref_id=ref_id,
        instructions=stage.instructions,
        options=stage.options(),
        approvers=list(stage.approvers),
        may_judge=allowed and gateway.can(state.application, Permission.EXECUTE),
    )


async def _execution_context(who: Caller, state: ExecutionState) -> dict[str, Any]:
    panels: dict[str, JudgmentPanel] = {}
    for stage in state.stages:
        if stage.waitingForJudgment and stage.judgment is None:
            panel = await _judgment_panel(who, state, stage.refId)
            if panel is not None:
                panels[stage.refId] = panel
    running = state.status not in FINISHED
    return {
        "state": state,
        "graph": graph.layout(state.stages),
        "panels": panels,
        "running": running,
        "fingerprint": fingerprint(state),
        "poll_seconds": POLL_SECONDS,
        "may_execute": who.gateway.can(state.application, Permission.EXECUTE),
        "StageStatus": StageStatus,
    }
