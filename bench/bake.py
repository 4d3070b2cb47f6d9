"""Bake through Gennaker against `docker build && docker push` of the same context on the same engine.

One run, interleaved rounds (the side that goes first alternates): each round builds a small
FROM-scratch busybox context with a fresh file in it (so both sides build and push a new layer,
and neither reuses the other's cache or tag), then pushes to a local distribution registry with an
htpasswd user. Gennaker's side is a whole pipeline: workflow start, the bake stage, the activity on
the registry account's queue (credential check, input hash, registry lookup, build, push) and the
workflow's completion. Docker's side is the CLI (`DOCKER_BUILDKIT=0`: the same classic builder the
SDK drives), logged in beforehand. bake_ratio = median Gennaker time / median docker time.

The engine and registry come from tests/support/docker_rig.py (started when none answers).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from temporalio.client import Client

import workflows.stages.bake  # noqa: F401  (registers `bake`)
from activities.registry import build_registry_account
from bench.stack import dev_server
from core.store import PipelineStore
from core.temporal import connect
from tests.support.docker_rig import DockerRig, acquire_rig, release_rig, serving
from workers.runner import pipeline_worker
from workflows.model import parse_pipeline
from workflows.search import initial_attributes
from workflows.state import PIPELINE_WORKFLOW, ExecutionResult, ExecutionStatus, PipelineRunInput

QUEUE = "gennaker-bench"
ACCOUNT = "bench"
REPOSITORY = "bench/app"
DOCKERFILE = (
    'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
    "COPY stamp /stamp\nRUN wc -c /stamp\n"
)


def fresh_context(rig: DockerRig, label: str) -> Path:
    context = rig.context(dockerfile=DOCKERFILE)
    (context / "stamp").write_text(f"{label} {uuid.uuid4().hex}\n" * 64)
    return context


async def gennaker_bake(client: Client, context: Path, tag: str) -> float:
    spec = parse_pipeline(
        {
            "application": "bench",
            "name": "bake",
            "stages": [
                {"refId": "bake", "type": "bake", "account": ACCOUNT, "repository": REPOSITORY, "tag": tag,
                 "context": {"path": str(context)}},
            ],
        }
    )  # fmt: skip
    started = time.perf_counter()
    result = await client.execute_workflow(
        PIPELINE_WORKFLOW,
        PipelineRunInput(pipeline=spec),
        id=f"bench-bake-{uuid.uuid4().hex}",
        task_queue=QUEUE,
        result_type=ExecutionResult,
        search_attributes=initial_attributes("bench", "bake", "bench"),
    )
    elapsed = time.perf_counter() - started
    if result.status is not ExecutionStatus.SUCCEEDED:
        raise RuntimeError(f"gennaker bake failed: {result}")
    return elapsed


def docker_bake(env: dict[str, str], image: str, context: Path) -> float:
    started = time.perf_counter()
    for args in (["build", "-q", "-t", image, str(context)], ["push", "-q", image]):
        subprocess.run(["docker", *args], env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def docker_env(rig: DockerRig, config_dir: Path) -> dict[str, str]:
    if shutil.which("docker") is None:
        raise SystemExit("bench bake: the docker CLI is needed for the comparison (Debian docker.io)")
    env = {**os.environ, "DOCKER_HOST": rig.engine.host, "DOCKER_CONFIG": str(config_dir), "DOCKER_BUILDKIT": "0"}
    from tests.support.docker_rig import PASSWORD, USERNAME

    subprocess.run(
        ["docker", "login", "-u", USERNAME, "--password-stdin", rig.registry.address],
        input=PASSWORD.encode(),
        env=env,
        check=True,
        capture_output=True,
    )
    return env


async def bake_benchmark(rounds: int = 5) -> dict[str, float]:
    rig = acquire_rig()
    try:
        return await measure(rig, rounds)
    finally:
        release_rig()  # stops the registry it started (and dockerd, if it started it and no one else uses it)


async def measure(rig: DockerRig, rounds: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="gennaker-bench-bake-") as tmp, dev_server(Path(tmp)) as server:
        store = PipelineStore(f"sqlite:///{tmp}/store.db")
        try:
            client = await connect(server.address)
            env = docker_env(rig, Path(tmp) / "docker-config")
            account = rig.registry.account(ACCOUNT, docker_host=rig.engine.host)
            async with (
                pipeline_worker(client, store, task_queue=QUEUE),
                serving(client, build_registry_account(account)),
            ):
                # Warm up both paths (base layers in the engine's cache and in the registry, imports).
                await gennaker_bake(client, fresh_context(rig, "warm-g"), "warm-g")
                docker_bake(env, f"{rig.registry.address}/{REPOSITORY}:warm-d", fresh_context(rig, "warm-d"))
                ours: list[float] = []
                theirs: list[float] = []
                for n in range(rounds):
                    sides = [("g", ours), ("d", theirs)]
                    for side, times in sides if n % 2 == 0 else reversed(sides):
                        context = fresh_context(rig, f"{side}{n}")
                        if side == "g":
                            times.append(await gennaker_bake(client, context, f"g{n}"))
                        else:
                            times.append(docker_bake(env, f"{rig.registry.address}/{REPOSITORY}:d{n}", context))
        finally:
            store.close()
    return {
        "gennaker_bake_s": statistics.median(ours),
        "docker_build_push_s": statistics.median(theirs),
        "bake_ratio": statistics.median(ours) / statistics.median(theirs),
        "rounds": float(rounds),
    }
