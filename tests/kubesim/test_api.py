"""CRUD, Status bodies, selectors, patches, dry run and discovery, through the official client."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from kubernetes import client

from kubesim.testing import RunningKubesim, wait_until
from tests.kubesim.util import pod_template, replica_set, status_body


def _cm(name: str, **data: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"tier": "config"}}, "data": data}


def test_discovery_and_version(api_client: Any) -> None:
    version = client.VersionApi(api_client).get_code()
    assert version.git_version.endswith("-kubesim")
    assert client.CoreApi(api_client).get_api_versions().versions == ["v1"]
    groups = {g.name: g.preferred_version.group_version for g in client.ApisApi(api_client).get_api_versions().groups}
    assert groups["apps"] == "apps/v1"
    assert groups["batch"] == "batch/v1"
    assert groups["autoscaling"] == "autoscaling/v2"
    assert groups["networking.k8s.io"] == "networking.k8s.io/v1"
    core = {r.name: r for r in client.CoreV1Api(api_client).get_api_resources().resources}
    assert core["pods"].namespaced and core["pods"].kind == "Pod" and "po" in core["pods"].short_names
    assert not core["namespaces"].namespaced
    assert "pods/log" in core
    apps = {r.name: r for r in client.AppsV1Api(api_client).get_api_resources().resources}
    assert apps["deployments/scale"].kind == "Scale"
    assert set(apps["deployments"].verbs) >= {"create", "get", "list", "watch", "patch", "update", "delete"}


def test_crud_and_metadata(core: client.CoreV1Api, ns: str) -> None:
    created = core.create_namespaced_config_map(ns, _cm("app", a="1"))
    assert created.metadata.uid and created.metadata.creation_timestamp is not None
    rv1 = created.metadata.resource_version
    got = core.read_namespaced_config_map("app", ns)
    assert got.data == {"a": "1"} and got.metadata.resource_version == rv1
    got.data["b"] = "2"
    replaced = core.replace_namespaced_config_map("app", ns, got)
    assert int(replaced.metadata.resource_version) > int(rv1)
    assert replaced.metadata.uid == created.metadata.uid
    status = core.delete_namespaced_config_map("app", ns)
    # This client generation returns delete answers undecoded (declared `-> object`).
    assert status["status"] == "Success" and status["details"]["name"] == "app"
    with pytest.raises(client.ApiException) as err:
        core.read_namespaced_config_map("app", ns)
    assert err.value.status == 404


def test_status_bodies(core: client.CoreV1Api, apps: client.AppsV1Api, ns: str) -> None:
    with pytest.raises(client.ApiException) as err:
        core.read_namespaced_pod("missing", ns)
    body = status_body(err.value)
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'pods "missing" not found',
        "reason": "NotFound",
        "details": {"name": "missing", "kind": "pods"},
        "code": 404,
    }

    core.create_namespaced_config_map(ns, _cm("dup"))
    with pytest.raises(client.ApiException) as err:
        core.create_namespaced_config_map(ns, _cm("dup"))
    assert err.value.status == 409 and status_body(err.value)["reason"] == "AlreadyExists"
    assert status_body(err.value)["message"] == 'configmaps "dup" already exists'

    stale = core.read_namespaced_config_map("dup", ns)
    core.patch_namespaced_config_map("dup", ns, {"data": {"x": "1"}})
    with pytest.raises(client.ApiException) as err:
        core.replace_namespaced_config_map("dup", ns, stale)
    body = status_body(err.value)
    assert err.value.status == 409 and body["reason"] == "Conflict"
    assert "the object has been modified" in body["message"]

    bad = replica_set("bad", 1, {"app": "x"})
    bad["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    bad["spec"]["template"]["spec"]["containers"][0]["image"] = ""
    with pytest.raises(client.ApiException) as err:
        apps.create_namespaced_replica_set(ns, bad)
    body = status_body(err.value)
    assert err.value.status == 422 and body["reason"] == "Invalid"
    assert body["details"]["kind"] == "ReplicaSet" and body["details"]["group"] == "apps"
    fields = {c["field"]: c["reason"] for c in body["details"]["causes"]}
    assert fields == {
        "spec.template.metadata.labels": "FieldValueInvalid",
        "spec.template.spec.containers[0].image": "FieldValueRequired",
    }
    assert body["message"].startswith('ReplicaSet.apps "bad" is invalid: [')

    with pytest.raises(client.ApiException) as err:
        core.create_namespaced_config_map(ns, _cm("Not_Valid"))
    assert status_body(err.value)["details"]["causes"][0]["field"] == "metadata.name"


def test_selectors(core: client.CoreV1Api, ns: str) -> None:
    for name, env in (("a", "prod"), ("b", "prod"), ("c", "dev")):
        core.create_namespaced_config_map(ns, {"metadata": {"name": name, "labels": {"env": env, "n": name}}})
    names = lambda **kw: [i.metadata.name for i in core.list_namespaced_config_map(ns, **kw).items]  # noqa: E731
    assert names(label_selector="env=prod") == ["a", "b"]
    assert names(label_selector="env!=prod") == ["c"]
    assert names(label_selector="env in (dev,test),n") == ["c"]
    assert names(label_selector="!missing,n notin (a)") == ["b", "c"]
    assert names(field_selector="metadata.name=b") == ["b"]
    assert names(field_selector="metadata.name!=b", label_selector="env=prod") == ["a"]
    listed = core.list_namespaced_config_map(ns, limit=2)
    assert len(listed.items) == 2 and listed.metadata._continue
    rest = core.list_namespaced_config_map(ns, limit=2, _continue=listed.metadata._continue)
    assert [i.metadata.name for i in rest.items] == ["c"]
    assert int(listed.metadata.resource_version) > 0


def test_pod_phase_field_selector(core: client.CoreV1Api, ns: str) -> None:
    pod = pod_template({"a": "b"})
    pod["metadata"]["name"] = "p"
    core.create_namespaced_pod(ns, pod)
    wait_until(lambda: core.list_namespaced_pod(ns, field_selector="status.phase=Running").items)
    assert core.list_namespaced_pod(ns, field_selector="status.phase=Pending").items == []


def test_strategic_merge_patch(apps: client.AppsV1Api, core: client.CoreV1Api, ns: str) -> None:
    rs = replica_set("web-v001", 0, {"app": "web"})
    rs["spec"]["template"]["spec"]["containers"].append({"name": "sidecar", "image": "envoy:1"})
    apps.create_namespaced_replica_set(ns, rs)
    patched = apps.patch_namespaced_replica_set(
        "web-v001",
        ns,
        {
            "metadata": {"labels": {"traffic": "enabled"}},
            "spec": {
                "template": {
                    "metadata": {"labels": {"lb": "web"}},
                    "spec": {"containers": [{"name": "main", "image": "nginx:1.26"}]},
                }
            },
        },
    )
    containers = {c.name: c.image for c in patched.spec.template.spec.containers}
    assert containers == {"main": "nginx:1.26", "sidecar": "envoy:1"}
    assert patched.metadata.labels == {"app": "web", "traffic": "enabled"}
    assert patched.spec.template.metadata.labels == {"app": "web", "lb": "web"}
    assert patched.metadata.generation == 2
    removed = apps.patch_namespaced_replica_set(
        "web-v001",
        ns,
        {
            "metadata": {"labels": {"traffic": None}},
            "spec": {"template": {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}},
        },
    )
    assert [c.name for c in removed.spec.template.spec.containers] == ["main"]
    assert "traffic" not in removed.metadata.labels


def test_merge_and_json_patch(core: client.CoreV1Api, ns: str) -> None:
    core.create_namespaced_config_map(ns, _cm("m", a="1", b="2"))
    merged = core.patch_namespaced_config_map(
        "m", ns, {"data": {"a": None, "c": "3"}}, _content_type="application/merge-patch+json"
    )
    assert merged.data == {"b": "2", "c": "3"}
    jp = core.patch_namespaced_config_map(
        "m",
        ns,
        [
            {"op": "test", "path": "/data/b", "value": "2"},
            {"op": "replace", "path": "/data/b", "value": "two"},
            {"op": "add", "path": "/metadata/labels/x", "value": "y"},
            {"op": "remove", "path": "/data/c"},
        ],
    )
    assert jp.data == {"b": "two"} and jp.metadata.labels["x"] == "y"
    with pytest.raises(client.ApiException) as err:
        core.patch_namespaced_config_map("m", ns, [{"op": "test", "path": "/data/b", "value": "nope"}])
    assert err.value.status == 422


def test_dry_run(core: client.CoreV1Api, ns: str) -> None:
    out = core.create_namespaced_config_map(ns, _cm("dry"), dry_run="All")
    assert out.metadata.name == "dry" and out.metadata.uid
    with pytest.raises(client.ApiException):
        core.read_namespaced_config_map("dry", ns)
    core.create_namespaced_config_map(ns, _cm("dry", v="1"))
    out = core.patch_namespaced_config_map("dry", ns, {"data": {"v": "2"}}, dry_run="All")
    assert out.data == {"v": "2"}
    core.delete_namespaced_config_map("dry", ns, dry_run="All")
    assert core.read_namespaced_config_map("dry", ns).data == {"v": "1"}
    with pytest.raises(client.ApiException) as err:
        core.create_namespaced_config_map(ns, _cm("BAD"), dry_run="All")
    assert err.value.status == 422


def test_unknown_namespace_and_path(core: client.CoreV1Api, kubesim: RunningKubesim) -> None:
    with pytest.raises(client.ApiException) as err:
        core.create_namespaced_config_map("no-such-ns", _cm("x"))
    assert status_body(err.value)["message"] == 'namespaces "no-such-ns" not found'
    with pytest.raises(urllib.error.HTTPError) as http_err:
        urllib.request.urlopen(kubesim.url + "/apis/nothing.example.com/v1/widgets", timeout=5)
    assert http_err.value.code == 404
    assert json.loads(http_err.value.read())["message"] == "the server could not find the requested resource"


def test_other_kinds_are_stored(api_client: Any, ns: str) -> None:
    net = client.NetworkingV1Api(api_client)
    net.create_namespaced_network_policy(ns, {"metadata": {"name": "deny"}, "spec": {"podSelector": {}}})
    assert net.read_namespaced_network_policy("deny", ns).metadata.generation == 1
    core = client.CoreV1Api(api_client)
    core.create_namespaced_secret(ns, {"metadata": {"name": "s"}, "stringData": {"k": "v"}, "type": "Opaque"})
    assert core.read_namespaced_secret("s", ns).type == "Opaque"
    raw = core.list_namespaced_event(ns, _preload_content=False)
    assert json.loads(raw.data)["kind"] == "EventList"
