"""A real Prometheus (Debian's `prometheus`) scrapes a running stack, and the series are queried
through its HTTP API: the gateway (uvicorn on a loopback port) and a worker as its own process
(`python -m workers.main` with GENNAKER_METRICS_ADDRESS, exactly as deployed) on the session's
Temporal dev server, serving a kubesim Kubernetes account. Prometheus runs as our own process, on a free port, with a temporary TSDB,
and is stopped by its PID.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
import yaml
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

import workflows.stages.deploy  # noqa: F401  (registers `deploy`)
from api.app import create_app
from api.settings import GatewaySettings
from core.directory import read_directory
from core.store import PipelineStore
from tests.support.eventually import assert_eventually
from tests.support.fake_services import FakeHttp, Reply
from tests.support.kube_rig import KubeRig, deploy_stage, start_rig, stop_rig
from workers.devserver import TemporalDevServer, free_port

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = PROJECT_ROOT / "docs" / "grafana-dashboard.json"
# Series that exist only once something failed (the SDK creates a counter at its first increment;
# time to restore is undefined until a failed change was restored); this test's pipeline succeeds.
ONLY_AFTER_A_FAILURE = {"temporal_workflow_failed_total", "gennaker_dora_time_to_restore_seconds"}
QUEUE = f"prom-{uuid.uuid4().hex[:8]}"
APPLICATION = "obs"
USER = {"X-Gennaker-User": "alice"}


@dataclass
class Stack:
    gateway: httpx.AsyncClient
    prometheus: httpx.AsyncClient
    kube: KubeRig
    hooks: FakeHttp


def start_worker(
    directory: Path, temporal: str, database_url: str, metrics_port: int, kube: KubeRig
) -> subprocess.Popen[bytes]:
    config = directory / "worker.yaml"
    account = kube.account.model_dump(mode="json", exclude_none=True)
    config.write_text(
        yaml.safe_dump(
            {
                "temporal_address": temporal,
                "task_queue": QUEUE,
                "database_url": database_url,
                "kubernetes": [account],
                # The webhook notification's receiver listens on loopback (tests/support/worker_policy.py).
                "egress": {"allow_cidrs": ["127.0.0.0/8"]},
            }
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENNAKER_")}
    env |= {
        "GENNAKER_CONFIG": str(config),
        "GENNAKER_METRICS_ADDRESS": f"127.0.0.1:{metrics_port}",
        "GENNAKER_LOG_FORMAT": "json",
        "PYTHONPATH": str(PROJECT_ROOT),
    }
    if os.environ.get("GENNAKER_CODEC_KEYS_FILE"):
        env["GENNAKER_CODEC_KEYS_FILE"] = os.environ["GENNAKER_CODEC_KEYS_FILE"]
    log = (directory / "worker.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "workers.main"], cwd=directory, env=env, stdout=log, stderr=subprocess.STDOUT
    )


def start_prometheus(directory: Path, port: int, targets: dict[str, str]) -> subprocess.Popen[bytes]:
    binary = shutil.which("prometheus")
    assert binary, "Debian's prometheus is not installed: run scripts/setup-system.sh as root"
    config = directory / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
                "scrape_configs": [
                    {"job_name": job, "static_configs": [{"targets": [target]}]} for job, target in targets.items()
                ],
            }
        )
    )
    log = (directory / "prometheus.log").open("ab")
    return subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={directory / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(5)


@pytest.fixture(scope="module")
async def stack(
    temporal_server: TemporalDevServer, client: Client, store: PipelineStore, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    directory = tmp_path_factory.mktemp("prometheus")
    gateway_port, worker_port, prometheus_port = free_port(), free_port(), free_port()
    kube = await asyncio.to_thread(start_rig)
    hooks = FakeHttp().__enter__()
    worker = start_worker(directory, temporal_server.address, store.database_url, worker_port, kube)
    settings = GatewaySettings(task_queue=QUEUE, database_url=store.database_url, auth_disabled=True)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, client=client, store=store), host="127.0.0.1", port=gateway_port, log_level="warning"
        )
    )
    serving = asyncio.create_task(server.serve())
    prometheus = start_prometheus(
        directory, prometheus_port, {"gateway": f"127.0.0.1:{gateway_port}", "worker": f"127.0.0.1:{worker_port}"}
    )
    try:
        async with (
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway_port}", timeout=30) as gateway,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{prometheus_port}", timeout=10) as prom,
        ):

            async def worker_polls() -> bool:
                if worker.poll() is not None:
                    raise AssertionError((directory / "worker.log").read_text()[-4000:])
                request = DescribeTaskQueueRequest(
                    namespace=client.namespace,
                    task_queue=TaskQueue(name=QUEUE),
                    task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
                )
                return bool((await client.workflow_service.describe_task_queue(request)).pollers)

            await assert_eventually(worker_polls, what="the worker polls its queue", timeout=60, interval=0.2)

            async def account_reported() -> bool:
                # Polling is not reporting: the worker reports its accounts to the directory after it
                # starts, and a submission naming the account is refused until the memo shows it.
                return kube.account.name in (await read_directory(client)).known()

            await assert_eventually(
                account_reported, what=f"the directory knows account {kube.account.name}", timeout=60, interval=0.2
            )

            async def targets_up() -> bool:
                if prometheus.poll() is not None:
                    raise AssertionError((directory / "prometheus.log").read_text()[-4000:])
                try:
                    found = (await prom.get("/api/v1/targets")).json()["data"]["activeTargets"]
                except (httpx.TransportError, ValueError, KeyError):
                    return False
                return {t["labels"]["job"] for t in found if t["health"] == "up"} == {"gateway", "worker"}

            await assert_eventually(
                targets_up, what="Prometheus scrapes gateway and worker (up == 1)", timeout=60, interval=0.2
            )
            yield Stack(gateway, prom, kube, hooks)
    finally:
        stop(prometheus)
        stop(worker)
        server.should_exit = True
        await serving
        hooks.__exit__(None, None, None)
        await asyncio.to_thread(stop_rig, kube)


async def value(prom: httpx.AsyncClient, query: str) -> float | None:
    """The single value of an instant query through Prometheus' HTTP API, or None if no series."""
    body = (await prom.get("/api/v1/query", params={"query": query})).json()
    assert body["status"] == "success", body
    result = body["data"]["result"]
    return float(result[0]["value"][1]) if result else None


