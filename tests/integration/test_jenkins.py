"""Jenkins stage against a fake Jenkins speaking the remote access API (crumb, queue item, build JSON),
through PipelineWorkflow on the real Temporal dev server with a worker of this module's own."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle

import workflows.stages.jenkins  # noqa: F401  (registers `type: jenkins`)
from activities.jenkins import JenkinsMaster, job_path, parse_properties
from core.store import PipelineStore
from tests.support.eventually import assert_eventually
from tests.support.fake_services import FakeJenkins, JenkinsJob
from tests.support.runner import Runner
from tests.support.worker_policy import TEST_EGRESS
from workers.config import WorkerConfig
from workers.runner import pipeline_worker
from workflows.state import ExecutionState, StageStatus

QUEUE = f"jenkins-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def jenkins() -> Iterator[FakeJenkins]:
    with FakeJenkins() as fake:
        yield fake


@pytest.fixture(scope="module")
async def jenkins_worker(client: Client, store: PipelineStore, jenkins: FakeJenkins) -> AsyncIterator[None]:
    os.environ["TEST_JENKINS_TOKEN"] = jenkins.api_token  # the token reaches the worker as a SecretRef
    masters = [
        JenkinsMaster.model_validate(
            {"name": "ci", "url": jenkins.url, "username": jenkins.username, "api_token": {"env": "TEST_JENKINS_TOKEN"}}
        )
    ]
    worker = pipeline_worker(client, store, task_queue=QUEUE, config=WorkerConfig(jenkins=masters, egress=TEST_EGRESS))
    async with worker:
        yield


def stage(ref: str, job: str, **fields: Any) -> dict[str, Any]:
    return {"refId": ref, "type": "jenkins", "master": "ci", "job": job, "pollIntervalSeconds": 0.1, **fields}


async def start(client: Client, *stages: dict[str, Any]) -> WorkflowHandle[Any, Any]:
    return await Runner(client, QUEUE).start({"application": "shop", "name": "ci", "stages": list(stages)})


async def finish(handle: WorkflowHandle[Any, Any], timeout: float = 30) -> ExecutionState:
    return await Runner.finish(handle, timeout)


def test_helpers() -> None:
    assert job_path("folder/deploy tests") == "job/folder/job/deploy%20tests"
    assert parse_properties("# c\nA=1\nB: two\n\nC = x=y\n") == {"A": "1", "B": "two", "C": "x=y"}


async def test_build_with_parameters_properties_and_artifacts(
    client: Client, jenkins_worker: None, jenkins: FakeJenkins
) -> None:
    jenkins.jobs["team/deploy-tests"] = JenkinsJob(
        files={
            "out/build.properties": "IMAGE=shop:1.2\n# comment\nCOMMIT=abc123\n",
            "out/app.jar": "jar",
            "log.txt": "x",
        }
    )
    handle = await start(
        client,
        stage(
            "tests",
            "team/deploy-tests",
            parameters={"TAG": "v1.2", "DRY": True},
            propertyFile="build.properties",
            artifacts=["out/*.jar"],
        ),
    )
    state = await finish(handle)
    tests = state.stage("tests")
    assert tests is not None and tests.status is StageStatus.SUCCEEDED, tests
    out = tests.outputs
    assert out["buildNumber"] == 1 and out["result"] == "SUCCESS"
    assert out["url"] == f"{jenkins.url}/job/team/job/deploy-tests/1/"
    assert out["properties"] == {"IMAGE": "shop:1.2", "COMMIT": "abc123"}
    assert [a["relativePath"] for a in out["artifacts"]] == ["out/app.jar"]
    [trigger] = [r for r in jenkins.triggered() if "deploy-tests" in r.path]
    assert trigger.path.endswith("/buildWithParameters") and trigger.form() == {"TAG": "v1.2", "DRY": "true"}
    assert "jenkins-crumb" in trigger.headers  # the crumb, from the same session


async def test_unstable_fails_unless_marked_successful(
    client: Client, jenkins_worker: None, jenkins: FakeJenkins
) -> None:
    jenkins.jobs["flaky-suite"] = JenkinsJob(result="UNSTABLE", build_polls=0)
    strict, lenient = await asyncio.gather(
        start(client, stage("suite", "flaky-suite")),
        start(client, stage("suite", "flaky-suite", markUnstableAsSuccessful=True)),
    )
    strict_state, lenient_state = await asyncio.gather(finish(strict), finish(lenient))
    failed = strict_state.stage("suite")
    assert failed is not None and failed.status is StageStatus.TERMINAL and failed.error is not None
    assert "finished UNSTABLE" in failed.error.message and "markUnstableAsSuccessful" in failed.error.message
    assert failed.outputs["result"] == "UNSTABLE"
    assert strict_state.failure is not None and "suite" in strict_state.failure
    passed = lenient_state.stage("suite")
    assert passed is not None and passed.status is StageStatus.SUCCEEDED


async def test_retry_resumes_the_same_build(client: Client, jenkins_worker: None, jenkins: FakeJenkins) -> None:
    jenkins.jobs["resume"] = JenkinsJob(build_polls=1)
    jenkins.errors["/job/resume/1/"] = 1  # the first build poll fails: the attempt fails and is retried
    state = await finish(await start(client, stage("build", "resume")))
    build = state.stage("build")
    assert build is not None and build.status is StageStatus.SUCCEEDED, build
    assert len([r for r in jenkins.triggered() if "/job/resume/" in r.path]) == 1
    assert jenkins.errors["/job/resume/1/"] == 0


async def test_unknown_master_and_job_fail_fast(client: Client, jenkins_worker: None) -> None:
    bad_master, bad_job = await asyncio.gather(
        start(client, {**stage("build", "x"), "master": "nope"}),
        start(client, stage("build", "does-not-exist")),
    )
    master_state, job_state = await asyncio.gather(finish(bad_master, 15), finish(bad_job, 15))
    for state, expected in ((master_state, "no Jenkins master 'nope'"), (job_state, "has no job 'does-not-exist'")):
        build = state.stage("build")
        assert build is not None and build.status is StageStatus.TERMINAL and build.error is not None
        assert expected in build.error.message


async def test_cancel_stops_the_build(client: Client, jenkins_worker: None, jenkins: FakeJenkins) -> None:
    jenkins.jobs["long"] = JenkinsJob(build_polls=10_000)
    handle = await start(client, stage("build", "long"))
    await assert_eventually(
        lambda: jenkins.received("GET", "/job/long/1/"), what="the build polled at Jenkins", timeout=10
    )
    await handle.cancel()
    state = await finish(handle)
    assert state.stage("build").status is StageStatus.CANCELED  # type: ignore[union-attr]
    assert jenkins.received("POST", "/job/long/1/stop")
