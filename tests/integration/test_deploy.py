"""Deploy strategies through real pipelines on the Temporal dev server, against kubesim over HTTP
(or GENNAKER_TEST_KUBECONFIG's cluster; see tests/support/kube_rig.py).

Traffic is asserted on the Service's Endpoints (which pods serve), at points the test controls: a
rolling step waiting for approval, a red/black waiting to scale down.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

import workflows.stages.deploy  # noqa: F401  (registers `deploy`)
from tests.support.kube_rig import REAL_KUBECONFIG, KubeRig, deploy_stage, kube_fixture, start_rig, stop_rig  # noqa: F401
from tests.support.runner import Runner, pipeline
from workers.devserver import TemporalDevServer
from workflows.pipeline import PipelineWorkflow
from workflows.state import ExecutionState, JudgmentRequest, StageStatus

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def stack() -> str:
    return "t" + uuid.uuid4().hex[:6]


async def deploy(runner: Runner, rig: KubeRig, timeout: float = 60, **fields: Any) -> ExecutionState:
    handle = await runner.start(pipeline(deploy_stage(rig, **fields)))
    return await runner.finish(handle, timeout)


def outputs(state: ExecutionState, ref: str = "deploy") -> dict[str, Any]:
    stage = state.stage(ref)
    assert stage is not None
    assert stage.status is StageStatus.SUCCEEDED, stage.error
    return stage.outputs


async def test_red_black_switches_traffic_then_scales_down(runner: Runner, kube: KubeRig) -> None:
    s = stack()
    kube.service(f"shop-{s}")
    v0 = outputs(await deploy(runner, kube, stack=s, loadBalancers=[f"shop-{s}"]))
    assert v0["serverGroup"] == f"shop-{s}-v000"
    assert kube.serving(f"shop-{s}") == kube.pods(v0["serverGroup"])
    handle = await runner.start(
        pipeline(
            deploy_stage(
                kube,
                stack=s,
                loadBalancers=[f"shop-{s}"],
                strategy="redblack",
                scaleDown=True,
                delayBeforeScaleDownSec=1.5,
                container=kube.container("2.0"),
            )
        )
    )
    # While it waits to scale down: v001 enabled, v000 disabled (out of the endpoints) but still running.
    await runner.wait_until(handle, lambda st: "scaling down" in (st.stage("deploy").details or ""), timeout=30)
    v1 = f"shop-{s}-v001"
    assert kube.serving(f"shop-{s}") == kube.pods(v1) != set()
    assert kube.replicas(f"shop-{s}-v000") == 2 and len(kube.pods(f"shop-{s}-v000")) == 2
    done = outputs(await runner.finish(handle))
    assert done["serverGroup"] == v1 and done["version"] == 1 and done["image"] == kube.container("2.0")["image"]
    assert done["disabledServerGroups"] == done["scaledDownServerGroups"] == [f"shop-{s}-v000"]
    assert kube.replicas(f"shop-{s}-v000") == 0
    assert kube.serving(f"shop-{s}") == kube.pods(v1)


@pytest.mark.parametrize("failed_group", ["disable", "destroy"])
async def test_red_black_that_never_gets_healthy_rolls_back(runner: Runner, kube: KubeRig, failed_group: str) -> None:
    s = stack()
    kube.service(f"shop-{s}")
    outputs(await deploy(runner, kube, stack=s, loadBalancers=[f"shop-{s}"]))
    old_pods = kube.pods(f"shop-{s}-v000")
    state = await deploy(
        runner,
        kube,
        stack=s,
        loadBalancers=[f"shop-{s}"],
        strategy="redblack",
        maxRestarts=1,
        waitForHealthySec=8,
        container=kube.container(crashloop=True),
        rollback={"failedServerGroup": failed_group},
    )
    stage = state.stage("deploy")
    assert stage is not None and stage.status is StageStatus.TERMINAL and stage.error is not None
    message = stage.error.message
    assert f"shop-{s}-v001 never became healthy" in message and "0/2 ready" in message, message
    assert f"v001 {failed_group}{'d' if failed_group == 'disable' else 'ed'}" in message, message
    assert "v000 still enabled and serving" in message, message
    assert kube.serving(f"shop-{s}") == old_pods
    groups = kube.server_groups(f"shop-{s}")
    if failed_group == "destroy":
        assert f"shop-{s}-v001" not in groups
    else:
        labels = groups[f"shop-{s}-v001"].spec.template.metadata.labels
        assert f"lb.gennaker.io/shop-{s}" not in labels


async def test_highlander_destroys_older_groups_only_once_the_new_one_is_healthy(runner: Runner, kube: KubeRig) -> None:
    s = stack()
    kube.service(f"shop-{s}")
    for _ in range(2):
        outputs(await deploy(runner, kube, stack=s, loadBalancers=[f"shop-{s}"]))
    failed = await deploy(
        runner,
        kube,
        stack=s,
        loadBalancers=[f"shop-{s}"],
        strategy="highlander",
        maxRestarts=1,
        waitForHealthySec=8,
        container=kube.container(crashloop=True),
    )
    assert failed.stage("deploy").status is StageStatus.TERMINAL  # type: ignore[union-attr]
    assert {f"shop-{s}-v000", f"shop-{s}-v001"} <= set(kube.server_groups(f"shop-{s}"))
    done = outputs(await deploy(runner, kube, stack=s, loadBalancers=[f"shop-{s}"], strategy="highlander"))
    assert done["serverGroup"] == f"shop-{s}-v003"  # v002 (the failed one) is never reused
    assert set(done["destroyedServerGroups"]) == {f"shop-{s}-v000", f"shop-{s}-v001", f"shop-{s}-v002"}
    assert set(kube.server_groups(f"shop-{s}")) == {f"shop-{s}-v003"}
    assert kube.serving(f"shop-{s}") == kube.pods(f"shop-{s}-v003")


async def test_rolling_red_black_shifts_traffic_in_steps_with_approval(
    runner: Runner, client: Client, kube: KubeRig
) -> None:
    s = stack()
    lb = f"shop-{s}"
    kube.service(lb)
    outputs(await deploy(runner, kube, stack=s, loadBalancers=[lb], capacity={"min": 4, "max": 4, "desired": 4}))
    old, new = f"shop-{s}-v000", f"shop-{s}-v001"
    handle = await runner.start(
        pipeline(
            deploy_stage(
                kube,
                stack=s,
                loadBalancers=[lb],
                strategy="rollingRedBlack",
                targetPercentages=[25, 50, 100],
                capacity={"min": 4, "max": 4, "desired": 4},
                stepJudgment={"judgmentInputs": ["go"]},
                scaleDown=True,
                container=kube.container("2.0"),
            )
        )
    )
    for step, (new_serving, old_serving) in ((2, (1, 3)), (3, (2, 2))):
        # The deploy stage itself waits for each step's approval (no child pipeline).
        await runner.wait_until(
            handle,
            lambda st, n=step: (
                st.stage("deploy").waitingForJudgment and f"approval of step {n}" in (st.stage("deploy").details or "")
            ),
            timeout=60,
        )
        serving = kube.serving(lb)
        assert len(serving & kube.pods(new)) == new_serving, (step, serving)
        assert len(serving & kube.pods(old)) == old_serving, (step, serving)
        ack = await handle.execute_update(
            PipelineWorkflow.judge, JudgmentRequest(refId="deploy", input="go", user="alice")
        )
        assert ack.judgment is not None and ack.judgment.input == "go"
    done = outputs(await runner.finish(handle))
    assert [s["percentage"] for s in done["rollingSteps"]] == [25, 50, 100]
    assert done["step2Judgment"]["judgedBy"] == "alice" and done["step3Judgment"]["judgmentInput"] == "go"
    assert kube.serving(lb) == kube.pods(new) and len(kube.pods(new)) == 4
    assert kube.replicas(old) == 0


async def test_5xx_bursts_are_retried(runner: Runner, kube: KubeRig) -> None:
    sim = kube.needs_kubesim()
    s = stack()
    sim.inject(error_burst={"count": 3, "code": 503})
    try:
        done = outputs(await deploy(runner, kube, stack=s))
    finally:
        sim.reset_faults()
    assert done["serverGroup"] == f"shop-{s}-v000"
    assert len(kube.server_groups(f"shop-{s}")) == 1


async def test_401_fails_at_once_naming_the_account(runner: Runner, kube: KubeRig) -> None:
    sim = kube.needs_kubesim()
    sim.inject(revoke_token=True)
    started = time.monotonic()
    try:
        state = await deploy(runner, kube, stack=stack())
    finally:
        sim.reset_faults()
    stage = state.stage("deploy")
    assert stage is not None and stage.status is StageStatus.TERMINAL and stage.error is not None
    assert f"account {kube.account.name}: 401 Unauthorized" in stage.error.message
    assert str(kube.account.kubeconfig) in stage.error.message
    assert time.monotonic() - started < 10


class AccountWorkerProcess:
    def __init__(self, address: str, rig: KubeRig, log: Path) -> None:
        self._log = open(log, "ab")  # noqa: SIM115 - closed in kill()
        self.log = log
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.k8s_worker_proc",
                "--address",
                address,
                "--account",
                rig.account.model_dump_json(),
            ],
            cwd=PROJECT_ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()  # SIGKILL, as a crash would be
            self.process.wait(10)
        self._log.close()


@pytest.mark.skipif(
    REAL_KUBECONFIG is not None,
    reason="kills the worker while pods take kubesim's 2 s ready delay; a real cluster's (kwok's) pods may be "
    "Ready before the kill, and the kubesim pass runs this deterministically",
)
async def test_deploy_survives_a_killed_account_worker(
    runner: Runner, temporal_server: TemporalDevServer, tmp_path: Path
) -> None:
    rig = await asyncio.to_thread(start_rig, 2.0)  # pods take ~2 s to be ready: time to kill mid-wait
    workers = [AccountWorkerProcess(temporal_server.address, rig, tmp_path / "first.log")]
    try:
        s = stack()
        handle = await runner.start(pipeline(deploy_stage(rig, stack=s)))
        await runner.wait_until(handle, lambda st: "healthy" in (st.stage("deploy").details or ""), timeout=30)
        workers[0].kill()
        workers.append(AccountWorkerProcess(temporal_server.address, rig, tmp_path / "second.log"))
        state = await runner.finish(handle, timeout=60)
        done = outputs(state)
        assert done["serverGroup"] == f"shop-{s}-v000"
        assert list(kube_groups := rig.server_groups(f"shop-{s}")) == [f"shop-{s}-v000"], kube_groups
        assert rig.replicas(f"shop-{s}-v000") == 2
    finally:
        for worker in workers:
            worker.kill()
        await asyncio.to_thread(stop_rig, rig)
