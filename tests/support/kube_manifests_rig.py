"""Kubernetes rig for the manifest and Run Job stages.

- Cluster: a kubesim on a loopback port (the Kubernetes REST wire protocol, reached through the
  official client), or a real cluster when GENNAKER_TEST_KUBECONFIG names a kubeconfig
  (GENNAKER_TEST_KUBE_CONTEXT picks a context). On a real cluster the namespaces below are created
  if missing and deleted at the end, and tests that need kubesim's fault injection are skipped.
- Account: `manifests-sim`, allowed namespaces `NAMESPACES`; its queue is `k8s-manifests-sim`.
- Worker: a temporalio Worker on that queue with the manifest and job activities on a thread pool,
  next to the session pipeline worker of tests/conftest.py — as workers/main.py runs them.

Import `kube_worker_fixture` and `kube_fixture` into a test module (`# noqa: F401`); tests then take
`kube` (kubesim faults are reset after each test) and conftest's `runner`. The rig is shared by every
module that imports it (one kubesim, one worker per session).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from temporalio.client import Client
from temporalio.worker import Worker

# Importing the stage modules registers their types in the shared registry (until builtin.py lists them).
import workflows.stages.manifests
import workflows.stages.run_job  # noqa: F401
from activities.accounts import KubernetesAccount
from activities.kubernetes.client import KubernetesAccountClient
from activities.kubernetes.jobs import KubernetesJobActivities
from activities.kubernetes.manifests import KubernetesManifestActivities
from kubesim.testing import RunningKubesim, start_kubesim, wait_until
from tests.support.kube_rig import runs_containers
from tests.support.runner import Runner, pipeline
from workflows.state import ExecutionState

ACCOUNT = "manifests-sim"
NAMESPACES = ("gn-manifests", "gn-jobs")
# Real images for a real cluster; kubesim runs none, it only reads the tag (docs/kubesim.md).
WEB_IMAGE_V1 = "nginx:1.26-alpine"
WEB_IMAGE_V2 = "nginx:1.27-alpine"
SHELL_IMAGE = "busybox:1.36"


@dataclass
class KubeRig:
    account: KubernetesAccount
    client: KubernetesAccountClient
    sim: RunningKubesim | None
    manifests: KubernetesManifestActivities
    jobs: KubernetesJobActivities

    @property
    def namespace(self) -> str:
        return NAMESPACES[0]

    @property
    def core(self) -> k8s.CoreV1Api:
        return self.client.core

    @property
    def apps(self) -> k8s.AppsV1Api:
        return self.client.apps

    @property
    def batch(self) -> k8s.BatchV1Api:
        return self.client.batch

    def require_sim(self) -> RunningKubesim:
        """Fault injection exists only in kubesim: skip the test on a real cluster."""
        if self.sim is None:
            pytest.skip("needs kubesim's fault injection (GENNAKER_TEST_KUBECONFIG points at a real cluster)")
        return self.sim

    def runs_containers(self) -> bool:
        """False on kwok (scripts/kube-up.sh): pods get statuses but print nothing. kubesim acts
        out the `sh -c` script, echoes included."""
        return self.sim is not None or runs_containers(self.client.api_client)

    def needs_containers(self) -> None:
        """Skip on a cluster whose pods run nothing (kwok): the test reads what a container printed."""
        if not self.runs_containers():
            pytest.skip("needs containers that run (kwok nodes run none: no logs)")

    def gone(self, read: Any, name: str, namespace: str | None = None) -> bool:
        try:
            read(name, namespace or self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return True
            raise
        return False

    def wait_gone(self, read: Any, name: str, namespace: str | None = None, timeout: float = 15) -> None:
        wait_until(lambda: self.gone(read, name, namespace), timeout, what=f"{name} to be deleted")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def deployment(name: str, image: str = WEB_IMAGE_V1, replicas: int = 2, **labels: str) -> dict[str, Any]:
    match = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {**match, **labels}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": match},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": match},
                "spec": {"containers": [{"name": "web", "image": image, "ports": [{"containerPort": 80}]}]},
            },
        },
    }


def k8s_stage(ref: str, type_: str, *parents: str, **fields: Any) -> dict[str, Any]:
    return {"refId": ref, "type": type_, "account": ACCOUNT, "requisiteStageRefIds": list(parents), **fields}


async def run_stages(
    runner: Runner, *stages: dict[str, Any], parameters: dict[str, Any] | None = None, timeout: float = 40
) -> ExecutionState:
    """Run a pipeline of `stages` to its end; `parameters` are declared and passed."""
    declared = [{"name": key} for key in parameters or {}]
    handle = await runner.start(pipeline(*stages, name="manifests", parameters=declared), parameters)
    return await runner.finish(handle, timeout=timeout)


def _ensure_namespaces(rig_client: KubernetesAccountClient) -> None:
    for namespace in NAMESPACES:
        try:
            rig_client.core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=namespace)))
        except ApiException as exc:
            if exc.status != 409:
                raise


@dataclass
class _Shared:
    """Fixtures imported into several modules are separate session fixtures, one per module: keep a
    single kubesim and a single worker (Temporal allows one per task queue) by counting users."""

    users: int = 0
    rig: KubeRig | None = None
    worker: Worker | None = None
    task: asyncio.Task[None] | None = None


_SHARED = _Shared()


def _start_rig(directory: Path) -> KubeRig:
    real = os.environ.get("GENNAKER_TEST_KUBECONFIG")
    sim = None if real else start_kubesim(ready_delay=0.05, seed=11, directory=directory)
    kubeconfig = Path(real) if real else sim.kubeconfig_path  # type: ignore[union-attr]
    account = KubernetesAccount(
        name=ACCOUNT,
        kubeconfig=kubeconfig,
        context=os.environ.get("GENNAKER_TEST_KUBE_CONTEXT") if real else None,
        namespaces=list(NAMESPACES),
        simulated=sim is not None,
    )
    client = KubernetesAccountClient(account)
    _ensure_namespaces(client)
    return KubeRig(account, client, sim, KubernetesManifestActivities(client), KubernetesJobActivities(client))


def _stop_rig(rig: KubeRig) -> None:
    if rig.sim is not None:
        rig.sim.stop()
    else:
        for namespace in NAMESPACES:
            rig.client.core.delete_namespace(namespace)
    rig.client.close()


@pytest.fixture(scope="session", name="kube_worker")
async def kube_worker_fixture(client: Client, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[KubeRig]:
    """The cluster, the account and a worker serving its queue, shared by every module that imports this."""
    shared = _SHARED
    if shared.rig is None:
        shared.rig = _start_rig(tmp_path_factory.mktemp("kubesim"))
        shared.worker = Worker(
            client,
            task_queue=shared.rig.account.queue,
            activities=[*shared.rig.manifests.activities(), *shared.rig.jobs.activities()],
            activity_executor=ThreadPoolExecutor(max_workers=8, thread_name_prefix=f"k8s-{ACCOUNT}"),
        )
        shared.task = asyncio.create_task(shared.worker.run())
    shared.users += 1
    yield shared.rig
    shared.users -= 1
    if shared.users == 0 and shared.worker is not None and shared.rig is not None:
        await shared.worker.shutdown()
        await asyncio.gather(*([shared.task] if shared.task else []), return_exceptions=True)
        _stop_rig(shared.rig)
        shared.rig = shared.worker = shared.task = None


@pytest.fixture(name="kube")
def kube_fixture(kube_worker: KubeRig) -> Iterator[KubeRig]:
    yield kube_worker
    if kube_worker.sim is not None:
        kube_worker.sim.reset_faults()
