"""The cluster view of an application (with its actions) and the accounts page."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import ValidationError

from api.console.actions import ACTIONS, ServerGroupAction, action_pipeline
from api.console.services import ClustersResponse, Permission
from api.console.web import Caller, ConsoleRoute, caller, checked_form, redirect, render
from api.errors import ApiError
from workflows.model import NAME_PATTERN

CallerDep = Annotated[Caller, Depends(caller)]
AppName = Annotated[str, Path(pattern=NAME_PATTERN)]


def clusters_router() -> APIRouter:
    router = APIRouter(route_class=ConsoleRoute)

    @router.get("/applications/{application}/clusters")
    async def cluster_view(request: Request, application: AppName, who: CallerDep) -> Response:
        found = await who.gateway.clusters(application)  # checks READ
        context = {
            "application": application,
            "clusters": _by_account(found),
            "errors": found.errors,
            "may_execute": who.gateway.can(application, Permission.EXECUTE),
        }
        return render(request, who, "clusters.html", context)

    @router.post("/applications/{application}/clusters/{action}")
    async def cluster_action(request: Request, application: AppName, action: str, who: CallerDep) -> Response:
        if action not in ACTIONS:
            raise ApiError(404, "not_found", f"no cluster action {action[:40]!r}; actions: {', '.join(ACTIONS)}")
        form = await checked_form(request, who)
        try:
            target = ServerGroupAction.model_validate(form)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "form"
            raise ApiError(422, "invalid_request", f"{field}: {first['msg']}", field) from None
        if action == "destroy" and form.get("confirm") != target.serverGroup:
            raise ApiError(422, "not_confirmed", f"type {target.serverGroup} to confirm its destruction", "confirm")
        started = await who.gateway.run_inline(action_pipeline(application, action, target))  # checks EXECUTE
        return redirect(f"/console/executions/{quote(started.id, safe='')}")

    @router.get("/accounts")
    async def accounts(request: Request, who: CallerDep) -> Response:
        return render(request, who, "accounts.html", {"accounts": await who.gateway.accounts()})

    return router


def _by_account(found: ClustersResponse) -> list[dict[str, Any]]:
    """Clusters grouped as the page shows them: account, then namespace, then cluster; each
    cluster's server groups newest first, with the older ones a rollback could restore."""
    grouped: dict[tuple[str, str], list[Any]] = {}
    for cluster in found.clusters:
        grouped.setdefault((cluster.account, cluster.namespace), []).append(cluster)
    sections = []
    for (account, namespace), clusters in sorted(grouped.items()):
        views = []
        for cluster in sorted(clusters, key=lambda c: c.name):
            oldest_first = list(cluster.serverGroups)
            views.append(
                {
                    "name": cluster.name,
                    "simulated": cluster.simulated,
                    "groups": list(reversed(oldest_first)),
                    "restorable": {
                        g.name: [older.name for older in reversed(oldest_first[:i])] for i, g in enumerate(oldest_first)
                    },
                }
            )
        sections.append({"account": account, "namespace": namespace, "clusters": views})
    return sections
