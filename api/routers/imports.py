"""POST /import/spinnaker: Spinnaker pipeline JSON in, Gennaker pipelines and the import report out
(the same translator as `gennaker import spinnaker`); `save` stores the valid ones as revisions when
the caller may WRITE their applications."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from temporalio.client import Client

from api.deps import Access, AccessDep, SettingsDep, StoreDep, TemporalClientDep
from api.errors import ApiError
from api.policy import Permission
from api.schemas import SavedPipelineRef
from api.settings import GatewaySettings
from core.pipelines import save_pipeline
from core.policy import Policy
from core.spinnaker import (
    MAX_BYTES,
    MAX_PIPELINES,
    ImportedPipeline,
    ImportOptions,
    ImportResult,
    SourceError,
    import_pipelines,
    pipelines_in,
)
from core.spinnaker.sources import parse_json
from core.store import AsyncPipelineStore
from core.tenancy import require_run_as, require_trigger_sources
from workflows.model import FieldError, PipelineInvalid, parse_pipeline

router = APIRouter(tags=["import"])


class SpinnakerImportRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "pipelines": {"application": "shop", "name": "Deploy", "stages": [{"refId": "1", "type": "wait"}]},
                "accountMap": {"my-k8s-v2": "prod"},
            }
        },
    )
    pipelines: dict[str, Any] | list[Any] = Field(
        description="One exported pipeline, or an array of them (`spin pipeline list`)"
    )
    application: str | None = Field(default=None, description="Use this application for every pipeline")
    accountMap: dict[str, str] = Field(default_factory=dict, description="Spinnaker account → Gennaker account")
    namespaceMap: dict[str, str] = Field(default_factory=dict, description="Namespace → namespace")
    save: bool = Field(default=False, description="Save the valid pipelines as new revisions (needs WRITE)")
    strict: bool = Field(default=False, description="422, and save nothing, if anything is untranslated")


class SpinnakerImportResponse(BaseModel):
    summary: dict[str, int] = Field(description="pipelines, imported, validated, untranslated_expressions")
    pipelines: list[ImportedPipeline]
    saved: list[SavedPipelineRef] = Field(default_factory=list)


def _parse_request(raw: bytes) -> SpinnakerImportRequest:
    try:
        data = parse_json(raw or b"null", "body")
        return SpinnakerImportRequest.model_validate(data)
    except SourceError as exc:
        raise ApiError(422, "invalid_body", str(exc), "body") from None
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in first["loc"]) or "body"
        raise ApiError(422, "invalid_body", f"{field}: {first['msg']}", field) from None


def _untranslated(result: ImportResult) -> list[FieldError]:
    errors = [
        FieldError(field=f"{p.source}: {item.path}", message=item.message)
        for p in result.pipelines
        for item in p.untranslated()
    ]
    errors += [FieldError(field=p.source, message=problem) for p in result.pipelines for problem in p.problems]
    return errors


@router.post(
    "/import/spinnaker",
    response_model=SpinnakerImportResponse,
    summary="Translate Spinnaker pipeline JSON (and optionally save it)",
    # The body limit is the gateway's BodyLimit middleware, with this route's own limit (api/app.py).
    description=f"Body at most {MAX_BYTES} bytes and {MAX_PIPELINES} pipelines (413 / 422 name the limit).",
)
async def import_spinnaker(
    request: Request,
    store: StoreDep,
    client: TemporalClientDep,
    settings: SettingsDep,
    access: AccessDep,
) -> SpinnakerImportResponse:
    body = _parse_request(await request.body())
    try:
        found = pipelines_in(body.pipelines, "pipelines")
        options = ImportOptions(
            application=body.application,
            account_map=body.accountMap,
            namespace_map=body.namespaceMap,
            strict=body.strict,
        )
        result = await asyncio.to_thread(import_pipelines, found, options)
    except SourceError as exc:
        raise ApiError(422, "invalid_body", str(exc), "pipelines") from None
    if body.strict and result.has_untranslated():
        raise PipelineInvalid(_untranslated(result))
    saved: list[SavedPipelineRef] = []
    if body.save:
        valid = [p.pipeline for p in result.pipelines if p.valid and p.pipeline is not None]
        for application in sorted({str(p["application"]) for p in valid}):
            access.require(application, Permission.WRITE)  # all checked before anything is stored
        if not settings.auth_disabled:
            for pipeline in valid:  # so is whom their triggered runs act as (runAsUser)
                spec = parse_pipeline(pipeline)
                require_run_as(spec, request.app.state.policy, access.identity)
                require_trigger_sources(spec, request.app.state.policy, access.identity)
        for pipeline in valid:
            saved.append(await _save(pipeline, store, client, settings, access, request.app.state.policy))
    return SpinnakerImportResponse(summary=result.summary(), pipelines=result.pipelines, saved=saved)


async def _save(
    pipeline: dict[str, Any],
    store: AsyncPipelineStore,
    client: Client,
    settings: GatewaySettings,
    access: Access,
    policy: Policy | None,
) -> SavedPipelineRef:
    """As PUT /applications/{app}/pipelines/{name} does (the same core service): a runAsUser
    (serviceAccount) with a right the caller lacks is refused the same way."""
    application, name, author = str(pipeline["application"]), str(pipeline["name"]), access.subject
    saver = None if settings.auth_disabled else access.identity
    revision, _ = await save_pipeline(
        client, settings, store, application, name, pipeline, author, policy=policy, saver=saver
    )
    return SavedPipelineRef(application=application, name=name, revision=revision, author=author)
