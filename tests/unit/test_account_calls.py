"""The one account-activity path: call kinds, and how activity errors read as stage failures."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, TimeoutError, TimeoutType

from workflows.account_calls import (
    NO_WORKER_AFTER,
    READ,
    WAIT,
    WRITE,
    account_queue,
    stage_failure,
)
from workflows.errors import StageFailed


def activity_error(cause: BaseException) -> ActivityError:
    error = ActivityError(
        "activity error",
        scheduled_event_id=5,
        started_event_id=6,
        identity="worker",
        activity_type="describeCluster",
        activity_id="1",
        retry_state=None,
    )
    error.__cause__ = cause
    return error


def test_a_failure_names_what_which_account_why_and_what_is_left() -> None:
    cause = ApplicationError("account prod: 403 Forbidden: cannot patch deployments", type="Forbidden")
    failure = stage_failure(
        activity_error(cause), "patching Deployment web", account="kubernetes account prod", left="Nothing was changed."
    )
    assert isinstance(failure, StageFailed)
    assert failure.message == (
        "patching Deployment web in kubernetes account prod failed: "
        "account prod: 403 Forbidden: cannot patch deployments. Nothing was changed."
    )


def test_an_account_without_a_worker_fails_after_a_bounded_wait_saying_so() -> None:
    timeout = TimeoutError("activity timeout", type=TimeoutType.SCHEDULE_TO_START, last_heartbeat_details=[])
    failure = stage_failure(
        activity_error(timeout),
        "reading cluster shop",
        account="kubernetes account prdo",
        queue="k8s-prdo",
        summary="Describe cluster shop (prdo/default)",
        no_worker_after=NO_WORKER_AFTER,
    )
    assert isinstance(failure, StageFailed)
    assert failure.message.startswith(
        "no worker for kubernetes account prdo has picked up 'Describe cluster shop (prdo/default)' in 300 s"
    )
    assert "k8s-prdo" in failure.message and failure.details["kind"] == "noWorker"


def test_a_canceled_activity_stays_a_cancellation() -> None:
    failure = stage_failure(activity_error(CancelledError("canceled")), "waiting for web", account="x")
    assert isinstance(failure, asyncio.CancelledError)


def test_every_account_call_has_a_bounded_wait_for_a_worker_and_short_calls_recover_fast() -> None:
    for profile in (READ, WRITE):
        options = profile.options(summary="s", task_queue="k8s-a", no_worker_after=NO_WORKER_AFTER)
        assert options["schedule_to_start_timeout"] == NO_WORKER_AFTER
        # A short call on a worker that crashed is retried elsewhere within seconds (issue 11).
        assert options["start_to_close_timeout"] <= timedelta(seconds=20)
    waiting = WAIT.options(summary="s", wait=timedelta(seconds=600), non_retryable=["WaitTimedOut"])
    assert waiting["heartbeat_timeout"] == timedelta(seconds=10)
    assert waiting["start_to_close_timeout"] == timedelta(seconds=660)
    assert waiting["retry_policy"].non_retryable_error_types == ["WaitTimedOut"]


def test_the_queue_comes_from_the_directory_else_the_default_name() -> None:
    assert account_queue("kubernetes", "prod", {"kubernetes/prod": "k8s-prod-eu"}) == "k8s-prod-eu"
    assert account_queue("kubernetes", "prod", {}) == "k8s-prod"
    assert account_queue("registry", "local", {}) == "registry-local"
