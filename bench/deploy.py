"""A 3-replica red/black deploy end to end, and the time from the new server group's last pod Ready
to traffic switched to it.

The stack: a Temporal dev server and `gennaker worker` (its own process, as deployed) with one
Kubernetes account: kubesim (ready delay 0.3 s, in this process) or, when GENNAKER_TEST_KUBECONFIG is
set, that real cluster (GENNAKER_TEST_KUBE_CONTEXT optional; a fresh namespace, deleted at the end;
pods run GENNAKER_TEST_IMAGE, default busybox:1.36). Pipelines are started with the Temporal client.

A Service selects `lb.gennaker.io/<name>`; a first deploy makes v000 serve. Then each round is a
red/black deploy of the next version. Two watches in this process note (wall clock, both here):
- last Ready: when the new server group has `replicas` Ready pods (pod watch);
- traffic switched: when the Service's Endpoints list exactly `replicas` ready addresses, all pods of
  the new server group (old ones gone) (Endpoints watch).
ready_to_traffic_ms = switched - last Ready (target < 1 s); ready_to_new_serving_ms = when every new
pod was in the Endpoints (old ones possibly still there) - last Ready; deploy_s = pipeline wall time.

Where the time goes (`ready_to_traffic_steps_ms`, medians, each from last Ready): the workflow's
history says when the healthy wait's activity completed (`healthy_seen`), when the first traffic
activity was scheduled (`switch_scheduled`, after a workflow task) and picked up by the worker
(`switch_started`), and when the last one completed (`switch_done`). Temporal's event times and this
process's clock are the same machine's clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from temporalio.client import Client

from activities.kubernetes.servergroups import SERVER_GROUP_LABEL
from bench.kube_watch import EventStream
from bench.stack import dev_server, percentile, spawn_gennaker, stop_process
from core.temporal import connect
from kubesim.testing import start_kubesim
from workflows.model import parse_pipeline
from workflows.search import initial_attributes
from workflows.state import PIPELINE_WORKFLOW, ExecutionResult, PipelineRunInput

REPLICAS = 3
WATCH_SECONDS = 120


@dataclass
class Cluster:
    api: Any
    namespace: str
    kubeconfig: Path
    context: str | None
    image: str


@contextlib.contextmanager
def cluster(directory: Path) -> Any:
    real = os.environ.get("GENNAKER_TEST_KUBECONFIG")
    sim = None
    if real:
        kubeconfig, context = Path(real), os.environ.get("GENNAKER_TEST_KUBE_CONTEXT")
    else:
        sim = start_kubesim(ready_delay=0.3, directory=directory)
        kubeconfig, context = sim.kubeconfig_path, None
    api = k8s_config.new_client_from_config(config_file=str(kubeconfig), context=context)  # type: ignore[no-untyped-call]
    namespace = f"bench-{uuid.uuid4().hex[:6]}"
    core = k8s.CoreV1Api(api)
    core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=namespace)))
    image = os.environ.get("GENNAKER_TEST_IMAGE", "busybox:1.36") if real else "bench/web:1"
    try:
        yield Cluster(api, namespace, kubeconfig, context, image)
    finally:
        if sim is not None:
            sim.stop()
        else:
            with contextlib.suppress(Exception):
                core.delete_namespace(namespace)
        api.close()


class Observer:
    """Watches one red/black switch: the new group's last pod Ready, and the Service's Endpoints."""

    def __init__(self, kube: Cluster, service: str, server_group: str) -> None:
        self.kube, self.service, self.server_group = kube, service, server_group
        self.last_ready: float | None = None
        self.new_serving: float | None = None  # every new pod in the Endpoints (old ones may still be)
        self.switched: float | None = None
        self._threads = [
            threading.Thread(target=self._pods, daemon=True),
            threading.Thread(target=self._endpoints, daemon=True),
        ]
        self._started = threading.Barrier(3)

    def __enter__(self) -> Observer:
        for thread in self._threads:
            thread.start()
        self._started.wait(30)
        return self

    def __exit__(self, error: type[BaseException] | None, *_: object) -> None:
        if error is not None:  # the round failed or was cancelled: no switch to wait for (daemon threads)
            return
        for thread in self._threads:
            thread.join(WATCH_SECONDS)

    def _pods(self) -> None:
        ready: set[str] = set()
        stream = EventStream()
        core = k8s.CoreV1Api(self.kube.api)
        selector = f"{SERVER_GROUP_LABEL}={self.server_group}"
        self._started.wait(30)
        for event in stream.events(
            core.list_namespaced_pod, self.kube.namespace, label_selector=selector, timeout_seconds=WATCH_SECONDS
        ):
            pod = event["object"]
            conditions = (pod.status.conditions if pod.status else None) or []
            if any(c.type == "Ready" and c.status == "True" for c in conditions):
                ready.add(pod.metadata.name)
            else:
                ready.discard(pod.metadata.name)
            if len(ready) >= REPLICAS:
                self.last_ready = time.time()
                stream.stop()

    def _endpoints(self) -> None:
        stream = EventStream()
        core = k8s.CoreV1Api(self.kube.api)
        self._started.wait(30)
        for event in stream.events(
            core.list_namespaced_endpoints,
            self.kube.namespace,
            field_selector=f"metadata.name={self.service}",
            timeout_seconds=WATCH_SECONDS,
        ):
            endpoints = event["object"]
            names = [
                a.target_ref.name
                for s in endpoints.subsets or []
                for a in s.addresses or []
                if a.target_ref is not None
            ]
            new = [n for n in names if n.startswith(f"{self.server_group}-")]
            if self.new_serving is None and len(new) == REPLICAS:
                self.new_serving = time.time()
            if len(new) == len(names) == REPLICAS:
                self.switched = time.time()
                stream.stop()


@contextlib.asynccontextmanager
async def worker_for(kube: Cluster, directory: Path) -> AsyncIterator[tuple[Client, str]]:
    with dev_server(directory) as server:
        account = f"bench{uuid.uuid4().hex[:4]}"
        config = directory / "gennaker.yaml"
        entry: dict[str, Any] = {
            "name": account,
            "kubeconfig": str(kube.kubeconfig),
            "namespaces": [kube.namespace],
            "simulated": not os.environ.get("GENNAKER_TEST_KUBECONFIG"),
        }
        if kube.context:
            entry["context"] = kube.context
        config.write_text(
            yaml.safe_dump(
                {
                    "temporal_address": server.address,
                    "database_url": f"sqlite:///{directory / 'gennaker.db'}",
                    "task_queue": "gennaker-bench-deploy",
                    "kubernetes": [entry],
                }
            )
        )
        log = directory / "worker.log"
        worker = spawn_gennaker(["worker", "--config", str(config)], log)
        try:
            yield await connect(server.address), account
        finally:
            await asyncio.to_thread(stop_process, worker)


HEALTHY_ACTIVITY = "waitServerGroupHealthy"
TRAFFIC_ACTIVITIES = ("setServerGroupTraffic", "switchServerGroupTraffic")


async def switch_steps(client: Client, workflow_id: str, last_ready: float) -> dict[str, float]:
    """Milliseconds from last Ready to each step of the switch, from the workflow's history."""
    scheduled: dict[int, tuple[str, float]] = {}
    started: dict[str, list[float]] = {}
    completed: dict[str, list[float]] = {}
    async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
        at = event.event_time.ToDatetime(tzinfo=UTC).timestamp()
        if event.HasField("activity_task_scheduled_event_attributes"):
            scheduled[event.event_id] = (event.activity_task_scheduled_event_attributes.activity_type.name, at)
        elif event.HasField("activity_task_started_event_attributes"):
            name, _ = scheduled[event.activity_task_started_event_attributes.scheduled_event_id]
            started.setdefault(name, []).append(at)
        elif event.HasField("activity_task_completed_event_attributes"):
            name, _ = scheduled[event.activity_task_completed_event_attributes.scheduled_event_id]
            completed.setdefault(name, []).append(at)
    traffic_scheduled = [at for name, at in scheduled.values() if name in TRAFFIC_ACTIVITIES]
    traffic_started = [at for name in TRAFFIC_ACTIVITIES for at in started.get(name, [])]
    traffic_done = [at for name in TRAFFIC_ACTIVITIES for at in completed.get(name, [])]
    steps = {
        "healthy_seen": max(completed.get(HEALTHY_ACTIVITY, [last_ready])),
        "switch_scheduled": min(traffic_scheduled, default=last_ready),
        "switch_started": min(traffic_started, default=last_ready),
        "switch_done": max(traffic_done, default=last_ready),
    }
    return {key: (at - last_ready) * 1000 for key, at in steps.items()}


