"""Traffic and live-resource manifest stages through real pipelines, against kubesim over HTTP
(its Endpoints controller lists the ready pods a Service selects): enable/disable moving a Service's
endpoints (by name and by Spinnaker's `cluster: "<kind> <name>"` + criteria), rolling restart,
deployManifest's trafficManagement (redblack leaves exactly one enabled ReplicaSet, highlander
deletes the rest), and findArtifactsFromResource's outputs bound downstream."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from temporalio.client import Client

from activities.kubernetes.manifest_traffic import LOAD_BALANCERS_ANNOTATION
from tests.integration.test_manifest_artifacts import AccountRig, account_worker, outputs, run
from tests.support.runner import pipeline
from workflows.state import ExecutionState, StageStatus

ACCOUNT = "traffic-sim"
NAMESPACE = "gn-traffic"
IMAGE = "nginx:1.27-alpine"


@pytest.fixture(scope="module")
async def rig(client: Client, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[AccountRig]:
    async with account_worker(client, tmp_path_factory.mktemp("kubesim"), ACCOUNT, NAMESPACE) as made:
        yield made


def stage(ref: str, type_: str, *parents: str, **fields: Any) -> dict[str, Any]:
    return {"refId": ref, "type": type_, "account": ACCOUNT, "requisiteStageRefIds": list(parents), **fields}


def deploy(
    *manifests: dict[str, Any], ref: str = "deploy", parents: tuple[str, ...] = (), **fields: Any
) -> dict[str, Any]:
    """A deployManifest stage putting `manifests` into the test namespace."""
    return stage(ref, "deployManifest", *parents, namespaceOverride=NAMESPACE, manifests=list(manifests), **fields)


async def run_stages(
    client: Client, task_queue: str, name: str, *stages: dict[str, Any], timeout: float = 60
) -> ExecutionState:
    """Run pipeline `name` of `stages` on the module's worker; its state once it has ended."""
    return await run(client, task_queue, pipeline(*stages, name=name), timeout=timeout)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def service(name: str, fronted_by: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"frontedBy": fronted_by}, "ports": [{"port": 80, "targetPort": 80}]},
    }


def replica_set(
    name: str, cluster: str, image: str = IMAGE, replicas: int = 2, app: str | None = None, **annotations: str
) -> dict[str, Any]:
    labels = {"app": app or cluster}
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": {"labels": {**labels, "frontedBy": cluster}},
                "spec": {"containers": [{"name": "web", "image": image}]},
            },
        },
    }


def endpoint_pods(rig: AccountRig, name: str) -> set[str]:
    endpoints = rig.core.read_namespaced_endpoints(name, NAMESPACE)
    return {
        address.target_ref.name
        for subset in endpoints.subsets or []
        for address in [*(subset.addresses or []), *(subset.not_ready_addresses or [])]
        if address.target_ref is not None
    }


def pods_of(rig: AccountRig, replica_set_name: str) -> set[str]:
    live = rig.apps.read_namespaced_replica_set(replica_set_name, NAMESPACE)
    pods = rig.core.list_namespaced_pod(NAMESPACE).items
    return {
        p.metadata.name
        for p in pods
        if any(o.uid == live.metadata.uid for o in p.metadata.owner_references or [])
        and not p.metadata.deletion_timestamp
    }


def failed(state: ExecutionState, ref: str) -> str:
    found = state.stage(ref)
    assert found is not None and found.status is StageStatus.TERMINAL and found.error, state.model_dump_json(indent=1)
    return found.error.message


