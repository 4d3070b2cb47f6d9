"""Red/black's switch activity against kubesim, through the official client: make before break,
and a retried attempt (the same request again) changes no pod."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s

from activities.accounts import KubernetesAccount
from activities.kubernetes.client import KubernetesAccountClient
from activities.kubernetes.servergroups import Capacity, CreateRequest, ServerGroupActivities, WaitRequest
from activities.kubernetes.traffic import SwitchRequest, TrafficActivities
from kubesim.testing import RunningKubesim, start_kubesim

SERVICE = "web"
SELECTOR = {f"lb.gennaker.io/{SERVICE}": "true"}


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningKubesim]:
    running = start_kubesim(ready_delay=0.1, directory=tmp_path_factory.mktemp("kubesim"))
    yield running
    running.stop()


@pytest.fixture
def rig(sim: RunningKubesim) -> Iterator[tuple[KubernetesAccountClient, k8s.CoreV1Api, str]]:
    namespace = f"sw-{uuid.uuid4().hex[:6]}"
    core = k8s.CoreV1Api(sim.new_client())
    core.create_namespace({"metadata": {"name": namespace}})
    core.create_namespaced_service(
        namespace, {"metadata": {"name": SERVICE}, "spec": {"selector": SELECTOR, "ports": [{"port": 80}]}}
    )
    account = KubernetesAccount(name="sw", kubeconfig=Path(sim.kubeconfig_path), namespaces=[namespace], simulated=True)
    client = KubernetesAccountClient(account)
    yield client, core, namespace
    client.close()


def server_group(client: KubernetesAccountClient, namespace: str, version: int, enabled: bool) -> str:
    groups = ServerGroupActivities(client)
    name = f"shop-web-v{version:03d}"
    groups.create_server_group(
        CreateRequest(
            namespace=namespace, application="shop", cluster="shop-web", name=name, deployKey=f"key-{version}",
            executionId="e", stage="deploy", replicas=3, capacity=Capacity(min=3, max=3, desired=3),
            podTemplate={"metadata": {"labels": {}}, "spec": {"containers": [{"name": "main", "image": "shop:1"}]}},
            loadBalancers=[SERVICE], enabled=enabled,
        )
    )  # fmt: skip
    groups.wait_server_group_healthy(WaitRequest(namespace=namespace, name=name, timeoutSeconds=30))
    return name


def pods(core: k8s.CoreV1Api, namespace: str, group: str) -> dict[str, Any]:
    listed = core.list_namespaced_pod(namespace, label_selector=f"gennaker.io/server-group={group}").items
    return {p.metadata.name: p for p in listed}


def serving(core: k8s.CoreV1Api, namespace: str) -> set[str]:
    endpoints = core.read_namespaced_endpoints(SERVICE, namespace)
    return {a.target_ref.name for s in endpoints.subsets or [] for a in s.addresses or []}


def test_switch_serves_the_new_group_only_and_a_retry_changes_no_pod(
    rig: tuple[KubernetesAccountClient, k8s.CoreV1Api, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, core, namespace = rig
    old = server_group(client, namespace, 0, enabled=True)
    new = server_group(client, namespace, 1, enabled=False)
    assert serving(core, namespace) == set(pods(core, namespace, old))

    request = SwitchRequest(namespace=namespace, enable=new, disable=[old], timeoutSeconds=30)
    result = TrafficActivities(client).switch_server_group_traffic(request)

    new_pods, old_pods = pods(core, namespace, new), pods(core, namespace, old)
    assert serving(core, namespace) == set(new_pods) and len(new_pods) == 3
    assert set(result.enabled.enabledPods) == set(new_pods)
    assert [r.name for r in result.disabled] == [old] and set(result.disabled[0].disabledPods) == set(old_pods)
    assert all(SELECTOR.items() <= (p.metadata.labels or {}).items() for p in new_pods.values())
    assert not any(set(SELECTOR) & set(p.metadata.labels or {}) for p in old_pods.values())
    apps = k8s.AppsV1Api(client.api_client)
    assert SELECTOR.items() <= apps.read_namespaced_replica_set(new, namespace).spec.template.metadata.labels.items()
    assert not set(SELECTOR) & set(apps.read_namespaced_replica_set(old, namespace).spec.template.metadata.labels)

    # A retried attempt (the same request again) finds every pod labelled and patches none; the
    # real patch call is only counted (a no-op patch would not change a resourceVersion to see).
    patched: list[str] = []
    real_patch = client.core.patch_namespaced_pod

    def counted(name: str, *args: Any, **kwargs: Any) -> Any:
        patched.append(name)
        return real_patch(name, *args, **kwargs)

    monkeypatch.setattr(client.core, "patch_namespaced_pod", counted)
    again = TrafficActivities(client).switch_server_group_traffic(request)
    assert again == result
    assert patched == []
    assert serving(core, namespace) == set(new_pods)
