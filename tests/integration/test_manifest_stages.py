"""Manifest stages through real pipelines on the Temporal dev server, against kubesim over HTTP (or a
real cluster with GENNAKER_TEST_KUBECONFIG): deploy, patch (each merge strategy), scale (static and
cluster + criteria), undo rollout, delete (cascading, label selector), and the account's failures."""

from __future__ import annotations

import time
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle

from activities.kubernetes.manifests import EXECUTION_ANNOTATION
from tests.support.kube_manifests_rig import (  # noqa: F401
    ACCOUNT,
    WEB_IMAGE_V1,
    WEB_IMAGE_V2,
    KubeRig,
    deployment,
    k8s_stage,
    kube_fixture,
    kube_worker_fixture,
    run_stages,
    unique,
)
from tests.support.runner import Runner, pipeline
from workflows.model import PipelineInvalid, parse_pipeline
from workflows.state import ExecutionState, StageStatus


def outputs(state: ExecutionState, ref: str) -> dict[str, Any]:
    stage = state.stage(ref)
    assert stage is not None and stage.status is StageStatus.SUCCEEDED, state.model_dump_json(indent=1)
    return dict(stage.outputs)


def failure(state: ExecutionState, ref: str) -> str:
    stage = state.stage(ref)
    assert stage is not None and stage.status is StageStatus.TERMINAL and stage.error, state.model_dump_json(indent=1)
    return stage.error.message


def config_map(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}, "data": {"a": "1"}}


async def activity_attempts(handle: WorkflowHandle[Any, Any], activity_type: str) -> list[int]:
    """How many attempts each run of `activity_type` in the execution's history took."""
    scheduled: dict[int, str] = {}
    attempts = []
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled[event.event_id] = event.activity_task_scheduled_event_attributes.activity_type.name
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started = event.activity_task_started_event_attributes
            if scheduled.get(started.scheduled_event_id) == activity_type:
                attempts.append(started.attempt)
    return attempts


async def test_deploy_then_undo_rollout_to_the_previous_image(runner: Runner, kube: KubeRig) -> None:
    name, ns = unique("web"), kube.namespace
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name},
        "data": {"release": "${{ parameters.tag }}"},
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 80}]},
    }
    state = await run_stages(
        runner,
        k8s_stage(
            "v1",
            "deployManifest",
            manifests=[config, deployment(name, "${{ parameters.image }}"), service],
            namespaceOverride=ns,
        ),
        k8s_stage(
            "v2", "deployManifest", "v1", manifests=[deployment(name, WEB_IMAGE_V2), service], namespaceOverride=ns
        ),
        k8s_stage("undo", "undoRolloutManifest", "v2", location=ns, manifestName=f"deployment {name}"),
        parameters={"tag": "r-42", "image": WEB_IMAGE_V1},
    )
    first = outputs(state, "v1")
    assert first["manifestNamesByNamespace"] == {ns: [f"configMap {name}", f"deployment {name}", f"service {name}"]}
    assert first["stable"][f"Deployment {ns}/{name}"] == "rolled out: 2/2 available"
    undo = outputs(state, "undo")
    assert (undo["fromRevision"], undo["toRevision"], undo["images"]) == (2, 1, [WEB_IMAGE_V1])
    live = kube.apps.read_namespaced_deployment(name, ns)
    assert live.spec.template.spec.containers[0].image == WEB_IMAGE_V1
    assert (live.status.updated_replicas, live.status.available_replicas, live.status.replicas) == (2, 2, 2)
    assert live.metadata.annotations[EXECUTION_ANNOTATION] == state.id
    assert kube.core.read_namespaced_config_map(name, ns).data == {"release": "r-42"}


