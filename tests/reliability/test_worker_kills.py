"""A worker process SIGKILLed in the middle of bakes, deploy health waits, judgment waits and slow
notifications; a freshly started worker takes over and every run finishes right.

One campaign serves all four kinds: the pipelines start at seeded random offsets, then the worker
(`python -m workers.main` with a gennaker.yaml: pipeline queue, a kubesim Kubernetes account, a
registry account, sticky timeout 1 s) is killed once, so each run is hit at a different point of its
progress (the point is recorded per run), and a new worker process starts at once. The runs share the
recovery time, which the activities' timeouts set: a killed bake attempt is retried only after its
20 s heartbeat timeout, a notification after its 30 s start-to-close timeout, a health wait after
its 10 s heartbeat timeout; a workflow moves to the new worker after the 1 s sticky timeout.
"""

from __future__ import annotations

import asyncio
import collections
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from temporalio.client import WorkflowHandle

import workflows.stages.bake
import workflows.stages.deploy  # noqa: F401  (registers `deploy`)
from core.temporal import connect
from tests.reliability.report import ReliabilityReport
from tests.support.docker_rig import SCRATCH_DOCKERFILE, DockerRig
from tests.support.fault_proxies import RegistryProxy, SlowSlack
from tests.support.kube_rig import KubeRig, start_rig, stop_rig
from tests.support.reliability_runs import (
    activity_attempts,
    finish,
    own_temporal,
    query_until,
    running_at,
    start_pipeline,
    worker_config,
)
from tests.support.worker_process import ACTIVITY_QUEUE, WORKFLOW_QUEUE, WorkerSubprocess
from workflows.state import ControlAck, ExecutionState, ExecutionStatus, JudgmentRequest

SECTION = "Worker crash (SIGKILL)"
TRIALS = {"bake": 4, "deploy": 6, "judgment": 6, "notification": 6}
READY_DELAY = 2.5  # kubesim pods get ready 1.9-3.1 s after they start: the kill lands in the health wait
SLACK_DELAY = 1.0
BAKE_DOCKERFILE = SCRATCH_DOCKERFILE + 'COPY trial.txt /trial.txt\nRUN ["/bin/busybox", "sleep", "2"]\n'
FINISH_TIMEOUT = 150.0  # 20 s bake heartbeat timeout + a rebuild, with ample room on a busy 2-core machine


@dataclass
class Trial:
    kind: str
    index: int
    offset: float  # seconds after the campaign starts
    spec: dict[str, Any]
    handle: WorkflowHandle[Any, Any] | None = None
    phase: str = "?"  # where the kill landed
    final: ExecutionState | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.kind}#{self.index} ({self.handle.id if self.handle else 'not started'})"


@dataclass
class Campaign:
    trials: list[Trial]
    kill_after: float
    rig: KubeRig
    docker: DockerRig
    proxy: RegistryProxy
    slack: SlowSlack
    repository: str
    logs: str

    def of(self, kind: str) -> list[Trial]:
        return [t for t in self.trials if t.kind == kind]


def phase_summary(trials: list[Trial]) -> str:
    counts = collections.Counter(t.phase for t in trials)
    return ", ".join(f"{n} {phase}" for phase, n in sorted(counts.items()))


PHASES = {
    "bake_image": "during the bake activity",
    "describeCluster": "reading the cluster",
    "reserveServerGroupVersion": "reserving the version",
    "createServerGroup": "creating the server group",
    "waitServerGroupHealthy": "in the health wait",
    "setServerGroupTraffic": "switching traffic",
    "switchServerGroupTraffic": "switching traffic",
    "send_notification": "while a notification was being sent",
    "timer": "in the wait timer",
}


def phase(activities: list[str] | None, kind: str) -> str:
    if activities is None:
        return "after the run had finished"
    if not activities:
        return "waiting for the judgment" if kind == "judgment" else "between activities"
    return " + ".join(sorted({PHASES.get(a, a) for a in activities}))