async def test_disable_and_enable_move_the_service_endpoints(
    client: Client, task_queue: str, worker: None, rig: AccountRig
) -> None:
    cluster = unique("web")
    balancers = {LOAD_BALANCERS_ANNOTATION: json.dumps([f"service {cluster}"])}
    state = await run_stages(
        client,
        task_queue,
        "disable",
        deploy(
            service(cluster, cluster),
            replica_set(f"{cluster}-v000", cluster, **balancers),
            replica_set(f"{cluster}-v001", cluster, app=f"{cluster}-next", **balancers),
        ),
        stage("disable", "disableManifest", "deploy", location=NAMESPACE, manifestName=f"replicaSet {cluster}-v000"),
    )
    assert outputs(state, "disable")["loadBalancers"] == [f"service {cluster}"]
    old, new = pods_of(rig, f"{cluster}-v000"), pods_of(rig, f"{cluster}-v001")
    assert len(old) == len(new) == 2
    assert endpoint_pods(rig, cluster) == new  # the disabled version's pods left the Service, the other's stayed
    template = rig.apps.read_namespaced_replica_set(f"{cluster}-v000", NAMESPACE).spec.template.metadata.labels
    assert "frontedBy" not in template and template["app"] == cluster
    # Spinnaker's dynamic target: the oldest ReplicaSet of the cluster, then the newest.
    state = await run_stages(
        client,
        task_queue,
        "enable",
        stage("enable", "enableManifest", location=NAMESPACE, cluster=f"replicaSet {cluster}", criteria="oldest"),
        stage("disable", "disableManifest", "enable", location=NAMESPACE, cluster=cluster, criteria="newest"),
    )
    assert outputs(state, "enable")["manifest"] == f"replicaSet {cluster}-v000"
    assert outputs(state, "disable")["manifest"] == f"replicaSet {cluster}-v001"
    assert endpoint_pods(rig, cluster) == pods_of(rig, f"{cluster}-v000") == old


async def test_disable_without_the_annotation_remembers_the_services_for_enable(
    client: Client, task_queue: str, worker: None, rig: AccountRig
) -> None:
    cluster = unique("plain")
    target = {"location": NAMESPACE, "manifestName": f"replicaSet {cluster}-v000"}
    state = await run_stages(
        client,
        task_queue,
        "no-annotation",
        deploy(service(cluster, cluster), replica_set(f"{cluster}-v000", cluster)),
        stage("disable", "disableManifest", "deploy", **target),
        stage("enable", "enableManifest", "disable", **target),
    )
    assert (
        outputs(state, "disable")["loadBalancers"]
        == outputs(state, "enable")["loadBalancers"]
        == [f"service {cluster}"]
    )
    assert endpoint_pods(rig, cluster) == pods_of(rig, f"{cluster}-v000") != set()


async def test_a_deployment_or_a_service_sharing_the_selector_is_refused(
    client: Client, task_queue: str, worker: None, rig: AccountRig
) -> None:
    cluster = unique("shared")
    shared = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": cluster},
        "spec": {"selector": {"app": cluster}, "ports": [{"port": 80}]},
    }
    state = await run_stages(
        client,
        task_queue,
        "shared-selector",
        deploy(
            shared, replica_set(f"{cluster}-v000", cluster, **{LOAD_BALANCERS_ANNOTATION: f'["service {cluster}"]'})
        ),
        stage("disable", "disableManifest", "deploy", location=NAMESPACE, manifestName=f"replicaSet {cluster}-v000"),
    )
    message = failed(state, "disable")
    assert f"Service {NAMESPACE}/{cluster} selects on app" in message and "orphan" in message
    assert endpoint_pods(rig, cluster) == pods_of(rig, f"{cluster}-v000")  # nothing was changed


async def test_rolling_restart_replaces_the_pods(
    client: Client, task_queue: str, worker: None, rig: AccountRig
) -> None:
    name = unique("restart")
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": IMAGE}]},
            },
        },
    }
    outputs(await run_stages(client, task_queue, "restart-deploy", deploy(deployment)), "deploy")  # it succeeded
    before = {p.metadata.name for p in rig.core.list_namespaced_pod(NAMESPACE, label_selector=f"app={name}").items}
    state = await run_stages(
        client,
        task_queue,
        "restart",
        stage("restart", "rollingRestartManifest", location=NAMESPACE, manifestName=f"deployment {name}"),
    )
    out = outputs(state, "restart")
    live = rig.apps.read_namespaced_deployment(name, NAMESPACE)
    assert live.spec.template.metadata.annotations["kubectl.kubernetes.io/restartedAt"] == out["restartedAt"]
    assert (live.status.updated_replicas, live.status.available_replicas, live.status.replicas) == (2, 2, 2)
    after = {
        p.metadata.name
        for p in rig.core.list_namespaced_pod(NAMESPACE, label_selector=f"app={name}").items
        if not p.metadata.deletion_timestamp
    }
    assert len(after) == 2 and not (after & before)


