"""Server-side apply and managedFields, through the official client's DynamicClient (as Gennaker uses it)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ConflictError, DynamicApiError

from tests.kubesim.util import pod_template


@pytest.fixture(scope="module")
def dyn(api_client: Any) -> Iterator[DynamicClient]:
    yield DynamicClient(api_client)


def _deployments(dyn: DynamicClient) -> Any:
    return dyn.resources.get(api_version="apps/v1", kind="Deployment")


def _manifest(ns: str, **spec: Any) -> dict[str, Any]:
    labels = {"app": "web"}
    body: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": ns, "labels": {"team": "shop"}},
        "spec": {"selector": {"matchLabels": labels}, "template": pod_template(labels, "nginx:1.25"), **spec},
    }
    return body


def _owners(obj: Any) -> dict[tuple[str, str], dict[str, Any]]:
    entries = obj.to_dict()["metadata"].get("managedFields") or []
    return {(e["manager"], e["operation"]): e["fieldsV1"] for e in entries}


def _apply(dyn: DynamicClient, body: dict[str, Any], manager: str = "gennaker", **kwargs: Any) -> Any:
    return _deployments(dyn).server_side_apply(body=body, field_manager=manager, **kwargs)


def test_apply_creates_and_records_ownership(dyn: DynamicClient, ns: str) -> None:
    created = _apply(dyn, _manifest(ns, replicas=2))
    assert created.spec.replicas == 2
    owned = _owners(created)[("gennaker", "Apply")]
    assert owned["f:spec"]["f:replicas"] == {}
    container = owned["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"main"}']
    assert container["."] == {} and "f:image" in container
    assert "f:strategy" not in owned["f:spec"]  # defaulted fields belong to nobody
    again = _apply(dyn, _manifest(ns, replicas=2))
    assert again.metadata.generation == created.metadata.generation == 1  # nothing changed
    assert again.metadata.managedFields == created.metadata.managedFields


def test_conflict_then_force(dyn: DynamicClient, apps: client.AppsV1Api, ns: str) -> None:
    _apply(dyn, _manifest(ns, replicas=1))
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "nginx:hotfix"}]}}}}
    apps.patch_namespaced_deployment("web", ns, patch, field_manager="kubectl-edit")
    changed = _manifest(ns, replicas=1)
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.26"
    with pytest.raises(ConflictError) as err:
        _apply(dyn, changed)
    status = json.loads(err.value.body)
    assert status["reason"] == "Conflict" and status["code"] == 409
    assert status["details"]["causes"] == [
        {
            "reason": "FieldManagerConflict",
            "message": 'conflict with "kubectl-edit" using apps/v1',
            "field": '.spec.template.spec.containers[name="main"].image',
        }
    ]
    assert status["message"].startswith('Apply failed with 1 conflict: conflict with "kubectl-edit"')
    forced = _apply(dyn, changed, force_conflicts=True)
    assert forced.spec.template.spec.containers[0].image == "nginx:1.26"
    owners = _owners(forced)
    assert (
        "f:image"
        in owners[("gennaker", "Apply")]["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"main"}']
    )
    assert ("kubectl-edit", "Update") not in owners  # it owned nothing else, so its entry went


def test_same_value_is_shared_not_a_conflict(dyn: DynamicClient, ns: str) -> None:
    _apply(dyn, _manifest(ns, replicas=2), manager="team-a")
    shared = _apply(dyn, _manifest(ns, replicas=2), manager="team-b")
    owners = _owners(shared)
    assert owners[("team-a", "Apply")]["f:spec"]["f:replicas"] == {}
    assert owners[("team-b", "Apply")]["f:spec"]["f:replicas"] == {}


def test_dropped_fields_are_removed_unless_someone_else_owns_them(
    dyn: DynamicClient, apps: client.AppsV1Api, ns: str
) -> None:
    body = _manifest(ns, replicas=1, minReadySeconds=5)
    body["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "MODE", "value": "fast"}]
    _apply(dyn, body)
    apps.patch_namespaced_deployment("web", ns, {"metadata": {"labels": {"owner": "ops"}}}, field_manager="ops-tool")
    slim = _manifest(ns, replicas=1)
    del slim["metadata"]["labels"]
    after = _apply(dyn, slim)
    assert after.spec.minReadySeconds in (None, 0)
    assert after.spec.template.spec.containers[0].env is None
    assert after.to_dict()["metadata"]["labels"] == {"owner": "ops"}  # "team" was ours and went; "owner" is ops-tool's


def test_hpa_owned_replicas_survive_a_reapply(dyn: DynamicClient, apps: client.AppsV1Api, ns: str) -> None:
    _apply(dyn, _manifest(ns, replicas=2))
    apps.patch_namespaced_deployment_scale(
        "web", ns, {"spec": {"replicas": 5}}, field_manager="kube-controller-manager"
    )
    with pytest.raises(ConflictError) as err:
        _apply(dyn, _manifest(ns, replicas=2))
    cause = json.loads(err.value.body)["details"]["causes"][0]
    assert cause["field"] == ".spec.replicas"
    assert cause["message"] == 'conflict with "kube-controller-manager" with subresource "scale" using apps/v1'
    without = _apply(dyn, _manifest(ns))
    assert without.spec.replicas == 5
    assert apps.read_namespaced_deployment("web", ns).spec.replicas == 5


def test_dry_run_apply_stores_nothing(dyn: DynamicClient, apps: client.AppsV1Api, ns: str) -> None:
    preview = _apply(dyn, _manifest(ns, replicas=4), dry_run="All")
    assert preview.spec.replicas == 4
    with pytest.raises(client.ApiException) as err:
        apps.read_namespaced_deployment("web", ns)
    assert err.value.status == 404
    _apply(dyn, _manifest(ns, replicas=1))
    _apply(dyn, _manifest(ns, replicas=4), dry_run="All")
    assert apps.read_namespaced_deployment("web", ns).spec.replicas == 1


def test_apply_needs_a_field_manager_and_force_only_applies(apps: client.AppsV1Api, ns: str) -> None:
    with pytest.raises(client.ApiException) as err:
        apps.patch_namespaced_deployment("web", ns, _manifest(ns), _content_type="application/apply-patch+yaml")
    status = json.loads(err.value.body)
    assert err.value.status == 422
    assert status["message"] == (
        'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch'
    )
    apps.create_namespaced_deployment(ns, _manifest(ns))
    with pytest.raises(client.ApiException) as err:
        apps.patch_namespaced_deployment("web", ns, {"spec": {"replicas": 2}}, force=True)
    assert err.value.status == 422 and "force: Forbidden" in json.loads(err.value.body)["message"]


def test_updates_are_owned_by_their_manager(apps: client.AppsV1Api, ns: str) -> None:
    created = apps.create_namespaced_deployment(ns, _manifest(ns), field_manager="creator")
    owners = {(e.manager, e.operation) for e in created.metadata.managed_fields}
    assert owners == {("creator", "Update")}
    scaled = apps.patch_namespaced_deployment("web", ns, {"spec": {"replicas": 3}}, field_manager="scaler")
    entries = {e.manager: e.fields_v1 for e in scaled.metadata.managed_fields}
    assert entries["scaler"] == {"f:spec": {"f:replicas": {}}}
    assert "f:replicas" not in entries["creator"]["f:spec"]


def test_invalid_apply_body_is_rejected(dyn: DynamicClient, ns: str) -> None:
    body = _manifest(ns)
    body["metadata"]["managedFields"] = [{"manager": "x"}]
    with pytest.raises(DynamicApiError) as err:
        _apply(dyn, body)
    assert err.value.status == 400