@pytest.fixture(scope="module")
async def campaign(
    tmp_path_factory: pytest.TempPathFactory, reliability: ReliabilityReport, docker_rig: DockerRig
) -> AsyncIterator[Campaign]:
    rng = reliability.rng("worker-kills")
    directory = tmp_path_factory.mktemp("worker-kills")
    suffix = uuid.uuid4().hex[:6]
    queue = f"rel-kills-{suffix}"
    docker = docker_rig
    rig = await asyncio.to_thread(start_rig, READY_DELAY)
    if rig.sim is None:
        pytest.skip("needs kubesim (ready delay control)")
    proxy = RegistryProxy(docker.registry.address)
    slack = SlowSlack(SLACK_DELAY)
    workers: list[WorkerSubprocess] = []
    try:
        async with own_temporal(directory, "temporal") as server:
            client = await connect(server.address)
            registry = docker.registry.account(f"rel-reg-{suffix}", docker_host=docker.engine.host)
            registry = registry.model_copy(update={"address": proxy.address})
            config = worker_config(
                server.address,
                queue,
                directory,
                kubernetes=[rig.account.model_dump(mode="json", exclude_none=True)],
                registries=[registry.model_dump(mode="json", exclude_none=True)],
            )
            polled = {queue: WORKFLOW_QUEUE, rig.account.queue: ACTIVITY_QUEUE, registry.queue: ACTIVITY_QUEUE}
            workers.append(WorkerSubprocess(config, directory, "worker-a"))
            await workers[0].wait_polling(client, polled)

            repository = f"rel/kill-{suffix}"
            # Each run is hit `into` seconds after it starts (drawn per run): it starts at kill_after - into.
            kill_after = 3.6
            trials: list[Trial] = []
            for i in range(TRIALS["bake"]):
                context = docker.context(BAKE_DOCKERFILE, files={"trial.txt": f"{suffix}-{i}\n"})
                spec = {"refId": "bake", "type": "bake", "account": registry.name, "repository": repository,
                        "tag": f"t{i}-{suffix}", "context": {"path": str(context)}}  # fmt: skip
                trials.append(Trial("bake", i, kill_after - rng.uniform(0.3, 3.0), pipeline(f"kill-bake-{i}", spec)))
            for i in range(TRIALS["deploy"]):
                stack = f"k{i}{suffix}"
                await asyncio.to_thread(rig.service, f"shop-{stack}")
                spec = {"refId": "deploy", "type": "deploy", "account": rig.account.name, "namespace": rig.namespace,
                        "stack": stack, "strategy": "redblack", "loadBalancers": [f"shop-{stack}"],
                        "container": rig.container("1.0"), "capacity": {"min": 1, "max": 2, "desired": 2},
                        "waitForHealthySec": 90}  # fmt: skip
                trial = Trial("deploy", i, kill_after - rng.uniform(0.2, 3.0), pipeline(f"kill-deploy-{i}", spec))
                trial.extra["cluster"] = f"shop-{stack}"
                trials.append(trial)
            for i in range(TRIALS["judgment"]):
                stages = [{"refId": "approve", "type": "manualJudgment", "judgmentInputs": ["ship", "hold"]},
                          {"refId": "after", "type": "evaluateVariables", "requisiteStageRefIds": ["approve"],
                           "variables": [{"key": "judged", "value": "${{ judgments.approve }}"}]}]  # fmt: skip
                trials.append(
                    Trial("judgment", i, kill_after - rng.uniform(1.0, 2.5), pipeline(f"kill-judge-{i}", *stages))
                )
            for i in range(TRIALS["notification"]):
                path = f"/services/T0001/B0001/kill-{suffix}-{i}"
                spec = pipeline(
                    f"kill-notify-{i}",
                    {"refId": "soak", "type": "wait", "waitTime": 1.5},
                    notifications=[{"type": "slack", "address": slack.url + path,
                                    "when": ["pipeline.starting", "pipeline.complete"]}],
                )  # fmt: skip
                trial = Trial("notification", i, kill_after - rng.uniform(0.1, 2.6), spec)
                trial.extra["path"] = path
                trials.append(trial)
            judge_after = {t.index: kill_after + rng.uniform(-0.8, 6.0) for t in trials if t.kind == "judgment"}

            loop = asyncio.get_running_loop()
            t0 = loop.time()
            replaced = loop.create_future()

            async def launch(trial: Trial) -> None:
                await asyncio.sleep(trial.offset)
                trial.handle = await start_pipeline(client, queue, trial.spec, prefix="kill")

            async def until_waiting(trial: Trial) -> None:
                # A run the old worker had not reached before the kill is answered only once the new
                # worker polls, which on a busy machine is well past 30 s: count from the replacement.
                assert trial.handle is not None
                while True:
                    try:
                        await query_until(
                            trial.handle, lambda s: bool(s.stage("approve").waitingForJudgment), 30, "waiting"
                        )
                        return
                    except AssertionError:
                        if replaced.done() and loop.time() - t0 - replaced.result() > 30:
                            raise

            async def judge(trial: Trial) -> None:
                await asyncio.sleep(max(0.0, trial.offset))
                while trial.handle is None:
                    await asyncio.sleep(0.05)
                await until_waiting(trial)
                await asyncio.sleep(max(0.0, t0 + judge_after[trial.index] - loop.time()))
                sent = loop.time() - t0
                if sent < kill_after:
                    trial.phase = "judged before the kill"
                elif not replaced.done():
                    trial.phase = "judged while no worker was up"
                else:
                    trial.phase = "judged after the new worker took over"
                record = await asyncio.wait_for(
                    trial.handle.execute_update(  # type: ignore[union-attr]
                        "judge",
                        JudgmentRequest(refId="approve", input="ship", user=f"judge-{trial.index}"),
                        result_type=ControlAck,
                    ),
                    90,
                )
                trial.extra["record"] = record

            launches = [asyncio.create_task(launch(t)) for t in trials]
            judges = [asyncio.create_task(judge(t)) for t in trials if t.kind == "judgment"]
            await asyncio.sleep(max(0.0, t0 + kill_after - loop.time()))
            killed_at = datetime.now(UTC)
            workers[0].kill()
            await asyncio.gather(*launches)
            workers.append(WorkerSubprocess(config, directory, "worker-b"))
            await workers[1].wait_polling(client, polled)
            replaced.set_result(loop.time() - t0)
            await asyncio.gather(*judges)
            for trial in trials:
                assert trial.handle is not None
                trial.final = await finish(trial.handle, FINISH_TIMEOUT, f"{trial.label} after the worker kill")
                if trial.kind != "judgment":
                    trial.phase = phase(await running_at(trial.handle, killed_at), trial.kind)
                trial.extra["retried"] = [a for a in await activity_attempts(trial.handle) if a.attempt > 1]
            yield Campaign(trials, kill_after, rig, docker, proxy, slack, repository,
                           logs="\n".join(w.log() for w in workers))  # fmt: skip
    finally:
        for worker in workers:
            worker.stop()
        slack.close()
        proxy.close()
        await asyncio.to_thread(stop_rig, rig)


