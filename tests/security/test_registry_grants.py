"""Registry repositories belong to the applications the policy grants them (issue 11 item 1).

`appa` is granted `appa/*`, `appb` is granted `appb/*`, both on one real registry (the Docker rig)
served by a real registry worker. Submitted through core.launch.start_execution with the policy, as
the gateway does; each refusal names the repository and the rule, and leaves appb's repositories as
they were (no tag read, written or moved).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from temporalio.client import Client

import workflows.stages.bake  # registers `bake`
import workflows.stages.find_image  # noqa: F401  (registers `findImage`)
from activities.bake import BakeSettings
from activities.egress import EgressPolicy
from activities.registry import build_registry_account
from core.launch import start_execution
from core.policy import Identity, Policy
from core.settings import GennakerSettings
from core.store import PipelineStore
from core.triggers import dispatch_registry_push
from tests.support.accounts import report_and_wait
from tests.support.docker_rig import SCRATCH_DOCKERFILE, DockerRig, docker_rig_fixture, serving  # noqa: F401
from tests.support.hostile_input import HostileInput
from tests.support.runner import DIRECTORY_QUEUE, Runner
from workflows.model import parse_pipeline
from workflows.state import ExecutionState, StageStatus, TriggerInfo

ACCOUNT = "grants-registry"
POLICY = {
    "applications": {
        "appa": {"EXECUTE": ["alice"], "resources": {"repositories": ["appa/*"]}},
        "appb": {"EXECUTE": ["bob"], "resources": {"repositories": ["appb/*"]}},
    }
}
ALICE = Identity(subject="alice")
RULE = "rule: policy applications.appa.resources"


class Rig:
    def __init__(self, client: Client, docker: DockerRig, policy: Policy, task_queue: str) -> None:
        self.client = client
        self.docker = docker
        self.policy = policy
        self.settings = GennakerSettings(task_queue=task_queue)
        suffix = uuid.uuid4().hex[:6]
        self.own = f"appa/web-{suffix}"
        self.theirs = f"appb/web-{suffix}"

    async def submit(self, application: str, *stages: dict[str, Any]) -> ExecutionState:
        spec = parse_pipeline({"application": application, "name": "r" + uuid.uuid4().hex[:6], "stages": list(stages)})
        started = await start_execution(
            self.client, self.settings, spec, {}, TriggerInfo(user="alice"), policy=self.policy, submitter=ALICE
        )
        return await Runner.finish(self.client.get_workflow_handle(started.id), timeout=120)

    def tags(self, repository: str) -> list[str]:
        with self.docker.registry.http() as http:
            answer = http.get(f"/v2/{repository}/tags/list")
            return sorted(answer.json().get("tags") or []) if answer.status_code == 200 else []


@pytest.fixture(scope="module")
async def rig(client: Client, worker: None, task_queue: str, docker_rig: DockerRig) -> AsyncIterator[Rig]:
    account = docker_rig.registry.account(ACCOUNT, docker_host=docker_rig.engine.host)
    provided = build_registry_account(account, EgressPolicy(), BakeSettings(allowedContextDirs=[docker_rig.workdir]))
    async with serving(client, provided):
        await report_and_wait(client, "registry-grants-rig", [provided], DIRECTORY_QUEUE)
        path = docker_rig.workdir / f"policy-{uuid.uuid4().hex[:6]}.yaml"
        path.write_text(yaml.safe_dump(POLICY))
        the_rig = Rig(client, docker_rig, Policy.load(path), task_queue)
        when = datetime(2026, 1, 1, tzinfo=UTC)
        docker_rig.registry.push_synthetic(the_rig.own, "1.0", when, note="appa")
        docker_rig.registry.push_synthetic(the_rig.theirs, "1.0", when, note="appb")
        yield the_rig


def find_image(repository: str) -> dict[str, Any]:
    return {"refId": "find", "type": "findImage", "account": ACCOUNT, "repository": repository, "timeoutSeconds": 30}


def bake(context: Path, repository: str, **extra: Any) -> dict[str, Any]:
    return {
        "refId": "bake",
        "type": "bake",
        "account": ACCOUNT,
        "repository": repository,
        "tag": "v1",
        "context": {"path": str(context)},
        "timeoutMinutes": 2,
        **extra,
    }


def refusal(state: ExecutionState) -> str:
    failed = [s for s in state.stages if s.status is StageStatus.TERMINAL]
    assert failed and failed[0].error is not None, [(s.refId, s.status, s.error) for s in state.stages]
    return failed[0].error.message


async def test_find_image_in_an_own_repository_is_allowed(rig: Rig, hostile_input: HostileInput) -> None:
    state = await rig.submit("appa", find_image(rig.own))
    assert state.stages[0].status is StageStatus.SUCCEEDED, state.stages[0].error
    assert state.stages[0].outputs["tag"] == "1.0"
    hostile_input.answer(f"allowed: found {rig.own.split('-')[0]}-…:1.0")


async def test_find_image_cannot_read_another_applications_tags(rig: Rig, hostile_input: HostileInput) -> None:
    """appa's findImage on appb's repository."""
    message = refusal(await rig.submit("appa", find_image(rig.theirs)))
    assert f"policy: application appa may not touch repository {rig.theirs}; granted repositories: appa/*" in message
    assert RULE in message and "Nothing was read or pushed" in message
    hostile_input.answer("TERMINAL: policy: application appa may not touch repository appb/…; granted appa/*")


async def test_bake_cannot_push_into_another_applications_repository(rig: Rig, hostile_input: HostileInput) -> None:
    """appa's bake of a fresh image into appb's repository."""
    evil = f"appb/evil-{uuid.uuid4().hex[:6]}"
    message = refusal(await rig.submit("appa", bake(rig.docker.context(), evil)))
    assert f"may not touch repository {evil}" in message and RULE in message
    assert rig.tags(evil) == []
    hostile_input.answer("TERMINAL naming the repository and rule; nothing pushed")


async def test_bake_cannot_retag_another_applications_image(rig: Rig, hostile_input: HostileInput) -> None:
    """appa's bake with skipIfExists onto appb's existing tag, adding a tag to it."""
    stage = bake(rig.docker.context(), rig.theirs, tag="1.0", extraTags=["hijacked"], skipIfExists=True)
    message = refusal(await rig.submit("appa", stage))
    assert f"may not touch repository {rig.theirs}" in message and RULE in message
    assert rig.tags(rig.theirs) == ["1.0"]
    hostile_input.answer("TERMINAL naming the repository and rule; appb's tags unchanged")


async def test_bake_into_an_own_repository_is_allowed(rig: Rig, hostile_input: HostileInput) -> None:
    context = rig.docker.context(SCRATCH_DOCKERFILE + "COPY note.txt /note.txt\n", {"note.txt": uuid.uuid4().hex})
    own = f"appa/baked-{uuid.uuid4().hex[:6]}"
    state = await rig.submit("appa", bake(context, own))
    assert state.stages[0].status is StageStatus.SUCCEEDED, state.stages[0].error
    assert rig.tags(own) == ["v1"]
    hostile_input.answer("allowed: built and pushed")


async def test_a_docker_trigger_on_another_applications_repository_starts_nothing(
    rig: Rig, store: PipelineStore, hostile_input: HostileInput
) -> None:
    """An appa pipeline whose docker trigger watches appb's repository (a push would tell it appb's tags)."""
    name = "spy-" + uuid.uuid4().hex[:6]
    trigger = {"type": "docker", "account": ACCOUNT, "repository": rig.theirs}
    stages = [{"refId": "w", "type": "wait", "waitTime": 0}]
    store.save("appa", name, {"application": "appa", "name": name, "triggers": [trigger], "stages": stages}, author="t")
    result = await dispatch_registry_push(
        rig.client,
        rig.settings,
        store.aio,
        account=ACCOUNT,
        repository=rig.theirs,
        tag="2.0",
        digest=None,
        delivery_id=uuid.uuid4().hex,
        policy=rig.policy,
    )
    assert not [s for s in result.started if s.pipeline == name]
    reasons = [n.reason for n in result.notStarted if n.pipeline == name]
    assert reasons and f"may not touch repository {rig.theirs}" in reasons[0] and RULE in reasons[0]
    hostile_input.answer("not started: the reason names the repository and rule")
