"""Script stage on a real Docker engine (tests/support/docker_rig.py: dockerd started by the session
when none answers) with a FROM-scratch busybox image, through PipelineWorkflow on the real Temporal
dev server (own worker and task queue); the retry/reattach path through ActivityEnvironment."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import docker
import pytest
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

import workflows.stages.script  # noqa: F401  (registers `type: script`)
from activities.script import ScriptActivities, ScriptRequest, ScriptResult, ScriptSettings, container_name
from core.store import PipelineStore
from tests.support.docker_rig import DockerRig, docker_rig_fixture  # noqa: F401
from tests.support.runner import Runner
from workers.config import WorkerConfig
from workers.runner import pipeline_worker
from workflows.state import ExecutionState, StageStatus

QUEUE = f"script-{uuid.uuid4().hex[:8]}"
IMAGE = "gennaker-test/script-busybox:1"


@pytest.fixture(scope="module")
def engine(docker_rig: DockerRig) -> Iterator[docker.DockerClient]:
    client = docker.DockerClient(base_url=docker_rig.engine.host, timeout=60)
    client.images.build(path=str(docker_rig.context()), tag=IMAGE, rm=True)
    yield client
    client.close()


@pytest.fixture(scope="module")
async def script_worker(
    client: Client, store: PipelineStore, docker_rig: DockerRig, engine: docker.DockerClient
) -> AsyncIterator[None]:
    config = WorkerConfig(scripts=ScriptSettings(docker_host=docker_rig.engine.host))
    worker = pipeline_worker(client, store, task_queue=QUEUE, config=config)
    async with worker:
        yield


def script(ref: str, command: Any, **fields: Any) -> dict[str, Any]:
    return {"refId": ref, "type": "script", "image": IMAGE, "command": command, **fields}


async def run(client: Client, *stages: dict[str, Any]) -> ExecutionState:
    pipeline = {"application": "shop", "name": "scripts", "stages": list(stages)}
    return await Runner(client, QUEUE).run(pipeline, timeout=45)


def leftovers(engine: docker.DockerClient, execution_id: str) -> list[str]:
    found = engine.containers.list(all=True, filters={"label": f"gennaker.execution={execution_id}"})
    return [c.name for c in found]


async def test_outputs_failures_and_timeouts(client: Client, script_worker: None, engine: docker.DockerClient) -> None:
    ok_script = (
        'echo "building $VERSION"; echo "GENNAKER_OUTPUTS {\\"version\\": \\"$VERSION\\"}"; '
        'echo \'GENNAKER_OUTPUTS {"n": 2}\'; echo "args: $0 $1"; echo done'
    )
    ok, failing, slow = await asyncio.gather(
        run(client, script("build", ok_script, env={"VERSION": "1.2.${{ 3 }}"}, args=["first", "second"], logLines=3)),
        run(client, script("fail", "echo starting; echo oops >&2; exit 3")),
        run(client, script("slow", ["/bin/sleep"], args=["30"], timeoutSeconds=1)),
    )
    build = ok.stage("build")
    assert build is not None and build.status is StageStatus.SUCCEEDED, build
    assert build.outputs["version"] == "1.2.3" and build.outputs["n"] == 2 and build.outputs["exitCode"] == 0
    assert build.outputs["logs"] == ['GENNAKER_OUTPUTS {"n": 2}', "args: first second", "done"]
    assert leftovers(engine, ok.id) == []  # removed once its result was read

    failed = failing.stage("fail")
    assert failed is not None and failed.status is StageStatus.TERMINAL and failed.error is not None
    assert "exited with code 3" in failed.error.message and "oops" in failed.error.message
    assert failed.outputs["exitCode"] == 3 and sorted(failed.outputs["logs"]) == ["oops", "starting"]  # 2 streams

    timed_out = slow.stage("slow")
    assert timed_out is not None and timed_out.status is StageStatus.TERMINAL and timed_out.error is not None
    assert "ran longer than 1s" in timed_out.error.message and "killed" in timed_out.error.message
    assert leftovers(engine, slow.id) == []


def test_a_retried_attempt_reattaches_instead_of_running_again(
    docker_rig: DockerRig, engine: docker.DockerClient
) -> None:
    activities = ScriptActivities(ScriptSettings(docker_host=docker_rig.engine.host))
    request = ScriptRequest(
        stageKey="migrate",
        image=IMAGE,
        command=["/bin/sh", "-c", "echo ran-once; sleep 1; echo 'GENNAKER_OUTPUTS {\"migrated\": true}'"],
    )
    env = ActivityEnvironment()
    workflow_id = f"shop.migrate.{uuid.uuid4().hex[:8]}"
    env.info = dataclasses.replace(env.info, workflow_id=workflow_id, workflow_run_id="run-1")

    def worker_dies(*details: Any) -> None:
        raise RuntimeError("worker lost (simulated)")

    env.on_heartbeat = worker_dies
    with pytest.raises(RuntimeError):
        env.run(activities.run_script, request)
    name = container_name(workflow_id, "run-1", "migrate")
    assert engine.containers.get(name).status in ("created", "running", "exited")

    env.on_heartbeat = lambda *details: None
    result: ScriptResult = env.run(activities.run_script, request)
    assert result.reattached and result.exitCode == 0 and result.outputs == {"migrated": True}
    assert result.logs.count("ran-once") == 1
    assert leftovers(engine, workflow_id) == []


def test_images_outside_the_allow_list_are_refused(docker_rig: DockerRig) -> None:
    activities = ScriptActivities(
        ScriptSettings(docker_host=docker_rig.engine.host, allowed_images=["registry.example/*"])
    )
    with pytest.raises(ApplicationError) as caught:
        ActivityEnvironment().run(activities.run_script, ScriptRequest(stageKey="x", image=IMAGE))
    assert caught.value.type == "ScriptImageNotAllowed" and caught.value.non_retryable