def pipeline(name: str, *stages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"application": "shop", "name": name, "stages": list(stages), **extra}


def registry_digest(docker: DockerRig, repository: str, tag: str) -> str | None:
    with docker.registry.http() as http:
        answer = http.get(
            f"/v2/{repository}/manifests/{tag}",
            headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        )
        return answer.headers.get("docker-content-digest") if answer.status_code == 200 else None


def check(trial: Trial, problems: list[str], condition: bool, message: str) -> bool:
    if not condition:
        problems.append(f"{trial.label}: {message}")
    return condition


def succeeded(trial: Trial, problems: list[str]) -> bool:
    state = trial.final
    assert state is not None
    errors = "; ".join(f"{s.refId}: {s.error.message}" for s in state.stages if s.error)
    return check(trial, problems, state.status is ExecutionStatus.SUCCEEDED, f"ended {state.status} ({errors})")


def conclude(reliability: ReliabilityReport, fault: str, injection: str, trials: list[Trial],
             problems: list[str], notes: str, campaign: Campaign) -> None:  # fmt: skip
    bad = {p.split(":", 1)[0] for p in problems}
    passed = sum(1 for t in trials if t.label not in bad)
    retried = collections.Counter(a.activity for t in trials for a in t.extra.get("retried", []))
    if retried:
        notes += "; activities that needed another attempt: " + ", ".join(
            f"{name} x{n}" for name, n in sorted(retried.items())
        )
    reliability.add(SECTION, fault, injection, len(trials), passed, notes)
    assert not problems, "\n".join(problems) + "\n--- worker logs ---\n" + campaign.logs


