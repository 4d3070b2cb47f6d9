"""Bake on a real Docker engine pushing to a real registry (tests/support/docker_rig.py), through the
activity directly (retries, contexts) and through pipelines on the real Temporal dev server.
"""

from __future__ import annotations

import asyncio
import functools
import http.server
import subprocess
import tarfile
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import ActivityEnvironment

import workflows.stages.bake  # registers `bake`
import workflows.stages.find_image  # noqa: F401  (registers `findImage`)
from activities.bake import INPUT_LABEL, BakeActivities, BakeRequest, BuildContext
from activities.registry import RegistryClient, build_registry_account
from tests.support.docker_rig import DockerRig, docker_rig_fixture, serving  # noqa: F401
from tests.support.runner import Runner, pipeline
from tests.support.worker_policy import TEST_BAKE, TEST_EGRESS
from workflows.state import StageStatus

BAKE_ACCOUNT = "bakes"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def bakery(docker_rig: DockerRig) -> Iterator[BakeActivities]:
    """The account's activities, called in-process with ActivityEnvironment (no server)."""
    client = RegistryClient(docker_rig.registry.account("direct", docker_host=docker_rig.engine.host))
    activities = BakeActivities(client, TEST_EGRESS, TEST_BAKE)
    yield activities
    activities.close()
    client.close()


@pytest.fixture(scope="module")
async def bake_worker(client: Client, docker_rig: DockerRig) -> AsyncIterator[None]:
    account = docker_rig.registry.account(BAKE_ACCOUNT, docker_host=docker_rig.engine.host)
    async with serving(client, build_registry_account(account, TEST_EGRESS, TEST_BAKE)):
        yield


def run_bake(bakery: BakeActivities, request: BakeRequest) -> tuple[Any, list[str]]:
    env = ActivityEnvironment()
    beats: list[str] = []
    env.on_heartbeat = lambda *details: beats.extend(str(d) for d in details)
    return env.run(bakery.bake_image, request), beats


def registry_digest(rig: DockerRig, repository: str, tag: str) -> str | None:
    with rig.registry.http() as http:
        answer = http.get(
            f"/v2/{repository}/manifests/{tag}",
            headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        )
        return answer.headers["docker-content-digest"] if answer.status_code == 200 else None


def bake_stage(ref: str, context: Path, repository: str, **extra: Any) -> dict[str, Any]:
    return {
        "refId": ref,
        "type": "bake",
        "account": BAKE_ACCOUNT,
        "repository": repository,
        "context": {"path": str(context)},
        **extra,
    }


async def bake_attempts(handle: WorkflowHandle[Any, Any]) -> list[int]:
    """Attempt numbers of the bake_image activity tasks that started (retries show as 2, 3…)."""
    history = await handle.fetch_history()
    bakes = {
        e.event_id
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name == "bake_image"
    }
    return [
        e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        and e.activity_task_started_event_attributes.scheduled_event_id in bakes
    ]


# ---- the activity ----------------------------------------------------------------------------------


async def test_bake_pushes_and_a_retry_reuses_the_pushed_image(docker_rig: DockerRig, bakery: BakeActivities) -> None:
    repository = f"shop/{unique('direct')}"
    context = docker_rig.context(files={"index.html": "hello"})
    request = BakeRequest(
        repository=repository,
        tag="v1",
        extraTags=["latest"],
        context=BuildContext(path=str(context)),
        labels={"team": "shop"},
    )
    first, beats = await asyncio.to_thread(run_bake, bakery, request)
    assert not first.reused
    assert first.image == f"{docker_rig.registry.address}/{repository}:v1"
    assert first.digest.startswith("sha256:")
    assert registry_digest(docker_rig, repository, "v1") == first.digest
    assert registry_digest(docker_rig, repository, "latest") == first.digest
    assert any("Step 1/" in b for b in beats), beats[:5]  # build log lines stream as heartbeats
    config = bakery.registry.image_config(repository, bakery.registry.manifest(repository, "v1"))  # type: ignore[arg-type]
    assert config["config"]["Labels"][INPUT_LABEL] == first.inputHash

    # A retry of the same activity (same inputs) finds the pushed tag and does not build again.
    again, beats = await asyncio.to_thread(
        run_bake, bakery, request.model_copy(update={"extraTags": ["latest", "v1.0"]})
    )
    assert again.reused and again.digest == first.digest
    assert not any("build " in b for b in beats), beats
    assert registry_digest(docker_rig, repository, "v1.0") == first.digest  # missing extra tag re-pointed

    # Changed inputs build again; skipIfExists keeps whatever the tag holds.
    (context / "index.html").write_text("changed")
    skipped, _ = await asyncio.to_thread(run_bake, bakery, request.model_copy(update={"skipIfExists": True}))
    assert skipped.skipped and skipped.digest == first.digest
    rebuilt, _ = await asyncio.to_thread(run_bake, bakery, request)
    assert not rebuilt.reused and rebuilt.digest != first.digest


