"""HTTP calls for the webhook stage: one request, then (optionally) polling a status URL.

Both activities classify what they see so Temporal's retry policy does the right thing: 2xx is
success, 4xx is a non-retryable `WebhookRejected` (retrying cannot fix a bad request), 5xx, 429 and
connection errors are retryable `WebhookUnavailable`. Polling is a read, so a retried poll simply
polls again; the initial call carries `X-Gennaker-Delivery` (stable across retries) so receivers can
drop a duplicate when a retry follows a lost answer.

Every request, redirects included, goes through the worker's egress policy (`activities/egress.py`):
a tenant's URL cannot reach the Temporal frontend or UI, kubesim's admin API, the cloud metadata
service or anything else inward unless the operator allow-listed it. URLs in messages are redacted
(`redacted_url`): a query string may carry a token. What the server echoes of the request's query
values and headers is cut out of failure messages and of everything the stage keeps — reply and
poll bodies, status, progress, the status URL (`activities/webhook_redaction.py`).

The tenant chooses the paths and may serve the answers: a body is read up to MAX_RESPONSE_BYTES,
paths are checked and bounded in `activities/webhook_paths.py`, and between polls the worker sleeps
long enough that evaluating them takes at most a tenth of its thread.
"""

from __future__ import annotations

import json
import time
from typing import Any, Literal
from urllib.parse import urljoin

import httpx
from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.egress import EGRESS_DENIED, EgressPolicy, guarded_client, redacted_text, redacted_url
from activities.webhook_paths import DocumentTooLarge, JsonPathError, check_document, compile_path, find_scalar
from activities.webhook_redaction import RequestSecrets

NOT_RETRYABLE = ["WebhookRejected", "WebhookInvalidResponse", "WebhookInvalidPath", EGRESS_DENIED]
BODY_LIMIT = 4096

StatusUrlResolution = Literal["getMethod", "locationHeader", "webhookResponse"]
# Read at most this much of any answer: a hostile server could stream gigabytes (or a gzip bomb,
# which iter_bytes decodes) into the worker's memory. Paths run on status documents up to this size.
MAX_RESPONSE_BYTES = 512 * 1024
EVALUATION_SHARE = 9  # seconds of sleep per second spent evaluating paths between polls


def bounded_request(http: httpx.Client, method: str, url: str, **kwargs: Any) -> tuple[httpx.Response, bool]:
    """The response with at most MAX_RESPONSE_BYTES of (decoded) body, and whether more was cut off."""
    with http.stream(method, url, **kwargs) as streamed:
        body, cut = bytearray(), False
        for chunk in streamed.iter_bytes():
            body += chunk
            if len(body) > MAX_RESPONSE_BYTES:
                del body[MAX_RESPONSE_BYTES:]
                cut = True
                break
        headers = {k: v for k, v in streamed.headers.items() if k.lower() not in ("content-encoding", "content-length")}
        response = httpx.Response(streamed.status_code, headers=headers, content=bytes(body), request=streamed.request)
    return response, cut


def read_json(response: httpx.Response, cut: bool) -> Any:
    """The answer as JSON that paths may walk, or JsonPathError saying why not."""
    if cut:
        raise DocumentTooLarge(f"the response is over {MAX_RESPONSE_BYTES // 1024} KiB; paths are not run on it")
    try:
        data = json.loads(response.content)
    except RecursionError:
        raise DocumentTooLarge("the response nests too deep") from None
    except ValueError:
        raise JsonPathError(f"the response is not JSON: {response.text[:100]!r}") from None
    check_document(data)
    return data


def _path_or_fail(path: str, field: str) -> None:
    """Submission validated the path; one with an expression is only known now."""
    try:
        compile_path(path)
    except JsonPathError as exc:
        raise ApplicationError(f"{field}: {exc}", type="WebhookInvalidPath", non_retryable=True) from None


