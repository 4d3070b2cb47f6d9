"""What the real API server taught Gennaker (docs/real-cluster.md): each case ran fine on kubesim and
failed, or failed confusingly, on scripts/kube-up.sh's control plane. They run on both rigs."""

from __future__ import annotations

import workflows.stages.deploy  # noqa: F401  (registers `deploy`)
from tests.support.kube_rig import KubeRig, deploy_stage, kube_fixture  # noqa: F401
from tests.support.runner import Runner, pipeline
from workflows.state import StageStatus


async def test_server_group_names_longer_than_a_label_value_are_refused_before_anything_is_written(
    runner: Runner, kube: KubeRig
) -> None:
    # shop-s-<56 d>-v000 is 68 characters: the API server refuses it as the server-group label value.
    details = "d" * 56
    state = await runner.finish(await runner.start(pipeline(deploy_stage(kube, stack="s", freeFormDetails=details))))
    stage = state.stage("deploy")
    assert stage is not None and stage.status is StageStatus.TERMINAL and stage.error is not None
    assert f"shop-s-{details}-v000" in stage.error.message and "at most 63" in stage.error.message
    assert "never became healthy" not in stage.error.message
    assert kube.server_groups(f"shop-s-{details}") == {}
