"""Delivering one notification: SMTP (STARTTLS, AUTH), Slack incoming webhook (Block Kit), a
Twilio-compatible SMS API, and a generic webhook signed with HMAC-SHA256.

The webhook and Slack channels post to URLs a pipeline may choose, so they go through the worker's
egress policy (activities/egress.py), and their addresses are redacted in messages and logs (a Slack
incoming-webhook URL is itself the credential; a webhook URL may carry a token)."""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import ssl
from email.message import EmailMessage
from typing import Any
from urllib.parse import quote

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.egress import EgressPolicy, guarded_client, redacted_text, redacted_url
from activities.notify.model import NotificationSettings
from workflows.notification_model import NotificationRequest, NotificationResult


def shown_address(channel: str, address: str) -> str:
    """A notification address as messages and logs may show it."""
    if not address.startswith(("https://", "http://")):
        return address
    if channel == "slack":  # the whole URL is the secret: show where it goes, not the path
        return redacted_url(address).split("/", 3)[2] + "/…" if "//" in address else "…"
    return redacted_url(address)


def _not_configured(channel: str, what: str) -> ApplicationError:
    return ApplicationError(
        f"{channel} notifications are not configured on this worker: {what} (see `notifications:` in gennaker.yaml)",
        type="NotificationNotConfigured",
        non_retryable=True,
    )


def _http_failure(service: str, response: httpx.Response, address: str) -> ApplicationError:
    """`address` as shown (shown_address), never the raw one."""
    excerpt = response.text[:300]
    status = response.status_code
    retryable = status == 429 or status >= 500
    return ApplicationError(
        f"{service} answered HTTP {status} for {address}: {excerpt}",
        type="NotificationUnavailable" if retryable else "NotificationRejected",
        non_retryable=not retryable,
    )


