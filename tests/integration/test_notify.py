"""Notification channels against real local servers: aiosmtpd (STARTTLS + AUTH with a self-signed
certificate made by the openssl CLI), and fake Slack / Twilio / webhook HTTP servers.

Channel behaviour is exercised through temporalio's ActivityEnvironment (the activity code for real,
no server); one test runs the notification hook the way PipelineWorkflow will, on the real Temporal
dev server: retried delivery, a failing channel recorded without failing the workflow.
"""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from temporalio import workflow
from temporalio.client import Client
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.testing import ActivityEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.accounts import SecretRef
from activities.notify import (
    NOTIFY_RETRY,
    NOTIFY_TIMEOUT,
    NotificationRequest,
    NotificationResult,
    NotificationSettings,
    NotifyActivities,
    notifications_for,
    verify_signature,
)
from tests.support.fake_services import FakeHttp, FakeSlack, FakeTwilio, Reply
from tests.support.worker_policy import TEST_EGRESS
from workers.devserver import free_port
from workflows.model import PipelineNotification
from workflows.stages.base import StageNotification
from workflows.state import ExecutionState, ExecutionStatus, JudgmentRecord, StageError, StageState, StageStatus

UI = "http://ui.example:8233"


def execution(status: ExecutionStatus = ExecutionStatus.RUNNING, failure: str | None = None) -> ExecutionState:
    return ExecutionState(
        id="shop.release.abc",
        runId="run-1",
        application="shop",
        pipeline="release",
        status=status,
        trigger={"type": "manual"},
        parameters={},
        startTime=datetime(2024, 1, 1, tzinfo=UTC),
        stages=[],
        failure=failure,
    )


def request(channel: str, address: str, event: str = "pipeline.failed", **extra: Any) -> NotificationRequest:
    base: dict[str, Any] = {
        "channel": channel,
        "address": address,
        "event": event,
        "notificationId": f"shop.release.abc/run-1/{event}/-/{channel}:{address}/0",
        "executionId": "shop.release.abc",
        "runId": "run-1",
        "application": "shop",
        "pipeline": "release",
        "status": "TERMINAL",
        "reason": "stage 'deploy' failed: boom",
    }
    return NotificationRequest.model_validate({**base, **extra})


def send(settings: NotificationSettings, req: NotificationRequest) -> NotificationResult:
    env = ActivityEnvironment()
    result: NotificationResult = env.run(NotifyActivities(settings, UI, egress=TEST_EGRESS).send_notification, req)
    return result


def send_error(settings: NotificationSettings, req: NotificationRequest) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        send(settings, req)
    return caught.value


# ---- choosing notifications -------------------------------------------------------------------


def test_notifications_for_filters_by_when_and_dedupes() -> None:
    pipeline_level = [
        PipelineNotification(type="slack", address="#deploys", when=["pipeline.failed", "manualJudgment"]),
        PipelineNotification(
            type="email",
            address="team@example.com",
            when=["pipeline.complete"],
            message={"pipeline.complete": {"text": "shipped"}},
        ),
    ]
    stage_level = [
        StageNotification(type="slack", address="#deploys", when=["manualJudgment"]),
        StageNotification(type="sms", address="+15005550006", when=["judgment.waiting"]),
    ]
    failed = execution(ExecutionStatus.TERMINAL, failure="stage 'deploy' failed: boom")
    [only] = notifications_for("pipeline.failed", pipeline_level, execution=failed)
    assert (only.channel, only.address, only.status, only.reason) == ("slack", "#deploys", "TERMINAL", failed.failure)
    assert only.notificationId == "shop.release.abc/run-1/pipeline.failed/-/slack:#deploys/0"

    [done] = notifications_for("pipeline.complete", pipeline_level, execution=execution(ExecutionStatus.SUCCEEDED))
    assert done.message == "shipped" and done.reason is None

    stage = StageState(refId="approve", name="Approve", type="manualJudgment", status=StageStatus.RUNNING)
    waiting = notifications_for(
        "judgment.waiting",
        pipeline_level,
        stage_level,
        execution=execution(),
        stage=stage,
        instructions="Ship it?",
        options=["ship", "hold"],
        sequence=2,
    )
    assert [(r.channel, r.address) for r in waiting] == [("slack", "#deploys"), ("sms", "+15005550006")]
    assert waiting[0].judgment is not None and waiting[0].judgment.options == ["ship", "hold"]
    assert waiting[0].notificationId.endswith("/approve/slack:#deploys/2")
    assert notifications_for("stage.complete", pipeline_level, stage_level, execution=execution(), stage=stage) == []

    stage.judgment = JudgmentRecord(judgmentStatus="stop", user="bob", judgedAt=datetime.now(UTC), via="update")
    stage.error = StageError(message="judged stop by bob")
    rejected = notifications_for(
        "manualJudgmentStop",
        [],
        [StageNotification(type="email", address="a@b.c", when=["judgment.rejected"])],
        execution=execution(),
        stage=stage,
    )
    assert rejected[0].event == "judgment.rejected" and rejected[0].reason == "judged stop by bob"
    assert rejected[0].judgment is not None and rejected[0].judgment.user == "bob"


