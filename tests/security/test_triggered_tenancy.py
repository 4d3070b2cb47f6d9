"""Runs started by a `pipeline` trigger act as their pipeline's serviceAccount under the policy
(issue 11 item 1, "Triggered runs"), like webhook runs: the worker that fires the trigger reads the
gateway's policy (`auth_policy_file`), and the triggered execution records the serviceAccount and its
application's grants instead of running with open grants.

A pipeline worker of its own (on its own task queue, with the policy) runs an `appa` pipeline; two
saved `appa` pipelines wait for it with a `pipeline` trigger: one reads appa's repository (allowed),
one reads appb's (refused, naming the rule). The registry is the Docker rig's, served by a real worker.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from temporalio.client import Client

import workflows.stages.find_image  # noqa: F401  (registers `findImage`)
from activities.bake import BakeSettings
from activities.egress import EgressPolicy
from activities.registry import build_registry_account
from core.launch import start_execution
from core.policy import Identity, Policy
from core.settings import GennakerSettings
from core.store import PipelineStore
from tests.support.accounts import report_and_wait
from tests.support.docker_rig import DockerRig, docker_rig_fixture, serving  # noqa: F401
from tests.support.hostile_input import HostileInput
from tests.support.runner import DIRECTORY_QUEUE, Runner
from workers.config import WorkerConfig
from workers.runner import pipeline_worker
from workflows.model import parse_pipeline
from workflows.state import ExecutionState, PipelineRunInput, StageStatus, TriggerInfo

ACCOUNT = "triggered-registry"
QUEUE = f"triggered-tenancy-{uuid.uuid4().hex[:6]}"
SERVICE_ACCOUNT = "appa-deployer"
POLICY = {
    "applications": {
        "appa": {"EXECUTE": ["alice"], "resources": {"repositories": ["appa/*"]}},
        "appb": {"EXECUTE": ["bob"], "resources": {"repositories": ["appb/*"]}},
    }
}


@dataclass
class Rig:
    client: Client
    store: PipelineStore
    policy: Policy
    own: str
    theirs: str


@pytest.fixture(scope="module")
async def rig(client: Client, worker: None, store: PipelineStore, docker_rig: DockerRig) -> AsyncIterator[Rig]:
    path = docker_rig.workdir / f"policy-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump(POLICY))
    account = docker_rig.registry.account(ACCOUNT, docker_host=docker_rig.engine.host)
    provided = build_registry_account(account, EgressPolicy(), BakeSettings())
    suffix = uuid.uuid4().hex[:6]
    own, theirs = f"appa/app-{suffix}", f"appb/app-{suffix}"
    when = datetime(2026, 1, 1, tzinfo=UTC)
    docker_rig.registry.push_synthetic(own, "1.0", when, note="appa")
    docker_rig.registry.push_synthetic(theirs, "1.0", when, note="appb")
    config = WorkerConfig(auth_policy_file=path)
    async with serving(client, provided), pipeline_worker(client, store, task_queue=QUEUE, config=config):
        await report_and_wait(client, "triggered-tenancy-rig", [provided], DIRECTORY_QUEUE)
        yield Rig(client, store, Policy.load(path), own, theirs)


def saved(rig: Rig, name: str, stage: dict[str, Any], **extra: Any) -> dict[str, Any]:
    config = {"application": "appa", "name": name, "stages": [stage], **extra}
    rig.store.save("appa", name, config, author="alice")
    return config


async def run_upstream(rig: Rig, upstream: dict[str, Any]) -> ExecutionState:
    """Alice starts the upstream pipeline, as the gateway would; returns its state once it has ended
    (its end fires the pipeline triggers)."""
    started = await start_execution(
        rig.client,
        GennakerSettings(task_queue=QUEUE),
        parse_pipeline(upstream),
        {},
        TriggerInfo(user="alice"),
        policy=rig.policy,
        submitter=Identity(subject="alice"),
    )
    return await Runner.finish(rig.client.get_workflow_handle(started.id), timeout=60)


async def run_input(client: Client, execution: str) -> PipelineRunInput:
    history = await client.get_workflow_handle(execution).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    [decoded] = await client.data_converter.decode(started.input.payloads, [PipelineRunInput])
    assert isinstance(decoded, PipelineRunInput)
    return decoded


async def test_a_pipeline_triggered_run_acts_as_its_service_account_under_the_policy(
    rig: Rig, hostile_input: HostileInput
) -> None:
    """An appa pipeline, started when another appa pipeline finishes, reads appb's repository."""
    suffix = uuid.uuid4().hex[:6]
    upstream = saved(rig, f"up-{suffix}", {"refId": "w", "type": "wait", "waitTime": 0})
    trigger = {"type": "pipeline", "application": "appa", "pipeline": upstream["name"]}
    for name, repository in ((f"down-own-{suffix}", rig.own), (f"down-theirs-{suffix}", rig.theirs)):
        find = {"refId": "find", "type": "findImage", "account": ACCOUNT, "repository": repository}
        saved(rig, name, find, triggers=[trigger], serviceAccount=SERVICE_ACCOUNT)

    state = await run_upstream(rig, upstream)
    assert state.triggerError is None and len(state.triggered) == 2, (state.triggerError, state.triggered)
    finished: dict[str, ExecutionState] = {}
    for execution in state.triggered:
        finished[execution] = await Runner.finish(rig.client.get_workflow_handle(execution), timeout=60)
        recorded = await run_input(rig.client, execution)
        assert recorded.submitter is not None and recorded.submitter.subject == SERVICE_ACCOUNT
        assert recorded.submitter.via == "trigger"
        assert recorded.grants is not None and not recorded.grants.unrestricted
        assert recorded.grants.rule == "policy applications.appa.resources"
    by_pipeline = {s.pipeline: s for s in finished.values()}
    own = by_pipeline[f"down-own-{suffix}"].stages[0]
    assert own.status is StageStatus.SUCCEEDED, own.error
    theirs = by_pipeline[f"down-theirs-{suffix}"].stages[0]
    assert theirs.status is StageStatus.TERMINAL and theirs.error is not None
    assert f"policy: application appa may not touch repository {rig.theirs}" in theirs.error.message
    assert "rule: policy applications.appa.resources" in theirs.error.message
    hostile_input.answer(
        f"recorded submitter {SERVICE_ACCOUNT} (via trigger) with appa's grants; own repository allowed, "
        "appb's TERMINAL naming the repository and rule"
    )


async def test_a_pipeline_triggered_run_cannot_act_for_another_application(
    rig: Rig, hostile_input: HostileInput
) -> None:
    """A triggered appa pipeline whose child pipeline names application appb."""
    suffix = uuid.uuid4().hex[:6]
    upstream = saved(rig, f"up-{suffix}", {"refId": "w", "type": "wait", "waitTime": 0})
    trigger = {"type": "pipeline", "application": "appa", "pipeline": upstream["name"]}
    child = {"refId": "child", "type": "pipeline", "application": "appb", "pipeline": "anything"}
    saved(rig, f"down-child-{suffix}", child, triggers=[trigger], serviceAccount=SERVICE_ACCOUNT)
    state = await run_upstream(rig, upstream)
    # Refused at start (403 naming the field, as for a person), so nothing runs at all.
    assert state.triggerError is None and state.triggered == []
    hostile_input.answer(f"not started: {SERVICE_ACCOUNT} may not EXECUTE appb (403 at start)")