class NotifyActivities:
    """Built once per worker with the channel settings, the Temporal Web UI's and the gateway's base URLs."""

    def __init__(
        self,
        settings: NotificationSettings,
        ui_base_url: str | None = None,
        *,
        gateway_url: str | None = None,
        egress: EgressPolicy | None = None,
    ) -> None:
        self._settings = settings
        self._ui = ui_base_url.rstrip("/") if ui_base_url else None
        self._gateway = gateway_url.rstrip("/") if gateway_url else None
        self._egress = egress or EgressPolicy()

    def execution_link(self, req: NotificationRequest) -> str | None:
        """The execution's page in the Gennaker console, where people approve and stop; the Temporal
        UI when the worker has no gateway URL (`gateway_url` in gennaker.yaml)."""
        if self._gateway is not None:
            return f"{self._gateway}/console/executions/{quote(req.executionId, safe='')}"
        return self.temporal_ui_link(req)

    def temporal_ui_link(self, req: NotificationRequest) -> str | None:
        """The second link: the execution's history in the Temporal Web UI."""
        if self._ui is None:
            return None
        namespace = quote(activity.info().workflow_namespace or "default", safe="")
        run = f"/{quote(req.runId, safe='')}" if req.runId else ""
        return f"{self._ui}/namespaces/{namespace}/workflows/{quote(req.executionId, safe='')}{run}/history"

    def _links_text(self, req: NotificationRequest) -> str:
        link, ui = self.execution_link(req), self.temporal_ui_link(req)
        lines = [f"Open: {link}"] if link else []
        if ui and ui != link:
            lines.append(f"Temporal UI: {ui}")
        return "\n".join(lines)

    @activity.defn(name="send_notification")
    def send_notification(self, req: NotificationRequest) -> NotificationResult:
        senders = {"email": self._email, "slack": self._slack, "sms": self._sms, "webhook": self._webhook}
        shown = shown_address(req.channel, req.address)
        try:
            detail = senders[req.channel](req)
        except httpx.TransportError as exc:
            raise ApplicationError(
                f"{req.channel} {shown} unreachable: {type(exc).__name__}: {redacted_text(str(exc))}",
                type="NotificationUnavailable",
            ) from None
        activity.logger.info("notified %s %s of %s: %s", req.channel, shown, req.event, detail)
        return NotificationResult(
            channel=req.channel, address=req.address, event=req.event, delivered=True, detail=detail
        )

    def _http(self, url: str | None = None) -> httpx.Client:
        """Tenant-chosen URLs (Slack address URLs, webhook addresses) obey the egress policy; a URL
        the operator configured (`url`: the SMS gateway, a configured Slack webhook) is allowed."""
        policy = self._egress.allowing_origin(url) if url else self._egress
        return guarded_client(policy, timeout=self._settings.http_timeout_seconds, follow_redirects=False)

    def _email(self, req: NotificationRequest) -> str:
        smtp = self._settings.email
        if smtp is None:
            raise _not_configured("email", "no SMTP server")
        msg = EmailMessage()
        msg["Subject"] = f"[gennaker] {req.title()}"
        msg["From"] = smtp.sender
        msg["To"] = req.address
        msg["Message-ID"] = f"<{hashlib.sha256(req.notificationId.encode()).hexdigest()[:32]}@gennaker>"
        msg["X-Gennaker-Event"] = req.event
        links = self._links_text(req)
        msg.set_content(req.text() + (f"\n\n{links}" if links else "") + "\n")
        context = ssl.create_default_context(cafile=str(smtp.ca_file) if smtp.ca_file else None)
        try:
            client: smtplib.SMTP = (
                smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=smtp.timeout_seconds, context=context)
                if smtp.ssl
                else smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_seconds)
            )
            with client:
                client.ehlo()
                if smtp.starttls and not smtp.ssl:
                    client.starttls(context=context)
                    client.ehlo()
                if smtp.username:
                    client.login(smtp.username, smtp.password.read() if smtp.password else "")
                refused = client.send_message(msg)
        except (
            smtplib.SMTPAuthenticationError,
            smtplib.SMTPNotSupportedError,  # e.g. AUTH offered only after STARTTLS
            smtplib.SMTPRecipientsRefused,
            smtplib.SMTPSenderRefused,
        ) as exc:
            raise ApplicationError(
                f"SMTP server {smtp.host}:{smtp.port} refused the message to {req.address}: {exc}",
                type="NotificationRejected",
                non_retryable=True,
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise ApplicationError(
                f"SMTP server {smtp.host}:{smtp.port} failed for {req.address}: {exc}", type="NotificationUnavailable"
            ) from None
        return f"smtp {smtp.host}:{smtp.port} accepted" + (f" (refused: {', '.join(refused)})" if refused else "")

    def _slack_url(self, address: str) -> tuple[str, bool]:
        """(URL, whether the operator configured it)."""
        slack = self._settings.slack
        if address.startswith(("https://", "http://")) and (slack is None or slack.allow_address_urls):
            return address, False
        if slack is None:
            raise _not_configured("slack", "no incoming webhook")
        ref = slack.channels.get(address) or slack.webhook_url
        if ref is None:
            raise _not_configured("slack", f"no incoming webhook for {address!r} and no default webhook_url")
        return ref.read(), True

    def slack_payload(self, req: NotificationRequest) -> dict[str, Any]:
        link = self.execution_link(req)
        facts = [f"*Application:* {req.application}", f"*Pipeline:* {req.pipeline}"]
        if req.status:
            facts.append(f"*Status:* {req.status}")
        if req.stage:
            facts.append(f"*Stage:* {req.stageName or req.stage}")
        # Block Kit (https://api.slack.com/reference/block-kit/blocks): `text` is the notification
        # fallback; a section per part and a link button to the execution in the Temporal UI.
        blocks: list[dict[str, Any]] = [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{req.title()}*"}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in facts]},
        ]
        details = req.text().split("\n", 1)
        if len(details) > 1:
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": details[1][:2900]}})
        if link:
            blocks.append(
                {
                    "type": "actions",
                    "elements": [
                        {"type": "button", "text": {"type": "plain_text", "text": "Open execution"}, "url": link}
                    ]
                    + [
                        {"type": "button", "text": {"type": "plain_text", "text": "Temporal UI"}, "url": ui}
                        for ui in [self.temporal_ui_link(req)]
                        if ui and ui != link
                    ],
                }
            )
        return {"text": req.message or req.title(), "blocks": blocks}

    def _slack(self, req: NotificationRequest) -> str:
        url, configured = self._slack_url(req.address)
        with self._http(url if configured else None) as http:
            response = http.post(url, json=self.slack_payload(req))
        # Incoming webhooks answer 200 with the plain-text body "ok"; errors are 4xx with a short
        # code such as invalid_payload or channel_not_found (api.slack.com changelog 2016-05-17).
        if response.status_code != 200:
            raise _http_failure("Slack", response, shown_address("slack", req.address))
        return f"slack {response.status_code} {response.text[:40]}"

    def _sms(self, req: NotificationRequest) -> str:
        sms = self._settings.sms
        if sms is None:
            raise _not_configured("sms", "no SMS gateway")
        url = f"{sms.base_url.rstrip('/')}/2010-04-01/Accounts/{sms.account_sid}/Messages.json"
        body = req.text()
        if self.execution_link(req):
            body += f"\n{self.execution_link(req)}"
        with self._http(url) as http:
            response = http.post(
                url,
                data={"To": req.address, "From": sms.sender, "Body": body[:1600]},
                auth=(sms.account_sid, sms.auth_token.read()),
            )
        # Twilio answers 201 Created with the Message resource (sid, status "queued", ...), and 4xx
        # with {"code", "message", "more_info", "status"} (twilio.com/docs/messaging/api/message-resource).
        if response.status_code not in (200, 201):
            raise _http_failure("SMS gateway", response, req.address)
        message = response.json()
        return f"sms {message.get('sid')} {message.get('status')}"

    def webhook_body(self, req: NotificationRequest) -> bytes:
        payload = req.model_dump(mode="json", exclude={"channel", "address"}, exclude_none=True)
        payload["title"] = req.title()
        payload["link"] = self.execution_link(req)
        payload["temporalUiLink"] = self.temporal_ui_link(req)
        return json.dumps(payload, sort_keys=True).encode()

    def _webhook(self, req: NotificationRequest) -> str:
        body = self.webhook_body(req)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "gennaker-notify",
            "X-Gennaker-Event": req.event,
            "X-Gennaker-Delivery": req.notificationId,
        }
        conf = self._settings.webhook
        if conf.secret is not None:
            digest = hmac.new(conf.secret.read().encode(), body, hashlib.sha256).hexdigest()
            headers[conf.signature_header] = f"sha256={digest}"
        with self._http() as http:
            response = http.post(req.address, content=body, headers=headers)
        if not 200 <= response.status_code < 300:
            raise _http_failure("Webhook", response, shown_address("webhook", req.address))
        return f"webhook {response.status_code}" + ("" if conf.secret else " (unsigned: no secret configured)")


def verify_signature(secret: str, body: bytes, header_value: str) -> bool:
    """For receivers (and tests): check an X-Gennaker-Signature header against the raw body."""
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header_value)
