"""Deployments: rolling update bounds, Recreate, revisions, rollout undo, conditions, deadlines."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from kubesim.testing import wait_until
from tests.kubesim.util import deployment

REVISION = "deployment.kubernetes.io/revision"


def _complete(apps: client.AppsV1Api, ns: str, name: str) -> Any:
    """kubectl rollout status's test: observed, all updated, all available, none old."""
    d = apps.read_namespaced_deployment(name, ns)
    s = d.status
    done = (
        s.observed_generation == d.metadata.generation
        and s.updated_replicas == d.spec.replicas
        and s.replicas == d.spec.replicas
        and s.available_replicas == d.spec.replicas
    )
    return d if done else None


def _condition(d: Any, type_: str) -> Any:
    return next(c for c in d.status.conditions if c.type == type_)


def _replica_sets(apps: client.AppsV1Api, ns: str) -> dict[str, tuple[str, int]]:
    return {
        rs.metadata.name: (rs.metadata.annotations[REVISION], rs.spec.replicas)
        for rs in apps.list_namespaced_replica_set(ns).items
    }


def test_rolling_update_respects_surge_and_unavailable(apps: client.AppsV1Api, ns: str) -> None:
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    apps.create_namespaced_deployment(ns, deployment("web", 4, "web:1", strategy=strategy))
    d = wait_until(lambda: _complete(apps, ns, "web"))
    assert d.metadata.annotations[REVISION] == "1"
    assert _condition(d, "Available").status == "True"
    assert _condition(d, "Progressing").reason == "NewReplicaSetAvailable"

    apps.patch_namespaced_deployment(
        "web", ns, {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "web:2"}]}}}}
    )
    peak = 0

    def rolled() -> Any:
        nonlocal peak
        rs_list = apps.list_namespaced_replica_set(ns).items
        total = sum(rs.status.replicas or 0 for rs in rs_list)
        available = sum(rs.status.available_replicas or 0 for rs in rs_list)
        peak = max(peak, total)
        assert total <= 5, "maxSurge=1 allows at most 5 pods"
        assert available >= 4 or total < 4, "maxUnavailable=0 keeps 4 available"
        return _complete(apps, ns, "web")

    d = wait_until(rolled, timeout=15)
    assert peak == 5
    assert d.metadata.annotations[REVISION] == "2"
    revisions = sorted(_replica_sets(apps, ns).values())
    assert revisions == [("1", 0), ("2", 4)]


def test_rollout_undo(apps: client.AppsV1Api, ns: str) -> None:
    apps.create_namespaced_deployment(ns, deployment("api", 2, "api:1"))
    wait_until(lambda: _complete(apps, ns, "api"))
    first = next(iter(_replica_sets(apps, ns)))
    apps.patch_namespaced_deployment(
        "api", ns, {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "api:2"}]}}}}
    )
    wait_until(lambda: (d := _complete(apps, ns, "api")) and d.metadata.annotations[REVISION] == "2")

    # What `kubectl rollout undo` does: copy revision 1's template (minus pod-template-hash) back.
    rs = apps.read_namespaced_replica_set(first, ns)
    template = client.ApiClient().sanitize_for_serialization(rs.spec.template)
    del template["metadata"]["labels"]["pod-template-hash"]
    apps.patch_namespaced_deployment("api", ns, [{"op": "replace", "path": "/spec/template", "value": template}])
    d = wait_until(lambda: (d := _complete(apps, ns, "api")) and d.metadata.annotations[REVISION] == "3" and d)
    assert d.spec.template.spec.containers[0].image == "api:1"
    assert _replica_sets(apps, ns)[first] == ("3", 2), "the old ReplicaSet is reused under a new revision"

    # The legacy rollback annotation (0 = previous revision).
    apps.patch_namespaced_deployment(
        "api", ns, {"metadata": {"annotations": {"deprecated.deployment.rollback.to": "0"}}}
    )
    d = wait_until(lambda: (d := _complete(apps, ns, "api")) and d.metadata.annotations[REVISION] == "4" and d)
    assert d.spec.template.spec.containers[0].image == "api:2"
    assert "deprecated.deployment.rollback.to" not in d.metadata.annotations


def test_recreate_never_mixes_versions(apps: client.AppsV1Api, core: client.CoreV1Api, ns: str) -> None:
    apps.create_namespaced_deployment(ns, deployment("db", 2, "db:1", strategy={"type": "Recreate"}))
    wait_until(lambda: _complete(apps, ns, "db"))
    apps.patch_namespaced_deployment(
        "db", ns, {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "db:2"}]}}}}
    )

    def done() -> Any:
        images = {p.spec.containers[0].image for p in core.list_namespaced_pod(ns).items}
        assert len(images) <= 1, f"Recreate must not run {images} together"
        d = _complete(apps, ns, "db")
        return d and d.metadata.annotations[REVISION] == "2"

    wait_until(done, timeout=15)


def test_scale_subresource_and_progress_deadline(apps: client.AppsV1Api, ns: str) -> None:
    apps.create_namespaced_deployment(ns, deployment("crash", 1, "app:crashloop", progressDeadlineSeconds=1))
    d = wait_until(
        lambda: (
            (d := apps.read_namespaced_deployment("crash", ns)).status.conditions
            and _condition(d, "Progressing").reason == "ProgressDeadlineExceeded"
            and d
        ),
        timeout=10,
    )
    assert _condition(d, "Progressing").status == "False"
    assert _condition(d, "Available").status == "False"

    apps.create_namespaced_deployment(ns, deployment("ok", 1, "app:1"))
    apps.patch_namespaced_deployment_scale("ok", ns, {"spec": {"replicas": 3}})
    d = wait_until(lambda: _complete(apps, ns, "ok"))
    assert d.status.ready_replicas == 3
    assert apps.read_namespaced_deployment_scale("ok", ns).status.selector == "app=ok"
