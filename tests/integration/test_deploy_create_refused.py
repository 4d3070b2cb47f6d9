"""A deploy whose new server group the cluster refuses fails saying so: which stage, that the create
was refused, the API server's reason and what was left — not "never became healthy" after a rollback
of a group that never existed. Against kubesim over HTTP (or GENNAKER_TEST_KUBECONFIG's cluster)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import workflows.stages.deploy  # noqa: F401  (registers `deploy`)
from tests.support.deploy_attempts import deploy
from tests.support.kube_rig import KubeRig, deploy_stage, kube_fixture  # noqa: F401
from tests.support.runner import Runner
from workflows.state import StageStatus


def replica_set(container: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "spec": {"template": {"spec": {"containers": [container]}}}}


async def test_a_refused_server_group_fails_the_deploy_saying_so(runner: Runner, kube: KubeRig) -> None:
    s = "t" + uuid.uuid4().hex[:6]
    lb = f"shop-{s}"
    kube.service(lb)
    first, _ = await deploy(runner, deploy_stage(kube, stack=s, loadBalancers=[lb]))
    assert first.stage("deploy").status is StageStatus.SUCCEEDED  # type: ignore[union-attr]
    serving = kube.serving(lb)
    assert serving == kube.pods(f"{lb}-v000") != set()

    def refused(ref: str, container: dict[str, Any]) -> dict[str, Any]:
        stage = deploy_stage(kube, ref=ref, stack=s, loadBalancers=[lb], strategy="redblack")
        del stage["container"]
        return {**stage, "manifest": replica_set(container)}

    # No image: the API server answers 422 Invalid ("spec.template.spec.containers[0].image:
    # Required value"). No name: the official client refuses the body before sending it.
    (by_server, server_attempts), (by_client, client_attempts) = await asyncio.gather(
        deploy(runner, refused("deploy", {"name": "web"})),
        deploy(runner, refused("deploy", {"image": "shop/web:1.0"})),
    )
    for state, by, attempts in (
        (by_server, "the API server", server_attempts),
        (by_client, "the Kubernetes client (before sending)", client_attempts),
    ):
        stage = state.stage("deploy")
        assert stage is not None and stage.status is StageStatus.TERMINAL and stage.error is not None, stage
        message = stage.error.message
        assert f"{by} refused to create ReplicaSet {lb}-v00" in message, message
        assert "nothing was created" in message and "never became healthy" not in message, message
        assert "could not disable" not in message, message  # no rollback of a group that never existed
        assert state.failure is not None and "stage 'deploy'" in state.failure, state.failure
        assert attempts == 1, f"{by}: a refusal is final, yet the create was attempted {attempts} times"
    server_message = by_server.stage("deploy").error.message  # type: ignore[union-attr]
    assert "HTTP 422" in server_message and "containers[0].image" in server_message, server_message
    # What was left: the old group, still the only one, still serving.
    assert set(kube.server_groups(lb)) == {f"{lb}-v000"}
    assert kube.serving(lb) == serving
