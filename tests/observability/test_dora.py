"""DORA figures from execution states (pure computation; no servers)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.observability.dora import ExecutionRecord, SinceInvalid, compute_dora, parse_since
from workflows.state import (
    ExecutionState,
    ExecutionStatus,
    JudgmentRecord,
    StageError,
    StageState,
    StageStatus,
    TriggerInfo,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def at(hours_ago: float) -> datetime:
    return NOW - timedelta(hours=hours_ago)


def stage(ref: str, type_: str, status: StageStatus, start: float, end: float, **extra: Any) -> StageState:
    return StageState(refId=ref, name=ref, type=type_, status=status, startTime=at(start), endTime=at(end), **extra)


def execution(
    started: float, *stages: StageState, app: str = "shop", payload: dict[str, Any] | None = None
) -> ExecutionState:
    return ExecutionState(
        id=f"{app}.p.{started}",
        runId="r",
        application=app,
        pipeline="p",
        status=ExecutionStatus.SUCCEEDED,
        trigger=TriggerInfo(type="git", payload=payload or {}),
        parameters={},
        startTime=at(started),
        stages=list(stages),
    )


def deployed(account: str, start: float, end: float, **extra: Any) -> StageState:
    return stage("deploy", "deploy", StageStatus.SUCCEEDED, start, end, outputs={"account": account}, **extra)


def test_since_is_parsed_and_bounded() -> None:
    assert parse_since("30d") == timedelta(days=30)
    assert parse_since("12h") == timedelta(hours=12)
    assert parse_since("4w") == timedelta(weeks=4)
    for bad in ("", "30", "d30", "0d", "367d", "9999w", "1y", "30d; drop"):
        with pytest.raises(SinceInvalid):
            parse_since(bad)


def test_frequency_lead_time_failure_rate_and_restore_per_account() -> None:
    commit = at(50).isoformat()
    records = [
        # prod: good deploy (lead time from the commit: 50h - 47h = 3h), a failed one, then a good one.
        ExecutionRecord(execution(48, deployed("prod", 47.5, 47), payload={"committedAt": commit})),
        ExecutionRecord(
            execution(
                30,
                stage(
                    "deploy",
                    "deploy",
                    StageStatus.TERMINAL,
                    29.5,
                    29,
                    error=StageError(message="v001 never became healthy; rolled back", details={"rolledBack": True}),
                ),
            ),
            stage_accounts={"deploy": "prod"},  # a failed deploy has no outputs: the account comes from the input
        ),
        ExecutionRecord(execution(20, deployed("prod", 19.5, 19))),  # restores prod 10h after the failure
        # staging: one good deploy, later judged "rollback" in the same execution.
        ExecutionRecord(
            execution(
                10,
                deployed("staging", 9.9, 9.8),
                stage(
                    "verify",
                    "manualJudgment",
                    StageStatus.SUCCEEDED,
                    9.8,
                    9,
                    judgment=JudgmentRecord(judgmentStatus="continue", input="rollback", judgedAt=at(9), via="update"),
                ),
            )
        ),
        # Out of the window, and another application: neither counts.
        ExecutionRecord(execution(24 * 40, deployed("prod", 24 * 40, 24 * 40 - 1))),
        ExecutionRecord(execution(5, deployed("prod", 5, 4), app="other")),
    ]
    report = compute_dora("shop", records, since="7d", now=NOW)
    overall = report.overall
    assert (overall.deployments, overall.attempts, overall.failedChanges) == (3, 4, 2)
    assert overall.deploymentsPerDay == round(3 / 7, 4)
    assert overall.changeFailureRate == 0.5
    assert overall.leadTimeFromTrigger == 1
    prod = next(a for a in report.accounts if a.account == "prod")
    assert (prod.deployments, prod.attempts, prod.failedChanges, prod.changeFailureRate) == (2, 3, 1, 0.3333)
    assert prod.timeToRestoreSeconds == 10 * 3600
    # Lead times of good changes: 50h-47h = 3h (commit time) and 20h-19h = 1h (execution start).
    assert prod.leadTimeSeconds == 2 * 3600
    staging = next(a for a in report.accounts if a.account == "staging")
    assert (staging.deployments, staging.failedChanges, staging.unrestored) == (1, 1, 1)
    assert staging.timeToRestoreSeconds is None


def test_a_later_rollback_stage_marks_the_deploy_before_it_as_failed() -> None:
    records = [
        ExecutionRecord(execution(10, deployed("prod", 9.5, 9))),
        ExecutionRecord(
            execution(
                5,
                stage("undo", "undoRolloutManifest", StageStatus.SUCCEEDED, 5, 4.5, outputs={"account": "prod"}),
            )
        ),
        ExecutionRecord(execution(3, deployed("prod", 2.5, 2))),
    ]
    prod = compute_dora("shop", records, since="1d", now=NOW).accounts[0]
    assert (prod.deployments, prod.failedChanges, prod.changeFailureRate) == (2, 1, 0.5)
    assert prod.timeToRestoreSeconds == 2.5 * 3600  # from the rollback (4.5h ago) to the next good deploy (2h ago)


def test_no_deploys_gives_empty_figures_not_errors() -> None:
    report = compute_dora("shop", [ExecutionRecord(execution(1))], since="30d", now=NOW)
    assert report.overall.deployments == 0
    assert report.overall.changeFailureRate is None and report.overall.leadTimeSeconds is None
    assert report.accounts == []
