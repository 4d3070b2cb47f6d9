"""Webhook stage: call an HTTP endpoint and, optionally, poll a status URL until it says done."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.workflow import ActivityConfig

from workflows.account_calls import call_activity
from workflows.context import StageContext
from workflows.stages.base import StageConfig, StageFailed
from workflows.stages.registry import register_stage

with workflow.unsafe.imports_passed_through():
    from activities.egress import redacted_url
    from activities.webhook import (
        NOT_RETRYABLE,
        WebhookActivities,
        WebhookCall,
        WebhookPoll,
        WebhookPollResult,
        WebhookResponse,
    )
    from activities.webhook_paths import JsonPathError, compile_path

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]


def _statuses(value: Any) -> Any:
    # Spinnaker stores these as comma-separated strings ("SUCCESS,DONE"); lists are accepted too.
    if isinstance(value, str):
        return [s.strip() for s in value.split(",") if s.strip()]
    return value


@register_stage
class WebhookStage(StageConfig):
    """Spinnaker's Webhook stage. 2xx passes, 4xx fails at once, 5xx/429/connection errors are retried
    with backoff (`maxRetries`). With `waitForCompletion` the stage then polls a status URL (the same
    URL, the `Location` header, or a URL found in the response body) until `statusJsonPath` reads one
    of the success, canceled or terminal statuses."""

    type: Literal["webhook"] = "webhook"
    url: str = Field(min_length=1, pattern=r"^https?://")
    method: Method = "POST"
    customHeaders: dict[str, str | list[str]] = Field(
        default_factory=dict, description="Request headers; they are stored in history, so no tokens"
    )
    payload: Any = Field(default=None, description="JSON body")
    failFastStatusCodes: list[int] = Field(default_factory=list, description="Fail at once on these, even 5xx")
    retryStatusCodes: list[int] = Field(default_factory=lambda: [429], description="Retry these 4xx codes")
    maxRetries: int = Field(default=5, ge=0, le=50)
    requestTimeoutSeconds: float = Field(default=30, gt=0, le=600)
    waitForCompletion: bool = False
    statusUrlResolution: Literal["getMethod", "locationHeader", "webhookResponse"] = "getMethod"
    statusUrlJsonPath: str | None = Field(default=None, description="With webhookResponse: where the URL is")
    statusJsonPath: str | None = Field(default=None, description="Where the status is in the status response")
    progressJsonPath: str | None = None
    successStatuses: list[str] = Field(default_factory=list)
    canceledStatuses: list[str] = Field(default_factory=list)
    terminalStatuses: list[str] = Field(default_factory=list)
    pollIntervalSeconds: float = Field(default=5, gt=0, le=600)
    monitorTimeoutMs: int = Field(default=24 * 3600 * 1000, gt=0, description="Give up polling after this")

    @field_validator("successStatuses", "canceledStatuses", "terminalStatuses", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return _statuses(value)

    @field_validator("statusUrlJsonPath", "statusJsonPath", "progressJsonPath")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        # Refused at submission (422 naming the field), not on the first poll. A path built by an
        # expression is only known at run time; the activity checks it then, as strictly.
        if value is not None and "${{" not in value:
            try:
                compile_path(value)
            except JsonPathError as exc:
                raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _monitoring(self) -> WebhookStage:
        if self.waitForCompletion:
            if not self.statusJsonPath or not self.successStatuses:
                raise ValueError("waitForCompletion needs statusJsonPath and successStatuses")
            if self.statusUrlResolution == "webhookResponse" and not self.statusUrlJsonPath:
                raise ValueError("statusUrlResolution webhookResponse needs statusUrlJsonPath")
        return self

    def summary(self) -> str:
        # Summaries, details and failure messages show the URL without its query: it may hold a token.
        return f"{self.method} {redacted_url(self.url)}"

    def _headers(self) -> dict[str, str]:
        return {k: ", ".join(v) if isinstance(v, list) else v for k, v in self.customHeaders.items()}

    async def run(self, ctx: StageContext) -> dict[str, Any]:
        ctx.set_details(self.summary())
        call = WebhookCall(
            method=self.method,
            url=self.url,
            headers=self._headers(),
            payload=self.payload,
            deliveryId=f"{ctx.execution_id}/{ctx.execution.runId}/{self.refId}",
            timeoutSeconds=self.requestTimeoutSeconds,
            failFastStatusCodes=self.failFastStatusCodes,
            retryStatusCodes=self.retryStatusCodes,
            statusUrlResolution=self.statusUrlResolution if self.waitForCompletion else None,
            statusUrlJsonPath=self.statusUrlJsonPath,
        )
        response: WebhookResponse = await call_activity(
            WebhookActivities.call_webhook,
            call,
            ActivityConfig(
                summary=self.summary(),
                start_to_close_timeout=timedelta(seconds=self.requestTimeoutSeconds + 5),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=1),
                    backoff_coefficient=2.0,
                    maximum_interval=timedelta(seconds=30),
                    maximum_attempts=self.maxRetries + 1,
                    non_retryable_error_types=NOT_RETRYABLE,
                ),
            ),
            doing=f"webhook {self.summary()}",
        )
        webhook: dict[str, Any] = response.model_dump(mode="json", exclude_none=True, exclude={"statusUrlSealed"})
        if not self.waitForCompletion:
            return {"webhook": webhook, "status": "SUCCEEDED"}
        assert response.statusUrl is not None and self.statusJsonPath is not None
        # Shown with the request's secrets as *** (activities/webhook_redaction.py); polled sealed.
        status_url = redacted_url(response.statusUrl)
        ctx.set_details(f"waiting for {status_url}")
        poll = WebhookPoll(
            url=response.statusUrlSealed or response.statusUrl,
            requestUrl=self.url,
            headers=self._headers(),
            statusJsonPath=self.statusJsonPath,
            progressJsonPath=self.progressJsonPath,
            successStatuses=self.successStatuses,
            canceledStatuses=self.canceledStatuses,
            terminalStatuses=self.terminalStatuses,
            pollIntervalSeconds=self.pollIntervalSeconds,
            timeoutSeconds=self.requestTimeoutSeconds,
            retryStatusCodes=self.retryStatusCodes,
        )
        ctx.stage.outputs = {"webhook": webhook}  # kept if polling fails
        monitor: WebhookPollResult = await call_activity(
            WebhookActivities.poll_webhook_status,
            poll,
            ActivityConfig(
                summary=f"Poll {status_url}",
                start_to_close_timeout=timedelta(milliseconds=self.monitorTimeoutMs),
                heartbeat_timeout=timedelta(
                    seconds=max(30.0, 3 * self.pollIntervalSeconds + self.requestTimeoutSeconds)
                ),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=1),
                    backoff_coefficient=2.0,
                    maximum_interval=timedelta(seconds=60),
                    maximum_attempts=20,
                    non_retryable_error_types=NOT_RETRYABLE,
                ),
            ),
            doing=f"polling webhook status {status_url}",
        )
        webhook["monitor"] = monitor.model_dump(mode="json", exclude_none=True)
        outputs = {"webhook": webhook, "status": monitor.status}
        if monitor.outcome != "SUCCEEDED":
            ctx.stage.outputs = outputs
            kind = "canceled" if monitor.outcome == "CANCELED" else "failure"
            progress = f" ({monitor.progressMessage})" if monitor.progressMessage else ""
            raise StageFailed(
                f"webhook {redacted_url(self.url)}: status {monitor.status!r} at {status_url} is "
                f"{monitor.outcome.lower()}{progress}",
                details={"kind": kind, "status": monitor.status},
            )
        return outputs
