"""What the pipeline workflow decides about notifications: the events, the request that crosses
Temporal to the notification worker, and `notifications_for`, the pure choice of who hears about an
event. Pure models and functions (the workflow runs them); the worker-side channel settings live in
activities/notify/model.py."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field
from temporalio.common import RetryPolicy
from temporalio.workflow import ActivityConfig

ChannelType = Literal["email", "slack", "sms", "webhook"]

EVENTS = (
    "pipeline.starting",
    "pipeline.complete",
    "pipeline.failed",
    "stage.starting",
    "stage.complete",
    "stage.failed",
    "judgment.waiting",
    "judgment.approved",
    "judgment.rejected",
)
# Spinnaker's names for the manual judgment events, accepted in `when` so pipelines can be brought over.
EVENT_ALIASES = {
    "manualJudgment": "judgment.waiting",
    "manualJudgmentContinue": "judgment.approved",
    "manualJudgmentStop": "judgment.rejected",
}
NOT_RETRYABLE = ["NotificationNotConfigured", "NotificationRejected"]

# Retried briefly: a notification that cannot get through in about half a minute is recorded as
# failed by the caller rather than holding anything up. Pass these with `summary=req.summary()`
# (spreading NOTIFY_ACTIVITY next to an explicit summary= does not type-check).
NOTIFY_TIMEOUT = timedelta(seconds=30)
NOTIFY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=20),
    maximum_attempts=4,
    non_retryable_error_types=NOT_RETRYABLE,
)
NOTIFY_ACTIVITY = ActivityConfig(start_to_close_timeout=NOTIFY_TIMEOUT, retry_policy=NOTIFY_RETRY)


# ---- what crosses Temporal ----------------------------------------------------------------------


class JudgmentInfo(BaseModel):
    instructions: str | None = None
    options: list[str] = Field(default_factory=list)
    judgmentStatus: str | None = None
    input: str | None = None
    comment: str | None = None
    user: str | None = None


class NotificationRequest(BaseModel):
    """One message to one address. Never carries credentials."""

    channel: ChannelType
    address: str
    event: str = Field(description="e.g. pipeline.complete, stage.failed, judgment.waiting")
    notificationId: str = Field(description="Stable across retries: execution, event, stage, address")
    executionId: str
    runId: str | None = None
    application: str
    pipeline: str
    status: str | None = Field(default=None, description="Execution or stage status")
    stage: str | None = Field(default=None, description="refId, for stage and judgment events")
    stageName: str | None = None
    reason: str | None = Field(default=None, description="Why it failed")
    judgment: JudgmentInfo | None = None
    message: str | None = Field(default=None, description="Custom text from the notification's `message`")

    def summary(self) -> str:
        return f"Notify {self.channel} {self.address}: {self.event}"

    def title(self) -> str:
        what = f"{self.application}/{self.pipeline}"
        if self.stage:
            what += f" stage {self.stageName or self.stage}"
        verb = {
            "pipeline.starting": "is starting",
            "pipeline.complete": "succeeded",
            "pipeline.failed": "failed",
            "stage.starting": "is starting",
            "stage.complete": "succeeded",
            "stage.failed": "failed",
            "judgment.waiting": "is waiting for a judgment",
            "judgment.approved": "was approved",
            "judgment.rejected": "was stopped",
        }.get(self.event, self.event)
        return f"{what} {verb}"

    def text(self) -> str:
        lines = [self.message or self.title()]
        if self.reason:
            lines.append(f"Reason: {self.reason}")
        if self.judgment is not None:
            j = self.judgment
            if j.instructions:
                lines.append(f"Instructions: {j.instructions}")
            if j.options:
                lines.append(f"Options: {', '.join(j.options)}")
            if j.user or j.input:
                lines.append(f"Judged {j.judgmentStatus or ''} {j.input or ''} by {j.user or 'unknown'}".strip())
            if j.comment:
                lines.append(f"Comment: {j.comment}")
        lines.append(f"Execution: {self.executionId}" + (f" ({self.status})" if self.status else ""))
        return "\n".join(lines)


class NotificationResult(BaseModel):
    channel: ChannelType
    address: str
    event: str
    delivered: bool
    detail: str = Field(description="What the service answered, e.g. 'slack 200 ok', 'twilio SM… queued'")


# ---- choosing who hears about an event (pure; runs inside the workflow) --------------------------


class NotificationSpec(Protocol):
    """PipelineNotification / StageNotification (workflows/model.py, workflows/stages/base.py)."""

    @property
    def type(self) -> ChannelType: ...
    @property
    def address(self) -> str: ...
    @property
    def when(self) -> list[str]: ...
    @property
    def message(self) -> dict[str, Any]: ...


class ExecutionLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def runId(self) -> str: ...
    @property
    def application(self) -> str: ...
    @property
    def pipeline(self) -> str: ...
    @property
    def status(self) -> object: ...
    @property
    def failure(self) -> str | None: ...


class JudgmentLike(Protocol):
    @property
    def judgmentStatus(self) -> str: ...
    @property
    def input(self) -> str | None: ...
    @property
    def comment(self) -> str | None: ...
    @property
    def user(self) -> str | None: ...


class StageErrorLike(Protocol):
    @property
    def message(self) -> str: ...


class StageLike(Protocol):
    @property
    def refId(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def status(self) -> object: ...
    @property
    def error(self) -> StageErrorLike | None: ...
    @property
    def judgment(self) -> JudgmentLike | None: ...


def normalize_event(name: str) -> str:
    return EVENT_ALIASES.get(name, name)


def _custom_text(message: dict[str, Any], event: str) -> str | None:
    # Spinnaker's shape: message: {"pipeline.failed": {"text": "..."}}; a plain string is accepted too.
    for key, value in message.items():
        if normalize_event(key) == event:
            text = value.get("text") if isinstance(value, dict) else value
            return str(text) if text else None
    return None


def notifications_for(
    event: str,
    pipeline_notifications: Iterable[NotificationSpec],
    stage_notifications: Iterable[NotificationSpec] = (),
    *,
    execution: ExecutionLike,
    stage: StageLike | None = None,
    instructions: str | None = None,
    options: Sequence[str] = (),
    sequence: int = 0,
    render: Callable[[str], str] | None = None,
) -> list[NotificationRequest]:
    """The messages to send for `event`: every notification whose `when` names it (Spinnaker's
    manualJudgment* names count), the stage's after the pipeline's, one per (channel, address).

    Pass stage notifications only for stages with `sendNotifications: true`. `sequence` tells
    repeated sends of one event apart (judgment reminders) so their ids differ. `render` may
    evaluate expressions in custom message text; its errors are the caller's to handle.
    """
    event = normalize_event(event)
    status = getattr(stage.status if stage else execution.status, "value", None)
    reason = None
    if event.endswith(".failed") or event == "judgment.rejected":
        reason = (stage.error.message if stage and stage.error else None) or execution.failure
    judgment = None
    if event.startswith("judgment.") and stage is not None:
        record = stage.judgment
        judgment = JudgmentInfo(
            instructions=instructions,
            options=list(options),
            judgmentStatus=record.judgmentStatus if record else None,
            input=record.input if record else None,
            comment=record.comment if record else None,
            user=record.user if record else None,
        )
    seen: set[tuple[str, str]] = set()
    requests: list[NotificationRequest] = []
    for spec in [*pipeline_notifications, *stage_notifications]:
        key = (spec.type, spec.address)
        if event not in {normalize_event(w) for w in spec.when} or key in seen:
            continue
        seen.add(key)
        text = _custom_text(spec.message, event)
        scope = stage.refId if stage else "-"
        requests.append(
            NotificationRequest(
                channel=spec.type,
                address=spec.address,
                event=event,
                notificationId=f"{execution.id}/{execution.runId}/{event}/{scope}/{spec.type}:{spec.address}/{sequence}",
                executionId=execution.id,
                runId=execution.runId,
                application=execution.application,
                pipeline=execution.pipeline,
                status=str(status) if status is not None else str(execution.status),
                stage=stage.refId if stage else None,
                stageName=stage.name if stage else None,
                reason=reason,
                judgment=judgment,
                message=render(text) if text and render else text,
            )
        )
    return requests
