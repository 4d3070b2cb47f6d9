"""Faults of the systems a pipeline talks to: the Kubernetes API (kubesim's fault injection) and the
Docker registry (a proxy in front of docker-registry that answers 503 for the first N requests).

Transient faults (5xx, latency, dropped or expired watches) must be retried with backoff and the run
must succeed; the retries show in the workflow history as an ActivityTaskStarted whose `attempt` is
above 1. Faults no retry can fix (401 revoked token, 403 forbidden) must fail the stage at once
(attempt 1) with an error that names the account. Runs use the session pipeline worker and in-process
account workers, as tests/integration does.
"""

from __future__ import annotations

import asyncio
import collections
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle

import workflows.stages.bake
import workflows.stages.deploy
import workflows.stages.find_image  # noqa: F401  (register their stage types)
from activities.registry import build_registry_account
from tests.reliability.report import ReliabilityReport
from tests.support.docker_rig import DockerRig, serving
from tests.support.fault_proxies import RegistryProxy
from tests.support.kube_rig import KubeRig
from tests.support.reliability_runs import (
    SCRATCH_BAKE,
    Attempt,
    activity_attempts,
    finish,
    query_until,
    served_kube,
    start_pipeline,
)
from tests.support.worker_policy import TEST_BAKE, TEST_EGRESS
from workflows.state import ExecutionState, ExecutionStatus, StageStatus

K8S = "Kubernetes API faults"
REGISTRY = "Registry faults"
RUN_TIMEOUT = 60.0


@pytest.fixture(scope="module")
async def kube(client: Client, worker: None) -> AsyncIterator[KubeRig]:
    async with served_kube(client, ready_delay=1.0) as rig:
        yield rig


@pytest.fixture(scope="module")
def proxy(docker_rig: DockerRig) -> Any:
    made = RegistryProxy(docker_rig.registry.address)
    yield made
    made.close()


@pytest.fixture(scope="module")
async def registry_account(
    client: Client, worker: None, docker_rig: DockerRig, proxy: RegistryProxy
) -> AsyncIterator[str]:
    """A registry account whose address is the proxy; its worker runs in this process."""
    name = f"rel-faulty-{uuid.uuid4().hex[:6]}"
    account = docker_rig.registry.account(name, docker_host=docker_rig.engine.host)
    account = account.model_copy(update={"address": proxy.address})
    async with serving(client, build_registry_account(account, TEST_EGRESS, TEST_BAKE)):
        yield name


def deploy_pipeline(rig: KubeRig, name: str, **fields: Any) -> dict[str, Any]:
    stack = "f" + uuid.uuid4().hex[:6]
    stage = {
        "refId": "deploy",
        "type": "deploy",
        "account": rig.account.name,
        "namespace": rig.namespace,
        "stack": stack,
        "container": rig.container("1.0"),
        "capacity": {"min": 1, "max": 2, "desired": 2},
        "waitForHealthySec": 45,
        **fields,
    }
    return {"application": "shop", "name": name, "stages": [stage]}


async def run(client: Client, task_queue: str, spec: dict[str, Any], during: Callable[[WorkflowHandle[Any, Any]], Awaitable[Any]] | None = None) -> tuple[ExecutionState, list[Attempt]]:  # fmt: skip
    handle = await start_pipeline(client, task_queue, spec, prefix="fault")
    if during is not None:
        await during(handle)
    state = await finish(handle, RUN_TIMEOUT, f"{spec['name']} under an injected fault")
    return state, await activity_attempts(handle)


def retried(attempts: list[Attempt]) -> dict[str, int]:
    """Activity type -> highest attempt, for the activities that needed more than one."""
    found: dict[str, int] = {}
    for a in attempts:
        if a.attempt > 1:
            found[a.activity] = max(found.get(a.activity, 0), a.attempt)
    return found


def shown(found: dict[str, int]) -> str:
    return ", ".join(f"{name} attempt {n}" for name, n in sorted(found.items())) or "none"


def stage_error(state: ExecutionState, ref: str) -> str:
    stage = state.stage(ref)
    return stage.error.message if stage is not None and stage.error is not None else ""


# ---- Kubernetes: transient faults are retried --------------------------------------------------------


