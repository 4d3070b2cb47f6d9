"""The kinds added for manifests as teams write them: scope, discovery, CRDs, StatefulSet, DaemonSet, PVC."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from kubernetes import client

from kubesim.testing import RunningKubesim, wait_until
from tests.kubesim.util import pod_template


def _resources(api_client: Any, group_version: str) -> dict[str, Any]:
    path = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
    data = api_client.call_api("GET", api_client.configuration.host + path).read()
    return {r["name"]: r for r in json.loads(data)["resources"]}


def test_discovery_names_every_kind_with_its_scope(api_client: Any) -> None:
    expected = {
        "v1": {"serviceaccounts": True, "persistentvolumeclaims": True, "namespaces": False, "nodes": False},
        "rbac.authorization.k8s.io/v1": {
            "roles": True,
            "rolebindings": True,
            "clusterroles": False,
            "clusterrolebindings": False,
        },
        "networking.k8s.io/v1": {"ingresses": True, "networkpolicies": True},
        "policy/v1": {"poddisruptionbudgets": True},
        "apps/v1": {"statefulsets": True, "daemonsets": True, "controllerrevisions": True},
        "batch/v1": {"cronjobs": True, "jobs": True},
        "apiextensions.k8s.io/v1": {"customresourcedefinitions": False},
    }
    for group_version, kinds in expected.items():
        served = _resources(api_client, group_version)
        for plural, namespaced in kinds.items():
            assert served[plural]["namespaced"] is namespaced, (group_version, plural)
    assert "statefulsets/scale" in _resources(api_client, "apps/v1")


def test_rbac_and_cluster_scoped_objects(api_client: Any, core: client.CoreV1Api, ns: str) -> None:
    rbac = client.RbacAuthorizationV1Api(api_client)
    core.create_namespaced_service_account(ns, {"metadata": {"name": "deployer"}})
    rbac.create_namespaced_role(
        ns, {"metadata": {"name": "edit"}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}
    )
    rbac.create_namespaced_role_binding(
        ns,
        {
            "metadata": {"name": "edit"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "edit"},
            "subjects": [{"kind": "ServiceAccount", "name": "deployer", "namespace": ns}],
        },
    )
    name = f"system:test:{uuid.uuid4().hex[:6]}"  # RBAC names may hold colons
    rbac.create_cluster_role({"metadata": {"name": name}, "rules": []})
    assert rbac.read_cluster_role(name).metadata.namespace is None
    assert [r.metadata.name for r in rbac.list_namespaced_role(ns).items] == ["edit"]
    assert rbac.read_namespaced_role_binding("edit", ns).subjects[0].name == "deployer"
    rbac.delete_cluster_role(name)


def test_pvc_becomes_bound(core: client.CoreV1Api, ns: str) -> None:
    core.create_namespaced_persistent_volume_claim(
        ns,
        {
            "metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}},
        },
    )
    claim = wait_until(lambda: _bound(core.read_namespaced_persistent_volume_claim("data", ns)), what="Bound")
    assert claim.status.capacity == {"storage": "2Gi"} and claim.spec.volume_name.startswith("pvc-")


def _bound(claim: Any) -> Any:
    return claim if claim.status and claim.status.phase == "Bound" else None


def _crd(group: str, scope: str) -> dict[str, Any]:
    return {
        "metadata": {"name": f"gadgets.{group}"},
        "spec": {
            "group": group,
            "scope": scope,
            "names": {"plural": "gadgets", "kind": "Gadget", "shortNames": ["gd"]},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                }
            ],
        },
    }


@pytest.mark.parametrize("scope", ["Namespaced", "Cluster"])
def test_crd_serves_its_kind_then_takes_it_away(api_client: Any, ns: str, scope: str) -> None:
    ext = client.ApiextensionsV1Api(api_client)
    custom = client.CustomObjectsApi(api_client)
    group = f"{scope.lower()}-{uuid.uuid4().hex[:6]}.example.com"
    ext.create_custom_resource_definition(_crd(group, scope))
    crd = wait_until(lambda: _established(ext.read_custom_resource_definition(f"gadgets.{group}")), what="Established")
    assert {c.type: c.reason for c in crd.status.conditions} == {
        "NamesAccepted": "NoConflicts",
        "Established": "InitialNamesAccepted",
    }
    served = _resources(api_client, f"{group}/v1")
    assert served["gadgets"]["namespaced"] is (scope == "Namespaced") and "gadgets/status" in served
    body = {
        "apiVersion": f"{group}/v1",
        "kind": "Gadget",
        "metadata": {"name": "g1"},
        "spec": {"anything": {"goes": [1, "two"]}},
        "status": {"ignored": True},
    }
    if scope == "Namespaced":
        made = custom.create_namespaced_custom_object(group, "v1", ns, "gadgets", body)
        assert made["metadata"]["namespace"] == ns
    else:
        made = custom.create_cluster_custom_object(group, "v1", "gadgets", body)
        assert "namespace" not in made["metadata"]
    assert made["spec"] == {"anything": {"goes": [1, "two"]}} and "status" not in made
    ext.delete_custom_resource_definition(f"gadgets.{group}")
    wait_until(lambda: _gone(ext, f"gadgets.{group}"), what="CRD deleted")
    with pytest.raises(client.ApiException) as err:
        custom.list_cluster_custom_object(group, "v1", "gadgets")
    assert err.value.status == 404


def _established(crd: Any) -> Any:
    conditions = (crd.status.conditions if crd.status else None) or []
    return crd if any(c.type == "Established" and c.status == "True" for c in conditions) else None


def _gone(ext: client.ApiextensionsV1Api, name: str) -> bool:
    try:
        ext.read_custom_resource_definition(name)
    except client.ApiException as exc:
        return exc.status == 404
    return False


def test_statefulset_partitioned_rolling_update(apps: client.AppsV1Api, core: client.CoreV1Api, ns: str) -> None:
    labels = {"app": "db"}
    apps.create_namespaced_stateful_set(
        ns,
        {
            "metadata": {"name": "db"},
            "spec": {
                "replicas": 3,
                "serviceName": "db",
                "selector": {"matchLabels": labels},
                "template": pod_template(labels, "postgres:16"),
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}},
            },
        },
    )
    first = wait_until(lambda: _sts_ready(apps, ns, 3), what="3 ready")
    assert first.status.current_revision == first.status.update_revision
    assert sorted(p.metadata.name for p in core.list_namespaced_pod(ns).items) == ["db-0", "db-1", "db-2"]
    apps.patch_namespaced_stateful_set(
        "db", ns, {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "postgres:17"}]}}}}
    )
    partial = wait_until(lambda: _sts_updated(apps, ns, 1), what="pod 2 updated")
    assert partial.status.current_revision != partial.status.update_revision
    images = {p.metadata.name: p.spec.containers[0].image for p in core.list_namespaced_pod(ns).items}
    assert images == {"db-0": "postgres:16", "db-1": "postgres:16", "db-2": "postgres:17"}
    apps.patch_namespaced_stateful_set("db", ns, {"spec": {"updateStrategy": {"rollingUpdate": {"partition": 0}}}})
    done = wait_until(lambda: _sts_updated(apps, ns, 3), timeout=20, what="all updated")
    wait_until(lambda: _sts_ready(apps, ns, 3), what="ready again")
    done = apps.read_namespaced_stateful_set("db", ns)
    assert done.status.current_revision == done.status.update_revision
    assert done.status.current_replicas == 3


def _sts_ready(apps: client.AppsV1Api, ns: str, n: int) -> Any:
    sts = apps.read_namespaced_stateful_set("db", ns)
    return sts if sts.status and sts.status.ready_replicas == n and sts.status.replicas == n else None


def _sts_updated(apps: client.AppsV1Api, ns: str, n: int) -> Any:
    sts = apps.read_namespaced_stateful_set("db", ns)
    return sts if (sts.status.updated_replicas or 0) == n and (sts.status.ready_replicas or 0) == 3 else None


def test_daemonset_runs_one_pod_per_node(
    kubesim: RunningKubesim, apps: client.AppsV1Api, core: client.CoreV1Api, ns: str
) -> None:
    labels = {"app": "agent"}
    apps.create_namespaced_daemon_set(
        ns,
        {
            "metadata": {"name": "agent"},
            "spec": {"selector": {"matchLabels": labels}, "template": pod_template(labels, "fluentbit:3")},
        },
    )
    wait_until(lambda: _ds_ready(apps, ns, 1), what="one pod")
    node = f"extra-{uuid.uuid4().hex[:6]}"
    core.create_node({"metadata": {"name": node, "labels": {"kubernetes.io/hostname": node}}})
    try:
        ds = wait_until(lambda: _ds_ready(apps, ns, 2), what="a pod on the new node")
        assert ds.status.updated_number_scheduled == 2
        nodes = sorted(p.spec.node_name for p in core.list_namespaced_pod(ns, label_selector="app=agent").items)
        assert nodes == sorted(["kubesim-node", node])
    finally:
        core.delete_node(node)
    wait_until(lambda: _ds_ready(apps, ns, 1), what="back to one pod")


def _ds_ready(apps: client.AppsV1Api, ns: str, n: int) -> Any:
    ds = apps.read_namespaced_daemon_set("agent", ns)
    s = ds.status
    return (
        ds
        if s and s.desired_number_scheduled == n and s.number_ready == n and s.current_number_scheduled == n
        else None
    )


def test_pod_disruption_budget_counts_healthy_pods(api_client: Any, apps: client.AppsV1Api, ns: str) -> None:
    labels = {"app": "api"}
    apps.create_namespaced_deployment(
        ns,
        {
            "metadata": {"name": "api"},
            "spec": {"replicas": 3, "selector": {"matchLabels": labels}, "template": pod_template(labels)},
        },
    )
    policy = client.PolicyV1Api(api_client)
    policy.create_namespaced_pod_disruption_budget(
        ns, {"metadata": {"name": "api"}, "spec": {"minAvailable": 2, "selector": {"matchLabels": labels}}}
    )

    def settled() -> Any:
        pdb = policy.read_namespaced_pod_disruption_budget("api", ns)
        return pdb if pdb.status and pdb.status.current_healthy == 3 else None

    pdb = wait_until(settled, what="3 healthy pods")
    assert (pdb.status.expected_pods, pdb.status.desired_healthy, pdb.status.disruptions_allowed) == (3, 2, 1)
    assert pdb.status.observed_generation == 1
    assert [(c.type, c.status) for c in pdb.status.conditions] == [("DisruptionAllowed", "True")]
