"""Health, readiness and the pipeline JSON Schema."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest

from api.auth import authenticate
from api.deps import StoreDep, TemporalClientDep
from workflows.model import pipeline_json_schema

router = APIRouter(tags=["meta"])
log = logging.getLogger("gennaker.api")


@router.get("/healthz", summary="The gateway process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Temporal and the store are reachable", responses={503: {"description": "Not ready"}})
async def readyz(client: TemporalClientDep, store: StoreDep) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(client.workflow_service.get_system_info(GetSystemInfoRequest()), timeout=3)
        checks["temporal"] = "ok"
    except Exception as exc:  # readiness reports any failure rather than raising it
        log.warning("readyz: Temporal unreachable: %s", exc)
        checks["temporal"] = "unreachable"  # no details: this endpoint needs no token
    try:
        await store.ping()
        checks["store"] = "ok"
    except Exception as exc:
        log.warning("readyz: store unreachable: %s", exc)
        checks["store"] = "unreachable"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503
    )


@router.get("/schema", summary="JSON Schema of a pipeline (every stage type)", dependencies=[Depends(authenticate)])
async def schema() -> dict[str, Any]:
    return pipeline_json_schema()
