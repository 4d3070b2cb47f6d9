"""DORA's four keys computed from executions (their state as the workflow reports it).

- Deployment frequency: successful deploy stages per day in the window.
- Lead time for changes: from the change's time (the trigger's commit or image time when the trigger
  payload carries one, else the execution's start) to the deploy stage's end; median and p90.
- Change failure rate: failed changes / attempted deploys. A change failed when its deploy stage
  failed (rolled back or not), when a later stage of the same execution was a manual judgment
  answered "rollback", or when a rollback stage (e.g. Undo Rollout) later succeeded on the same
  account — in the same execution or a later one.
- Time to restore: from a failed change to the next successful deploy on the same account that did
  not fail itself; median. Failures not restored by the end of the window are counted as such.

Per application, overall and per account. Pure: no I/O, so it is tested without servers; reading
the executions from Temporal is core/observability/dora_source.py.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from workflows.observe.deploys import (
    DEPLOY_STAGE_TYPES,
    FAILED_STATUSES,
    ROLLBACK_STAGE_TYPES,
    is_rollback_judgment,
)
from workflows.state import ExecutionState, StageState

ALL_ACCOUNTS = "*"
# Trigger payload keys that may carry when the change was made (ISO 8601). A git push trigger can
# pass the head commit's timestamp, a registry event the image's push time.
CHANGE_TIME_KEYS = ("committedAt", "commitTimestamp", "pushedAt", "imageCreatedAt", "createdAt", "timestamp")
_SINCE = re.compile(r"^(?P<n>\d{1,4})(?P<unit>[hdw])$")
_UNIT = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
MAX_WINDOW = timedelta(days=366)


class SinceInvalid(ValueError):
    """A window the caller asked for that is malformed or too long; the message says which."""


def parse_since(text: str) -> timedelta:
    """`30d`, `12h`, `4w`: at least 1h, at most 366 days."""
    match = _SINCE.match(text.strip())
    if match is None:
        raise SinceInvalid(f"since must look like 30d, 12h or 4w (a number and h, d or w), got {text[:40]!r}")
    window = int(match["n"]) * _UNIT[match["unit"]]
    if window <= timedelta(0) or window > MAX_WINDOW:
        raise SinceInvalid(f"since must be between 1h and 366d, got {text}")
    return window


@dataclass(frozen=True)
class ExecutionRecord:
    """An execution's state plus what only its input knows: the account each stage targets."""

    state: ExecutionState
    stage_accounts: dict[str, str] = field(default_factory=dict)


@dataclass
class _Deploy:
    account: str
    finished: datetime
    succeeded: bool
    lead_time: float | None
    from_trigger: bool
    failed: bool = False
    failed_at: datetime | None = None


class DoraFigures(BaseModel):
    account: str = Field(description="An account, or * for all of the application's accounts")
    deployments: int = Field(description="Successful deploy stages in the window")
    attempts: int = Field(description="Deploy stages that finished (succeeded or failed)")
    failedChanges: int
    deploymentsPerDay: float
    leadTimeSeconds: float | None = Field(description="Median lead time for changes")
    leadTimeP90Seconds: float | None
    leadTimeFromTrigger: int = Field(description="Deploys whose lead time starts at a commit/image time")
    changeFailureRate: float | None = Field(description="failedChanges / attempts")
    timeToRestoreSeconds: float | None = Field(description="Median time from a failed change to the next good deploy")
    unrestored: int = Field(description="Failed changes with no good deploy after them yet")


class DoraReport(BaseModel):
    application: str
    since: str
    windowStart: datetime
    windowEnd: datetime
    executionsScanned: int
    truncated: bool = Field(description="More executions matched than were scanned (the newest were used)")
    unreadable: int = Field(default=0, description="Executions whose state could not be read")
    overall: DoraFigures
    accounts: list[DoraFigures]


def change_time(state: ExecutionState) -> tuple[datetime, bool]:
    """When the change started: a timestamp from the trigger payload, else the execution's start."""
    for key in CHANGE_TIME_KEYS:
        value = state.trigger.payload.get(key)
        when = _parse_time(value)
        if when is not None and when <= state.startTime:
            return when, True
    return state.startTime, False


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _account(stage: StageState, record: ExecutionRecord) -> str:
    found = stage.outputs.get("account") or record.stage_accounts.get(stage.refId)
    return str(found) if found else "unknown"