def body_excerpt(response: httpx.Response, secrets: RequestSecrets) -> tuple[Any, bool]:
    """The response body for stage outputs, without what the request carried that may be secret:
    parsed JSON when small enough (walked, so escapes cannot hide a secret), else truncated text."""
    text = response.text
    if len(text) <= BODY_LIMIT:
        try:
            return secrets.document(json.loads(text)), False
        except (ValueError, RecursionError):
            return secrets.text(text), False
    # Cut after redacting: a secret straddling the cut would otherwise keep its first part.
    return secrets.text(text)[:BODY_LIMIT], True


def echo_free(text: str, secrets: RequestSecrets) -> str:
    """`text` (a server's answer, a library's error) without anything the request carried that may be
    secret: servers echo the request URL or a bad key in their errors, and h11 quotes a bad header
    value. Failure messages end up in history and in the worker's log lines."""
    return redacted_text(secrets.text(text))


def request_failed(exc: httpx.HTTPError, what: str, url: str, secrets: RequestSecrets) -> ApplicationError:
    """A request that got no usable answer: transport errors are retried, a broken answer is not."""
    detail = echo_free(f"{type(exc).__name__}: {exc}", secrets)
    shown = secrets.text(redacted_url(url))
    if isinstance(exc, httpx.TransportError):
        return ApplicationError(f"{what} {shown} failed: {detail}", type="WebhookUnavailable")
    # TooManyRedirects, DecodingError (a broken or hostile gzip body): retrying gets the same answer.
    return ApplicationError(f"{what} {shown} failed: {detail}", type="WebhookInvalidResponse", non_retryable=True)


