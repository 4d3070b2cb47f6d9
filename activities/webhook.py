"""HTTP calls for the webhook stage: one request, then (optionally) polling a status URL.

Both activities classify what they see so Temporal's retry policy does the right thing: 2xx is
success, 4xx is a non-retryable `WebhookRejected` (retrying cannot fix a bad request), 5xx, 429 and
connection errors are retryable `WebhookUnavailable`. Polling is a read, so a retried poll simply
polls again; the initial call carries `X-Gennaker-Delivery` (stable across retries) so receivers can
drop a duplicate when a retry follows a lost answer.

Every request, redirects included, goes through the worker's egress policy (`activities/egress.py`):
a tenant's URL cannot reach the Temporal frontend or UI, kubesim's admin API, the cloud metadata
service or anything else inward unless the operator allow-listed it. URLs in messages are redacted
(`redacted_url`): a query string may carry a token.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any, Literal
from urllib.parse import urljoin

import httpx
from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.egress import EGRESS_DENIED, EgressPolicy, guarded_client, redacted_text, redacted_url

NOT_RETRYABLE = ["WebhookRejected", "WebhookInvalidResponse", EGRESS_DENIED]
BODY_LIMIT = 4096

StatusUrlResolution = Literal["getMethod", "locationHeader", "webhookResponse"]
_PATH_PART = re.compile(r"""\.([A-Za-z_$][\w$-]*)|\[(\d+)\]|\[['"]([^'"]+)['"]\]""")


class JsonPathError(ValueError):
    pass


def json_path(data: Any, path: str) -> Any:
    """Evaluate the JSONPath subset Spinnaker webhooks use in practice: `$.a.b`, `$.a[0]`, `$['a-b']`.

    Raises JsonPathError when the path is malformed or leads nowhere.
    """
    text = path.strip()
    if not text.startswith("$"):
        text = "$." + text
    pos, value = 1, data
    while pos < len(text):
        match = _PATH_PART.match(text, pos)
        if match is None:
            raise JsonPathError(f"unsupported JSONPath {path!r} at {text[pos:]!r}")
        key, index, quoted = match.groups()
        try:
            value = value[int(index)] if index is not None else value[key if key is not None else quoted]
        except (KeyError, IndexError, TypeError):
            raise JsonPathError(f"{path} not found in the response") from None
        pos = match.end()
    return value


def body_excerpt(response: httpx.Response) -> tuple[Any, bool]:
    """The response body for stage outputs: parsed JSON when small enough, else truncated text."""
    text = response.text
    if len(text) <= BODY_LIMIT:
        try:
            return json.loads(text), False
        except ValueError:
            return text, False
    return text[:BODY_LIMIT], True


def _classify(response: httpx.Response, url: str, what: str, fail_fast: list[int], retry: list[int]) -> None:
    code = response.status_code
    if 200 <= code < 300:
        return
    excerpt = response.text[:300]
    retryable = code not in fail_fast and (code >= 500 or code in retry)
    raise ApplicationError(
        f"{what} {redacted_url(url)} answered HTTP {code}: {excerpt}",
        {"statusCode": code},
        type="WebhookUnavailable" if retryable else "WebhookRejected",
        non_retryable=not retryable,
    )


class WebhookCall(BaseModel):
    method: str = "POST"
    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    payload: Any = None
    deliveryId: str
    timeoutSeconds: float = 30
    failFastStatusCodes: list[int] = Field(default_factory=list)
    retryStatusCodes: list[int] = Field(default_factory=lambda: [429])
    statusUrlResolution: StatusUrlResolution | None = Field(default=None, description="Only when monitoring")
    statusUrlJsonPath: str | None = None


class WebhookResponse(BaseModel):
    statusCode: int
    body: Any = None
    bodyTruncated: bool = False
    statusUrl: str | None = None


class WebhookPoll(BaseModel):
    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    statusJsonPath: str
    progressJsonPath: str | None = None
    successStatuses: list[str]
    canceledStatuses: list[str] = Field(default_factory=list)
    terminalStatuses: list[str] = Field(default_factory=list)
    pollIntervalSeconds: float = 5
    timeoutSeconds: float = 30
    retryStatusCodes: list[int] = Field(default_factory=lambda: [429])


class WebhookPollResult(BaseModel):
    outcome: Literal["SUCCEEDED", "CANCELED", "TERMINAL"]
    status: str
    progressMessage: str | None = None
    statusCode: int
    body: Any = None
    bodyTruncated: bool = False
    polls: int


def _headers(given: dict[str, str]) -> dict[str, str]:
    return {"User-Agent": "gennaker-webhook", **given}


class WebhookActivities:
    """Built once per worker with its egress policy."""

    def __init__(self, egress: EgressPolicy | None = None) -> None:
        self._egress = egress or EgressPolicy()

    @activity.defn(name="call_webhook")
    def call_webhook(self, call: WebhookCall) -> WebhookResponse:
        headers = _headers(call.headers) | {"X-Gennaker-Delivery": call.deliveryId}
        body = None if call.payload is None else json.dumps(call.payload).encode()
        if body is not None:
            headers.setdefault("Content-Type", "application/json")
        shown = redacted_url(call.url)
        try:
            with guarded_client(self._egress, timeout=call.timeoutSeconds) as http:
                response = http.request(call.method, call.url, content=body, headers=headers)
        except httpx.TransportError as exc:
            raise ApplicationError(
                f"{call.method} {shown} failed: {type(exc).__name__}: {redacted_text(str(exc))}",
                type="WebhookUnavailable",
            ) from None
        _classify(response, call.url, call.method, call.failFastStatusCodes, call.retryStatusCodes)
        excerpt, truncated = body_excerpt(response)
        result = WebhookResponse(statusCode=response.status_code, body=excerpt, bodyTruncated=truncated)
        if call.statusUrlResolution == "getMethod":
            result.statusUrl = call.url
        elif call.statusUrlResolution == "locationHeader":
            location = response.headers.get("Location")
            if not location:
                raise ApplicationError(
                    f"{call.method} {shown} answered {response.status_code} without a Location header, "
                    "but statusUrlResolution is locationHeader",
                    type="WebhookInvalidResponse",
                    non_retryable=True,
                )
            result.statusUrl = urljoin(call.url, location)
        elif call.statusUrlResolution == "webhookResponse":
            try:
                result.statusUrl = urljoin(call.url, str(json_path(response.json(), str(call.statusUrlJsonPath))))
            except (ValueError, JsonPathError) as exc:
                raise ApplicationError(
                    f"{call.method} {shown}: no status URL at statusUrlJsonPath {call.statusUrlJsonPath}: {exc}",
                    type="WebhookInvalidResponse",
                    non_retryable=True,
                ) from None
        return result

    @activity.defn(name="poll_webhook_status")
    def poll_webhook_status(self, poll: WebhookPoll) -> WebhookPollResult:
        polls = int(activity.info().heartbeat_details[-1]["polls"]) if activity.info().heartbeat_details else 0
        outcomes: list[tuple[Literal["SUCCEEDED", "CANCELED", "TERMINAL"], set[str]]] = [
            ("SUCCEEDED", {s.lower() for s in poll.successStatuses}),
            ("CANCELED", {s.lower() for s in poll.canceledStatuses}),
            ("TERMINAL", {s.lower() for s in poll.terminalStatuses}),
        ]
        with guarded_client(self._egress, timeout=poll.timeoutSeconds) as http:
            while True:
                polls += 1
                try:
                    response = http.get(poll.url, headers=_headers(poll.headers))
                except httpx.TransportError as exc:
                    raise ApplicationError(
                        f"GET {redacted_url(poll.url)} failed: {type(exc).__name__}: {redacted_text(str(exc))}",
                        type="WebhookUnavailable",
                    ) from None
                _classify(response, poll.url, "status GET", [], poll.retryStatusCodes)
                status, progress = self._read_status(response, poll)
                for outcome, statuses in outcomes:
                    if status is not None and status.lower() in statuses:
                        excerpt, truncated = body_excerpt(response)
                        return WebhookPollResult(
                            outcome=outcome,
                            status=status,
                            progressMessage=progress,
                            statusCode=response.status_code,
                            body=excerpt,
                            bodyTruncated=truncated,
                            polls=polls,
                        )
                activity.heartbeat({"polls": polls, "status": status, "progress": progress})
                time.sleep(poll.pollIntervalSeconds)

    def _read_status(self, response: httpx.Response, poll: WebhookPoll) -> tuple[str | None, str | None]:
        try:
            data = response.json()
        except ValueError:
            return None, f"status response is not JSON: {response.text[:100]!r}"
        try:
            status = json_path(data, poll.statusJsonPath)
        except JsonPathError as exc:
            return None, str(exc)
        progress = None
        if poll.progressJsonPath:
            try:
                progress = str(json_path(data, poll.progressJsonPath))[:500]
            except JsonPathError:
                progress = None
        return str(status), progress