def _deploys(records: list[ExecutionRecord]) -> tuple[list[_Deploy], list[tuple[str, datetime]]]:
    """Finished deploys (with in-execution rollback judgments applied) and rollback stages (account, end)."""
    deploys: list[_Deploy] = []
    rollbacks: list[tuple[str, datetime]] = []
    for record in records:
        state = record.state
        started, from_trigger = change_time(state)
        ours: list[_Deploy] = []
        for stage in state.stages:
            if stage.endTime is None:
                continue
            status = stage.status.value
            if stage.type in DEPLOY_STAGE_TYPES and (status == "SUCCEEDED" or status in FAILED_STATUSES):
                ok = status == "SUCCEEDED"
                lead = (stage.endTime - started).total_seconds() if ok else None
                deploy = _Deploy(_account(stage, record), stage.endTime, ok, lead, from_trigger and ok)
                if not ok:
                    deploy.failed, deploy.failed_at = True, stage.endTime
                ours.append(deploy)
            elif stage.type in ROLLBACK_STAGE_TYPES and status == "SUCCEEDED":
                rollbacks.append((_account(stage, record), stage.endTime))
        for stage in state.stages:
            judged = stage.judgment
            if judged is None or not is_rollback_judgment(judged.input):
                continue
            for deploy in ours:
                if deploy.succeeded and not deploy.failed and deploy.finished <= judged.judgedAt:
                    deploy.failed, deploy.failed_at = True, judged.judgedAt
        deploys += ours
    return deploys, rollbacks


def _apply_rollbacks(deploys: list[_Deploy], rollbacks: list[tuple[str, datetime]]) -> None:
    """A rollback on an account marks the latest good deploy before it on that account as failed."""
    for account, when in rollbacks:
        earlier = [d for d in deploys if d.account == account and d.succeeded and d.finished <= when]
        if earlier:
            latest = max(earlier, key=lambda d: d.finished)
            if not latest.failed:
                latest.failed, latest.failed_at = True, when


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _figures(account: str, deploys: list[_Deploy], window: timedelta) -> DoraFigures:
    good = [d for d in deploys if d.succeeded]
    failed = [d for d in deploys if d.failed]
    leads = [d.lead_time for d in good if d.lead_time is not None and not d.failed]
    restores: list[float] = []
    unrestored = 0
    ordered = sorted(deploys, key=lambda d: d.finished)
    for failure in failed:
        assert failure.failed_at is not None
        after = [
            d
            for d in ordered
            if d.succeeded and not d.failed and d.account == failure.account and d.finished > failure.failed_at
        ]
        if after:
            restores.append((after[0].finished - failure.failed_at).total_seconds())
        else:
            unrestored += 1
    days = window.total_seconds() / 86400
    return DoraFigures(
        account=account,
        deployments=len(good),
        attempts=len(deploys),
        failedChanges=len(failed),
        deploymentsPerDay=round(len(good) / days, 4) if days else 0.0,
        leadTimeSeconds=statistics.median(leads) if leads else None,
        leadTimeP90Seconds=_percentile(leads, 0.9),
        leadTimeFromTrigger=sum(1 for d in good if d.from_trigger),
        changeFailureRate=round(len(failed) / len(deploys), 4) if deploys else None,
        timeToRestoreSeconds=statistics.median(restores) if restores else None,
        unrestored=unrestored,
    )


def compute_dora(
    application: str,
    records: list[ExecutionRecord],
    *,
    since: str,
    now: datetime,
    truncated: bool = False,
    unreadable: int = 0,
) -> DoraReport:
    window = parse_since(since)
    start = now - window
    deploys, rollbacks = _deploys([r for r in records if r.state.application == application])
    _apply_rollbacks(deploys, rollbacks)
    in_window = [d for d in deploys if start <= d.finished <= now]
    accounts = sorted({d.account for d in in_window})
    return DoraReport(
        application=application,
        since=since,
        windowStart=start,
        windowEnd=now,
        executionsScanned=len(records),
        truncated=truncated,
        unreadable=unreadable,
        overall=_figures(ALL_ACCOUNTS, in_window, window),
        accounts=[_figures(a, [d for d in in_window if d.account == a], window) for a in accounts],
    )
