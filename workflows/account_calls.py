"""One way for a stage to call an activity, above all one of an account's activities.

The worker that holds an account's credentials polls that account's task queue. `AccountCalls`
picks the queue, applies the typed options of the kind of call (`READ`, `WRITE`, `WAIT`: timeouts,
heartbeat, retry policy, a bounded wait for a worker to pick the task up) and turns every activity
error into the stage's failure or its cancellation the same way. A stage then writes only the call,
its summary for the Temporal UI and what it was doing, in words:

    calls = AccountCalls(ctx, "kubernetes", self.account, NON_RETRYABLE_MANIFEST)
    ref = await calls.call(Activities.patch_manifest, patch, WRITE, summary=..., doing=f"patching {ref}")

Tenancy: before scheduling anything, a call checks the execution's grants (activities/grants.py,
recorded at submission) for the account and, when the stage names it, the namespace; a refusal
fails the stage with a message naming the rule ("policy: application appa may not touch account
prod namespace appb-web; granted namespaces: appa-*"). The input of every call is stamped with the
application and its grant for the account (fields `application` and `grant`, when the input model
has them), so the worker checks each object it is about to touch against the same grant
(activities/kubernetes/ownership.py) — manifests name their namespaces only there. Registry inputs
(`grants`) get the whole grants: the worker checks the repository (activities/registry.py).

Failure messages name what was being done, to which object, in which account, and why; the runner
adds which stage (`stage 'deploy-prod' (deploy, type deploy) failed: …`). Messages carry names and
reasons only, never credentials.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, TemporalError, TimeoutError, TimeoutType, is_cancelled_exception
from temporalio.workflow import ActivityCancellationType, ActivityConfig

from activities.grants import ApplicationGrants
from workflows.account_model import kubernetes_task_queue, registry_task_queue
from workflows.errors import StageFailed
from workflows.readable import ReadableText

if TYPE_CHECKING:
    from workflows.context import StageContext

AccountKind = Literal["kubernetes", "registry"]
I = TypeVar("I")  # noqa: E741
R = TypeVar("R")

# A worker that serves the account picks a task up within milliseconds; after this long nobody
# will (a misspelt account, or no worker for it is running): the stage fails instead of waiting.
NO_WORKER_AFTER = timedelta(minutes=5)

# The display name of the stage whose task is running. The runner sets it at the start of each
# stage's task; asyncio tasks copy the context they are created in, so the helpers a stage calls
# (and the tasks it starts) see their stage without being told.
CURRENT_STAGE: ContextVar[str | None] = ContextVar("gennaker_current_stage", default=None)
# The running stage's `noWorkerTimeoutMs`, set by the runner the same way; None: NO_WORKER_AFTER.
NO_WORKER_LIMIT: ContextVar[timedelta | None] = ContextVar("gennaker_no_worker_limit", default=None)
# Userinfo and query strings of URLs (a webhook's status URL may carry a token) never reach the UI.
_URL_SECRETS = re.compile(r"(?P<scheme>\b[a-z][a-z0-9+.-]*://)[^/\s@]*@|\?[^\s)]*", re.IGNORECASE)


def stage_summary(summary: str) -> ReadableText:
    """The summary an activity or timer shows in the Temporal UI: `<stage> · <what it does>`.

    Stored in clear (core/codec.py): the words come from stage names, types and target objects,
    written by stage code; URLs lose their userinfo and query string."""
    text = _URL_SECRETS.sub(lambda m: m.group("scheme") or "?…", summary)
    stage = CURRENT_STAGE.get()
    return ReadableText(f"{stage} · {text}" if stage and not text.startswith(f"{stage} · ") else text)


@dataclass(frozen=True)
class CallProfile:
    """The options of one kind of call. `start_to_close` of a WAIT is the margin beyond the wait's
    own limit, which the activity enforces itself (it raises WaitTimedOut)."""

    name: str
    start_to_close: timedelta
    heartbeat: timedelta | None = None
    initial_interval: timedelta = timedelta(milliseconds=500)
    backoff: float = 2.0
    maximum_interval: timedelta = timedelta(seconds=10)
    maximum_attempts: int = 10

    def retry_policy(self, non_retryable: Sequence[str]) -> RetryPolicy:
        return RetryPolicy(
            initial_interval=self.initial_interval,
            backoff_coefficient=self.backoff,
            maximum_interval=self.maximum_interval,
            maximum_attempts=self.maximum_attempts,
            non_retryable_error_types=list(non_retryable),
        )

    def options(
        self,
        *,
        summary: str,
        non_retryable: Sequence[str] = (),
        wait: timedelta | None = None,
        task_queue: str | None = None,
        no_worker_after: timedelta | None = None,
        wait_cancellation: bool = False,
    ) -> ActivityConfig:
        config = ActivityConfig(
            summary=summary,
            start_to_close_timeout=self.start_to_close + (wait or timedelta(0)),
            retry_policy=self.retry_policy(non_retryable),
        )
        if self.heartbeat is not None:
            config["heartbeat_timeout"] = self.heartbeat
        if task_queue is not None:
            config["task_queue"] = task_queue
        if no_worker_after is not None:
            config["schedule_to_start_timeout"] = no_worker_after
        if wait_cancellation:
            # On cancel, wait until the activity has really stopped (a create that may have made
            # its object, a build or job being aborted) before the stage's cleanup runs.
            config["cancellation_type"] = ActivityCancellationType.WAIT_CANCELLATION_COMPLETED
        return config


# One request to the account's API (describe, list, resolve). No heartbeat: a short timeout is what
# lets a call that landed on a worker that died be retried elsewhere within seconds (issue 11).
READ = CallProfile("read", start_to_close=timedelta(seconds=10))
# One idempotent change (reserve a version, create, patch, upsert): the activity finds what an
# earlier attempt made, so a short timeout and a retry are safe.
WRITE = CallProfile("write", start_to_close=timedelta(seconds=20))
# A list of changes (apply or delete several objects), heartbeating once per object; an object's
# discovery and apply may take a while on a busy API server, hence the longer heartbeat.
BATCH = CallProfile("batch", start_to_close=timedelta(minutes=2), heartbeat=timedelta(seconds=30))
# Waiting for the account's objects (healthy, stable, gone, a job done): heartbeats at least every
# 5 s (activities/kubernetes/waiting.py), so a dead worker's attempt is retried after 10 s.
WAIT = CallProfile("wait", start_to_close=timedelta(seconds=60), heartbeat=timedelta(seconds=10))


def failure_reason(exc: BaseException) -> str:
    """The most specific message in a Temporal error chain (activity → application error)."""
    messages: list[str] = []
    current: BaseException | None = exc
    while current is not None:
        text = getattr(current, "message", None) or str(current)
        if text and text not in messages:
            messages.append(text)
        current = current.cause if isinstance(current, TemporalError) else current.__cause__
    return messages[-1] if messages else type(exc).__name__


def no_worker(exc: BaseException) -> bool:
    cause = exc.cause if isinstance(exc, ActivityError) else None
    return isinstance(cause, TimeoutError) and cause.type is TimeoutType.SCHEDULE_TO_START


def stage_failure(
    exc: ActivityError,
    doing: str,
    *,
    account: str | None = None,
    queue: str | None = None,
    summary: str | None = None,
    left: str = "",
    details: dict[str, Any] | None = None,
    no_worker_after: timedelta | None = None,
) -> BaseException:
    """The stage's failure for an activity error, or a cancellation when the stage was canceled.

    `doing` says what the stage was doing to which object ("patching Deployment web"), `account`
    names the account ("kubernetes account prod"), `left` what the failure leaves behind.
    """
    if is_cancelled_exception(exc):
        return asyncio.CancelledError()
    tail = f" {left}" if left else ""
    if no_worker(exc):
        waited = int((no_worker_after or NO_WORKER_AFTER).total_seconds())
        message = (
            f"no worker for {account or 'this stage'} has picked up '{summary or doing}' in {waited} s"
            f"{f' (task queue {queue})' if queue else ''}: is the account in a running worker's gennaker.yaml?"
        )
        return StageFailed(message + tail, details={**(details or {}), "kind": "noWorker"})
    where = f" in {account}" if account else ""
    reason = failure_reason(exc).rstrip(".")
    return StageFailed(f"{doing}{where} failed: {reason}.{tail}", details=details)


async def call_activity(
    method: Callable[[Any, I], R],
    arg: I,
    options: ActivityConfig,
    *,
    doing: str,
    account: str | None = None,
    left: str = "",
    details: dict[str, Any] | None = None,
) -> R:
    """Run one activity method; its errors become the stage's failure (see `stage_failure`)."""
    summary = options.get("summary")
    if summary:
        options = ActivityConfig(**{**options, "summary": stage_summary(summary)})
    try:
        return await workflow.execute_activity_method(method, arg, **options)
    except ActivityError as exc:
        raise stage_failure(
            exc,
            doing,
            account=account,
            queue=options.get("task_queue"),
            summary=options.get("summary"),
            left=left,
            details=details,
            no_worker_after=options.get("schedule_to_start_timeout"),
        ) from None


