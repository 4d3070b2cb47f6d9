"""Cluster stages (destroy / disable / enable / resize / shrink / find image / quick patch / modify
scaling process) through real pipelines, against kubesim (or GENNAKER_TEST_KUBECONFIG's cluster)."""

from __future__ import annotations

import uuid
from typing import Any

import workflows.stages.deploy
import workflows.stages.servergroups  # noqa: F401  (registers the cluster stages)
from activities.kubernetes.clusters import ServerGroupView
from activities.kubernetes.servergroups import Capacity
from tests.support.kube_rig import KubeRig, deploy_stage, kube_fixture  # noqa: F401
from tests.support.runner import Runner, pipeline
from workflows.stages.servergroups import pick_target
from workflows.state import ExecutionState, StageStatus


def chain(*stages: dict[str, Any]) -> dict[str, Any]:
    linked = []
    for i, stage in enumerate(stages):
        linked.append({**stage, "requisiteStageRefIds": [stages[i - 1]["refId"]] if i else []})
    return pipeline(*linked)


def on(rig: KubeRig, ref: str, type_: str, **fields: Any) -> dict[str, Any]:
    return {"refId": ref, "type": type_, "account": rig.account.name, "namespace": rig.namespace, **fields}


async def run(runner: Runner, *stages: dict[str, Any]) -> ExecutionState:
    state = await runner.finish(await runner.start(chain(*stages)), timeout=90)
    for stage in state.stages:
        assert stage.status is StageStatus.SUCCEEDED, (stage.refId, stage.error)
    return state


def out(state: ExecutionState, ref: str) -> dict[str, Any]:
    return state.stage(ref).outputs  # type: ignore[union-attr]


async def two_groups(runner: Runner, rig: KubeRig) -> tuple[str, str, str]:
    s = "t" + uuid.uuid4().hex[:6]
    lb = f"shop-{s}"
    rig.service(lb)
    await run(
        runner,
        deploy_stage(rig, "d0", stack=s, loadBalancers=[lb]),
        deploy_stage(rig, "d1", stack=s, loadBalancers=[lb], container=rig.container("2.0")),
    )
    return lb, f"shop-{s}-v000", f"shop-{s}-v001"


async def test_disable_then_enable_moves_traffic(runner: Runner, kube: KubeRig) -> None:
    lb, v0, v1 = await two_groups(runner, kube)
    cluster = v0[: -len("-v000")]
    assert kube.serving(lb) == kube.pods(v0) | kube.pods(v1)
    state = await run(runner, on(kube, "off", "disableServerGroup", cluster=cluster, target="ancestor_asg_dynamic"))
    assert out(state, "off")["serverGroup"] == v0
    assert kube.serving(lb) == kube.pods(v1)
    state = await run(runner, on(kube, "on", "enableServerGroup", serverGroupName=v0))
    assert out(state, "on")["enabled"] is True
    assert kube.serving(lb) == kube.pods(v0) | kube.pods(v1)


