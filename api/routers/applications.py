"""Applications: the names that own pipelines."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import AccessDep, StoreDep
from api.policy import Permission
from api.routers.pipelines import AppName
from api.schemas import Application, SavedPipelineRef

router = APIRouter(prefix="/applications", tags=["applications"])


@router.get("", response_model=list[Application], summary="Applications with saved pipelines")
async def list_applications(store: StoreDep, access: AccessDep) -> list[Application]:
    """Only the applications the caller may read."""
    return [
        Application(name=app, pipelines=[p.name for p in await store.list_pipelines(app)])
        for app in await store.list_applications()
        if access.can(app, Permission.READ)
    ]


@router.get("/{application}/pipelines", response_model=list[SavedPipelineRef], summary="Live pipelines of an app")
async def list_pipelines(application: AppName, store: StoreDep, access: AccessDep) -> list[SavedPipelineRef]:
    access.require(application, Permission.READ)
    return [
        SavedPipelineRef(
            application=p.application, name=p.name, revision=p.revision, author=p.author, createdAt=p.created_at
        )
        for p in await store.list_pipelines(application)
    ]