async def test_bakes_survive_a_killed_worker(campaign: Campaign, reliability: ReliabilityReport) -> None:
    trials, problems = campaign.of("bake"), []
    for trial in trials:
        if not succeeded(trial, problems):
            continue
        outputs = trial.final.stage("bake").outputs  # type: ignore[union-attr]
        tag = trial.spec["stages"][0]["tag"]
        pushed = await asyncio.to_thread(registry_digest, campaign.docker, campaign.repository, tag)
        check(
            trial, problems, pushed == outputs["digest"], f"registry has {pushed}, the stage says {outputs['digest']}"
        )
        puts = campaign.proxy.manifest_puts(campaign.repository, tag)
        check(trial, problems, len(puts) == 1, f"{len(puts)} pushes of {campaign.repository}:{tag} (want exactly 1)")
    reused = sum(1 for t in trials if t.final and (t.final.stage("bake").outputs or {}).get("reused"))  # type: ignore[union-attr]
    conclude(
        reliability,
        "worker killed during a bake",
        "SIGKILL of the worker process holding the registry account (build: COPY + 2 s RUN, then push)",
        trials,
        problems,
        f"kill landed: {phase_summary(trials)}; exactly 1 push per tag; {reused} retried bake(s) reused the pushed image",
        campaign,
    )


async def test_deploys_survive_a_killed_worker(campaign: Campaign, reliability: ReliabilityReport) -> None:
    trials, problems = campaign.of("deploy"), []
    rig = campaign.rig
    for trial in trials:
        if not succeeded(trial, problems):
            continue
        outputs = trial.final.stage("deploy").outputs  # type: ignore[union-attr]
        cluster = trial.extra["cluster"]
        groups = sorted(await asyncio.to_thread(rig.server_groups, cluster))
        if not check(trial, problems, groups == [outputs["serverGroup"]], f"server groups {groups}, want one"):
            continue
        pods = await asyncio.to_thread(rig.pods, groups[0])
        serving = await asyncio.to_thread(rig.serving, cluster)
        check(trial, problems, len(pods) == 2 and serving == pods, f"Service serves {serving}, group has {pods}")
    conclude(
        reliability,
        "worker killed during a deploy",
        f"SIGKILL of the worker process holding the kubesim account (red/black, pods ready after ~{READY_DELAY:g} s)",
        trials,
        problems,
        f"kill landed: {phase_summary(trials)}; exactly 1 new server group per deploy, serving",
        campaign,
    )


async def test_judgments_survive_a_killed_worker(campaign: Campaign, reliability: ReliabilityReport) -> None:
    trials, problems = campaign.of("judgment"), []
    for trial in trials:
        if not succeeded(trial, problems):
            continue
        approve = trial.final.stage("approve").outputs  # type: ignore[union-attr]
        after = trial.final.stage("after").outputs  # type: ignore[union-attr]
        expected = (f"judge-{trial.index}", "ship", "update")
        got = (approve.get("judgedBy"), approve.get("judgmentInput"), approve.get("via"))
        check(trial, problems, got == expected, f"judgment recorded as {got}, want {expected}")
        check(trial, problems, after == {"judged": "ship"}, f"downstream saw {after}")
    conclude(
        reliability,
        "worker killed during a manual judgment wait",
        "SIGKILL of the worker running the pipeline workflows; judged (Update `judge`) before, during and "
        "after the outage",
        trials,
        problems,
        f"{phase_summary(trials)}; each judgment recorded once and seen downstream",
        campaign,
    )


async def test_notifications_survive_a_killed_worker(campaign: Campaign, reliability: ReliabilityReport) -> None:
    trials, problems = campaign.of("notification"), []
    messages = duplicates = 0
    for trial in trials:
        if not succeeded(trial, problems):
            continue
        state = trial.final
        assert state is not None
        check(trial, problems, not state.notificationFailures, f"failures {state.notificationFailures}")
        posts = campaign.slack.received(trial.extra["path"])
        for verb in ("is starting", "succeeded"):
            count = sum(1 for p in posts if p.text.endswith(verb))
            messages += 1
            duplicates += max(0, count - 1)
            check(trial, problems, count >= 1, f"Slack never got the '{verb}' message")
    conclude(
        reliability,
        "worker killed while a notification is being sent",
        f"SIGKILL while a Slack webhook takes {SLACK_DELAY:g} s to answer (pipeline.starting + pipeline.complete)",
        trials,
        problems,
        f"kill landed: {phase_summary(trials)}; all {messages} messages delivered at least once, "
        f"{duplicates} delivered twice (documented at-least-once delivery: the answer was lost with the worker)",
        campaign,
    )
