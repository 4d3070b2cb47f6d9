"""ReplicaSets, pods, readiness, image-tag conventions, cascading delete and Service endpoints."""

from __future__ import annotations

import time
from typing import Any

from kubernetes import client, watch

from kubesim.testing import wait_until
from tests.kubesim.util import READY_DELAY, pod_template, ready_pods, replica_set


def _rs_ready(apps: client.AppsV1Api, ns: str, name: str) -> Any:
    rs = apps.read_namespaced_replica_set(name, ns)
    done = (
        rs.status.ready_replicas or 0
    ) == rs.spec.replicas and rs.status.observed_generation == rs.metadata.generation
    return rs if done else None


def test_replicaset_pods_become_ready_after_delay(apps: client.AppsV1Api, core: client.CoreV1Api, ns: str) -> None:
    labels = {"app": "web", "version": "v001"}
    started = time.monotonic()
    apps.create_namespaced_replica_set(ns, replica_set("web-v001", 3, labels))
    w = watch.Watch()
    for event in w.stream(apps.list_namespaced_replica_set, ns, timeout_seconds=10):
        status = event["object"].status
        if status.ready_replicas == 3:
            w.stop()
    elapsed = time.monotonic() - started
    # Jitter is +-25% around the delay, so nothing can be ready in under 0.75 x delay.
    assert elapsed >= READY_DELAY * 0.75
    pods = core.list_namespaced_pod(ns, label_selector="app=web").items
    assert len(pods) == 3
    for pod in pods:
        assert pod.metadata.name.startswith("web-v001-") and len(pod.metadata.name) == len("web-v001-") + 5
        assert pod.metadata.labels == labels
        ref = pod.metadata.owner_references[0]
        assert (ref.kind, ref.name, ref.controller) == ("ReplicaSet", "web-v001", True)
        assert pod.status.phase == "Running" and pod.status.pod_ip


def test_scale_down_and_up(apps: client.AppsV1Api, core: client.CoreV1Api, ns: str) -> None:
    apps.create_namespaced_replica_set(ns, replica_set("s-v000", 3, {"app": "s"}))
    wait_until(lambda: _rs_ready(apps, ns, "s-v000"))
    apps.patch_namespaced_replica_set_scale("s-v000", ns, {"spec": {"replicas": 1}})
    rs = wait_until(lambda: _rs_ready(apps, ns, "s-v000"))
    assert rs.status.replicas == 1 and rs.metadata.generation == 2
    assert len(core.list_namespaced_pod(ns).items) == 1
    apps.patch_namespaced_replica_set("s-v000", ns, {"spec": {"replicas": 2}})
    wait_until(lambda: _rs_ready(apps, ns, "s-v000"))
    scale = apps.read_namespaced_replica_set_scale("s-v000", ns)
    assert scale.spec.replicas == 2 and scale.status.replicas == 2 and scale.status.selector == "app=s"


def test_crashloop_never_ready(apps: client.AppsV1Api, core: client.CoreV1Api, ns: str) -> None:
    apps.create_namespaced_replica_set(ns, replica_set("c-v000", 1, {"app": "c"}, image="registry/app:crashloop"))

    def restarted_twice() -> Any:
        pods = core.list_namespaced_pod(ns).items
        statuses = pods[0].status.container_statuses if pods else None
        return statuses and statuses[0].restart_count >= 2 and statuses[0]

    status = wait_until(restarted_twice, timeout=10)
    assert status.state.waiting.reason == "CrashLoopBackOff" and not status.ready
    assert not apps.read_namespaced_replica_set("c-v000", ns).status.ready_replicas


def test_fail_once_replaces_first_pod(apps: client.AppsV1Api, core: client.CoreV1Api, ns: str) -> None:
    apps.create_namespaced_replica_set(ns, replica_set("f-v000", 1, {"app": "f"}, image="app:fail-once"))
    wait_until(lambda: _rs_ready(apps, ns, "f-v000"))
    phases = sorted(p.status.phase for p in core.list_namespaced_pod(ns).items)
    assert phases == ["Failed", "Running"]


