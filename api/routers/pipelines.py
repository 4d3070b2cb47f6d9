"""Saved pipelines (front50): each save is an immutable revision; start executions from them."""

from __future__ import annotations

from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Header, Path, Query, Request, Response

from api.deps import AccessDep, SettingsDep, StoreDep, TemporalClientDep
from api.errors import ApiError, not_found
from api.limits import load_json
from api.policy import Permission
from api.schemas import EXAMPLE_PIPELINE, ExecutionStarted, SavedExecutionRequest, SavedPipeline, SavedPipelineRef
from core import pipelines
from core.store import PipelineRevision
from workflows.model import NAME_PATTERN, load_pipeline_text
from workflows.state import TriggerInfo

router = APIRouter(tags=["pipelines"])

MAX_REVISION = 2**31 - 1  # larger numbers cannot be revisions (and overflow SQL integers)
AppName = Annotated[str, Path(pattern=NAME_PATTERN, description="Application name")]
PipelineName = Annotated[str, Path(pattern=NAME_PATTERN, description="Pipeline name")]

PIPELINE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"type": "object"}, "example": EXAMPLE_PIPELINE},
            "application/yaml": {"schema": {"type": "object"}},
        },
        "description": "A pipeline, JSON or YAML (schema: GET /schema)",
    }
}


async def _read_pipeline_body(request: Request) -> dict[str, Any]:
    """JSON or YAML; the body's size is bounded by the BodyLimit middleware, YAML's aliases, nodes and
    depth by its loader, JSON's depth by load_json (each refusal names its limit)."""
    raw = await request.body()
    content_type = request.headers.get("content-type", "application/json")
    if "yaml" not in content_type:
        data = load_json(raw, "body")
        if not isinstance(data, dict):
            raise ApiError(422, "invalid_body", "request body must be a pipeline object", "body")
        return data
    try:
        data = load_pipeline_text(raw)
    except (ValueError, yaml.YAMLError) as exc:
        raise ApiError(
            422,
            "invalid_body",
            f"request body is not valid {'YAML' if 'yaml' in content_type else 'JSON'}: {exc}",
            "body",
        ) from None
    if not isinstance(data, dict):
        raise ApiError(422, "invalid_body", "request body must be a pipeline object", "body")
    return data


def _saved(rev: PipelineRevision) -> SavedPipeline:
    return SavedPipeline(
        application=rev.application,
        name=rev.name,
        revision=rev.revision,
        author=rev.author,
        createdAt=rev.created_at,
        config=rev.config,
    )


@router.put(
    "/applications/{application}/pipelines/{name}",
    response_model=SavedPipelineRef,
    summary="Save a pipeline (new revision)",
    openapi_extra=PIPELINE_BODY,
)
async def save_pipeline(
    application: AppName,
    name: PipelineName,
    request: Request,
    store: StoreDep,
    client: TemporalClientDep,
    settings: SettingsDep,
    access: AccessDep,
    response: Response,
) -> SavedPipelineRef:
    access.require(application, Permission.WRITE)
    caller = access.subject
    data = await _read_pipeline_body(request)
    revision, created = await pipelines.save_pipeline(
        client,
        settings,
        store,
        application,
        name,
        data,
        caller,
        policy=request.app.state.policy,
        saver=None if settings.auth_disabled else access.identity,
    )
    response.status_code = 201 if created else 200
    return SavedPipelineRef(application=application, name=name, revision=revision, author=caller)


@router.get("/applications/{application}/pipelines/{name}", response_model=SavedPipeline, summary="A saved pipeline")
async def get_pipeline(
    application: AppName,
    name: PipelineName,
    store: StoreDep,
    access: AccessDep,
    revision: Annotated[int | None, Query(ge=1, le=MAX_REVISION, description="Default: latest")] = None,
) -> SavedPipeline:
    access.require(application, Permission.READ)
    found = await store.get(application, name, revision)
    if found is None:
        which = f" revision {revision}" if revision else ""
        raise not_found(f"pipeline {application}/{name}{which}")
    return _saved(found)


@router.get(
    "/applications/{application}/pipelines/{name}/revisions",
    response_model=list[SavedPipelineRef],
    summary="Every revision, deletions included",
)
async def pipeline_revisions(
    application: AppName, name: PipelineName, store: StoreDep, access: AccessDep
) -> list[SavedPipelineRef]:
    access.require(application, Permission.READ)
    revisions = await store.revisions(application, name)
    if not revisions:
        raise not_found(f"pipeline {application}/{name}")
    return [
        SavedPipelineRef(
            application=r.application,
            name=r.name,
            revision=r.revision,
            deleted=r.deleted,
            author=r.author,
            createdAt=r.created_at,
        )
        for r in revisions
    ]


@router.delete(
    "/applications/{application}/pipelines/{name}",
    response_model=SavedPipelineRef,
    summary="Delete (a tombstone revision; history stays)",
)
async def delete_pipeline(
    application: AppName, name: PipelineName, store: StoreDep, client: TemporalClientDep, access: AccessDep
) -> SavedPipelineRef:
    access.require(application, Permission.WRITE)
    caller = access.subject
    revision = await pipelines.delete_pipeline(client, store, application, name, caller)
    return SavedPipelineRef(application=application, name=name, revision=revision, deleted=True, author=caller)


@router.post(
    "/pipelines/{application}/{name}",
    status_code=202,
    response_model=ExecutionStarted,
    summary="Run a saved pipeline",
    tags=["executions"],
)
async def run_saved_pipeline(
    application: AppName,
    name: PipelineName,
    client: TemporalClientDep,
    store: StoreDep,
    settings: SettingsDep,
    access: AccessDep,
    response: Response,
    body: SavedExecutionRequest | None = None,
    idempotency_key: Annotated[str | None, Header(description="Retries with the same key start nothing new")] = None,
) -> ExecutionStarted:
    access.require(application, Permission.EXECUTE)
    body = body or SavedExecutionRequest()
    started = await pipelines.run_saved_pipeline(
        client,
        settings,
        store,
        application,
        name,
        body.parameters,
        TriggerInfo(type="manual", user=access.subject, artifacts=body.artifacts),
        revision=body.revision,
        idempotency_key=idempotency_key,
        **access.launch_as(),
    )
    response.headers["Location"] = started.links.self
    return started
