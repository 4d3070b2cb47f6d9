"""A Kubernetes account for the server-group tests, and a worker serving its task queue.

By default each test module gets its own kubesim (HTTP, official client, ready delay 0.1 s). With
GENNAKER_TEST_KUBECONFIG set (and GENNAKER_TEST_KUBE_CONTEXT optionally), the same tests run
against that real cluster instead, each module in a fresh namespace deleted at the end; tests that
need kubesim's fault injection or image-tag conventions skip there (`rig.needs_kubesim()`).

The account worker is a plain temporalio Worker on the account's queue with the server-group
activities (`account_activities`) and ClusterReadWorkflow, running next to the session pipeline worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import Worker

from activities.accounts import KubernetesAccount, ProvidedAccount
from activities.kubernetes import account_activities
from activities.kubernetes.client import KubernetesAccountClient
from activities.kubernetes.health import check_kubernetes_account
from activities.kubernetes.servergroups import CLUSTER_LABEL, SERVER_GROUP_LABEL
from kubesim.testing import RunningKubesim, start_kubesim
from tests.support.accounts import report_and_wait
from tests.support.runner import DIRECTORY_QUEUE
from workers.reporting import report_once
from workers.runner import workflow_runner
from workflows.reads import ClusterReadWorkflow

REAL_KUBECONFIG = os.environ.get("GENNAKER_TEST_KUBECONFIG")
REPORT_INTERVAL = 30.0  # seconds, as `gennaker worker` reports by default
# On a real cluster: an image that idles, and the same image made to exit at once (a crash loop).
REAL_IMAGE = os.environ.get("GENNAKER_TEST_IMAGE", "busybox:1.36")


def runs_containers(api_client: Any) -> bool:
    """False on a kwok cluster (scripts/kube-up.sh): its nodes are kwok's, pods get statuses from
    kwok's stages but no container runs, so there are no logs and no exit codes of their own."""
    nodes = k8s.CoreV1Api(api_client).list_node().items
    return not nodes or any(KWOK_NODE not in (node.metadata.annotations or {}) for node in nodes)


KWOK_NODE = "kwok.x-k8s.io/node"


@dataclass
class KubeRig:
    account: KubernetesAccount
    namespace: str
    sim: RunningKubesim | None
    api_client: Any

    @property
    def core(self) -> Any:
        return k8s.CoreV1Api(self.api_client)

    @property
    def apps(self) -> Any:
        return k8s.AppsV1Api(self.api_client)

    def needs_kubesim(self) -> RunningKubesim:
        if self.sim is None:
            pytest.skip("needs kubesim (fault injection / image-tag conventions)")
        return self.sim

    def needs_containers(self) -> None:
        """Skip on a cluster whose pods run nothing (kwok): the test reads what a container printed."""
        if self.sim is None and not runs_containers(self.api_client):
            pytest.skip("needs containers that run (kwok nodes run none: no logs)")

    def container(self, tag: str = "1.0", *, crashloop: bool = False) -> dict[str, Any]:
        if self.sim is None:
            script = "exit 1" if crashloop else f"echo {tag}; sleep 3600"
            return {"image": REAL_IMAGE, "command": ["sh", "-c", script], "env": {"VERSION": tag}}
        return {"image": f"shop/web:{'crashloop' if crashloop else tag}", "ports": [{"containerPort": 8080}]}

    def service(self, name: str) -> dict[str, str]:
        """Create a load balancer (Service) selecting `gennaker.io/lb-<name>: "true"`; returns its selector."""
        selector = {f"lb.gennaker.io/{name}": "true"}
        self.core.create_namespaced_service(
            self.namespace,
            {
                "metadata": {"name": name},
                "spec": {"selector": selector, "ports": [{"port": 80, "targetPort": 8080}]},
            },
        )
        return selector

    def serving(self, service: str) -> set[str]:
        """Pod names listed as ready addresses of the Service's Endpoints."""
        endpoints = self.core.read_namespaced_endpoints(service, self.namespace)
        return {
            a.target_ref.name for s in endpoints.subsets or [] for a in s.addresses or [] if a.target_ref is not None
        }

    def pods(self, server_group: str) -> set[str]:
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=f"{SERVER_GROUP_LABEL}={server_group}")
        return {p.metadata.name for p in pods.items if p.metadata.deletion_timestamp is None}

    def server_groups(self, cluster: str) -> dict[str, Any]:
        listing = self.apps.list_namespaced_replica_set(self.namespace, label_selector=f"{CLUSTER_LABEL}={cluster}")
        return {rs.metadata.name: rs for rs in listing.items}

    def replicas(self, name: str) -> int:
        return int(self.apps.read_namespaced_replica_set(name, self.namespace).spec.replicas)