class AccountCalls:
    """Calls to one account's activities, on the task queue of the worker holding its credentials."""

    def __init__(
        self,
        ctx: StageContext,
        kind: AccountKind,
        account: str,
        non_retryable: Sequence[str],
        *,
        namespace: str | None = None,
        grants: ApplicationGrants | None = None,
    ) -> None:
        self.ctx = ctx
        self.kind = kind
        self.account = account
        self.non_retryable = list(non_retryable)
        self.queue = ctx.account_queue(kind, account)
        self.namespace = namespace
        # A stage acting for another application (`application:` on a deploy) passes that one's.
        self.grants = grants or ctx.grants

    def authorize(self) -> None:
        """Fail the stage (kind `policy`) if the grants do not cover this account and namespace."""
        refusal = self.grants.account_refusal(self.kind, self.account, self.namespace)
        if refusal is not None:
            raise StageFailed(f"{refusal}. Nothing was done.", details={"kind": "policy"})

    def stamped(self, arg: I) -> I:
        """`arg` with the application and its grant for this account, for the worker's own check."""
        if not isinstance(arg, BaseModel):
            return arg
        fields = type(arg).model_fields
        update: dict[str, Any] = {}
        if "application" in fields and not getattr(arg, "application", None):
            update["application"] = self.grants.application
        if "grant" in fields:
            update["grant"] = self.grants.account_grant(self.account)
        if "grants" in fields:  # registry inputs: the worker checks repositories (activities/registry.py)
            update["grants"] = self.grants
        return arg.model_copy(update=update) if update else arg

    @property
    def label(self) -> str:
        return f"{self.kind} account {self.account}"

    async def call(
        self,
        method: Callable[[Any, I], R],
        arg: I,
        profile: CallProfile,
        *,
        summary: str,
        doing: str,
        wait: timedelta | None = None,
        left: str = "",
        details: dict[str, Any] | None = None,
        wait_cancellation: bool = False,
    ) -> R:
        self.authorize()
        arg = self.stamped(arg)
        options = profile.options(
            summary=summary,
            non_retryable=self.non_retryable,
            wait=wait,
            task_queue=self.queue,
            no_worker_after=NO_WORKER_LIMIT.get() or NO_WORKER_AFTER,
            wait_cancellation=wait_cancellation,
        )
        return await call_activity(method, arg, options, doing=doing, account=self.label, left=left, details=details)


def account_queue(kind: AccountKind, account: str, known: dict[str, str]) -> str:
    """The task queue of the worker holding `account`: as the account directory reported it at
    start, else the default name (k8s-<name>, registry-<name>)."""
    queue = known.get(f"{kind}/{account}")
    if queue:
        return queue
    return kubernetes_task_queue(account) if kind == "kubernetes" else registry_task_queue(account)
