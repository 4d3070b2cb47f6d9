"""The Temporal dev server SIGKILLed mid-run and restarted on the same SQLite file: runs resume and finish.

The server and its worker are this module's own (never the session's): a `python -m workers.main`
process with the pipeline queue and a kubesim account, which keeps running through the outage and
reconnects by itself. Each round starts timer, deploy and judgment runs, kills the server at a seeded
random moment, keeps it down for a seeded random time, restarts it, and judges through a new client.
"""

from __future__ import annotations

import asyncio
import collections
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import workflows.stages.deploy  # noqa: F401  (registers `deploy`)
from core.temporal import connect
from tests.reliability.report import ReliabilityReport
from tests.support.kube_rig import KubeRig, start_rig, stop_rig
from tests.support.reliability_runs import finish, own_temporal, query_until, running_at, start_pipeline, worker_config
from tests.support.worker_process import ACTIVITY_QUEUE, WORKFLOW_QUEUE, WorkerSubprocess
from workflows.state import ControlAck, ExecutionState, ExecutionStatus, JudgmentRequest

SECTION = "Temporal server crash (SIGKILL + restart)"
ROUNDS = 3
PER_KIND = 2  # runs of each kind per round
READY_DELAY = 1.0


def runs(rig: KubeRig, tag: str) -> list[tuple[str, dict[str, Any]]]:
    made: list[tuple[str, dict[str, Any]]] = []
    for i in range(PER_KIND):
        made.append(("timer", pipeline(f"srv-timer-{i}",
            {"refId": "nap", "type": "wait", "waitTime": 2},
            {"refId": "after", "type": "evaluateVariables", "requisiteStageRefIds": ["nap"],
             "variables": [{"key": "ran", "value": "yes"}]})))  # fmt: skip
        made.append(("deploy", pipeline(f"srv-deploy-{i}",
            {"refId": "deploy", "type": "deploy", "account": rig.account.name, "namespace": rig.namespace,
             "stack": f"s{tag}{i}", "container": rig.container("1.0"), "capacity": {"min": 1, "max": 1, "desired": 1},
             "waitForHealthySec": 90})))  # fmt: skip
        made.append(("judgment", pipeline(f"srv-judge-{i}",
            {"refId": "approve", "type": "manualJudgment", "judgmentInputs": ["ship"]},
            {"refId": "after", "type": "evaluateVariables", "requisiteStageRefIds": ["approve"],
             "variables": [{"key": "judged", "value": "${{ judgments.approve }}"}]})))  # fmt: skip
    return made


def pipeline(name: str, *stages: dict[str, Any]) -> dict[str, Any]:
    return {"application": "shop", "name": name, "stages": list(stages)}


def describe(activities: list[str] | None) -> str:
    if activities is None:
        return "after it finished"
    if not activities:
        return "between activities / waiting"
    names = {"timer": "in a timer", "waitServerGroupHealthy": "in the health wait"}
    return " + ".join(sorted({names.get(a, f"in {a}") for a in activities}))


def verdict(kind: str, state: ExecutionState, rig: KubeRig, user: str) -> str | None:
    """None if the run ended as it must, else what is wrong."""
    if state.status is not ExecutionStatus.SUCCEEDED:
        return f"ended {state.status}: {[s.error.message for s in state.stages if s.error]}"
    if kind == "timer":
        nap = state.stage("nap")
        return None if nap and nap.outputs.get("skipped") is False else f"nap outputs {nap and nap.outputs}"
    if kind == "deploy":
        outputs = state.stage("deploy").outputs  # type: ignore[union-attr]
        groups = sorted(rig.server_groups(outputs["cluster"]))
        if groups != [outputs["serverGroup"]] or not rig.pods(groups[0]):
            return f"server groups {groups} for {outputs['serverGroup']} (want exactly it, with a pod)"
        return None
    approve = state.stage("approve").outputs  # type: ignore[union-attr]
    if (approve.get("judgedBy"), state.stage("after").outputs) != (user, {"judged": "ship"}):  # type: ignore[union-attr]
        return f"judgment {approve}, downstream {state.stage('after').outputs}"  # type: ignore[union-attr]
    return None