def start_rig(ready_delay: float = 0.1) -> KubeRig:
    suffix = uuid.uuid4().hex[:6]
    sim: RunningKubesim | None = None
    if REAL_KUBECONFIG:
        kubeconfig = Path(REAL_KUBECONFIG)
        context = os.environ.get("GENNAKER_TEST_KUBE_CONTEXT")
    else:
        sim = start_kubesim(ready_delay=ready_delay)
        kubeconfig, context = sim.kubeconfig_path, None
    api_client = k8s_config.new_client_from_config(config_file=str(kubeconfig), context=context)  # type: ignore[no-untyped-call]
    namespace = f"gk-{suffix}"
    k8s.CoreV1Api(api_client).create_namespace({"metadata": {"name": namespace}})
    account = KubernetesAccount(
        name=f"k8s-test-{suffix}",
        kubeconfig=kubeconfig,
        context=context,
        namespaces=[namespace],
        simulated=sim is not None,
    )
    return KubeRig(account=account, namespace=namespace, sim=sim, api_client=api_client)


def stop_rig(rig: KubeRig) -> None:
    if rig.sim is not None:
        rig.sim.stop()
    else:
        rig.core.delete_namespace(rig.namespace)
    rig.api_client.close()


def account_worker(client: Client, account: KubernetesAccount) -> tuple[Worker, KubernetesAccountClient]:
    kube = KubernetesAccountClient(account)
    worker = Worker(
        client,
        task_queue=account.queue,
        activities=account_activities(kube),
        workflows=[ClusterReadWorkflow],
        workflow_runner=workflow_runner(),
        activity_executor=ThreadPoolExecutor(max_workers=16, thread_name_prefix=f"k8s-{account.name}"),
        graceful_shutdown_timeout=timedelta(seconds=2),
    )
    return worker, kube


@contextlib.asynccontextmanager
async def serve_account(
    client: Client, account: KubernetesAccount, *, directory_served: bool = True
) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """A worker on the account's queue, reported to the account directory as `gennaker worker` does so
    the gateway knows it; yields a function that reports its health again (the worker's next tick).
    With `directory_served` (a worker runs the directory workflow on DIRECTORY_QUEUE) each report also
    waits until the directory's memo shows the account; without one nothing would ever show it."""
    worker, kube = account_worker(client, account)
    task = asyncio.create_task(worker.run())
    provided = ProvidedAccount(
        name=account.name,
        kind="kubernetes",
        queue=account.queue,
        activities=[],
        check_health=lambda: check_kubernetes_account(kube),
    )

    async def report() -> None:
        if directory_served:
            await report_and_wait(client, f"kube-rig-{account.name}", [provided], DIRECTORY_QUEUE)
        else:
            await report_once(client, f"kube-rig-{account.name}", [provided], DIRECTORY_QUEUE)

    async def keep_reporting() -> None:
        # As a worker's health tick does: a report older than the directory's STALE_AFTER (2 min) reads
        # stale and the gateway refuses the account, which a module-scoped rig on a busy machine outlives.
        while True:
            await asyncio.sleep(REPORT_INTERVAL)
            with contextlib.suppress(RPCError):
                await report_once(client, f"kube-rig-{account.name}", [provided], DIRECTORY_QUEUE)

    await report()
    ticking = asyncio.create_task(keep_reporting())
    try:
        yield report
    finally:
        ticking.cancel()
        await asyncio.gather(ticking, return_exceptions=True)
        # The rig's account leaves with it: a report of nothing withdraws it from the directory, so
        # later modules' listings of every account do not wait on a queue nobody polls any more.
        with contextlib.suppress(RPCError):
            await report_once(client, f"kube-rig-{account.name}", [], DIRECTORY_QUEUE)
        await worker.shutdown()
        await asyncio.gather(task, return_exceptions=True)
        kube.close()


async def serve_rig(client: Client, rig: KubeRig, *, directory_served: bool = True) -> AsyncIterator[KubeRig]:
    try:
        async with serve_account(client, rig.account, directory_served=directory_served):
            yield rig
    finally:
        await asyncio.to_thread(stop_rig, rig)


@pytest.fixture(scope="module", name="kube")
async def kube_fixture(client: Client, worker: None) -> AsyncIterator[KubeRig]:
    """A Kubernetes account (kubesim, or GENNAKER_TEST_KUBECONFIG's cluster) served by its own worker."""
    rig = await asyncio.to_thread(start_rig)
    async for served in serve_rig(client, rig):
        yield served


def deploy_stage(rig: KubeRig, ref: str = "deploy", **fields: Any) -> dict[str, Any]:
    return {
        "refId": ref,
        "type": "deploy",
        "account": rig.account.name,
        "namespace": rig.namespace,
        "container": rig.container(),
        "capacity": {"min": 1, "max": 4, "desired": 2},
        "waitForHealthySec": 30,
        **fields,
    }


def accounts_input(rig: KubeRig) -> dict[str, str]:
    """PipelineRunInput.accountQueues for the rig's account."""
    return {f"kubernetes/{rig.account.name}": rig.account.queue}