async def test_prometheus_scrapes_gateway_sdk_and_pipeline_series(stack: Stack) -> None:
    name = f"release-{uuid.uuid4().hex[:6]}"
    hook = stack.hooks.route("POST", "/deploys", Reply(200, {"ok": True}))
    spec = {
        "application": APPLICATION,
        "name": name,
        "notifications": [{"type": "webhook", "address": hook, "when": ["pipeline.complete"]}],
        "stages": [
            {"refId": "wait", "type": "wait", "waitTime": 0},
            deploy_stage(stack.kube, requisiteStageRefIds=["wait"], stack="p" + uuid.uuid4().hex[:5]),
            {"refId": "approve", "type": "manualJudgment", "requisiteStageRefIds": ["deploy"]},
        ],
    }
    started = await stack.gateway.post("/executions", json={"pipeline": spec}, headers=USER)
    assert started.status_code < 300, started.text
    execution_id = started.json()["id"]

    async def waiting_for_judgment() -> bool:
        state = (await stack.gateway.get(f"/executions/{execution_id}", headers=USER)).json()
        return any(s["refId"] == "approve" and s["waitingForJudgment"] for s in state["stages"])

    await assert_eventually(waiting_for_judgment, what="the judgment stage waits", timeout=60, interval=0.2)
    judged = await stack.gateway.post(
        f"/executions/{execution_id}/stages/approve/judgment", json={"judgmentStatus": "continue"}, headers=USER
    )
    assert judged.status_code < 300, judged.text

    async def succeeded() -> bool:
        state = (await stack.gateway.get(f"/executions/{execution_id}", headers=USER)).json()
        return bool(state["status"] == "SUCCEEDED")

    await assert_eventually(succeeded, what="the execution succeeds", timeout=60, interval=0.2)

    labels = f'application="{APPLICATION}",pipeline="{name}"'
    expectations = {
        # gateway (prometheus_client)
        f'sum(gennaker_executions_started_total{{job="gateway",{labels},trigger="manual"}})': 1,
        'sum(gennaker_http_requests_total{job="gateway",method="POST",route="/executions",status=~"2.."})': 1,
        'sum(gennaker_http_request_duration_seconds_count{job="gateway",route="/executions/{execution_id}"})': 1,
        # worker: ours through the workflow meter, and the SDK's own
        f'sum(gennaker_executions_finished_total{{job="worker",{labels},status="SUCCEEDED"}})': 1,
        'sum(gennaker_stage_duration_seconds_count{job="worker",stage_type="wait",status="SUCCEEDED"})': 1,
        'sum(gennaker_judgment_wait_seconds_count{job="worker",outcome="continue",via="update"})': 1,
        'sum(gennaker_deploys_total{job="worker",strategy="none",outcome="succeeded",rollback_reason="none"})': 1,
        'sum(gennaker_notifications_total{job="worker",channel="webhook",outcome="delivered"})': 1,
        f'min(gennaker_account_healthy{{job="worker",account="{stack.kube.account.name}",kind="kubernetes"}})': 1,
        'sum(temporal_workflow_completed_total{job="worker",workflow_type="PipelineWorkflow"})': 1,
        'sum(temporal_worker_task_slots_available{job="worker"})': 1,
    }
    for query, at_least in expectations.items():

        async def scraped(query: str = query, at_least: float = at_least) -> bool:
            found = await value(stack.prometheus, query)
            return found is not None and found >= at_least

        await assert_eventually(scraped, what=f"Prometheus answers {query} >= {at_least}", timeout=30, interval=0.2)

    # Exactly one start for this pipeline, and the histogram's buckets answer a quantile query.
    assert await value(stack.prometheus, f"sum(gennaker_executions_started_total{{{labels}}})") == 1
    p50 = await value(
        stack.prometheus,
        'histogram_quantile(0.5, sum by (le) (gennaker_stage_duration_seconds_bucket{job="worker",stage_type="wait"}))',
    )
    assert p50 is not None and p50 >= 0

    # Every series the shipped Grafana dashboard queries exists (DORA gauges once a report was made).
    dora = await stack.gateway.get(f"/applications/{APPLICATION}/dora", params={"since": "1d"}, headers=USER)
    assert dora.status_code == 200 and dora.json()["overall"]["deployments"] == 1, dora.text
    panels = json.loads(DASHBOARD.read_text())["panels"]
    used = {
        m for p in panels for t in p["targets"] for m in re.findall(r"\b((?:gennaker|temporal)_[a-z_]+)", t["expr"])
    }
    for series in sorted(used - ONLY_AFTER_A_FAILURE):

        async def present(series: str = series) -> bool:
            return bool(await value(stack.prometheus, f"count({series})"))

        await assert_eventually(
            present, what=f"the dashboard's series {series} is in Prometheus", timeout=30, interval=0.2
        )

    # Low cardinality: no series of either job carries the execution id in any label.
    body = (await stack.prometheus.get("/api/v1/series", params={"match[]": '{job=~"gateway|worker"}'})).json()
    assert body["data"], "no series at all"
    assert not [s for s in body["data"] if any(execution_id in str(v) for v in s.values())]
