"""One deploy per cluster at a time: two red/black deploys of one cluster started together end with
exactly one enabled server group, trial after trial (issue 11, item 8)."""

from __future__ import annotations

import asyncio

from kubernetes import client as k8s

from core.launch import start_execution
from tests.security.test_tenancy import ALICE, Rig, deploy, rig  # noqa: F401  (the module's kubesim rig)
from tests.support.eventually import assert_eventually
from tests.support.runner import Runner
from workflows.model import parse_pipeline
from workflows.state import StageStatus, TriggerInfo

TRIALS = 10
CLUSTER = "appa-race"


def enabled_groups(api: k8s.ApiClient) -> list[str]:
    groups = k8s.AppsV1Api(api).list_namespaced_replica_set("appa").items
    return sorted(
        g.metadata.name
        for g in groups
        if g.metadata.name.startswith(f"{CLUSTER}-v")
        and (g.metadata.annotations or {}).get("gennaker.io/disabled") != "true"
    )


async def start_deploy(rig: Rig, name: str) -> str:  # noqa: F811
    spec = parse_pipeline({"application": "appa", "name": name, "stages": [deploy("d", "appa", stack="race")]})
    started = await start_execution(
        rig.client, rig.settings, spec, {}, TriggerInfo(user="alice"), policy=rig.policy, submitter=ALICE
    )
    return started.id


async def test_concurrent_red_black_deploys_leave_one_enabled_group(rig: Rig) -> None:  # noqa: F811
    for trial in range(TRIALS):
        ids = await asyncio.gather(start_deploy(rig, f"race-a{trial}"), start_deploy(rig, f"race-b{trial}"))
        states = await asyncio.gather(*(Runner.finish(rig.client.get_workflow_handle(i), timeout=90) for i in ids))
        for state in states:
            assert state.stages[0].status is StageStatus.SUCCEEDED, state.stages[0].error
        enabled = enabled_groups(rig.api)
        assert len(enabled) == 1, f"trial {trial}: enabled server groups {enabled}"
        newest = max(str(s.stages[0].outputs["serverGroup"]) for s in states)
        assert enabled == [newest]


async def test_a_lease_held_by_a_dead_execution_is_released(rig: Rig) -> None:  # noqa: F811
    # The holder never becomes healthy (a crash-looping image) and is then terminated from outside,
    # so it cannot release: the lease workflow notices that its holder is gone.
    stuck = deploy("d", "appa", stack="dead", waitForHealthySec=600, container={"image": "shop/web:crashloop"})
    spec = parse_pipeline({"application": "appa", "name": "holder", "stages": [stuck]})
    started = await start_execution(
        rig.client, rig.settings, spec, {}, TriggerInfo(user="alice"), policy=rig.policy, submitter=ALICE
    )
    holder = rig.client.get_workflow_handle(started.id)
    lease = rig.client.get_workflow_handle(f"lease.tenancy-sim.appa.{CLUSTER.replace('race', 'dead')}")

    async def held() -> bool:
        try:
            state = await lease.query("lease")
        except Exception:
            return False
        return bool(state.get("holder")) if isinstance(state, dict) else state.holder is not None

    await assert_eventually(held, what="the first run holds the cluster lease", timeout=10)
    await holder.terminate("simulated crash: nobody releases")
    spec = parse_pipeline({"application": "appa", "name": "after", "stages": [deploy("d", "appa", stack="dead")]})
    started = await start_execution(
        rig.client, rig.settings, spec, {}, TriggerInfo(user="alice"), policy=rig.policy, submitter=ALICE
    )
    state = await Runner.finish(rig.client.get_workflow_handle(started.id), timeout=60)
    assert state.stages[0].status is StageStatus.SUCCEEDED, state.stages[0].error
