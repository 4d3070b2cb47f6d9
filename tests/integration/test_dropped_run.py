"""A run its worker dropped without an eviction — the worker shut down while the run was cached and
waiting — is closed by Python's garbage collector wherever a collection happens next, possibly in the
middle of another workflow's activation (sdk-python issues #494, #1849). Its cleanup must then issue
no command: the workflow API would hand it to the workflow being activated, whose history it would
corrupt (a `release` signal to a limitConcurrent gate, recorded in an unrelated run, failed a replay
of that run in CI). Here the collection is forced inside a probe workflow's activation."""

from __future__ import annotations

import asyncio
import gc
import uuid
import weakref
from collections.abc import AsyncIterator
from typing import Any

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.worker import Worker

import workflows.stages.deploy
import workflows.stages.judgment  # noqa: F401  (registers `manualJudgment`)
from core.store import PipelineStore
from tests.support.kube_rig import KubeRig, deploy_stage, serve_rig, start_rig
from tests.support.runner import Runner, pipeline
from workers.runner import pipeline_worker
from workflows.pipeline import PipelineWorkflow


@workflow.defn(sandboxed=False)
class CollectGarbage:
    """Runs a full collection inside its own (only) activation."""

    @workflow.run
    async def run(self) -> int:
        return gc.collect()


def live_runs(execution_id: str) -> list[PipelineWorkflow]:
    return [o for o in gc.get_objects() if isinstance(o, PipelineWorkflow) and o._state.id == execution_id]


@pytest.fixture
async def slow_kube(client: Client) -> AsyncIterator[KubeRig]:
    """kubesim whose pods take 2 s to be Ready: a deploy is still in its health wait when dropped."""
    rig = await asyncio.to_thread(start_rig, 2.0)
    async for served in serve_rig(client, rig):  # stops the rig at the end
        yield served


async def drop_then_collect_in_a_probe(
    client: Client, store: PipelineStore, spec: dict[str, Any], dropped_when: Any
) -> list[str]:
    """Run `spec` on a worker of its own until `dropped_when(state)`, shut that worker down, then
    collect the run inside a probe workflow's activation; the probe's events after its first task."""
    queue = f"test-dropped-{uuid.uuid4().hex[:6]}"
    async with pipeline_worker(client, store, task_queue=queue):
        handle = await Runner(client, queue).start(spec)
        await Runner.wait_until(handle, dropped_when, timeout=30)
    try:
        # The worker is gone; the run's instance (its coroutines suspended mid-stage) is garbage
        # now, but nothing has collected it yet.
        (instance,) = live_runs(handle.id)
        dropped = weakref.ref(instance)
        del instance
        probe_queue = f"test-dropped-probe-{uuid.uuid4().hex[:6]}"
        async with Worker(client, task_queue=probe_queue, workflows=[CollectGarbage]):
            probe = await client.start_workflow(
                CollectGarbage.run, id=f"gc-probe-{uuid.uuid4().hex}", task_queue=probe_queue
            )
            await probe.result()
        assert dropped() is None, "the dropped run was not collected inside the probe: the test proved nothing"
        return [EventType.Name(e.event_type) for e in (await probe.fetch_history()).events if e.event_id > 4]
    finally:
        await handle.terminate("test over")


async def test_a_dropped_waiting_run_issues_no_command_into_another_workflow(
    client: Client, store: PipelineStore
) -> None:
    """A limitConcurrent run waiting for a judgment: its `finally` releases the pipeline's gate."""
    gated = pipeline({"refId": "j", "type": "manualJudgment"}, name="dropped", limitConcurrent=True)
    commands = await drop_then_collect_in_a_probe(
        client, store, gated, lambda s: s.stage("j") is not None and s.stage("j").waitingForJudgment
    )
    assert commands == ["EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED"], commands


async def test_a_dropped_deploy_schedules_no_rollback_into_another_workflow(
    client: Client, store: PipelineStore, slow_kube: KubeRig
) -> None:
    """A deploy in its health wait: a failure or cancel there rolls back (activities on the account)."""
    deploy = pipeline(deploy_stage(slow_kube, stack="t" + uuid.uuid4().hex[:6]), name="dropped-deploy")
    commands = await drop_then_collect_in_a_probe(
        client, store, deploy, lambda s: "healthy" in (s.stage("deploy").details or "")
    )
    assert commands == ["EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED"], commands
