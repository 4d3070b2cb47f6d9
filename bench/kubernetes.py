"""Kubernetes stages against kubesim: how fast a deploy notices readiness, and what a stage costs.

- detection latency: a deploy (strategy none, 2 replicas) waits for its ReplicaSet by watching; a
  separate watch in this process notes when the last pod turns Ready, and the figure is the deploy
  stage's end time minus that moment (target < 1 s). Median and max over `rounds` deploys.
- resize stage overhead: a 20-stage chain of resizeServerGroup stages that resize a ready server
  group to the size it already has, so Kubernetes has nothing to do and the time per stage is
  Gennaker's own cost (describe, resize and watch activities, workflow tasks). Median per stage.

Everything runs in this process against one Temporal dev server and one kubesim (ready delay 0.3 s).
Run: `python -m bench kubernetes`; the JSON line comes last.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from temporalio.client import Client
from temporalio.worker import Worker

import workflows.stages.deploy
import workflows.stages.servergroups  # noqa: F401  (register the stages)
from activities.accounts import KubernetesAccount
from activities.kubernetes import account_activities
from activities.kubernetes.client import KubernetesAccountClient
from activities.kubernetes.servergroups import CLUSTER_LABEL
from bench import shutdown
from bench.kube_watch import EventStream
from bench.stack import dev_server
from core.store import PipelineStore
from core.temporal import connect
from kubesim.testing import start_kubesim
from workers.runner import pipeline_worker
from workflows.model import parse_pipeline
from workflows.search import initial_attributes
from workflows.state import PIPELINE_WORKFLOW, ExecutionResult, ExecutionState, PipelineRunInput

QUEUE = "gennaker-bench-k8s"
NAMESPACE = "bench"


async def run(client: Client, account: str, stages: list[dict[str, Any]]) -> ExecutionState:
    for i, stage in enumerate(stages):
        stage.update(account=account, namespace=NAMESPACE, requisiteStageRefIds=[stages[i - 1]["refId"]] if i else [])
    spec = parse_pipeline({"application": "bench", "name": "k8s", "stages": stages})
    handle = await client.start_workflow(
        PIPELINE_WORKFLOW,
        PipelineRunInput(pipeline=spec),
        id=f"bench-k8s-{uuid.uuid4().hex}",
        task_queue=QUEUE,
        result_type=ExecutionResult,
        search_attributes=initial_attributes("bench", "k8s", "bench"),
    )
    await handle.result()
    state: ExecutionState = await handle.query("state", result_type=ExecutionState)
    return state


def last_ready_at(api: Any, cluster: str, replicas: int, found: list[float], started: threading.Event) -> None:
    """Watch the cluster's pods; note the wall time when `replicas` of them are Ready."""
    ready: set[str] = set()
    stream = EventStream()
    started.set()
    for event in stream.events(
        k8s.CoreV1Api(api).list_namespaced_pod,
        NAMESPACE,
        label_selector=f"{CLUSTER_LABEL}={cluster}",
        timeout_seconds=60,
    ):
        pod = event["object"]
        conditions = (pod.status.conditions if pod.status else None) or []
        if any(c.type == "Ready" and c.status == "True" for c in conditions):
            ready.add(pod.metadata.name)
        if len(ready) >= replicas:
            found.append(time.time())
            stream.stop()
            return


def deploy_stage(stack: str, **extra: Any) -> dict[str, Any]:
    return {
        "refId": "deploy",
        "type": "deploy",
        "stack": stack,
        "container": {"image": "bench/web:1"},
        "capacity": {"min": 2, "max": 2, "desired": 2},
        "waitForHealthySec": 60,
        **extra,
    }


async def measure(client: Client, account: str, api: Any, rounds: int) -> dict[str, float]:
    latencies = []
    for _ in range(rounds + 1):  # the first round warms up imports and caches
        stack = "b" + uuid.uuid4().hex[:6]
        found: list[float] = []
        started = threading.Event()
        watcher = threading.Thread(target=last_ready_at, args=(api, f"bench-{stack}", 2, found, started))
        watcher.start()
        started.wait()
        state = await run(client, account, [deploy_stage(stack)])
        await asyncio.to_thread(watcher.join, 10)
        end = state.stage("deploy").endTime  # type: ignore[union-attr]
        if found and end is not None:
            latencies.append(end.timestamp() - found[0])
    latencies = latencies[1:]
    stack = "r" + uuid.uuid4().hex[:6]
    await run(client, account, [deploy_stage(stack)])
    resize = {
        "type": "resizeServerGroup",
        "cluster": f"bench-{stack}",
        "resizeType": "exact",
        "capacity": {"min": 2, "max": 2, "desired": 2},
    }
    per_stage = []
    for _ in range(3):
        began = time.perf_counter()
        await run(client, account, [{"refId": f"r{i}", **resize} for i in range(20)])
        per_stage.append((time.perf_counter() - began) / 20)
    return {
        "detection_latency_median_s": statistics.median(latencies),
        "detection_latency_max_s": max(latencies),
        "resize_stage_overhead_s": statistics.median(per_stage),
    }


async def kubernetes_benchmark(rounds: int = 5) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="gennaker-bench-k8s-") as tmp, dev_server(Path(tmp)) as server:
        sim = start_kubesim(ready_delay=0.3, directory=Path(tmp))
        store = PipelineStore(f"sqlite:///{tmp}/store.db")
        api = sim.new_client()
        k8s.CoreV1Api(api).create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=NAMESPACE)))
        account = KubernetesAccount(
            name="bench", kubeconfig=sim.kubeconfig_path, namespaces=[NAMESPACE], simulated=True
        )
        kube = KubernetesAccountClient(account)
        try:
            client = await connect(server.address)
            pipelines = pipeline_worker(client, store, task_queue=QUEUE)
            accounts = Worker(
                client,
                task_queue=account.queue,
                activities=account_activities(kube),
                activity_executor=ThreadPoolExecutor(max_workers=16),
            )
            async with pipelines, accounts:
                return await measure(client, account.name, api, rounds)
        finally:
            kube.close()
            store.close()
            sim.stop()


def main(rounds: int = 5) -> None:
    """Entry for `python -m bench kubernetes`: figures, then one JSON line."""
    figures = shutdown.run(kubernetes_benchmark(rounds))
    for key, value in figures.items():
        print(f"{key:>28}: {value:.4f}")
    print(json.dumps({key: round(value, 4) for key, value in figures.items()}), flush=True)