async def test_patch_with_each_merge_strategy(runner: Runner, kube: KubeRig) -> None:
    name, ns = unique("patch"), kube.namespace
    target = {"location": ns, "manifestName": f"deployment {name}"}
    env_patch = {
        "spec": {"template": {"spec": {"containers": [{"name": "web", "env": [{"name": "MODE", "value": "blue"}]}]}}}
    }
    state = await run_stages(
        runner,
        k8s_stage("deploy", "deployManifest", manifests=[deployment(name, replicas=1)], namespaceOverride=ns),
        k8s_stage("strategic", "patchManifest", "deploy", patchBody=env_patch, **target),
        k8s_stage(
            "merge",
            "patchManifest",
            "strategic",
            patchBody={"metadata": {"labels": {"tier": "web"}}},
            options={"mergeStrategy": "merge"},
            **target,
        ),
        k8s_stage(
            "json",
            "patchManifest",
            "merge",
            patchBody=[{"op": "replace", "path": "/spec/replicas", "value": 2}],
            options={"mergeStrategy": "json"},
            **target,
        ),
    )
    assert outputs(state, "json")["mergeStrategy"] == "json"
    live = kube.apps.read_namespaced_deployment(name, ns)
    container = live.spec.template.spec.containers[0]
    assert container.image == WEB_IMAGE_V1  # strategic merge kept the container, merged by name
    assert [(e.name, e.value) for e in container.env] == [("MODE", "blue")]
    assert live.metadata.labels["tier"] == "web" and live.metadata.labels["app"] == name
    assert (live.spec.replicas, live.status.available_replicas, live.status.updated_replicas) == (2, 2, 2)


async def test_scale_by_cluster_criteria_and_by_name(runner: Runner, kube: KubeRig) -> None:
    cluster, ns = unique("shop"), kube.namespace

    def server_group(version: int) -> dict[str, Any]:
        labels = {"app": cluster, "version": f"v{version:03d}"}
        return {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {"name": f"{cluster}-v{version:03d}"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "web", "image": WEB_IMAGE_V1}]},
                },
            },
        }

    state = await run_stages(
        runner,
        k8s_stage("deploy", "deployManifest", manifests=[server_group(0), server_group(1)], namespaceOverride=ns),
        k8s_stage("up", "scaleManifest", "deploy", location=ns, cluster=cluster, criteria="newest", replicas=3),
        k8s_stage(
            "down", "scaleManifest", "up", location=ns, manifestName=f"replicaSet {cluster}-v000", replicas="${{ 0 }}"
        ),
    )
    assert outputs(state, "up")["manifest"] == f"replicaSet {cluster}-v001"
    assert outputs(state, "up")["stable"] == {f"ReplicaSet {ns}/{cluster}-v001": "3/3 replicas ready"}
    newest = kube.apps.read_namespaced_replica_set(f"{cluster}-v001", ns)
    oldest = kube.apps.read_namespaced_replica_set(f"{cluster}-v000", ns)
    assert (newest.status.ready_replicas, oldest.spec.replicas, oldest.status.replicas or 0) == (3, 0, 0)


async def test_delete_cascading_by_label_and_already_gone(runner: Runner, kube: KubeRig) -> None:
    name, ns, team = unique("gone"), kube.namespace, unique("team")
    state = await run_stages(
        runner,
        k8s_stage(
            "deploy",
            "deployManifest",
            namespaceOverride=ns,
            manifests=[deployment(name), config_map(f"{name}-a", team=team), config_map(f"{name}-b", team=team)],
        ),
        k8s_stage(
            "delete",
            "deleteManifest",
            "deploy",
            location=ns,
            manifestName=f"deployment {name}",
            options={"cascading": True},
        ),
        k8s_stage(
            "by-label",
            "deleteManifest",
            "deploy",
            location=ns,
            mode="label",
            kinds=["configMap"],
            labelSelectors={"selectors": [{"kind": "EQUALS", "key": "team", "values": [team]}]},
        ),
        k8s_stage("again", "deleteManifest", "delete", location=ns, manifestName=f"deployment {name}"),
    )
    assert outputs(state, "delete")["deletedManifests"] == [f"Deployment {ns}/{name}"]
    assert sorted(outputs(state, "by-label")["deletedManifests"]) == [
        f"ConfigMap {ns}/{name}-a",
        f"ConfigMap {ns}/{name}-b",
    ]
    assert outputs(state, "again")["alreadyGone"] == [f"Deployment {ns}/{name}"]
    # Cascading deletion waited for the dependents: nothing of the Deployment is left when it ends.
    assert kube.gone(kube.apps.read_namespaced_deployment, name)
    assert kube.apps.list_namespaced_replica_set(ns, label_selector=f"app={name}").items == []
    assert kube.core.list_namespaced_pod(ns, label_selector=f"app={name}").items == []
    assert kube.core.list_namespaced_config_map(ns, label_selector=f"team={team}").items == []