def _classify(
    response: httpx.Response, url: str, secrets: RequestSecrets, what: str, fail_fast: list[int], retry: list[int]
) -> None:
    code = response.status_code
    if 200 <= code < 300:
        return
    excerpt = echo_free(response.text[:300], secrets)
    retryable = code not in fail_fast and (code >= 500 or code in retry)
    raise ApplicationError(
        f"{what} {secrets.text(redacted_url(url))} answered HTTP {code}: {excerpt}",
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
    statusUrl: str | None = Field(default=None, description="As shown: the request's secrets are ***")
    statusUrlSealed: str | None = Field(default=None, description="What the poll unseals (webhook_redaction)")


class WebhookPoll(BaseModel):
    url: str
    requestUrl: str | None = Field(default=None, description="The webhook's URL: unseals `url`, its secrets are cut")
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
        secrets = RequestSecrets(call.url, call.headers)
        shown = secrets.text(redacted_url(call.url))
        if call.statusUrlResolution == "webhookResponse":
            _path_or_fail(str(call.statusUrlJsonPath), "statusUrlJsonPath")
        try:
            with guarded_client(self._egress, timeout=call.timeoutSeconds) as http:
                response, cut = bounded_request(http, call.method, call.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise request_failed(exc, call.method, call.url, secrets) from None
        _classify(response, call.url, secrets, call.method, call.failFastStatusCodes, call.retryStatusCodes)
        excerpt, truncated = body_excerpt(response, secrets)
        result = WebhookResponse(statusCode=response.status_code, body=excerpt, bodyTruncated=truncated)
        status_url: str | None = None
        if call.statusUrlResolution == "getMethod":
            status_url = call.url
        elif call.statusUrlResolution == "locationHeader":
            location = response.headers.get("Location")
            if not location:
                raise ApplicationError(
                    f"{call.method} {shown} answered {response.status_code} without a Location header, "
                    "but statusUrlResolution is locationHeader",
                    type="WebhookInvalidResponse",
                    non_retryable=True,
                )
            status_url = urljoin(call.url, location)
        elif call.statusUrlResolution == "webhookResponse":
            try:
                status_url = urljoin(call.url, find_scalar(read_json(response, cut), str(call.statusUrlJsonPath)))
            except JsonPathError as exc:
                raise ApplicationError(
                    f"{call.method} {shown}: no status URL at statusUrlJsonPath {call.statusUrlJsonPath}: "
                    f"{echo_free(str(exc), secrets)}",
                    type="WebhookInvalidResponse",
                    non_retryable=True,
                ) from None
        if status_url is not None:
            # The poll must reach the real URL, but the URL is history: a server echoing the token
            # into its Location would put it there. History keeps it sealed; the poll unseals it.
            if "\x00" in status_url:
                raise ApplicationError(
                    f"{call.method} {shown}: the status URL contains a NUL character",
                    type="WebhookInvalidResponse",
                    non_retryable=True,
                )
            result.statusUrlSealed = secrets.seal(status_url)
            result.statusUrl = RequestSecrets.shown(result.statusUrlSealed)
        return result

    @activity.defn(name="poll_webhook_status")
    def poll_webhook_status(self, poll: WebhookPoll) -> WebhookPollResult:
        polls = int(activity.info().heartbeat_details[-1]["polls"]) if activity.info().heartbeat_details else 0
        outcomes: list[tuple[Literal["SUCCEEDED", "CANCELED", "TERMINAL"], set[str]]] = [
            ("SUCCEEDED", {s.lower() for s in poll.successStatuses}),
            ("CANCELED", {s.lower() for s in poll.canceledStatuses}),
            ("TERMINAL", {s.lower() for s in poll.terminalStatuses}),
        ]
        _path_or_fail(poll.statusJsonPath, "statusJsonPath")
        if poll.progressJsonPath:
            _path_or_fail(poll.progressJsonPath, "progressJsonPath")
        # A sealed status URL (see call_webhook) comes with the webhook's URL that numbered its secrets.
        url = RequestSecrets(poll.requestUrl, poll.headers).unseal(poll.url) if poll.requestUrl else poll.url
        secrets = RequestSecrets(url, poll.headers, *filter(None, [poll.requestUrl]))
        with guarded_client(self._egress, timeout=poll.timeoutSeconds) as http:
            while True:
                polls += 1
                try:
                    response, cut = bounded_request(http, "GET", url, headers=_headers(poll.headers))
                except httpx.HTTPError as exc:
                    raise request_failed(exc, "status GET", url, secrets) from None
                _classify(response, url, secrets, "status GET", [], poll.retryStatusCodes)
                started = time.monotonic()
                status, progress = self._read_status(response, cut, poll, secrets)
                evaluating = time.monotonic() - started
                for outcome, statuses in outcomes:
                    if status is not None and status.lower() in statuses:
                        # Decided on the answer as read; what is kept is redacted.
                        excerpt, truncated = body_excerpt(response, secrets)
                        return WebhookPollResult(
                            outcome=outcome,
                            status=secrets.text(status),
                            progressMessage=secrets.optional(progress),
                            statusCode=response.status_code,
                            body=excerpt,
                            bodyTruncated=truncated,
                            polls=polls,
                        )
                # Heartbeat details reach history too (a timed-out attempt's last details).
                shown = {"status": secrets.optional(status), "progress": secrets.optional(progress)}
                activity.heartbeat({"polls": polls, **shown})
                # A tenant picks the interval and serves the document: however short the one and
                # costly the other, reading statuses takes at most a tenth of this thread.
                time.sleep(max(poll.pollIntervalSeconds, EVALUATION_SHARE * evaluating))

    def _read_status(
        self, response: httpx.Response, cut: bool, poll: WebhookPoll, secrets: RequestSecrets
    ) -> tuple[str | None, str | None]:
        """(status, progress); a status the path cannot read yet is None and the reason is the progress."""
        try:
            data = read_json(response, cut)
            status = find_scalar(data, poll.statusJsonPath)
        except DocumentTooLarge as exc:
            raise ApplicationError(
                f"status GET {RequestSecrets.shown(secrets.text(redacted_url(poll.url)))}: {exc}",
                type="WebhookInvalidResponse",
                non_retryable=True,
            ) from None
        except JsonPathError as exc:
            return None, redacted_text(secrets.text(str(exc)))
        progress = None
        if poll.progressJsonPath:
            try:
                progress = find_scalar(data, poll.progressJsonPath)[:500]
            except JsonPathError:
                progress = None
        return status, progress