async def test_kubernetes_5xx_bursts_are_retried(
    client: Client, task_queue: str, kube: KubeRig, reliability: ReliabilityReport
) -> None:
    sim = kube.needs_kubesim()
    rng = reliability.rng("k8s-5xx")
    kinds = ((503, "start"), (500, "start"), (504, "wait"), (503, "wait"))
    trials = [(code, rng.randint(2, 3), when) for code, when in kinds]
    outcomes: list[tuple[bool, str]] = []
    for code, count, when in trials:
        before = int(sim.faults()["errors_served"])

        async def burst_in_wait(handle: WorkflowHandle[Any, Any], code: int = code, count: int = count) -> None:
            await query_until(handle, lambda s: "healthy" in (s.stage("deploy").details or ""), 20, "health wait")  # type: ignore[union-attr]
            sim.inject(error_burst={"count": count, "code": code})

        if when == "start":
            sim.inject(error_burst={"count": count, "code": code})
        try:
            state, attempts = await run(
                client, task_queue, deploy_pipeline(kube, "k8s-5xx"), burst_in_wait if when == "wait" else None
            )
        finally:
            sim.reset_faults()
        served = int(sim.faults()["errors_served"]) - before
        again = retried(attempts)
        ok = state.status is ExecutionStatus.SUCCEEDED and served == count and bool(again)
        outcomes.append((ok, f"{count}x{code} at {when}: {state.status}, served {served}, retried {shown(again)}; "
                             f"{stage_error(state, 'deploy')}"))  # fmt: skip
    reliability.add(
        K8S,
        "5xx bursts",
        "kubesim `error_burst` (500/503/504, the next 2-3 requests) before the deploy and during its health wait",
        len(outcomes),
        sum(ok for ok, _ in outcomes),
        "every deploy succeeded; retried with backoff (attempt > 1 in history): "
        + str(sum(1 for ok, _ in outcomes if ok))
        + " of "
        + str(len(outcomes)),
    )
    assert all(ok for ok, _ in outcomes), "\n".join(text for _, text in outcomes)


async def test_kubernetes_latency_is_tolerated(
    client: Client, task_queue: str, kube: KubeRig, reliability: ReliabilityReport
) -> None:
    sim = kube.needs_kubesim()
    sim.inject(latency_ms=150)
    try:
        state, attempts = await run(client, task_queue, deploy_pipeline(kube, "k8s-latency"))
    finally:
        sim.reset_faults()
    ok = state.status is ExecutionStatus.SUCCEEDED
    reliability.add(
        K8S,
        "added latency",
        "kubesim `latency_ms: 150` on every API request (watches included) for a whole deploy",
        1,
        int(ok),
        f"deploy succeeded; activities retried: {shown(retried(attempts))}",
    )
    assert ok, stage_error(state, "deploy")


@pytest.mark.parametrize("compact", [False, True], ids=["dropped", "expired"])
async def test_kubernetes_dropped_watches_are_resumed(
    client: Client, task_queue: str, kube: KubeRig, reliability: ReliabilityReport, compact: bool
) -> None:
    sim = kube.needs_kubesim()
    dropped = 0

    async def keep_dropping(handle: WorkflowHandle[Any, Any]) -> None:
        nonlocal dropped
        await query_until(handle, lambda s: "healthy" in (s.stage("deploy").details or ""), 20, "health wait")  # type: ignore[union-attr]
        while True:
            state = await handle.query("state", result_type=ExecutionState)
            if "healthy" not in (state.stage("deploy").details or ""):  # type: ignore[union-attr]
                return
            if compact:
                await asyncio.to_thread(sim.compact)
            dropped += await asyncio.to_thread(sim.drop_watches)
            await asyncio.sleep(0.1)

    state, attempts = await run(client, task_queue, deploy_pipeline(kube, "k8s-watch"), keep_dropping)
    ok = state.status is ExecutionStatus.SUCCEEDED and dropped > 0
    what = "watch history compacted, then the watch dropped (410 Gone on resume)" if compact else "watch dropped"
    reliability.add(
        K8S,
        "expired watches (410 Gone)" if compact else "dropped watches",
        f"kubesim admin: {what}, every 0.1 s through the health wait",
        1,
        int(ok),
        f"deploy succeeded after {dropped} closed watch stream(s); resumed inside the activity by re-listing "
        f"(activities retried: {shown(retried(attempts))})",
    )
    assert ok, f"{state.status}, {dropped} watches dropped: {stage_error(state, 'deploy')}"


# ---- Kubernetes: permanent faults fail at once and name the account -----------------------------------


@pytest.mark.parametrize("fault", ["revoked-token", "forbidden"])
async def test_kubernetes_auth_errors_are_not_retried(
    client: Client, task_queue: str, kube: KubeRig, reliability: ReliabilityReport, fault: str
) -> None:
    sim = kube.needs_kubesim()
    spec = deploy_pipeline(kube, f"k8s-{fault}")
    cluster = f"shop-{spec['stages'][0]['stack']}"
    if fault == "revoked-token":
        sim.inject(revoke_token=True)
        expected, activity, injection = (
            "401 Unauthorized",
            "describeCluster",
            "kubesim `revoke_token` (every request 401)",
        )
    else:
        sim.inject(forbid=[{"verb": "create", "resource": "replicasets"}])
        expected, activity, injection = (
            "403 Forbidden",
            "createServerGroup",
            "kubesim `forbid` create replicasets (403)",
        )
    try:
        state, attempts = await run(client, task_queue, spec)
    finally:
        sim.reset_faults()
    error = stage_error(state, "deploy")
    failing = [a for a in attempts if a.activity == activity]
    problems = []
    if state.stage("deploy").status is not StageStatus.TERMINAL:  # type: ignore[union-attr]
        problems.append(f"stage {state.stage('deploy').status}, want TERMINAL")  # type: ignore[union-attr]
    if kube.account.name not in error or expected not in error:
        problems.append(f"stage error does not name the account and the status: {error!r}")
    if [a.attempt for a in failing] != [1]:
        problems.append(f"{activity} attempts {[a.attempt for a in failing]}, want exactly [1] (not retried)")
    if retried(attempts):
        problems.append(f"retried: {shown(retried(attempts))}")
    if fault == "forbidden" and kube.server_groups(cluster):
        problems.append(f"server groups were left: {sorted(kube.server_groups(cluster))}")
    reliability.add(
        K8S,
        "revoked token (401)" if fault == "revoked-token" else "forbidden (403)",
        injection,
        1,
        int(not problems),
        f"stage TERMINAL at once, {activity} attempt 1, error names account and `{expected}`",
    )
    assert not problems, "\n".join(problems)