async def test_runs_resume_after_the_server_is_killed(tmp_path: Path, reliability: ReliabilityReport) -> None:
    rng = reliability.rng("server-restart")
    queue = f"rel-server-{uuid.uuid4().hex[:6]}"
    rig = await asyncio.to_thread(start_rig, READY_DELAY)
    worker: WorkerSubprocess | None = None
    outcomes: list[tuple[str, bool, str]] = []  # kind, ok, phase
    downtimes: list[float] = []
    problems: list[str] = []
    try:
        async with own_temporal(tmp_path, "temporal") as server:
            client = await connect(server.address)
            config = worker_config(
                server.address, queue, tmp_path, kubernetes=[rig.account.model_dump(mode="json", exclude_none=True)]
            )
            worker = WorkerSubprocess(config, tmp_path, "worker")
            await worker.wait_polling(client, {queue: WORKFLOW_QUEUE, rig.account.queue: ACTIVITY_QUEUE})
            for round_no in range(ROUNDS):
                started = [(kind, await start_pipeline(client, queue, spec, prefix=f"srv{round_no}"))
                           for kind, spec in runs(rig, f"{round_no}{uuid.uuid4().hex[:3]}")]  # fmt: skip
                for kind, handle in started:
                    if kind == "judgment":
                        await query_until(handle, lambda s: bool(s.stage("approve").waitingForJudgment), 30, "waiting")  # type: ignore[union-attr]
                await asyncio.sleep(rng.uniform(0.0, 1.8))
                killed_at = datetime.now(UTC)
                server.kill()
                down = rng.uniform(0.2, 1.5)
                downtimes.append(down)
                await asyncio.sleep(down)
                await asyncio.to_thread(server.start)
                client = await connect(server.address)  # a fresh client, as a restarted gateway would have
                handles = [(kind, client.get_workflow_handle(h.id)) for kind, h in started]
                for index, (kind, handle) in enumerate(handles):
                    if kind == "judgment":
                        await asyncio.wait_for(
                            handle.execute_update(
                                "judge",
                                JudgmentRequest(refId="approve", input="ship", user=f"after-restart-{index}"),
                                result_type=ControlAck,
                            ),
                            60,
                        )
                for index, (kind, handle) in enumerate(handles):
                    state = await finish(handle, 60, f"{kind} run after the server restart")
                    problem = await asyncio.to_thread(verdict, kind, state, rig, f"after-restart-{index}")
                    if problem:
                        problems.append(f"round {round_no} {kind} {handle.id}: {problem}")
                    outcomes.append((kind, problem is None, describe(await running_at(handle, killed_at))))
            assert worker.process.poll() is None, f"the worker died with the server:\n{worker.log()}"
    finally:
        if worker is not None:
            worker.stop()
        await asyncio.to_thread(stop_rig, rig)
    phases = collections.Counter(phase for _, _, phase in outcomes)
    kinds = collections.Counter(kind for kind, _, _ in outcomes)
    reliability.add(
        SECTION,
        "Temporal server killed and restarted mid-run",
        f"SIGKILL of `temporal server start-dev`, down {min(downtimes):.1f}-{max(downtimes):.1f} s, restarted on "
        f"its SQLite file; {ROUNDS} rounds of " + ", ".join(f"{n // ROUNDS} {k}" for k, n in sorted(kinds.items())),
        len(outcomes),
        sum(1 for _, ok, _ in outcomes if ok),
        "server died: "
        + ", ".join(f"{n} {p}" for p, n in sorted(phases.items()))
        + "; every run finished once, with one server group per deploy; the worker process reconnected by itself",
    )
    assert not problems, "\n".join(problems) + (f"\n--- worker log ---\n{worker.log()}" if worker else "")