def test_cascading_delete(apps: client.AppsV1Api, core: client.CoreV1Api, ns: str) -> None:
    for name in ("bg", "fg", "or"):
        apps.create_namespaced_replica_set(ns, replica_set(name, 2, {"app": name}))
        wait_until(lambda n=name: len(core.list_namespaced_pod(ns, label_selector=f"app={n}").items) == 2)
    apps.delete_namespaced_replica_set("bg", ns, propagation_policy="Background")
    wait_until(lambda: not core.list_namespaced_pod(ns, label_selector="app=bg").items, what="background GC")

    deleting = apps.delete_namespaced_replica_set("fg", ns, propagation_policy="Foreground")
    assert deleting["metadata"]["deletionTimestamp"] and "foregroundDeletion" in deleting["metadata"]["finalizers"]

    def gone() -> bool:
        try:
            apps.read_namespaced_replica_set("fg", ns)
            return False
        except client.ApiException as exc:
            return exc.status == 404

    wait_until(gone, what="foreground deletion")
    assert not core.list_namespaced_pod(ns, label_selector="app=fg").items

    apps.delete_namespaced_replica_set("or", ns, propagation_policy="Orphan")
    pods = core.list_namespaced_pod(ns, label_selector="app=or").items
    assert len(pods) == 2 and all(not p.metadata.owner_references for p in pods)


def test_service_endpoints_follow_readiness_and_labels(apps: client.AppsV1Api, core: client.CoreV1Api, ns: str) -> None:
    core.create_namespaced_service(
        ns,
        {
            "metadata": {"name": "web"},
            "spec": {"selector": {"lb": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
        },
    )
    template = pod_template({"app": "web", "lb": "web"}, ports=[{"name": "http", "containerPort": 8080}])
    rs = replica_set("web-v001", 2, {"app": "web"})
    rs["spec"]["template"] = template
    apps.create_namespaced_replica_set(ns, rs)

    def addresses() -> list[str]:
        subsets = core.read_namespaced_endpoints("web", ns).subsets or []
        return sorted(a.target_ref.name for s in subsets for a in (s.addresses or []))

    pods = wait_until(lambda: len(addresses()) == 2 and addresses(), what="two ready endpoints")
    ep = core.read_namespaced_endpoints("web", ns)
    assert ep.subsets[0].ports[0].port == 8080 and ep.subsets[0].ports[0].name == "http"
    # Disable traffic to one pod by patching its labels (strategic merge), as a deploy tool does.
    core.patch_namespaced_pod(pods[0], ns, {"metadata": {"labels": {"lb": None}}})
    wait_until(lambda: addresses() == [pods[1]], what="endpoint removed")
    core.patch_namespaced_pod(pods[0], ns, {"metadata": {"labels": {"lb": "web"}}})
    wait_until(lambda: addresses() == pods, what="endpoint back")
    # A changed selector switches traffic wholesale.
    core.patch_namespaced_service("web", ns, {"spec": {"selector": {"lb": "nothing"}}})
    wait_until(lambda: core.read_namespaced_endpoints("web", ns).subsets is None, what="no endpoints")
    assert ready_pods(core, ns, "app=web") == pods


def test_hpa_is_stored_and_reported(api_client: Any, apps: client.AppsV1Api, ns: str) -> None:
    apps.create_namespaced_replica_set(ns, replica_set("h-v000", 2, {"app": "h"}))
    hpa_api = client.AutoscalingV2Api(api_client)
    hpa_api.create_namespaced_horizontal_pod_autoscaler(
        ns,
        {
            "metadata": {"name": "h"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "h-v000"},
                "minReplicas": 1,
                "maxReplicas": 5,
            },
        },
    )
    hpa = wait_until(
        lambda: (
            (h := hpa_api.read_namespaced_horizontal_pod_autoscaler("h", ns)).status
            and h.status.current_replicas == 2
            and h
        )
    )
    assert hpa.status.desired_replicas == 2
    hpa_api.patch_namespaced_horizontal_pod_autoscaler("h", ns, {"spec": {"minReplicas": 5}})
    assert hpa_api.read_namespaced_horizontal_pod_autoscaler("h", ns).spec.min_replicas == 5