# ---- registry 5xx -----------------------------------------------------------------------------------------


async def test_registry_5xx_is_retried(
    client: Client,
    task_queue: str,
    docker_rig: DockerRig,
    proxy: RegistryProxy,
    registry_account: str,
    reliability: ReliabilityReport,
) -> None:
    suffix = uuid.uuid4().hex[:6]
    results: dict[str, tuple[bool, str]] = {}

    async def find(status: int) -> None:
        repository = f"rel/find-{status}-{suffix}"
        digest = await asyncio.to_thread(docker_rig.registry.push_synthetic, repository, "1.0.0", datetime.now(UTC))
        proxy.fail(lambda m, p, r=repository: p.startswith(f"/v2/{r}/"), 1, status)
        spec = {"application": "shop", "name": "find-5xx", "stages": [
            {"refId": "find", "type": "findImage", "account": registry_account, "repository": repository}]}  # fmt: skip
        state, attempts = await run(client, task_queue, spec)
        found = (state.stage("find").outputs or {}).get("digest")  # type: ignore[union-attr]
        again = retried(attempts)
        ok = state.status is ExecutionStatus.SUCCEEDED and found == digest and "find_image" in again
        results[f"findImage {status}"] = (ok, f"{state.status}, retried {shown(again)} {stage_error(state, 'find')}")

    async def bake(where: str, after: Any = None) -> None:
        repository, tag = f"rel/bake-{where}-{suffix}", f"v-{suffix}"
        if after is not None:
            while after.count > 0:  # let the ping fault hit the other bake first
                await asyncio.sleep(0.05)
        if where == "ping":
            rule = proxy.fail(lambda m, p: m == "GET" and p == "/v2/", 1)
            started.set_result(rule)
        else:
            proxy.fail(lambda m, p, r=repository: m == "PUT" and p.startswith(f"/v2/{r}/manifests/"), 1)
        context = docker_rig.context(SCRATCH_BAKE, files={"trial.txt": f"{where}-{suffix}"})
        spec = {"application": "shop", "name": "bake-5xx", "stages": [
            {"refId": "bake", "type": "bake", "account": registry_account, "repository": repository, "tag": tag,
             "context": {"path": str(context)}}]}  # fmt: skip
        state, attempts = await run(client, task_queue, spec)
        again = retried(attempts)
        puts = proxy.manifest_puts(repository, tag)
        ok = state.status is ExecutionStatus.SUCCEEDED and len(puts) == 1
        if where == "ping":
            ok = ok and "bake_image" in again
        results[f"bake, 503 on {where}"] = (
            ok,
            f"{state.status}, retried {shown(again)}, {len(puts)} successful push(es) {stage_error(state, 'bake')}",
        )

    started: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    async def second_bake() -> None:
        await bake("manifest-put", after=await started)

    await asyncio.gather(find(503), find(500), bake("ping"), second_bake())
    rejected = collections.Counter(s.status for s in proxy.requests() if s.status >= 500)
    for name in sorted(results):
        ok, text = results[name]
        print(f"{name}: {'ok' if ok else 'FAILED'} — {text}")
    notes = {
        "findImage": "findImage retried (attempt 2 in history) and found the pushed digest",
        "bake": "bake retried (ping: attempt 2; manifest PUT: the push failed, the retried bake pushed) "
        "and pushed the tag exactly once",
    }
    how = {
        "findImage": "500/503 to the first request for the repository",
        "bake": "503 to the first `GET /v2/` (ping), or to the first manifest PUT (push)",
    }
    grouped = {
        "findImage": ["findImage 500", "findImage 503"],
        "bake": ["bake, 503 on manifest-put", "bake, 503 on ping"],
    }
    for kind, trials in grouped.items():
        reliability.add(
            REGISTRY,
            f"registry 5xx during {kind}",
            f"loopback proxy in front of docker-registry answers {how[kind]}",
            len(trials),
            sum(1 for t in trials if results[t][0]),
            notes[kind] + f"; the proxy answered {sum(rejected.values())} injected 5xx in all",
        )
    assert all(ok for ok, _ in results.values()), "\n".join(f"{k}: {t}" for k, (_, t) in sorted(results.items()))