# ---- channels -----------------------------------------------------------------------------------


def test_slack_block_kit_with_ui_link_and_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeSlack() as slack:
        monkeypatch.setenv("TEST_SLACK_URL", slack.webhook_url)
        settings = NotificationSettings.model_validate({"slack": {"webhook_url": {"env": "TEST_SLACK_URL"}}})
        result = send(settings, request("slack", "#deploys"))
        assert result.delivered and result.detail == "slack 200 ok"
        payload = slack.requests[0].json()
        assert payload["text"] == "shop/release failed"
        button = payload["blocks"][-1]["elements"][0]
        assert button["url"] == f"{UI}/namespaces/default/workflows/shop.release.abc/run-1/history"
        assert "boom" in payload["blocks"][2]["text"]["text"]

        slack.fail = [Reply(404, "channel_not_found")]
        error = send_error(settings, request("slack", "#deploys"))
        assert error.type == "NotificationRejected" and error.non_retryable and "channel_not_found" in error.message
        slack.fail = [Reply(500, "rollup_error")]
        assert not send_error(settings, request("slack", "#deploys")).non_retryable

        # A per-notification address that is a webhook URL needs no worker configuration.
        assert send(NotificationSettings(), request("slack", slack.webhook_url)).delivered
    error = send_error(NotificationSettings(), request("slack", "#deploys"))
    assert error.type == "NotificationNotConfigured" and error.non_retryable


def test_sms_through_twilio_api(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeTwilio() as twilio:
        monkeypatch.setenv("TEST_TWILIO_TOKEN", twilio.auth_token)
        conf = {"base_url": twilio.url, "account_sid": twilio.account_sid, "from": "+15005550006"}
        settings = NotificationSettings.model_validate({"sms": {**conf, "auth_token": {"env": "TEST_TWILIO_TOKEN"}}})
        result = send(settings, request("sms", "+15551234567"))
        assert result.detail.startswith("sms SM") and result.detail.endswith("queued")
        sent = twilio.requests[0]
        assert sent.basic_auth() == (twilio.account_sid, twilio.auth_token)
        form = sent.form()
        assert form["To"] == "+15551234567" and form["From"] == "+15005550006"
        assert "shop/release failed" in form["Body"] and "boom" in form["Body"]

        monkeypatch.setenv("TEST_TWILIO_TOKEN", "wrong")
        error = send_error(settings, request("sms", "+15551234567"))
        assert error.type == "NotificationRejected" and "20003" in error.message


def test_webhook_is_signed_with_hmac(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeHttp() as hook:
        url = hook.route("POST", "/hooks/cd", Reply(204))
        monkeypatch.setenv("TEST_HOOK_SECRET", "s3cret")
        settings = NotificationSettings.model_validate({"webhook": {"secret": {"env": "TEST_HOOK_SECRET"}}})
        assert send(settings, request("webhook", url, event="stage.failed", stage="deploy")).delivered
        received = hook.requests[0]
        assert verify_signature("s3cret", received.body, received.headers["x-gennaker-signature"])
        assert not verify_signature("other", received.body, received.headers["x-gennaker-signature"])
        body = received.json()
        assert (
            body["event"] == "stage.failed" and body["stage"] == "deploy" and body["executionId"] == "shop.release.abc"
        )
        assert body["link"].startswith(UI) and "s3cret" not in received.body.decode()
        assert received.headers["x-gennaker-delivery"].startswith("shop.release.abc/run-1/")


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("smtp-tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[Envelope] = []

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        self.messages.append(envelope)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server(tls_files: tuple[Path, Path]) -> Iterator[tuple[Mailbox, int]]:
    cert, key = tls_files
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))

    def authenticate(server: SMTPServer, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"cd", b"mail-pass")
        return AuthResult(success=ok, handled=False)

    mailbox, port = Mailbox(), free_port()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        authenticator=authenticate,
        auth_required=True,
    )
    controller.start()
    yield mailbox, port
    controller.stop()


