"""Cancel at every stage type that holds something open, and check what is left behind against the
documented state (docs/cancel-semantics.md).

Each scenario starts a pipeline, waits until its stage is at the point named in the doc (mid-wait,
mid-build, Job running, …), cancels the execution as the gateway does (Temporal cancellation;
`PUT /executions/{id}/cancel` records who first), waits for the run to close and records what the
cluster, registry, Docker engine and fake services show. The scenarios run at the same time (one
module fixture), so the slowest cancellation (a poll that only learns of it at its next heartbeat)
sets the module's time, not their sum; the tests below then check one stage type each.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import docker
import pytest
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle

import workflows.stages.bake
import workflows.stages.deploy
import workflows.stages.jenkins
import workflows.stages.manifests
import workflows.stages.run_job
import workflows.stages.script
import workflows.stages.webhook  # noqa: F401  (register their stage types)
from activities.jenkins import JenkinsMaster
from activities.registry import build_registry_account
from activities.script import ScriptSettings
from core.store import PipelineStore
from tests.reliability.report import ReliabilityReport
from tests.support.docker_rig import DockerRig, serving
from tests.support.eventually import assert_eventually
from tests.support.fake_services import FakeHttp, FakeJenkins, JenkinsJob, Reply
from tests.support.fault_proxies import RegistryProxy
from tests.support.kube_rig import KubeRig
from tests.support.reliability_runs import SCRATCH_BAKE, finish, query_until, served_kube, start_pipeline, state_of
from tests.support.worker_policy import TEST_BAKE, TEST_EGRESS
from workers.config import WorkerConfig
from workers.runner import pipeline_worker
from workflows.state import ControlAck, ExecutionState, ExecutionStatus, JudgmentRequest, StageStatus

SECTION = "Cancellation cleanup"
SCRIPT_IMAGE = "gennaker-test/script-busybox:1"
REACH = 30.0  # how long a run may take to reach the point where it is canceled
CLOSE = 45.0  # how long a canceled run may take to close (cleanup activities included)
INJECTION = "Temporal cancel (as `PUT /executions/{id}/cancel` requests),"


@dataclass
class Observed:
    """What one cancellation left behind."""

    state: ExecutionState
    temporal: WorkflowExecutionStatus | None
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass
class Rig:
    client: Client
    queue: str
    kube: KubeRig
    docker: DockerRig
    registry: str
    proxy: RegistryProxy
    jenkins: FakeJenkins
    http: FakeHttp
    engine: docker.DockerClient


def pipeline(name: str, *stages: dict[str, Any]) -> dict[str, Any]:
    return {"application": "shop", "name": name, "stages": list(stages)}


def after(parent: str) -> dict[str, Any]:
    return {"refId": "after", "type": "evaluateVariables", "requisiteStageRefIds": [parent],
            "variables": [{"key": "ran", "value": "yes"}]}  # fmt: skip


def running_with(ref: str, text: str = "") -> Callable[[ExecutionState], bool]:
    def check(state: ExecutionState) -> bool:
        stage = state.stage(ref)
        return stage is not None and stage.status is StageStatus.RUNNING and text in (stage.details or "")

    return check


async def cancel_when(
    rig: Rig, spec: dict[str, Any], ready: Callable[[ExecutionState], bool], what: str,
    before_cancel: Callable[[WorkflowHandle[Any, Any], ExecutionState], Awaitable[None]] | None = None,
) -> tuple[WorkflowHandle[Any, Any], ExecutionState, Observed]:  # fmt: skip
    handle = await start_pipeline(rig.client, rig.queue, spec, prefix="cancel")
    reached = await query_until(handle, ready, REACH, what)
    if before_cancel is not None:
        await before_cancel(handle, reached)
    await handle.cancel()
    state = await finish(handle, CLOSE, f"{spec['name']} after cancel")
    temporal = (await handle.describe()).status
    return handle, reached, Observed(state, temporal)


# ---- scenarios (each returns what it observed) -----------------------------------------------------------


async def wait_stage(rig: Rig) -> Observed:
    spec = pipeline("cancel-wait", {"refId": "soak", "type": "wait", "waitTime": 600}, after("soak"))
    return (await cancel_when(rig, spec, running_with("soak"), "the wait running"))[2]


async def judgment_stage(rig: Rig) -> Observed:
    spec = pipeline("cancel-judgment", {"refId": "approve", "type": "manualJudgment", "judgmentInputs": ["ship"]},
                    after("approve"))  # fmt: skip
    handle, _, seen = await cancel_when(
        rig,
        spec,
        lambda s: bool(s.stage("approve").waitingForJudgment),
        "the judgment waiting",  # type: ignore[union-attr]
    )
    try:
        await asyncio.wait_for(
            handle.execute_update(
                "judge", JudgmentRequest(refId="approve", input="ship", user="late"), result_type=ControlAck
            ),
            15,
        )
        seen.facts["late judgment"] = "accepted"
    except Exception as exc:
        seen.facts["late judgment"] = f"refused ({type(exc).__name__})"
    return seen


async def child_pipeline_stage(rig: Rig) -> Observed:
    child = pipeline("cancel-child-inner", {"refId": "soak", "type": "wait", "waitTime": 600})
    spec = pipeline("cancel-child", {"refId": "child", "type": "pipeline", "pipelineConfig": child}, after("child"))

    async def child_running(handle: WorkflowHandle[Any, Any], _: ExecutionState) -> None:
        inner = rig.client.get_workflow_handle(f"{handle.id}.child")
        await query_until(inner, running_with("soak"), REACH, "the child's wait running")

    handle, _, seen = await cancel_when(rig, spec, running_with("child", "waiting for"), "the child started",
                                        child_running)  # fmt: skip
    inner = rig.client.get_workflow_handle(f"{handle.id}.child")
    deadline = asyncio.get_running_loop().time() + CLOSE
    while (await inner.describe()).status is WorkflowExecutionStatus.RUNNING:
        assert asyncio.get_running_loop().time() < deadline, "the child pipeline kept running after the cancel"
        await asyncio.sleep(0.1)
    seen.facts["child temporal"] = (await inner.describe()).status
    seen.facts["child state"] = (await state_of(inner)).status
    return seen


async def deploy_stage(rig: Rig, failed_group: str) -> Observed:
    kube = rig.kube
    stack = "c" + uuid.uuid4().hex[:6]
    service = f"shop-{stack}"
    await asyncio.to_thread(kube.service, service)
    base = {"refId": "deploy", "type": "deploy", "account": kube.account.name, "namespace": kube.namespace,
            "stack": stack, "loadBalancers": [service], "capacity": {"min": 1, "max": 2, "desired": 2},
            "waitForHealthySec": 120}  # fmt: skip
    first = await start_pipeline(rig.client, rig.queue, pipeline("cancel-deploy-v0", {**base, "container": kube.container("1.0")}))  # fmt: skip
    done = await finish(first, REACH, "the first deploy (v000)")
    assert done.status is ExecutionStatus.SUCCEEDED, done.stage("deploy")
    spec = pipeline("cancel-redblack", {**base, "strategy": "redblack", "container": kube.container(crashloop=True),
                                        "rollback": {"failedServerGroup": failed_group}})  # fmt: skip
    _, _, seen = await cancel_when(rig, spec, running_with("deploy", "healthy"), "the red/black health wait")
    old, new = f"shop-{stack}-v000", f"shop-{stack}-v001"
    groups = await asyncio.to_thread(kube.server_groups, f"shop-{stack}")
    seen.facts.update(
        old=old,
        new=new,
        groups=sorted(groups),
        serving=await asyncio.to_thread(kube.serving, service),
        old_pods=await asyncio.to_thread(kube.pods, old),
        new_pods=await asyncio.to_thread(kube.pods, new) if new in groups else set(),
        new_disabled=(groups[new].metadata.annotations or {}).get("gennaker.io/disabled") if new in groups else None,
    )
    return seen


async def deploy_manifest_stage(rig: Rig) -> Observed:
    kube = rig.kube
    name = "cm-" + uuid.uuid4().hex[:6]
    manifest = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                         "template": {"metadata": {"labels": {"app": name}},
                                      "spec": {"containers": [{"name": "web", "image": "shop/web:crashloop"}]}}}}  # fmt: skip
    spec = pipeline("cancel-manifest", {"refId": "apply", "type": "deployManifest", "account": kube.account.name,
                                        "namespaceOverride": kube.namespace, "manifests": [manifest]})  # fmt: skip
    _, _, seen = await cancel_when(rig, spec, running_with("apply", "to be stable"), "the stability wait")
    try:
        live = await asyncio.to_thread(kube.apps.read_namespaced_deployment, name, kube.namespace)
        seen.facts["deployment"] = f"present (replicas {live.spec.replicas})"
    except ApiException as exc:
        seen.facts["deployment"] = f"absent ({exc.status})"
    return seen


async def run_job_stage(rig: Rig) -> Observed:
    kube = rig.kube
    spec = pipeline("cancel-job", {"refId": "job", "type": "runJob", "account": kube.account.name,
                                   "namespace": kube.namespace,
                                   "container": {"image": "shell:1", "command": ["sh", "-c", "echo started; sleep 600"]}})  # fmt: skip
    _, reached, seen = await cancel_when(rig, spec, running_with("job", "running Job"), "the Job running")
    job = (reached.stage("job").details or "").rsplit("/", 1)[-1]  # type: ignore[union-attr]
    seen.facts["job"] = job
    try:
        await asyncio.to_thread(k8s.BatchV1Api(kube.api_client).read_namespaced_job, job, kube.namespace)
        seen.facts["job after"] = "present"
    except ApiException as exc:
        seen.facts["job after"] = "deleted" if exc.status == 404 else f"unknown ({exc.status})"
    return seen


async def bake_stage(rig: Rig) -> Observed:
    repository, tag = f"rel/cancel-bake-{uuid.uuid4().hex[:6]}", "v1"
    context = rig.docker.context(SCRATCH_BAKE + 'RUN ["/bin/busybox", "sleep", "3"]\n',
                                 files={"trial.txt": uuid.uuid4().hex})  # fmt: skip
    stage = {"refId": "bake", "type": "bake", "account": rig.registry, "repository": repository, "tag": tag,
             "context": {"path": str(context)}}  # fmt: skip

    async def building(handle: WorkflowHandle[Any, Any], _: ExecutionState) -> None:
        # Cancel once the bake's first heartbeat (its first build output) reached the server: that is the
        # documented case (a cancel that lands before it is seen by that heartbeat and stops the build).
        async def heartbeated() -> bool:
            pending = (await handle.describe()).raw_description.pending_activities
            return any(p.activity_type.name == "bake_image" and p.HasField("last_heartbeat_time") for p in pending)

        await assert_eventually(heartbeated, what="the bake heartbeats", timeout=REACH, interval=0.1)

    _, _, seen = await cancel_when(rig, pipeline("cancel-bake", stage), running_with("bake", "baking"),
                                   "the bake running", building)  # fmt: skip
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CLOSE
    while not rig.proxy.manifest_puts(repository, tag) and loop.time() < deadline:
        await asyncio.sleep(0.2)
    seen.facts["pushed after cancel"] = len(rig.proxy.manifest_puts(repository, tag))
    again = await start_pipeline(rig.client, rig.queue, pipeline("cancel-bake-again", stage), prefix="cancel")
    rerun = await finish(again, REACH, "the same bake run again")
    seen.facts["rerun"] = rerun.status
    seen.facts["rerun reused"] = (rerun.stage("bake").outputs or {}).get("reused")  # type: ignore[union-attr]
    seen.facts["pushes"] = len(rig.proxy.manifest_puts(repository, tag))
    return seen


async def script_stage(rig: Rig) -> Observed:
    spec = pipeline("cancel-script", {"refId": "script", "type": "script", "image": SCRIPT_IMAGE,
                                      "command": "echo started; sleep 600"})  # fmt: skip
    holder: dict[str, str] = {}

    async def container_up(handle: WorkflowHandle[Any, Any], _: ExecutionState) -> None:
        holder["id"] = handle.id
        await assert_eventually(
            lambda: asyncio.to_thread(containers, rig.engine, handle.id),
            what="the script's container started",
            timeout=REACH,
            interval=0.1,
        )

    _, _, seen = await cancel_when(rig, spec, running_with("script"), "the script running", container_up)
    seen.facts["containers"] = await asyncio.to_thread(containers, rig.engine, holder["id"])
    return seen


def containers(engine: docker.DockerClient, execution_id: str) -> list[str]:
    found = engine.api.containers(all=True, filters={"label": f"gennaker.execution={execution_id}"})
    return sorted(name.lstrip("/") for c in found for name in c.get("Names") or [])


async def webhook_stage(rig: Rig) -> Observed:
    key = uuid.uuid4().hex[:6]
    start = rig.http.route(
        "POST", f"/deploys/{key}", Reply(202, {"queued": True}, {"Location": f"/deploys/{key}/status"})
    )
    rig.http.route("GET", f"/deploys/{key}/status", Reply(200, {"state": "RUNNING"}))
    spec = pipeline("cancel-webhook", {"refId": "hook", "type": "webhook", "url": start, "waitForCompletion": True,
                                       "statusUrlResolution": "locationHeader", "statusJsonPath": "$.state",
                                       "successStatuses": "SUCCESS", "pollIntervalSeconds": 0.2})  # fmt: skip
    polls = lambda: len(rig.http.received("GET", f"/deploys/{key}/status"))  # noqa: E731
    _, _, seen = await cancel_when(rig, spec, lambda s: running_with("hook", "waiting for")(s) and polls() > 0,
                                   "status polling")  # fmt: skip
    loop = asyncio.get_running_loop()
    closed, last, still = loop.time(), polls(), loop.time()
    while loop.time() - still < 1.0:  # polling has stopped once 5 poll intervals pass without a GET
        assert loop.time() - closed < CLOSE, f"still polling {CLOSE:g}s after the run closed"
        await asyncio.sleep(0.1)
        if polls() != last:
            last, still = polls(), loop.time()
    seen.facts["polled after close for"] = round(still - closed)
    seen.facts["other requests"] = [r.method + " " + r.path for r in rig.http.received(path_prefix=f"/deploys/{key}")
                                    if r.method not in ("GET", "POST")]  # fmt: skip
    return seen


async def jenkins_stage(rig: Rig) -> Observed:
    job = "long-" + uuid.uuid4().hex[:6]
    rig.jenkins.jobs[job] = JenkinsJob(build_polls=100_000)
    spec = pipeline("cancel-jenkins", {"refId": "build", "type": "jenkins", "master": "ci", "job": job,
                                       "pollIntervalSeconds": 0.1})  # fmt: skip
    started = lambda: bool(rig.jenkins.received("GET", f"/job/{job}/1/"))  # noqa: E731
    _, _, seen = await cancel_when(rig, spec, lambda s: running_with("build")(s) and started(), "the build running")
    seen.facts["stop requested"] = bool(rig.jenkins.received("POST", f"/job/{job}/1/stop"))
    return seen


SCENARIOS: dict[str, Callable[[Rig], Awaitable[Observed]]] = {
    "wait": wait_stage,
    "manualJudgment": judgment_stage,
    "pipeline": child_pipeline_stage,
    "deploy (redblack, failed group disabled)": lambda rig: deploy_stage(rig, "disable"),
    "deploy (redblack, failed group destroyed)": lambda rig: deploy_stage(rig, "destroy"),
    "deployManifest": deploy_manifest_stage,
    "runJob": run_job_stage,
    "bake": bake_stage,
    "script": script_stage,
    "webhook": webhook_stage,
    "jenkins": jenkins_stage,
}


@pytest.fixture(scope="module")
async def observed(
    client: Client, store: PipelineStore, docker_rig: DockerRig
) -> AsyncIterator[dict[str, Observed | BaseException]]:
    queue = f"rel-cancel-{uuid.uuid4().hex[:6]}"
    engine = docker.DockerClient(base_url=docker_rig.engine.host, timeout=60)
    await asyncio.to_thread(engine.images.build, path=str(docker_rig.context()), tag=SCRIPT_IMAGE, rm=True)
    proxy = RegistryProxy(docker_rig.registry.address)
    with FakeJenkins() as jenkins, FakeHttp() as http:
        os.environ["REL_JENKINS_TOKEN"] = jenkins.api_token
        master = JenkinsMaster.model_validate({"name": "ci", "url": jenkins.url, "username": jenkins.username,
                                               "api_token": {"env": "REL_JENKINS_TOKEN"}})  # fmt: skip
        config = WorkerConfig(
            jenkins=[master],
            scripts=ScriptSettings(docker_host=docker_rig.engine.host),
            egress=TEST_EGRESS,
            bake=TEST_BAKE,
        )
        worker = pipeline_worker(client, store, task_queue=queue, config=config)
        task = asyncio.create_task(worker.run())
        name = f"rel-cancel-{uuid.uuid4().hex[:6]}"
        account = docker_rig.registry.account(name, docker_host=docker_rig.engine.host)
        try:
            async with (
                served_kube(client, ready_delay=1.0) as kube,
                serving(
                    client,
                    build_registry_account(
                        account.model_copy(update={"address": proxy.address}), TEST_EGRESS, TEST_BAKE
                    ),
                ),
            ):
                rig = Rig(client, queue, kube, docker_rig, name, proxy, jenkins, http, engine)
                names = list(SCENARIOS)
                results = await asyncio.gather(*(SCENARIOS[n](rig) for n in names), return_exceptions=True)
                yield dict(zip(names, results, strict=True))
        finally:
            await worker.shutdown()
            await asyncio.gather(task, return_exceptions=True)
            proxy.close()
            engine.close()
            os.environ.pop("REL_JENKINS_TOKEN", None)


def scenario(observed: dict[str, Observed | BaseException], name: str) -> Observed:
    result = observed[name]
    if isinstance(result, BaseException):
        raise AssertionError(f"cancel scenario {name!r} did not get to its checks: {result!r}") from result
    return result


def stage_canceled(seen: Observed, ref: str) -> list[str]:
    """The documented common part: the execution ends CANCELED (Temporal status Canceled) and the stage
    that was running is CANCELED with `error.kind: canceled`."""
    problems = []
    if seen.state.status is not ExecutionStatus.CANCELED or seen.temporal is not WorkflowExecutionStatus.CANCELED:
        problems.append(f"execution {seen.state.status} / Temporal {seen.temporal}, want CANCELED / CANCELED")
    stage = seen.state.stage(ref)
    if (
        stage is None
        or stage.status is not StageStatus.CANCELED
        or stage.error is None
        or stage.error.kind != "canceled"
    ):
        shown = f"{stage.status} {stage.error}" if stage else "missing"
        problems.append(f"stage {ref}: {shown}, want CANCELED with error.kind canceled")
    return problems


def conclude(reliability: ReliabilityReport, stage_type: str, point: str, problems: list[str], notes: str,
             bug: str | None = None) -> None:  # fmt: skip
    reliability.add(SECTION, f"cancel during {stage_type}", f"{INJECTION} {point}", 1, int(not problems),
                    notes if not problems or bug is None else "", expected_failure=bug if problems else None)  # fmt: skip
    assert not problems, "\n".join(problems)


# ---- the documented state, per stage type -------------------------------------------------------------


def test_cancel_wait(observed: dict[str, Observed | BaseException], reliability: ReliabilityReport) -> None:
    seen = scenario(observed, "wait")
    problems = stage_canceled(seen, "soak")
    if seen.state.stage("after").status is not StageStatus.NOT_STARTED:  # type: ignore[union-attr]
        problems.append("the stage after the wait ran")
    conclude(reliability, "wait", "while the timer runs", problems, "timer dropped; later stages never start")


def test_cancel_manual_judgment(observed: dict[str, Observed | BaseException], reliability: ReliabilityReport) -> None:
    seen = scenario(observed, "manualJudgment")
    problems = stage_canceled(seen, "approve")
    if seen.facts["late judgment"] == "accepted" or seen.state.stage("approve").judgment is not None:  # type: ignore[union-attr]
        problems.append(f"a judgment after the cancel was {seen.facts['late judgment']}")
    conclude(reliability, "manualJudgment", "while it waits for a judgment", problems,
             f"no judgment recorded; a judgment sent afterwards is {seen.facts['late judgment']}")  # fmt: skip


def test_cancel_child_pipeline(observed: dict[str, Observed | BaseException], reliability: ReliabilityReport) -> None:
    seen = scenario(observed, "pipeline")
    problems = []
    if seen.state.status is not ExecutionStatus.CANCELED or seen.temporal is not WorkflowExecutionStatus.CANCELED:
        problems.append(f"execution {seen.state.status} / Temporal {seen.temporal}, want CANCELED / CANCELED")
    child = (seen.facts.get("child temporal"), seen.facts.get("child state"))
    if child != (WorkflowExecutionStatus.CANCELED, ExecutionStatus.CANCELED):
        problems.append(f"child pipeline ended {child}, want CANCELED / CANCELED")
    conclude(reliability, "pipeline (child)", "while the child pipeline runs", problems,
             "the child execution is canceled too (Temporal Canceled, state CANCELED)")  # fmt: skip


@pytest.mark.parametrize("failed_group", ["disabled", "destroyed"])
def test_cancel_red_black_deploy_restores_traffic(
    observed: dict[str, Observed | BaseException], reliability: ReliabilityReport, failed_group: str
) -> None:
    seen = scenario(observed, f"deploy (redblack, failed group {failed_group})")
    facts = seen.facts
    problems = []
    if seen.state.status is not ExecutionStatus.CANCELED:
        problems.append(f"execution {seen.state.status}, want CANCELED")
    if not facts["old_pods"] or facts["serving"] != facts["old_pods"]:
        problems.append(f"Service serves {facts['serving']}, want the old group's pods {facts['old_pods']}")
    if failed_group == "disabled":
        if (
            facts["new"] not in facts["groups"]
            or facts["new_disabled"] != "true"
            or facts["new_pods"] & facts["serving"]
        ):
            problems.append(f"new group {facts['new']}: groups {facts['groups']}, disabled={facts['new_disabled']}")
    elif facts["new"] in facts["groups"]:
        problems.append(f"new group {facts['new']} still exists: {facts['groups']}")
    setting = {"disabled": "disable", "destroyed": "destroy"}[failed_group]
    conclude(reliability, f"deploy (redblack, rollback.failedServerGroup: {setting})",
             "in the new server group's health wait", problems,
             f"old group enabled and serving; new group {failed_group}")  # fmt: skip


def test_cancel_red_black_deploy_reports_canceled(
    observed: dict[str, Observed | BaseException], reliability: ReliabilityReport
) -> None:
    seen = scenario(observed, "deploy (redblack, failed group disabled)")
    problems = stage_canceled(seen, "deploy")
    if seen.state.failure:
        problems.append(f"execution failure set: {seen.state.failure!r}")
    conclude(reliability, "deploy (stage status)", "in the health wait", problems, "stage CANCELED",
             bug="stage reported TERMINAL, not CANCELED (deploy_strategies.run_strategy)")  # fmt: skip


def test_cancel_child_pipeline_reports_canceled(
    observed: dict[str, Observed | BaseException], reliability: ReliabilityReport
) -> None:
    seen = scenario(observed, "pipeline")
    problems = stage_canceled(seen, "child")
    conclude(reliability, "pipeline (stage status)", "while the child pipeline runs", problems, "stage CANCELED",
             bug="stage reported TERMINAL, not CANCELED (workflows/stages/child_pipeline.py)")  # fmt: skip


def test_cancel_deploy_manifest(observed: dict[str, Observed | BaseException], reliability: ReliabilityReport) -> None:
    seen = scenario(observed, "deployManifest")
    problems = stage_canceled(seen, "apply")
    if not str(seen.facts["deployment"]).startswith("present"):
        problems.append(f"the applied Deployment is {seen.facts['deployment']}, documented to stay applied")
    conclude(reliability, "deployManifest", "while it waits for the Deployment to be stable", problems,
             "applied manifests stay as applied (no rollback; undoRolloutManifest restores)")  # fmt: skip


def test_cancel_run_job(observed: dict[str, Observed | BaseException], reliability: ReliabilityReport) -> None:
    seen = scenario(observed, "runJob")
    problems = stage_canceled(seen, "job")
    if seen.facts["job after"] != "deleted":
        problems.append(f"Job {seen.facts['job']} is {seen.facts['job after']} after the cancel, want deleted")
    conclude(reliability, "runJob", "while the Job runs", problems, "the Job (and its pods) deleted")


def test_cancel_bake_leaves_one_reusable_image(
    observed: dict[str, Observed | BaseException], reliability: ReliabilityReport
) -> None:
    seen = scenario(observed, "bake")
    facts = seen.facts
    problems = []
    if seen.state.status is not ExecutionStatus.CANCELED:
        problems.append(f"execution {seen.state.status}, want CANCELED")
    if (facts["rerun"], facts["rerun reused"], facts["pushes"]) != (ExecutionStatus.SUCCEEDED, True, 1):
        problems.append(f"after the cancel: {facts}; want the build finished and pushed once, reused by a re-run")
    conclude(reliability, "bake", "after the build's first heartbeat, in a 3 s build step", problems,
             "the build in progress still completes and pushes its tag once; the same bake run again reuses it")  # fmt: skip


def test_cancel_bake_reports_canceled(
    observed: dict[str, Observed | BaseException], reliability: ReliabilityReport
) -> None:
    seen = scenario(observed, "bake")
    problems = stage_canceled(seen, "bake")
    conclude(reliability, "bake (stage status)", "after the build's first heartbeat, in a 3 s build step", problems, "stage CANCELED",
             bug="stage reported TERMINAL, not CANCELED (workflows/stages/bake.py)")  # fmt: skip


def test_cancel_script(observed: dict[str, Observed | BaseException], reliability: ReliabilityReport) -> None:
    seen = scenario(observed, "script")
    problems = stage_canceled(seen, "script")
    if seen.facts["containers"]:
        problems.append(f"containers left: {seen.facts['containers']}")
    conclude(reliability, "script", "while its container runs", problems, "the container is killed and removed")


def test_cancel_webhook_polling(observed: dict[str, Observed | BaseException], reliability: ReliabilityReport) -> None:
    seen = scenario(observed, "webhook")
    problems = stage_canceled(seen, "hook")
    if seen.facts["other requests"]:
        problems.append(f"unexpected requests: {seen.facts['other requests']}")
    conclude(reliability, "webhook (status polling)", "while it polls the status URL", problems,
             f"polling stopped {seen.facts['polled after close for']} s after the run closed (the poll learns of "
             "the cancel at its next heartbeat); nothing is sent to cancel the remote job")  # fmt: skip


def test_cancel_jenkins(observed: dict[str, Observed | BaseException], reliability: ReliabilityReport) -> None:
    seen = scenario(observed, "jenkins")
    problems = stage_canceled(seen, "build")
    if not seen.facts["stop requested"]:
        problems.append("the Jenkins build was not stopped")
    conclude(reliability, "jenkins", "while the build runs", problems, "the build is stopped (POST …/stop)")