async def run_deploy(
    client: Client, account: str, kube: Cluster, stack: str, service: str, strategy: str
) -> tuple[float, str]:
    spec = parse_pipeline(
        {
            "application": "bench",
            "name": "deploy",
            "stages": [
                {
                    "refId": "deploy",
                    "type": "deploy",
                    "account": account,
                    "namespace": kube.namespace,
                    "stack": stack,
                    "strategy": strategy,
                    "loadBalancers": [service],
                    "container": {"image": kube.image, "command": ["sh", "-c", "sleep 3600"]}
                    if not kube.image.startswith("bench/")
                    else {"image": kube.image},
                    "capacity": {"min": REPLICAS, "max": REPLICAS, "desired": REPLICAS},
                    "waitForHealthySec": 120,
                }
            ],
        }
    )
    started = time.perf_counter()
    workflow_id = f"bench-deploy-{uuid.uuid4().hex}"
    result: ExecutionResult = await client.execute_workflow(
        PIPELINE_WORKFLOW,
        PipelineRunInput(pipeline=spec),
        id=workflow_id,
        task_queue="gennaker-bench-deploy",
        result_type=ExecutionResult,
        search_attributes=initial_attributes("bench", "deploy", "bench"),
    )
    if result.status.value != "SUCCEEDED":
        raise RuntimeError(f"deploy {strategy} ended {result.status.value}: {result.outputs}")
    return time.perf_counter() - started, workflow_id


