"""Credentials never enter Temporal: end-to-end runs with every kind of configured secret, then a
grep of everything Temporal and the gateway keep or show for each secret value (issue #7).

One worker (`run_worker`, as `gennaker worker` runs it) holds: a registry account with a password
(the rig's htpasswd registry), a kubesim account whose kubeconfig carries a bearer token, SMTP with
STARTTLS + AUTH (aiosmtpd), a Slack incoming webhook whose URL path is the secret, a Twilio auth
token, and a Jenkins API token — each from a file or an environment variable (SecretRef). Two
pipelines run through the gateway (auth on): bake → deploy + deployManifest → manual judgment (judged
through the API) → jenkins → a child pipeline, notifying email/slack/sms on pipeline.starting,
pipeline.complete and judgment.waiting; and one that fails at its Jenkins stage (error paths,
pipeline.failed notifications). Then, for every execution, its children and the account directory:

(a) the stored history (serialized protobuf and its JSON) — encrypted at rest;
(b) the history with every payload decoded through the codec (inputs, results, signals, updates,
    markers, failures, heartbeats, search attributes, memo, user metadata) and the describe answer;
(c) the `state` query; (d) every log record emitted during the run (fake servers excluded);
(e) GET /executions/{id} and GET /accounts.

The negative control proves the grep can fail: a marker passed as a pipeline parameter IS found in
the decoded history (and not in the encrypted one).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import secrets
import signal
import ssl
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from google.protobuf.json_format import MessageToJson
from google.protobuf.message import Message
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import History
from temporalio.client import Client

from activities.accounts import KubernetesAccount
from activities.jenkins import JenkinsMaster
from activities.notify import NotificationSettings
from api.app import create_app
from api.settings import GatewaySettings
from core.store import PipelineStore
from core.store.tokens import TokenStore
from kubesim.testing import RunningKubesim, start_kubesim
from tests.support.docker_rig import PASSWORD, USERNAME, DockerRig, docker_rig_fixture  # noqa: F401
from tests.support.eventually import assert_eventually
from tests.support.fake_services import FakeJenkins, FakeSlack, FakeTwilio, JenkinsJob
from tests.support.payloads import payloads_in
from tests.support.runner import DIRECTORY_QUEUE
from tests.support.worker_policy import TEST_BAKE, TEST_EGRESS
from workers.config import WorkerConfig
from workers.devserver import TemporalDevServer, free_port
from workers.main import run_worker
from workers.reporting import report_once
from workflows.accounts import ACCOUNT_DIRECTORY_ID

QUEUE = f"secrets-{uuid.uuid4().hex[:8]}"
REGISTRY = "sec-registry"
KUBE = "sec-kube"
SMTP_USER = "cd-mailer"
MARKER = f"marker-{uuid.uuid4().hex}"  # the negative control: a pipeline parameter, meant to be found
# Loggers of the fake services the test itself runs (aiosmtpd logs AUTH lines at DEBUG; kubesim is
# the cluster side). Everything else — worker, activities, gateway, SDK, HTTP clients — is checked.
FAKE_SERVER_LOGGERS = ("mail.log", "kubesim", "uvicorn")


@dataclass(frozen=True)
class Secrets:
    registry_password: str
    kube_token: str
    smtp_password: str
    slack_token: str
    twilio_token: str
    jenkins_token: str

    def values(self) -> dict[str, str]:
        """Each secret, plus the forms it travels in (HTTP basic auth, SMTP AUTH PLAIN)."""
        plain = {
            "registry password": self.registry_password,
            "kube bearer token": self.kube_token,
            "SMTP password": self.smtp_password,
            "Slack webhook token": self.slack_token,
            "Twilio auth token": self.twilio_token,
            "Jenkins API token": self.jenkins_token,
        }
        basic = {
            "registry basic auth": f"{USERNAME}:{self.registry_password}",
            "Jenkins basic auth": f"ci:{self.jenkins_token}",
            "SMTP AUTH PLAIN": f"\0{SMTP_USER}\0{self.smtp_password}",
        }
        encoded = {f"{k} (base64)": base64.b64encode(v.encode()).decode() for k, v in basic.items()}
        return {**plain, **encoded}


@dataclass
class Evidence:
    """Everything gathered after the runs, as text/bytes to grep, keyed by what it came from."""

    raw: dict[str, bytes] = field(default_factory=dict)  # (a) stored history: protobuf bytes + JSON
    decoded: dict[str, str] = field(default_factory=dict)  # (b) every payload decoded + describe
    queries: dict[str, str] = field(default_factory=dict)  # (c) the state query
    logs: list[str] = field(default_factory=list)  # (d)
    api: dict[str, str] = field(default_factory=dict)  # (e)
    executions: list[str] = field(default_factory=list)
    states: dict[str, dict[str, Any]] = field(default_factory=dict)
    delivered: dict[str, int] = field(default_factory=dict)


class LogCapture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(FAKE_SERVER_LOGGERS):
            return
        with contextlib.suppress(Exception):
            self.lines.append(self.format(record))


@contextlib.contextmanager
def capture_logs() -> Iterator[LogCapture]:
    root = logging.getLogger()
    handler, level = LogCapture(), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


# ---- the services holding the credentials ---------------------------------------------------------


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[Envelope] = []

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        self.messages.append(envelope)
        return "250 Message accepted for delivery"


def tls_files(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@contextlib.contextmanager
def smtp_server(cert: Path, key: Path, password: str) -> Iterator[tuple[Mailbox, int]]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))

    def authenticate(server: SMTPServer, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (SMTP_USER.encode(), password.encode())
        return AuthResult(success=ok, handled=False)

    mailbox, port = Mailbox(), free_port()
    controller = Controller(
        mailbox, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True,
        authenticator=authenticate, auth_required=True,
    )  # fmt: skip
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


def slack_with_token(token: str) -> FakeSlack:
    class SecretSlack(FakeSlack):
        path = f"/services/T0SECRET/B0SECRET/{token}"

    return SecretSlack()


# ---- the pipelines --------------------------------------------------------------------------------

EVENTS = ["pipeline.starting", "pipeline.complete", "pipeline.failed", "judgment.waiting"]
NOTIFICATIONS = [
    {"type": "email", "address": "team@example.com", "when": EVENTS},
    {"type": "slack", "address": "#deploys", "when": EVENTS},
    {"type": "sms", "address": "+15551234567", "when": EVENTS},
]


def release_pipeline(context: Path) -> dict[str, Any]:
    return {
        "application": "vault",
        "name": "release",
        "parameters": [{"name": "marker", "required": True}],
        "notifications": NOTIFICATIONS,
        "stages": [
            {"refId": "bake", "type": "bake", "account": REGISTRY, "repository": f"vault/app-{uuid.uuid4().hex[:6]}",
             "tag": "v1", "context": {"path": str(context)}},
            {"refId": "deploy", "type": "deploy", "requisiteStageRefIds": ["bake"], "account": KUBE,
             "namespace": "default", "container": {"image": "${{ stages.bake.outputs.image }}",
                                                   "ports": [{"containerPort": 8080}]},
             "capacity": {"min": 1, "max": 2, "desired": 1}, "waitForHealthySec": 30},
            {"refId": "manifest", "type": "deployManifest", "requisiteStageRefIds": ["bake"], "account": KUBE,
             "manifests": [{"apiVersion": "v1", "kind": "ConfigMap",
                            "metadata": {"name": f"vault-{uuid.uuid4().hex[:6]}", "namespace": "default"},
                            "data": {"image": "${{ stages.bake.outputs.image }}"}}]},
            {"refId": "approve", "type": "manualJudgment", "requisiteStageRefIds": ["deploy", "manifest"],
             "instructions": "Ship ${{ stages.bake.outputs.image }}?", "judgmentInputs": ["ship", "hold"]},
            {"refId": "ci", "type": "jenkins", "requisiteStageRefIds": ["approve"], "master": "ci", "job": "build",
             "parameters": {"IMAGE": "${{ stages.bake.outputs.image }}"}, "pollIntervalSeconds": 0.1},
            {"refId": "smoke", "type": "pipeline", "requisiteStageRefIds": ["ci"],
             "pipelineConfig": {"application": "vault", "name": "smoke",
                                "notifications": [{"type": "slack", "address": "#deploys",
                                                   "when": ["pipeline.complete"]}],
                                "stages": [{"refId": "vars", "type": "evaluateVariables",
                                            "variables": [{"key": "ok", "value": "yes"}]}]}},
        ],
    }  # fmt: skip


def failing_pipeline() -> dict[str, Any]:
    return {
        "application": "vault",
        "name": "broken",
        "parameters": [{"name": "marker", "required": True}],
        "notifications": NOTIFICATIONS,
        "stages": [
            {"refId": "ci", "type": "jenkins", "master": "ci", "job": "no-such-job", "pollIntervalSeconds": 0.1}
        ],
    }


# ---- gathering the evidence -----------------------------------------------------------------------


async def decoded_text(client: Client, message: Message) -> tuple[str, int]:
    """The message as JSON plus every payload in it decoded through the codec, as text."""
    codec = client.data_converter.payload_codec
    assert codec is not None, "the suite runs encrypted; the client must have the codec"
    parts = [MessageToJson(message)]
    found = list(payloads_in(message))
    for payload in await codec.decode(found):
        parts.append(payload.data.decode("utf-8", "replace"))
        parts.extend(f"{k}={v.decode('utf-8', 'replace')}" for k, v in payload.metadata.items())
    return "\n".join(parts), len(found)


def children_of(history: History) -> list[tuple[str, str]]:
    return [
        (e.child_workflow_execution_started_event_attributes.workflow_execution.workflow_id,
         e.child_workflow_execution_started_event_attributes.workflow_execution.run_id)
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED
    ]  # fmt: skip


async def gather_histories(client: Client, roots: list[str], evidence: Evidence) -> None:
    pending = [(workflow_id, "") for workflow_id in roots] + [(ACCOUNT_DIRECTORY_ID, "")]
    seen: set[tuple[str, str]] = set()
    while pending:
        workflow_id, run_id = pending.pop()
        if (workflow_id, run_id) in seen:
            continue
        seen.add((workflow_id, run_id))
        handle = client.get_workflow_handle(workflow_id, run_id=run_id or None)
        fetched = await handle.fetch_history()
        history = History(events=fetched.events)
        name = f"{workflow_id}/{run_id or 'latest'}"
        evidence.raw[name] = history.SerializeToString() + fetched.to_json().encode()
        text, count = await decoded_text(client, history)
        description = await handle.describe()
        described, _ = await decoded_text(client, description.raw_description)
        evidence.decoded[name] = text + "\n" + described
        assert count > 0, f"no payloads found in {name}: the walk is broken"
        if workflow_id != ACCOUNT_DIRECTORY_ID:
            evidence.executions.append(workflow_id)
            state = await handle.query("state")
            evidence.queries[name] = str(state)
        pending += children_of(history)


def api_token(store: PipelineStore) -> str:
    tokens = TokenStore(store.database_url)
    try:
        return tokens.create("secrets-admin", [], "test_secrets")[0]
    finally:
        tokens.close()


@pytest.fixture(scope="module")
def secret_values() -> Secrets:
    return Secrets(
        registry_password=PASSWORD,  # the rig's htpasswd user (tests/support/docker_rig.py)
        kube_token=f"kubetok-{secrets.token_hex(16)}",
        smtp_password=f"smtppw-{secrets.token_hex(16)}",
        slack_token=f"slacktok{secrets.token_hex(12)}",
        twilio_token=f"twiliotok{secrets.token_hex(16)}",
        jenkins_token=f"jenkinstok{secrets.token_hex(16)}",
    )


@pytest.fixture(scope="module")
async def evidence(
    temporal_server: TemporalDevServer,
    client: Client,
    store: PipelineStore,
    worker: None,
    docker_rig: DockerRig,
    secret_values: Secrets,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Evidence]:
    s = secret_values
    folder = tmp_path_factory.mktemp("secrets")
    cert, key = await asyncio.to_thread(tls_files, folder)
    token_file = folder / "jenkins-token"
    token_file.write_text(s.jenkins_token + "\n")
    env = {"TEST_SECRETS_SMTP_PASSWORD": s.smtp_password, "TEST_SECRETS_TWILIO_TOKEN": s.twilio_token}
    policy = folder / "policy.yaml"
    policy.write_text("admins: [secrets-admin]\n")
    evidence = Evidence()
    sim: RunningKubesim = await asyncio.to_thread(start_kubesim, 0.1, s.kube_token)
    try:
        with (
            smtp_server(cert, key, s.smtp_password) as (mailbox, smtp_port),
            slack_with_token(s.slack_token) as slack,
            FakeTwilio(auth_token=s.twilio_token) as twilio,
            FakeJenkins(username="ci", api_token=s.jenkins_token) as jenkins,
            capture_logs() as logs,
        ):
            jenkins.jobs["build"] = JenkinsJob(queue_polls=1, build_polls=1)
            (folder / "slack-url").write_text(slack.webhook_url + "\n")
            os.environ.update(env)
            notifications = NotificationSettings.model_validate(
                {
                    "email": {"host": "127.0.0.1", "port": smtp_port, "starttls": True, "ca_file": str(cert),
                              "username": SMTP_USER, "password": {"env": "TEST_SECRETS_SMTP_PASSWORD"},
                              "from": "Gennaker <cd@example.com>"},
                    "slack": {"webhook_url": {"file": str(folder / "slack-url")}, "allow_address_urls": False},
                    "sms": {"base_url": twilio.url, "account_sid": twilio.account_sid, "from": "+15005550006",
                            "auth_token": {"env": "TEST_SECRETS_TWILIO_TOKEN"}},
                }
            )  # fmt: skip
            config = WorkerConfig(
                temporal_address=temporal_server.address,
                task_queue=QUEUE,
                database_url=store.database_url,
                kubernetes=[
                    KubernetesAccount(name=KUBE, kubeconfig=sim.kubeconfig_path, namespaces=["default"], simulated=True)
                ],
                registries=[docker_rig.registry.account(REGISTRY, docker_host=docker_rig.engine.host)],
                notifications=notifications,
                egress=TEST_EGRESS,
                bake=TEST_BAKE,
                jenkins=[
                    JenkinsMaster.model_validate(
                        {"name": "ci", "url": jenkins.url, "username": "ci", "api_token": {"file": str(token_file)}}
                    )
                ],
                health_interval_seconds=60,
                temporal_ui_url="http://ui.example:8233",
            )
            # The account directory must live on the session worker's queue (other modules report to
            # it after this one is gone); make sure it exists there before this worker reports.
            await report_once(client, "test-secrets-bootstrap", [], DIRECTORY_QUEUE)
            settings = GatewaySettings(
                temporal_address=temporal_server.address,
                task_queue=QUEUE,
                database_url=store.database_url,
                auth_policy_file=policy,
            )
            app = create_app(settings, client=client, store=store)
            headers = {"Authorization": f"Bearer {api_token(store)}"}
            stop = asyncio.Event()
            worker_task = asyncio.create_task(run_worker(config, stop, store=store, client=client))
            try:
                async with (
                    app.router.lifespan_context(app),
                    httpx.AsyncClient(
                        transport=httpx.ASGITransport(app=app), base_url="http://gw", headers=headers, timeout=30
                    ) as api,
                ):
                    await run_pipelines(api, client, docker_rig, evidence, slack, mailbox, twilio, jenkins)
            finally:
                stop.set()
                await asyncio.wait_for(worker_task, 30)
                for sig in (signal.SIGTERM, signal.SIGINT):  # run_worker took them over for its graceful stop
                    asyncio.get_running_loop().remove_signal_handler(sig)
                for name in env:
                    os.environ.pop(name, None)
            evidence.logs = list(logs.lines)
    finally:
        await asyncio.to_thread(sim.stop)
    yield evidence


async def run_pipelines(
    api: httpx.AsyncClient,
    client: Client,
    rig: DockerRig,
    evidence: Evidence,
    slack: FakeSlack,
    mailbox: Mailbox,
    twilio: FakeTwilio,
    jenkins: FakeJenkins,
) -> None:
    async def accounts_reported() -> bool:
        answer = await api.get("/accounts")
        assert answer.status_code == 200, answer.text
        names = {a["name"]: a for a in answer.json()}
        return all(names.get(n, {}).get("healthy") for n in (REGISTRY, KUBE))

    await assert_eventually(accounts_reported, what="the worker to report healthy accounts", timeout=20, interval=0.1)

    async def submit(pipeline: dict[str, Any]) -> str:
        answer = await api.post("/executions", json={"pipeline": pipeline, "parameters": {"marker": MARKER}})
        assert answer.status_code == 202, answer.text
        return str(answer.json()["id"])

    release = await submit(release_pipeline(rig.context(files={"index.html": "vault"})))
    broken = await submit(failing_pipeline())

    async def state(execution: str) -> dict[str, Any]:
        answer = await api.get(f"/executions/{execution}")
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    async def waiting() -> bool:
        current = await state(release)
        assert current["status"] == "RUNNING", current
        return any(st["refId"] == "approve" and st.get("waitingForJudgment") for st in current["stages"])

    await assert_eventually(waiting, what="the release to wait for its judgment", timeout=40, interval=0.1)
    judged = await api.post(
        f"/executions/{release}/stages/approve/judgment", json={"judgmentStatus": "continue", "input": "ship"}
    )
    assert judged.status_code == 200, judged.text

    async def finished(execution: str) -> dict[str, Any] | None:
        current = await state(execution)
        return current if current.get("endTime") and current["status"] != "RUNNING" else None

    done = await assert_eventually(lambda: finished(release), what="the release to finish", timeout=40, interval=0.1)
    failed = await assert_eventually(
        lambda: finished(broken), what="the broken pipeline to finish", timeout=20, interval=0.1
    )
    assert done["status"] == "SUCCEEDED", done.get("failure")
    assert failed["status"] == "TERMINAL" and "no-such-job" in str(failed.get("failure")), failed
    for execution in (release, broken):
        await assert_eventually(
            lambda e=execution: _closed(client, e), what=f"{execution} to close", timeout=15, interval=0.1
        )
    evidence.states = {release: done, broken: failed}
    evidence.delivered = {
        "email": len(mailbox.messages),
        "slack": len(slack.received("POST")),
        "sms": len(twilio.received("POST")),
        "jenkins": len([r for r in jenkins.triggered() if r.path.startswith("/job/build/")]),
    }
    await gather_histories(client, [release, broken], evidence)
    for execution in evidence.executions:
        answer = await api.get(f"/executions/{execution}")
        assert answer.status_code == 200, answer.text
        evidence.api[f"GET /executions/{execution}"] = answer.text
    accounts = await api.get("/accounts")
    assert accounts.status_code == 200, accounts.text
    evidence.api["GET /accounts"] = accounts.text


async def _closed(client: Client, execution: str) -> bool:
    description = await client.get_workflow_handle(execution).describe()
    return description.close_time is not None


def leaks(secrets_: Secrets, haystacks: dict[str, str] | dict[str, bytes]) -> list[str]:
    found = []
    for what, value in secrets_.values().items():
        for name, text in haystacks.items():
            needle: str | bytes = value.encode() if isinstance(text, bytes) else value
            if needle in text:  # type: ignore[operator]
                found.append(f"{what} found in {name}")
    return found


# ---- the checks -----------------------------------------------------------------------------------


def test_the_runs_used_every_credential(evidence: Evidence) -> None:
    """Not vacuous: every secret-holding service was really used (and the child pipeline ran)."""
    assert evidence.delivered["email"] >= 3, evidence.delivered  # starting, judgment.waiting, complete…
    assert evidence.delivered["slack"] >= 4, evidence.delivered  # … plus the child's complete
    assert evidence.delivered["sms"] >= 3, evidence.delivered
    assert evidence.delivered["jenkins"] == 1, evidence.delivered
    release = next(s for s in evidence.states.values() if s["pipeline"] == "release")
    outputs = {st["refId"]: st["outputs"] for st in release["stages"]}
    assert outputs["bake"]["image"].startswith("127.0.0.1:") and outputs["deploy"]["serverGroup"]
    assert outputs["approve"]["judgedBy"] == "secrets-admin"
    assert any(".smoke" in e for e in evidence.executions), evidence.executions  # the child's history too
    assert not any("notificationFailures" in s and s["notificationFailures"] for s in evidence.states.values())


def test_marker_parameter_is_found_so_the_grep_can_fail(evidence: Evidence, secret_values: Secrets) -> None:
    marker = Secrets(MARKER, MARKER, MARKER, MARKER, MARKER, MARKER)
    assert leaks(marker, evidence.decoded), "the decoded-history grep finds nothing, not even the marker"
    assert leaks(marker, evidence.queries) and leaks(marker, evidence.api)
    # …and it is encrypted at rest: the stored histories hold only ciphertext of it.
    assert not leaks(marker, evidence.raw)


def test_no_secret_in_stored_histories(evidence: Evidence, secret_values: Secrets) -> None:
    assert evidence.raw and not leaks(secret_values, evidence.raw)


def test_no_secret_in_decoded_histories(evidence: Evidence, secret_values: Secrets) -> None:
    assert evidence.decoded and not leaks(secret_values, evidence.decoded)


def test_no_secret_in_query_state(evidence: Evidence, secret_values: Secrets) -> None:
    assert len(evidence.queries) >= 3 and not leaks(secret_values, evidence.queries)


def log_leaks(evidence: Evidence, secret_values: Secrets, *, httpx_only: bool) -> list[str]:
    return [
        f"{problem}: {line[:300]}"
        for i, line in enumerate(evidence.logs)
        if line.startswith("httpx ") == httpx_only
        for problem in leaks(secret_values, {f"log line {i}": line})
    ]


def test_no_secret_in_logs(evidence: Evidence, secret_values: Secrets) -> None:
    """Worker, activities, gateway, SDK, kubernetes/docker clients: everything but httpx's request log."""
    assert len(evidence.logs) > 50, "the log capture saw almost nothing"
    found = log_leaks(evidence, secret_values, httpx_only=False)
    assert not found, "\n".join(found)


def test_no_secret_in_http_client_request_logs(evidence: Evidence, secret_values: Secrets) -> None:
    found = log_leaks(evidence, secret_values, httpx_only=True)
    assert not found, "\n".join(found)


def test_no_secret_in_gateway_answers(evidence: Evidence, secret_values: Secrets) -> None:
    assert "GET /accounts" in evidence.api and not leaks(secret_values, evidence.api)
