"""`deploy` with `capacity` and a `scalingPolicy` makes the server group's HPA, so
`modifyScalingProcess` works on what Gennaker deployed (kubesim, or GENNAKER_TEST_KUBECONFIG's cluster)."""

from __future__ import annotations

import uuid
from typing import Any

import kubernetes.client as k8s
import pytest

import workflows.stages.servergroups  # noqa: F401  (registers the cluster stages)
from tests.support.kube_rig import KubeRig, deploy_stage, kube_fixture  # noqa: F401
from tests.support.runner import Runner, pipeline
from workflows.model import PipelineInvalid, parse_pipeline
from workflows.state import ExecutionState, StageStatus


def chain(*stages: dict[str, Any]) -> dict[str, Any]:
    return pipeline(
        *({**s, "requisiteStageRefIds": [stages[i - 1]["refId"]] if i else []} for i, s in enumerate(stages))
    )


async def run(runner: Runner, *stages: dict[str, Any]) -> ExecutionState:
    state = await runner.finish(await runner.start(chain(*stages)), timeout=90)
    for stage in state.stages:
        assert stage.status is StageStatus.SUCCEEDED, (stage.refId, stage.error)
    return state


async def test_deploy_with_a_scaling_policy_makes_an_hpa_that_modify_scaling_process_drives(
    runner: Runner, kube: KubeRig
) -> None:
    stack = "a" + uuid.uuid4().hex[:6]
    group = f"shop-{stack}-v000"
    policy = {"cpuUtilization": {"target": 65}}
    await run(runner, deploy_stage(kube, "d", stack=stack, scalingPolicy=policy))
    hpas = k8s.AutoscalingV2Api(kube.api_client)
    hpa = hpas.read_namespaced_horizontal_pod_autoscaler(group, kube.namespace)
    assert (hpa.spec.scale_target_ref.kind, hpa.spec.scale_target_ref.name) == ("ReplicaSet", group)
    assert (hpa.spec.min_replicas, hpa.spec.max_replicas) == (1, 4)
    assert hpa.spec.metrics[0].resource.target.average_utilization == 65
    owner = hpa.metadata.owner_references[0]
    assert (owner.kind, owner.name) == ("ReplicaSet", group)

    suspend = {"refId": "s", "type": "modifyScalingProcess", "account": kube.account.name,
               "namespace": kube.namespace, "serverGroupName": group, "action": "suspend"}  # fmt: skip
    state = await run(runner, suspend)
    assert state.stage("s").outputs["autoscalers"] == [group]  # type: ignore[union-attr]
    hpa = hpas.read_namespaced_horizontal_pod_autoscaler(group, kube.namespace)
    assert (hpa.spec.min_replicas, hpa.spec.max_replicas) == (2, 2)  # pinned at the current 2 replicas
    await run(runner, {**suspend, "refId": "r", "action": "resume"})
    hpa = hpas.read_namespaced_horizontal_pod_autoscaler(group, kube.namespace)
    assert (hpa.spec.min_replicas, hpa.spec.max_replicas) == (1, 4)


async def test_deploy_without_a_scaling_policy_makes_no_hpa(runner: Runner, kube: KubeRig) -> None:
    stack = "n" + uuid.uuid4().hex[:6]
    await run(runner, deploy_stage(kube, "d", stack=stack))
    names = [
        h.metadata.name
        for h in k8s.AutoscalingV2Api(kube.api_client).list_namespaced_horizontal_pod_autoscaler(kube.namespace).items
    ]
    assert f"shop-{stack}-v000" not in names


def test_a_scaling_policy_needs_bounds_an_autoscaler_can_keep() -> None:
    stage = {"refId": "d", "type": "deploy", "account": "a", "container": {"image": "x"},
             "capacity": {"min": 0, "max": 0, "desired": 0}, "scalingPolicy": {"cpuUtilization": {"target": 50}}}  # fmt: skip
    with pytest.raises(PipelineInvalid, match="scalingPolicy needs capacity"):
        parse_pipeline(pipeline(stage))