async def test_revoked_credentials_fail_at_once_naming_the_account(runner: Runner, kube: KubeRig) -> None:
    sim = kube.require_sim()
    sim.inject(revoke_token=True)
    started = time.monotonic()
    handle = await runner.start(
        pipeline(
            k8s_stage(
                "deploy", "deployManifest", manifests=[config_map(unique("cm"))], namespaceOverride=kube.namespace
            ),
            name="revoked",
        )
    )
    state = await runner.finish(handle)
    message = failure(state, "deploy")
    assert f"account {ACCOUNT}: 401 Unauthorized" in message and "kubeconfig" in message, message
    assert time.monotonic() - started < 10
    assert await activity_attempts(handle, "apply_manifests") == [1]  # not retried


async def test_a_burst_of_server_errors_is_retried(runner: Runner, kube: KubeRig) -> None:
    sim = kube.require_sim()
    name = unique("burst")
    sim.inject(error_burst={"count": 2, "code": 503})
    handle = await runner.start(
        pipeline(
            k8s_stage("deploy", "deployManifest", manifests=[config_map(name)], namespaceOverride=kube.namespace),
            name="burst",
        )
    )
    state = await runner.finish(handle)
    assert outputs(state, "deploy")["deployedManifests"] == [
        {"kind": "ConfigMap", "name": name, "namespace": kube.namespace, "apiVersion": "v1"}
    ]
    assert (await activity_attempts(handle, "apply_manifests"))[0] > 1
    assert kube.core.read_namespaced_config_map(name, kube.namespace).data == {"a": "1"}


async def test_oversized_manifests_are_refused_before_anything_is_written(runner: Runner, kube: KubeRig) -> None:
    name = unique("big")
    huge = {**config_map(name), "data": {"blob": "x" * 210_000}}
    state = await run_stages(
        runner, k8s_stage("deploy", "deployManifest", manifests=[huge], namespaceOverride=kube.namespace)
    )
    message = failure(state, "deploy")
    assert "the limit is 200 KB" in message and "Nothing was written" in message
    assert kube.gone(kube.core.read_namespaced_config_map, name)


def test_unsupported_kinds_and_ambiguous_targets_are_rejected_at_submission() -> None:
    with pytest.raises(PipelineInvalid) as bad_kind:
        parse_pipeline(
            pipeline(k8s_stage("d", "deployManifest", manifests=[{"kind": "Stateful Set", "metadata": {"name": "db"}}]))
        )
    assert "kind 'Stateful Set' is not a Kubernetes kind name" in str(bad_kind.value)
    with pytest.raises(PipelineInvalid) as both:
        parse_pipeline(
            pipeline(k8s_stage("x", "deleteManifest", manifestName="deployment a", cluster="a", criteria="newest"))
        )
    assert "give `manifestName`" in str(both.value)
    with pytest.raises(PipelineInvalid) as no_account:
        parse_pipeline(pipeline({"refId": "s", "type": "scaleManifest", "manifestName": "deployment a", "replicas": 1}))
    assert "`account` is required" in str(no_account.value)
