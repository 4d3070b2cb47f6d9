"""A deploy whose autoscaler the API server refuses after its ReplicaSet was made: the stage fails saying
which stage, the server's reason and what was left (the group deleted again, or left behind when that
too is refused), the cluster holds exactly that, and the next deploy makes one new group, no duplicate.

kubesim refuses the HPA (`refuse_create`: the Status a validating or admitting API server sends), so
these tests skip on a real cluster (GENNAKER_TEST_KUBECONFIG), which cannot be made to refuse one.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import kubernetes.client as k8s
from kubernetes import watch

import workflows.stages.deploy  # noqa: F401  (registers `deploy`)
from activities.kubernetes.servergroups import CLUSTER_LABEL, DISABLED_ANNOTATION, SERVER_GROUP_LABEL
from kubesim.testing import RunningKubesim
from tests.support.deploy_attempts import deploy
from tests.support.kube_rig import KubeRig, deploy_stage, kube_fixture  # noqa: F401
from tests.support.runner import Runner
from workflows.state import ExecutionState, StageStatus

HPAS = "horizontalpodautoscalers"
POLICY = {"cpuUtilization": {"target": 70}}


def refuse_autoscaler(sim: RunningKubesim, kube: KubeRig, group: str, code: int, message: str) -> int:
    """Make the API server refuse `group`'s HPA; returns how many refusals it had served before."""
    before = int(sim.faults()["refusals_served"])
    rule = {"resource": HPAS, "namespace": kube.namespace, "name": group, "code": code, "message": message,
            "field": "spec.metrics"}  # fmt: skip
    sim.inject(refuse_create=[rule])
    return before


def failed_stage_message(state: ExecutionState) -> str:
    stage = state.stage("deploy")
    assert stage is not None and stage.status is StageStatus.TERMINAL and stage.error is not None, stage
    assert state.failure is not None and "stage 'deploy'" in state.failure, state.failure
    return stage.error.message


def wait_deleted(kube: KubeRig, name: str, timeout: int = 15) -> None:
    """Until the ReplicaSet is gone: a foreground delete keeps it (deletionTimestamp set) until the
    garbage collector has removed its pods. Watched from the listing's resourceVersion, so no event is lost."""
    selector = f"metadata.name={name}"
    listing = kube.apps.list_namespaced_replica_set(kube.namespace, field_selector=selector)
    if not listing.items:
        return
    stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
        kube.apps.list_namespaced_replica_set,
        kube.namespace,
        field_selector=selector,
        resource_version=listing.metadata.resource_version,
        timeout_seconds=timeout,
    )
    for event in stream:
        if event["type"] == "DELETED":
            return
    raise AssertionError(f"ReplicaSet {name} still exists {timeout}s after the refused deploy deleted it")


def hpa_api(kube: KubeRig) -> Any:
    return k8s.AutoscalingV2Api(kube.api_client)


def autoscalers(kube: KubeRig, cluster: str) -> dict[str, Any]:
    listing = hpa_api(kube).list_namespaced_horizontal_pod_autoscaler(
        kube.namespace, label_selector=f"{CLUSTER_LABEL}={cluster}"
    )
    return {hpa.metadata.name: hpa for hpa in listing.items}


def all_pods(kube: KubeRig, group: str) -> list[str]:
    """Every pod of the group, terminating ones included."""
    pods = kube.core.list_namespaced_pod(kube.namespace, label_selector=f"{SERVER_GROUP_LABEL}={group}")
    return [p.metadata.name for p in pods.items]


async def redeploy_makes_one_new_group(runner: Runner, kube: KubeRig, stage: dict[str, Any], group: str) -> None:
    """The fault removed, the same deploy succeeds with the next version and its own autoscaler."""
    state, _ = await deploy(runner, stage)
    assert state.stage("deploy").status is StageStatus.SUCCEEDED, state.stage("deploy")  # type: ignore[union-attr]
    rs = kube.apps.read_namespaced_replica_set(group, kube.namespace)
    hpa = hpa_api(kube).read_namespaced_horizontal_pod_autoscaler(group, kube.namespace)
    assert hpa.metadata.owner_references[0].uid == rs.metadata.uid