def traffic_deploy(ref: str, cluster: str, image: str, strategy: str, *parents: str) -> dict[str, Any]:
    return deploy(
        service(cluster, cluster),
        replica_set(cluster, cluster, image),
        ref=ref,
        parents=parents,
        trafficManagement={
            "enabled": True,
            "options": {"services": [f"service {cluster}"], "enableTraffic": True, "strategy": strategy},
        },
    )


async def test_redblack_leaves_exactly_one_enabled_replica_set_and_highlander_deletes_the_rest(
    client: Client, task_queue: str, worker: None, rig: AccountRig
) -> None:
    cluster = unique("rb")
    state = await run_stages(
        client,
        task_queue,
        "redblack",
        traffic_deploy("v0", cluster, "nginx:1.26-alpine", "redblack"),
        traffic_deploy("v1", cluster, IMAGE, "redblack", "v0"),
        timeout=90,
    )
    first, second = outputs(state, "v0"), outputs(state, "v1")
    assert first["trafficManagement"]["replicaSets"] == [f"{cluster}-v000"]
    assert second["trafficManagement"] == {
        "strategy": "redblack",
        "services": [f"service {cluster}"],
        "replicaSets": [f"{cluster}-v001"],
        "disabled": [f"{cluster}-v000"],
        "deleted": [],
    }
    old, new = pods_of(rig, f"{cluster}-v000"), pods_of(rig, f"{cluster}-v001")
    assert len(old) == len(new) == 2
    assert endpoint_pods(rig, cluster) == new  # exactly one ReplicaSet serves
    annotations = rig.apps.read_namespaced_replica_set(f"{cluster}-v001", NAMESPACE).metadata.annotations
    assert json.loads(annotations[LOAD_BALANCERS_ANNOTATION]) == [f"service {cluster}"]
    state = await run_stages(
        client, task_queue, "highlander", traffic_deploy("v2", cluster, IMAGE, "highlander"), timeout=90
    )
    assert outputs(state, "v2")["trafficManagement"]["deleted"] == [f"{cluster}-v000", f"{cluster}-v001"]
    remaining = [
        rs.metadata.name
        for rs in rig.apps.list_namespaced_replica_set(NAMESPACE).items
        if rs.metadata.name.startswith(cluster)
    ]
    assert remaining == [f"{cluster}-v002"]
    assert endpoint_pods(rig, cluster) == pods_of(rig, f"{cluster}-v002")


async def test_find_artifacts_from_resource_outputs_images_bound_downstream(
    client: Client, task_queue: str, worker: None, rig: AccountRig
) -> None:
    name = unique("found")
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "initContainers": [{"name": "migrate", "image": "shop/migrate:3"}],
                    "containers": [
                        {"name": "web", "image": "localhost:5000/shop/web:2.1"},
                        {"name": "sidecar", "image": "envoy@sha256:" + "b" * 64},
                    ],
                },
            },
        },
    }
    copy = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"{name}-copy"},
        "spec": {"containers": [{"name": "web", "image": "localhost:5000/shop/web:placeholder"}]},
    }
    state = await run_stages(
        client,
        task_queue,
        "find-artifacts",
        deploy(deployment),
        stage(
            "find",
            "findArtifactsFromResource",
            "deploy",
            location=NAMESPACE,
            manifestName=f"deployment {name}",
            expectedArtifacts=[
                {"id": "web-image", "matchArtifact": {"type": "docker/image", "name": r"localhost:5000/shop/web"}}
            ],
        ),
        deploy(copy, ref="copy", parents=("find",), requiredArtifactIds=["web-image"]),
    )
    found = outputs(state, "find")
    assert [(a["name"], a["reference"], a.get("version")) for a in found["artifacts"]] == [
        ("shop/migrate", "shop/migrate:3", "3"),
        ("localhost:5000/shop/web", "localhost:5000/shop/web:2.1", "2.1"),
        ("envoy", "envoy@sha256:" + "b" * 64, "sha256:" + "b" * 64),
    ]
    assert found["manifest"]["metadata"]["name"] == name and "managedFields" not in found["manifest"]["metadata"]
    assert state.artifacts.bound["web-image"].reference == "localhost:5000/shop/web:2.1"
    live = rig.core.read_namespaced_pod(f"{name}-copy", NAMESPACE)
    assert live.spec.containers[0].image == "localhost:5000/shop/web:2.1"