def test_email_starttls_and_auth(
    smtp_server: tuple[Mailbox, int], tls_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    mailbox, port = smtp_server
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "mail-pass")
    smtp = {
        "host": "127.0.0.1",
        "port": port,
        "starttls": True,
        "ca_file": str(tls_files[0]),
        "username": "cd",
        "password": {"env": "TEST_SMTP_PASSWORD"},
        "from": "Gennaker <cd@example.com>",
    }
    settings = NotificationSettings.model_validate({"email": smtp})
    req = request(
        "email",
        "team@example.com",
        event="judgment.waiting",
        stage="approve",
        judgment={"instructions": "Ship v1.2?", "options": ["ship", "hold"]},
    )
    assert send(settings, req).delivered
    [envelope] = mailbox.messages
    assert envelope.rcpt_tos == ["team@example.com"]
    raw = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert message["Subject"] == "[gennaker] shop/release stage approve is waiting for a judgment"
    text = message.get_body().get_content()  # type: ignore[union-attr]
    assert "Options: ship, hold" in text and f"{UI}/namespaces/default/workflows/shop.release.abc" in text

    monkeypatch.setenv("TEST_SMTP_PASSWORD", "wrong")
    error = send_error(settings, req)
    assert error.type == "NotificationRejected" and error.non_retryable
    # Without STARTTLS the server refuses AUTH, and the client must not send the password in clear.
    error = send_error(NotificationSettings.model_validate({"email": {**smtp, "starttls": False}}), req)
    assert error.type == "NotificationRejected" and "AUTH" in error.message


# ---- the hook, on the real Temporal server ------------------------------------------------------


@workflow.defn(sandboxed=False)
class NotifyHookWorkflow:
    """What PipelineWorkflow's hook does: choose requests, send each, record failures, never fail."""

    @workflow.run
    async def run(self, notifications: list[PipelineNotification]) -> list[str]:
        info = workflow.info()
        state = execution(ExecutionStatus.TERMINAL, failure="stage 'deploy' failed: boom")
        state.id, state.runId = info.workflow_id, info.run_id
        outcomes = []
        for req in notifications_for("pipeline.failed", notifications, execution=state):
            try:
                result = await workflow.execute_activity_method(
                    NotifyActivities.send_notification,
                    req,
                    summary=req.summary(),
                    start_to_close_timeout=NOTIFY_TIMEOUT,
                    retry_policy=NOTIFY_RETRY,
                )
                outcomes.append(f"ok {result.channel} {result.detail}")
            except ActivityError as exc:
                cause = exc.cause
                outcomes.append(f"failed {req.channel}: {getattr(cause, 'type', '')} {getattr(cause, 'message', '')}")
        return outcomes


async def test_hook_retries_and_records_failures(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeSlack() as slack, FakeTwilio() as twilio:
        slack.fail = [Reply(503, "rollup_error")]  # one transient failure: retried by Temporal
        monkeypatch.setenv("TEST_HOOK_TWILIO", "not-the-token")
        settings = NotificationSettings.model_validate(
            {
                "slack": {"channels": {"#deploys": {"env": "TEST_HOOK_SLACK"}}},
                "sms": {
                    "base_url": twilio.url,
                    "account_sid": twilio.account_sid,
                    "from": "+15005550006",
                    "auth_token": {"env": "TEST_HOOK_TWILIO"},
                },
            }
        )
        monkeypatch.setenv("TEST_HOOK_SLACK", slack.webhook_url)
        queue = f"notify-{uuid.uuid4().hex[:8]}"
        notify = NotifyActivities(settings, UI, egress=TEST_EGRESS)
        from concurrent.futures import ThreadPoolExecutor

        async with Worker(
            client,
            task_queue=queue,
            workflows=[NotifyHookWorkflow],
            activities=[notify.send_notification],
            activity_executor=ThreadPoolExecutor(4),
            workflow_runner=UnsandboxedWorkflowRunner(),
        ):
            notifications = [
                PipelineNotification(type="slack", address="#deploys", when=["pipeline.failed"]),
                PipelineNotification(type="sms", address="+15551234567", when=["pipeline.failed"]),
                PipelineNotification(type="email", address="x@example.com", when=["pipeline.complete"]),
            ]
            outcomes = await asyncio.wait_for(
                client.execute_workflow(
                    NotifyHookWorkflow.run, notifications, id=f"hook-{uuid.uuid4().hex[:8]}", task_queue=queue
                ),
                30,
            )
        assert outcomes[0] == "ok slack slack 200 ok"
        assert outcomes[1].startswith("failed sms: NotificationRejected") and "20003" in outcomes[1]
        assert len(outcomes) == 2
        assert len(slack.requests) == 2  # the 503, then the retry
        assert SecretRef(env="TEST_HOOK_SLACK").read() not in str(notifications)
