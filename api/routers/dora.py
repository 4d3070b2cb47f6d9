"""DORA figures of an application from its executions' history (GET /applications/{app}/dora)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import AccessDep, TemporalClientDep
from api.errors import ApiError
from api.policy import Permission
from api.routers.pipelines import AppName
from core.observability.dora import DoraReport, SinceInvalid, compute_dora, parse_since
from core.observability.dora_source import MAX_EXECUTIONS, collect_executions
from core.observability.metrics import publish_dora

router = APIRouter(tags=["applications"])


@router.get(
    "/applications/{application}/dora",
    response_model=DoraReport,
    summary="DORA metrics: deployment frequency, lead time, change failure rate, time to restore",
)
async def application_dora(
    application: AppName,
    client: TemporalClientDep,
    access: AccessDep,
    since: Annotated[str, Query(max_length=8, description="Window: 30d, 12h, 4w (1h..366d)")] = "30d",
    limit: Annotated[
        int, Query(ge=1, le=MAX_EXECUTIONS, description="Most executions to scan (newest first)")
    ] = MAX_EXECUTIONS,
) -> DoraReport:
    access.require(application, Permission.READ)
    try:
        window = parse_since(since)
    except SinceInvalid as exc:
        raise ApiError(422, "invalid_since", str(exc), "since") from None
    now = datetime.now(UTC)
    collected = await collect_executions(client, application, now - window, max_executions=limit)
    report = compute_dora(
        application,
        collected.records,
        since=since,
        now=now,
        truncated=collected.truncated,
        unreadable=collected.unreadable,
    )
    publish_dora(report)
    return report