async def test_resize_find_image_quick_patch_and_scaling(runner: Runner, kube: KubeRig) -> None:
    _, v0, v1 = await two_groups(runner, kube)
    cluster = v0[: -len("-v000")]
    from kubernetes import client as k8s

    k8s.AutoscalingV2Api(kube.api_client).create_namespaced_horizontal_pod_autoscaler(
        kube.namespace,
        {
            "metadata": {"name": f"{v1}-hpa"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": v1},
                "minReplicas": 1,
                "maxReplicas": 6,
            },
        },
    )
    new_image = kube.container("3.0")["image"] if kube.sim else "busybox:1.37"
    state = await run(
        runner,
        on(kube, "find", "findImageFromCluster", cluster=cluster),
        on(
            kube,
            "exact",
            "resizeServerGroup",
            cluster=cluster,
            resizeType="exact",
            capacity={"min": 1, "max": 5, "desired": 3},
        ),
        on(kube, "pct", "resizeServerGroup", cluster=cluster, resizeType="percentage", scalePct=50),
        on(
            kube, "inc", "resizeServerGroup", cluster=cluster, resizeType="incremental", action="scale_down", scaleNum=4
        ),
        on(kube, "patch", "quickPatchServerGroup", cluster=cluster, image=new_image),
        on(
            kube,
            "patch-all",
            "quickPatchServerGroup",
            cluster=cluster,
            target="oldest",
            image=new_image,
            rollingPatch=False,
        ),
        on(kube, "suspend", "modifyScalingProcess", cluster=cluster, action="suspend", processes=["Launch"]),
    )
    assert out(state, "find")["serverGroup"] == v1 and out(state, "find")["image"] == kube.container("2.0")["image"]
    assert (out(state, "exact")["desired"], out(state, "pct")["desired"], out(state, "inc")["desired"]) == (3, 5, 1)
    assert kube.replicas(v1) == 1 and len(kube.pods(v1)) == 1
    assert len(out(state, "patch")["replacedPods"]) == 1 and len(out(state, "patch-all")["replacedPods"]) == 2
    for name in (v0, v1):
        rs = kube.apps.read_namespaced_replica_set(name, kube.namespace)
        assert rs.spec.template.spec.containers[0].image == new_image
        pods = kube.core.list_namespaced_pod(kube.namespace, label_selector=f"gennaker.io/server-group={name}").items
        assert {p.spec.containers[0].image for p in pods} == {new_image}
    hpa = k8s.AutoscalingV2Api(kube.api_client).read_namespaced_horizontal_pod_autoscaler(f"{v1}-hpa", kube.namespace)
    assert (hpa.spec.min_replicas, hpa.spec.max_replicas) == (1, 1)
    assert out(state, "suspend")["autoscalers"] == [f"{v1}-hpa"]
    await run(runner, on(kube, "resume", "modifyScalingProcess", serverGroupName=v1, action="resume"))
    hpa = k8s.AutoscalingV2Api(kube.api_client).read_namespaced_horizontal_pod_autoscaler(f"{v1}-hpa", kube.namespace)
    assert (hpa.spec.min_replicas, hpa.spec.max_replicas) == (1, 6)


async def test_shrink_cluster_spares_enabled_groups_and_destroy_removes_one(runner: Runner, kube: KubeRig) -> None:
    lb, v0, v1 = await two_groups(runner, kube)
    cluster = v0[: -len("-v000")]
    state = await run(runner, on(kube, "shrink", "shrinkCluster", cluster=cluster, shrinkToSize=1))
    assert out(state, "shrink")["destroyed"] == [] and out(state, "shrink")["sparedEnabled"] == [v0]
    state = await run(
        runner,
        on(kube, "off", "disableServerGroup", cluster=cluster, target="oldest"),
        on(kube, "shrink", "shrinkCluster", cluster=cluster, shrinkToSize=1),
    )
    assert out(state, "shrink")["destroyed"] == [v0] and set(kube.server_groups(cluster)) == {v1}
    assert kube.pods(v0) == set()
    state = await run(runner, on(kube, "destroy", "destroyServerGroup", cluster=cluster, target="newest"))
    assert out(state, "destroy")["serverGroup"] == v1
    assert kube.server_groups(cluster) == {} and kube.pods(v1) == set() and kube.serving(lb) == set()


def test_targets_pick_like_spinnaker() -> None:
    def group(version: int, desired: int) -> ServerGroupView:
        return ServerGroupView(
            account="a",
            namespace="n",
            name=f"c-v{version:03d}",
            cluster="c",
            application="c",
            version=version,
            images=[],
            desired=desired,
            ready=desired,
            current=desired,
            capacity=Capacity(desired=desired),
            enabled=True,
            loadBalancers=[],
            securityGroups=[],
        )

    groups = [group(0, 3), group(1, 5), group(2, 5)]
    picked = {
        t: pick_target(groups, t).name
        for t in (
            "current_asg_dynamic",
            "ancestor_asg_dynamic",  # type: ignore[union-attr]
            "oldest_asg_dynamic",
            "largest_asg_dynamic",
        )
    }
    assert picked == {
        "current_asg_dynamic": "c-v002",
        "ancestor_asg_dynamic": "c-v001",
        "oldest_asg_dynamic": "c-v000",
        "largest_asg_dynamic": "c-v002",
    }
    assert pick_target(groups[:1], "previous") is None