async def test_bake_from_a_git_ref_and_from_a_tarball_url(docker_rig: DockerRig, bakery: BakeActivities) -> None:
    source = docker_rig.context(dockerfile=docker_rig.context().joinpath("Dockerfile").read_text() + "COPY app.txt /\n")
    bare = docker_rig.workdir / f"{unique('repo')}.git"
    git = ["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci"]
    (source / "app.txt").write_text("one")
    for args in (
        ["init", "-q", "-b", "main"],
        ["add", "-A"],
        ["commit", "-qm", "one"],
        ["tag", "release-1"],
    ):
        subprocess.run([*git, *args], cwd=source, check=True)
    (source / "app.txt").write_text("two")
    subprocess.run([*git, "commit", "-qam", "two"], cwd=source, check=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(source), str(bare)], check=True)

    repository = f"shop/{unique('git')}"
    tagged = BakeRequest(
        repository=repository, tag="r1", context=BuildContext(gitUrl=f"file://{bare}", gitRef="release-1")
    )
    head = tagged.model_copy(update={"tag": "head", "context": BuildContext(gitUrl=f"file://{bare}", gitRef="main")})
    first, _ = await asyncio.to_thread(run_bake, bakery, tagged)
    second, _ = await asyncio.to_thread(run_bake, bakery, head)
    assert first.inputHash != second.inputHash  # different commits, different contexts
    assert registry_digest(docker_rig, repository, "r1") == first.digest

    archive = docker_rig.workdir / "tarballs" / "context.tar.gz"
    archive.parent.mkdir(exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source, arcname="app", filter=lambda info: None if "/.git" in info.name else info)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(archive.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/context.tar.gz"
        from_tar = head.model_copy(update={"tag": "tar", "context": BuildContext(tarballUrl=url, subdir="app")})
        result, _ = await asyncio.to_thread(run_bake, bakery, from_tar)
    finally:
        server.shutdown()
    assert result.inputHash == second.inputHash  # same files as the git HEAD: same inputs
    assert registry_digest(docker_rig, repository, "tar") == result.digest


# ---- through pipelines -----------------------------------------------------------------------------


async def test_broken_dockerfile_fails_the_stage_with_the_build_output(
    runner: Runner, docker_rig: DockerRig, bake_worker: None
) -> None:
    broken = docker_rig.context(
        dockerfile=docker_rig.context().joinpath("Dockerfile").read_text() + "RUN echo about-to-fail && exit 3\n"
    )
    repository = f"shop/{unique('broken')}"
    handle = await runner.start(pipeline(bake_stage("bake", broken, repository, tag="v1")))
    state = await runner.finish(handle, timeout=60)
    stage = state.stage("bake")
    assert stage is not None and stage.status is StageStatus.TERMINAL
    assert stage.error is not None
    message = stage.error.message
    assert f"baking {repository}:v1 in registry account {BAKE_ACCOUNT} failed" in message
    assert "about-to-fail" in message and "non-zero code: 3" in message
    assert "nothing was pushed" in message
    assert state.failure and "'bake'" in state.failure
    assert await bake_attempts(handle) == [1]  # a broken Dockerfile is not retried
    assert registry_digest(docker_rig, repository, "v1") is None


async def test_wrong_registry_password_fails_once_naming_the_account(
    client: Client, runner: Runner, docker_rig: DockerRig
) -> None:
    account = docker_rig.registry.account("wrong-pw", password="not-the-password", docker_host=docker_rig.engine.host)
    async with serving(client, build_registry_account(account, TEST_EGRESS, TEST_BAKE)):
        stage = bake_stage("bake", docker_rig.context(), "shop/never", tag="v1", account="wrong-pw")
        handle = await runner.start(pipeline(stage))
        state = await runner.finish(handle, timeout=30)
    bake = state.stage("bake")
    assert bake is not None and bake.status is StageStatus.TERMINAL and bake.error is not None
    assert "registry wrong-pw: 401 Unauthorized — check the password in file" in bake.error.message
    assert str(account.password.file) in bake.error.message  # type: ignore[union-attr]
    assert "not-the-password" not in bake.error.message
    assert await bake_attempts(handle) == [1]


async def test_bake_find_wait_judgment_end_to_end(runner: Runner, docker_rig: DockerRig, bake_worker: None) -> None:
    repository = f"shop/{unique('e2e')}"
    handle = await runner.start(
        pipeline(
            bake_stage(
                "bake", docker_rig.context(), repository, tag="${{ 'v' + parameters.version }}", extraTags=["latest"]
            ),
            {
                "refId": "find",
                "type": "findImage",
                "account": BAKE_ACCOUNT,
                "repository": repository,
                "tagRegex": r"v\d+\.\d+\.\d+",
                "order": "semver",
                "requisiteStageRefIds": ["bake"],
            },
            {"refId": "soak", "type": "wait", "waitTime": 0.1, "requisiteStageRefIds": ["find"]},
            {
                "refId": "approve",
                "type": "manualJudgment",
                "requisiteStageRefIds": ["soak"],
                "instructions": "Ship ${{ stages.find.outputs.image }}?",
                "judgmentInputs": ["ship", "hold"],
            },
            parameters=[{"name": "version", "required": True}],
            name="bake-e2e",
        ),
        {"version": "1.4.2"},
    )
    await runner.wait_until(handle, lambda s: s.stage("approve").waitingForJudgment, timeout=60)
    await handle.signal("judgment", {"refId": "approve", "judgmentStatus": "continue", "input": "ship"})
    state = await runner.finish(handle, timeout=30)
    assert state.status.value == "SUCCEEDED", state.failure
    baked, found = state.stage("bake"), state.stage("find")
    assert baked is not None and found is not None
    assert baked.outputs["image"] == f"{docker_rig.registry.address}/{repository}:v1.4.2"
    assert found.outputs["image"] == baked.outputs["image"]
    assert found.outputs["digest"] == baked.outputs["digest"] == registry_digest(docker_rig, repository, "v1.4.2")
    assert state.stage("approve").outputs["judgmentInput"] == "ship"  # type: ignore[union-attr]
