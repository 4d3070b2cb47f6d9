"""The worker's egress policy on stages that make requests (issue 11 item 2).

A tenant's webhook stage used to reach the Temporal UI's HTTP API on loopback (judging and
terminating other applications' executions), the Temporal frontend and kubesim's admin API. Here a
worker with the dev stack's policy (stack/dev.DEV_EGRESS) plus one allow-listed URL prefix runs
webhook stages at each of those, at the cloud metadata address, at a DNS name that resolves to
127.0.0.1 and through a redirect: each ends TERMINAL with a message naming the egress policy, and
the allow-listed local server is reached.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

import workflows.stages.webhook  # noqa: F401  (registers `type: webhook`)
from activities.egress import EGRESS_DENIED, EgressDenied, EgressPolicy
from activities.jenkins import JenkinsActivities, JenkinsBuildRequest, JenkinsMaster
from activities.notify import NotificationRequest, NotificationSettings, NotifyActivities
from core.store import PipelineStore
from kubesim.testing import RunningKubesim, start_kubesim
from stack.dev import DEV_EGRESS
from tests.support.fake_services import FakeHttp, Reply
from tests.support.runner import Runner
from workers.config import WorkerConfig
from workers.devserver import TemporalDevServer, free_port
from workers.runner import pipeline_worker
from workflows.state import StageStatus

QUEUE = f"egress-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def http() -> Iterator[FakeHttp]:
    with FakeHttp() as fake:
        yield fake


@pytest.fixture(scope="module")
def temporal_with_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TemporalDevServer]:
    """A second dev server with its Web UI, as `gennaker dev` runs it: the UI's HTTP API is the target."""
    directory = tmp_path_factory.mktemp("egress-temporal")
    server = TemporalDevServer(
        db_file=directory / "t.db", port=free_port(), ui_port=free_port(), log_file=directory / "t.log"
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def kubesim() -> Iterator[RunningKubesim]:
    sim = start_kubesim()
    yield sim
    sim.stop()


def worker_policy(http: FakeHttp) -> EgressPolicy:
    """The dev stack's policy plus exactly one allow-listed prefix on the fake server."""
    return DEV_EGRESS.model_copy(update={"allow_url_prefixes": [http.url + "/allowed/"]})


@pytest.fixture(scope="module")
async def egress_worker(client: Client, store: PipelineStore, http: FakeHttp) -> AsyncIterator[None]:
    config = WorkerConfig(egress=worker_policy(http))
    async with pipeline_worker(client, store, task_queue=QUEUE, config=config):
        yield


def hook(url: str, **fields: Any) -> dict[str, Any]:
    return {"refId": "hook", "type": "webhook", "url": url, "method": "POST", **fields}


async def run(client: Client, stage: dict[str, Any]) -> Any:
    state = await Runner(client, QUEUE).run({"application": "appa", "name": "ssrf", "stages": [stage]})
    return state.stage("hook")


async def test_webhook_stages_cannot_reach_inward_services(
    client: Client,
    egress_worker: None,
    http: FakeHttp,
    temporal_with_ui: TemporalDevServer,
    kubesim: RunningKubesim,
) -> None:
    assert temporal_with_ui.ui_port is not None
    ui = f"http://127.0.0.1:{temporal_with_ui.ui_port}"
    http.route("GET", "/secret", Reply(200, {"leaked": True}))
    redirect_inward = http.route("POST", "/allowed/redirect", Reply(302, b"", {"Location": f"{http.url}/secret"}))
    redirect_metadata = http.route(
        "POST", "/allowed/metadata", Reply(307, b"", {"Location": "http://169.254.169.254/latest/meta-data/"})
    )
    allowed = http.route("POST", "/allowed/deploy", Reply(200, {"ok": True}))
    judgment = {"refId": "approve", "judgmentStatus": "continue", "user": "alice"}
    attempts = {
        "temporal ui api": hook(f"{ui}/api/v1/namespaces/default/workflows/appb.x/signal/judgment", payload=judgment),
        "temporal frontend": hook(f"http://{temporal_with_ui.address}/"),
        "kubesim admin": hook(f"{kubesim.admin_url}/faults", payload={"latency": 1}),
        "cloud metadata": hook("http://169.254.169.254/latest/meta-data/iam/security-credentials/"),
        "dns name to loopback": hook(http.url.replace("127.0.0.1", "localhost") + "/allowed/deploy"),
        "redirect to loopback": hook(redirect_inward),
        "redirect to metadata": hook(redirect_metadata),
    }
    states = await asyncio.gather(*(run(client, stage) for stage in attempts.values()), run(client, hook(allowed)))
    for (what, _), state in zip(attempts.items(), states, strict=False):
        assert state is not None and state.status is StageStatus.TERMINAL, (what, state)
        assert state.error is not None and "egress policy" in state.error.message, (what, state.error)
    assert states[-1] is not None and states[-1].status is StageStatus.SUCCEEDED, states[-1]
    assert len(http.received("POST", "/allowed/deploy")) == 1  # the allowed call, not the localhost one
    assert http.received("GET", "/secret") == []  # the redirect was refused before it was followed


def test_the_dev_stack_policy_refuses_its_own_services() -> None:
    for url in ("http://127.0.0.1:7233/", "http://127.0.0.1:8233/api/v1/namespaces", "http://[::1]:8084/"):
        with pytest.raises(EgressDenied, match="egress policy"):
            DEV_EGRESS.check_url(url)


def test_notification_webhooks_obey_the_policy() -> None:
    notify = NotifyActivities(NotificationSettings(), None, egress=EgressPolicy())
    request = NotificationRequest.model_validate(
        {
            "notificationId": "n1",
            "channel": "webhook",
            "address": "http://169.254.169.254/latest/meta-data/?token=hunter2",
            "event": "pipeline.failed",
            "application": "appa",
            "pipeline": "p",
            "executionId": "e1",
        }
    )
    with pytest.raises(EgressDenied) as caught:
        ActivityEnvironment().run(notify.send_notification, request)
    assert caught.value.type == EGRESS_DENIED and "hunter2" not in caught.value.message


def test_jenkins_answers_cannot_steer_the_worker_inward(http: FakeHttp) -> None:
    """The master's own origin is the operator's choice; where its answers point is not."""
    http.route("GET", "/jenkins/crumbIssuer/api/json", Reply(404, b""))
    http.route(
        "POST",
        "/jenkins/job/build/build",
        Reply(201, b"", {"Location": "http://169.254.169.254/queue/item/1/"}),
    )
    master = JenkinsMaster(name="ci", url=f"{http.url}/jenkins/")  # type: ignore[arg-type]
    jenkins = JenkinsActivities([master], EgressPolicy())
    with pytest.raises(EgressDenied, match="egress policy"):
        ActivityEnvironment().run(jenkins.run_jenkins_build, JenkinsBuildRequest(master="ci", job="build"))
    assert len(http.received("POST", "/jenkins/job/build/build")) == 1


def test_worker_config_reads_an_egress_section(tmp_path: Path) -> None:
    config_file = tmp_path / "gennaker.yaml"
    config_file.write_text(
        "egress:\n  allow_hosts: [jenkins.internal]\n  allow_cidrs: [10.20.0.0/16]\n"
        "  allow_url_prefixes: ['http://127.0.0.1:9000/hooks/']\n"
    )
    config = WorkerConfig.load(config_file)
    assert config.egress.allow_hosts == ["jenkins.internal"]
    assert config.egress.check_url("http://127.0.0.1:9000/hooks/x").host == "127.0.0.1"
    with pytest.raises(EgressDenied):
        config.egress.check_url("http://127.0.0.1:9000/other")
