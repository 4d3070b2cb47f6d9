"""GET /applications/{app}/dora and `gennaker metrics dora` over real executions: deploys on kubesim
through PipelineWorkflow on the Temporal dev server, read back through visibility and queries."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client
from typer.testing import CliRunner

import workflows.stages.deploy  # noqa: F401  (registers `deploy`)
from api.app import create_app
from api.settings import GatewaySettings
from core.store import PipelineStore
from core.store.tokens import TokenStore
from tests.support.kube_rig import KubeRig, deploy_stage, kube_fixture  # noqa: F401
from tests.support.runner import Runner, pipeline
from workers.cli import app as cli

APP = f"dora-{uuid.uuid4().hex[:6]}"
POLICY = f"""
applications:
  {APP}:
    READ: [group:viewers]
"""


@dataclass
class Gateway:
    http: httpx.AsyncClient
    viewer: dict[str, str]
    stranger: dict[str, str]


@pytest.fixture(scope="module")
async def gateway(
    task_queue: str, worker: None, client: Client, store: PipelineStore, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Gateway]:
    policy: Path = tmp_path_factory.mktemp("dora") / "policy.yaml"
    policy.write_text(POLICY)
    settings = GatewaySettings(task_queue=task_queue, database_url=store.database_url, auth_policy_file=policy)
    tokens = TokenStore(store.database_url)
    viewer, _ = tokens.create("vera", ["viewers"], "dora-test")
    stranger, _ = tokens.create("mallory", ["other-team"], "dora-test")
    tokens.close()
    app = create_app(settings, client=client, store=store)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://gennaker.test") as http,
    ):
        yield Gateway(http, {"Authorization": f"Bearer {viewer}"}, {"Authorization": f"Bearer {stranger}"})


async def test_bad_windows_and_limits_are_4xx_naming_the_field(gateway: Gateway) -> None:
    for since in ("5y", "0d", "367d", "thirty", "9999999d"):
        response = await gateway.http.get(f"/applications/{APP}/dora", params={"since": since}, headers=gateway.viewer)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["field"].endswith("since"), response.json()
    response = await gateway.http.get(f"/applications/{APP}/dora", params={"limit": 0}, headers=gateway.viewer)
    assert response.status_code == 422 and response.json()["error"]["field"].endswith("limit")


async def test_another_team_cannot_read_the_figures(gateway: Gateway) -> None:
    response = await gateway.http.get(f"/applications/{APP}/dora", headers=gateway.stranger)
    assert response.status_code == 403, response.text
    assert (await gateway.http.get(f"/applications/{APP}/dora")).status_code == 401


async def test_figures_from_a_good_and_a_rolled_back_deploy(gateway: Gateway, runner: Runner, kube: KubeRig) -> None:
    stack = "d" + uuid.uuid4().hex[:5]
    good = await runner.run(pipeline(deploy_stage(kube, stack=stack), application=APP, name="release"), timeout=60)
    assert good.stage("deploy") is not None and good.stage("deploy").status == "SUCCEEDED"  # type: ignore[union-attr]
    bad = await runner.run(
        pipeline(
            deploy_stage(
                kube,
                stack=stack,
                strategy="redblack",
                maxRestarts=1,
                waitForHealthySec=8,
                container=kube.container(crashloop=True),
            ),
            application=APP,
            name="release",
        ),
        timeout=60,
    )
    assert bad.stage("deploy") is not None and bad.stage("deploy").status == "TERMINAL"  # type: ignore[union-attr]

    response = await gateway.http.get(f"/applications/{APP}/dora", params={"since": "1d"}, headers=gateway.viewer)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["executionsScanned"] == 2 and not report["truncated"] and report["unreadable"] == 0
    overall = report["overall"]
    assert (overall["deployments"], overall["attempts"], overall["failedChanges"]) == (1, 2, 1)
    assert overall["changeFailureRate"] == 0.5 and overall["unrestored"] == 1
    assert overall["leadTimeSeconds"] is not None and overall["leadTimeSeconds"] > 0
    # The failed deploy has no outputs: its account came from the execution's input.
    (account,) = report["accounts"]
    assert account["account"] == kube.account.name and account["attempts"] == 2

    # The same figures are gauges on /metrics.
    metrics = (await gateway.http.get("/metrics")).text
    assert f'gennaker_dora_change_failure_ratio{{account="*",application="{APP}",window="1d"}} 0.5' in metrics


def test_cli_rejects_a_bad_window_without_calling_the_gateway() -> None:
    arguments = ["metrics", "dora", "--app", APP, "--since", "5y", "--api", "http://127.0.0.1:9"]
    result = CliRunner().invoke(cli, arguments)
    assert result.exit_code == 2, result.output
    assert "since" in result.output