async def deploy_benchmark(rounds: int = 3) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="gennaker-bench-deploy-") as tmp, cluster(Path(tmp)) as kube:
        stack = "rb" + uuid.uuid4().hex[:4]
        service = f"bench-{stack}"
        k8s.CoreV1Api(kube.api).create_namespaced_service(
            kube.namespace,
            k8s.V1Service(
                metadata=k8s.V1ObjectMeta(name=service),
                spec=k8s.V1ServiceSpec(
                    selector={f"lb.gennaker.io/{service}": "true"},
                    ports=[k8s.V1ServicePort(port=80, target_port=8080)],
                ),
            ),
        )
        async with worker_for(kube, Path(tmp)) as (client, account):
            await run_deploy(client, account, kube, stack, service, "none")  # v000 serves; also warms up
            deploys, switches, serving = [], [], []
            steps: dict[str, list[float]] = {}
            for version in range(1, rounds + 1):
                with Observer(kube, service, f"bench-{stack}-v{version:03d}") as seen:
                    took, workflow_id = await run_deploy(client, account, kube, stack, service, "redblack")
                    deploys.append(took)
                if seen.last_ready is None or seen.switched is None:
                    raise RuntimeError(f"round {version}: last ready {seen.last_ready}, switched {seen.switched}")
                switches.append((seen.switched - seen.last_ready) * 1000)
                serving.append(((seen.new_serving or seen.switched) - seen.last_ready) * 1000)
                for key, ms in (await switch_steps(client, workflow_id, seen.last_ready)).items():
                    steps.setdefault(key, []).append(ms)
    return {
        "cluster": "real" if os.environ.get("GENNAKER_TEST_KUBECONFIG") else "kubesim",
        "replicas": REPLICAS,
        "rounds": rounds,
        "ready_to_traffic_ms": statistics.median(switches),
        "ready_to_traffic_max_ms": max(switches),
        "ready_to_traffic_p99_ms": percentile(switches, 99),
        "ready_to_new_serving_ms": statistics.median(serving),
        "ready_to_traffic_steps_ms": {key: round(statistics.median(ms), 1) for key, ms in steps.items()},
        "deploy_s": statistics.median(deploys),
    }