async def test_a_refused_autoscaler_takes_its_new_server_group_away_and_says_so(runner: Runner, kube: KubeRig) -> None:
    sim = kube.needs_kubesim()
    cluster = f"shop-i{uuid.uuid4().hex[:6]}"
    group = f"{cluster}-v000"
    why = "metrics of type Resource are not allowed in this namespace"
    stage = deploy_stage(kube, stack=cluster.removeprefix("shop-"), scalingPolicy=POLICY)
    before = refuse_autoscaler(sim, kube, group, 422, why)
    try:
        state, attempts = await deploy(runner, stage)
        assert sim.faults()["refusals_served"] == before + 1  # the HPA create reached the server, once
    finally:
        sim.reset_faults()

    message = failed_stage_message(state)
    assert f"the API server refused to create HorizontalPodAutoscaler {group} in namespace {kube.namespace}" in (
        message
    ), message
    assert "HTTP 422" in message and f"spec.metrics: Forbidden: {why}" in message, message
    assert f"; ReplicaSet {group} deleted again, nothing was created" in message, message
    assert "never became healthy" not in message and "disable" not in message, message
    assert attempts == 1, f"a refusal is final, yet the create was attempted {attempts} times"

    # What the cluster holds: nothing of the group — no ReplicaSet, no pods, no autoscaler.
    await asyncio.to_thread(wait_deleted, kube, group)
    assert kube.server_groups(cluster) == {}
    assert all_pods(kube, group) == []
    assert autoscalers(kube, cluster) == {}

    await redeploy_makes_one_new_group(runner, kube, stage, f"{cluster}-v001")
    assert set(kube.server_groups(cluster)) == {f"{cluster}-v001"}
    assert set(autoscalers(kube, cluster)) == {f"{cluster}-v001"}


async def test_an_autoscaler_forbidden_by_admission_leaves_the_serving_group_alone(
    runner: Runner, kube: KubeRig
) -> None:
    sim = kube.needs_kubesim()
    cluster = f"shop-f{uuid.uuid4().hex[:6]}"
    kube.service(cluster)
    stage = deploy_stage(kube, stack=cluster.removeprefix("shop-"), scalingPolicy=POLICY, loadBalancers=[cluster],
                         strategy="redblack")  # fmt: skip
    first, _ = await deploy(runner, stage)
    assert first.stage("deploy").status is StageStatus.SUCCEEDED  # type: ignore[union-attr]
    old, new = f"{cluster}-v000", f"{cluster}-v001"
    serving = kube.serving(cluster)
    assert serving == kube.pods(old) != set()

    why = "exceeded quota: autoscalers, requested: count/horizontalpodautoscalers.autoscaling=1, limited: 1"
    refuse_autoscaler(sim, kube, new, 403, why)
    try:
        state, attempts = await deploy(runner, stage)
    finally:
        sim.reset_faults()

    message = failed_stage_message(state)
    assert f"the API server refused to create HorizontalPodAutoscaler {new}" in message, message
    assert "HTTP 403" in message and f'horizontalpodautoscalers.autoscaling "{new}" is forbidden: {why}' in message
    assert f"; ReplicaSet {new} deleted again, nothing was created" in message, message
    assert attempts == 1, f"a refusal is final, yet the create was attempted {attempts} times"

    await asyncio.to_thread(wait_deleted, kube, new)
    assert all_pods(kube, new) == []
    # What was left: the old group, the only one, still serving, with its autoscaler.
    assert set(kube.server_groups(cluster)) == {old}
    assert set(autoscalers(kube, cluster)) == {old}
    assert kube.serving(cluster) == serving

    await redeploy_makes_one_new_group(runner, kube, stage, f"{cluster}-v002")
    assert set(kube.server_groups(cluster)) == {old, f"{cluster}-v002"}  # v001 never comes back
    assert set(autoscalers(kube, cluster)) == {old, f"{cluster}-v002"}


async def test_a_group_that_cannot_be_deleted_again_is_named_as_left_behind(runner: Runner, kube: KubeRig) -> None:
    sim = kube.needs_kubesim()
    cluster = f"shop-l{uuid.uuid4().hex[:6]}"
    group = f"{cluster}-v000"
    stage = deploy_stage(kube, stack=cluster.removeprefix("shop-"), scalingPolicy=POLICY)
    refuse_autoscaler(sim, kube, group, 422, "not today")
    sim.inject(forbid=[{"verb": "delete", "resource": "replicasets", "namespace": kube.namespace}])
    try:
        state, _ = await deploy(runner, stage)
    finally:
        sim.reset_faults()

    message = failed_stage_message(state)
    assert f"the API server refused to create HorizontalPodAutoscaler {group}" in message, message
    assert f"ReplicaSet {group} is left behind (deleting it failed: HTTP 403" in message, message
    assert "nothing was created" not in message, message
    assert message.endswith("; v000 disabled"), message  # the deploy's rollback of a group that does exist
    # Exactly what the message says remains: the ReplicaSet, not being deleted, disabled, without an autoscaler.
    rs = kube.apps.read_namespaced_replica_set(group, kube.namespace)
    assert rs.metadata.deletion_timestamp is None
    assert rs.metadata.annotations[DISABLED_ANNOTATION] == "true"
    assert set(kube.server_groups(cluster)) == {group}
    assert autoscalers(kube, cluster) == {}
