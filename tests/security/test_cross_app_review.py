"""A hostile tenant's review of the gateway (issue 11): paths around the submission checks.

Mallory may EXECUTE and WRITE application `xa` only; Alice may also EXECUTE `xb`; Root is an
admin; Sam may do nothing. Each test is one attack through the gateway with authentication on (API
tokens, the real Temporal dev server and a pipeline worker), and checks that nothing happened by
reading what would have changed (the schedule, the store, the execution's runs).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import yaml
from kubernetes import client as k8s
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from api.settings import GatewaySettings
from core.policy import Identity, Policy
from core.store import PipelineStore
from core.store.tokens import TokenStore
from tests.integration.test_auth import api, bearer  # noqa: F401  (fixture)
from tests.security.test_tenancy import ACCOUNT, Rig, deploy, rig, sg  # noqa: F401  (rig: fixture)
from tests.support.hostile_input import HostileInput
from tests.support.runner import Runner
from workers.devserver import TemporalDevServer
from workflows.state import StageStatus

POLICY = """
admins: [root]
applications:
  xa:
    EXECUTE: [mallory, alice]
    WRITE: [mallory, alice]
    resources: {triggerSecrets: ["xa-*"]}
  xb:
    EXECUTE: [alice]
    resources: {triggerSecrets: ["xb-*"]}
"""
SECRETS = {"xa-hook": "xa-secret-value", "xb-hook": "xb-secret-value"}


@dataclass
class Tokens:
    root: str
    alice: str
    mallory: str
    sam: str


@pytest.fixture(scope="module")
def settings(
    task_queue: str,
    worker: None,
    temporal_server: TemporalDevServer,
    store: PipelineStore,
    tmp_path_factory: pytest.TempPathFactory,
) -> GatewaySettings:
    folder = tmp_path_factory.mktemp("cross-app")
    (folder / "policy.yaml").write_text(POLICY)
    (folder / "secrets.yaml").write_text(yaml.safe_dump(SECRETS))
    return GatewaySettings(
        temporal_address=temporal_server.address,
        task_queue=task_queue,
        database_url=store.database_url,
        auth_policy_file=folder / "policy.yaml",
        trigger_secrets_file=folder / "secrets.yaml",
    )


@pytest.fixture(scope="module")
def tokens(store: PipelineStore) -> Tokens:
    made = TokenStore(store.database_url)
    try:
        return Tokens(*(made.create(subject, [], "test")[0] for subject in ("root", "alice", "mallory", "sam")))
    finally:
        made.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def child_of_xb(refid: str = "c") -> dict[str, Any]:
    inline = {"application": "xb", "name": "child", "stages": [{"refId": "w", "type": "wait", "waitTime": 0}]}
    return {"refId": refid, "type": "pipeline", "pipelineConfig": inline}


async def schedule_exists(client: Client, schedule_id: str) -> bool:
    try:
        await client.get_schedule_handle(schedule_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


@pytest.mark.parametrize(
    ("service_account", "expected"),
    [
        ("root", (403, "which has admin")),
        ("alice", (403, "which has READ on application xb")),
        ("xa-bot", (201, "saved: the serviceAccount has no right mallory lacks")),
    ],
)
async def test_a_writer_cannot_name_a_more_powerful_service_account(
    api: httpx.AsyncClient,  # noqa: F811
    tokens: Tokens,
    client: Client,
    service_account: str,
    expected: tuple[int, str],
) -> None:
    """Mallory saves an xa pipeline whose cron runs act as `serviceAccount` (an admin, a member of
    xb, a bot with no rights) and start an inline child of xb: the cron run would act for xb with
    the serviceAccount's rights. Expected: 403 naming `serviceAccount` and the right it has that
    Mallory lacks; no schedule and no pipeline stored (the rights-less bot is saved)."""
    name = unique("cron")
    stages = [child_of_xb()] if expected[0] == 403 else [{"refId": "w", "type": "wait", "waitTime": 0}]
    pipeline = {
        "application": "xa",
        "name": name,
        "serviceAccount": service_account,
        "triggers": [{"type": "cron", "cron": "0 3 * * *", "id": "nightly"}],
        "stages": stages,
    }
    schedule_id = f"cron.xa.{name}.nightly"
    saved = await api.put(f"/applications/xa/pipelines/{name}", json=pipeline, headers=bearer(tokens.mallory))
    try:
        assert saved.status_code == expected[0], saved.text
        stored = await api.get(f"/applications/xa/pipelines/{name}", headers=bearer(tokens.root))
        if expected[0] == 403:
            error = saved.json()["error"]
            assert error["field"] == "serviceAccount", error
            assert f"would act as {service_account}, {expected[1]}; mallory does not" in error["message"], error
            assert not await schedule_exists(client, schedule_id)
            assert stored.status_code == 404, stored.text
        else:
            assert await schedule_exists(client, schedule_id)
            assert stored.json()["config"]["serviceAccount"] == service_account
    finally:
        await api.delete(f"/applications/xa/pipelines/{name}", headers=bearer(tokens.root))


@pytest.mark.parametrize(
    ("saver", "expected"),
    [("mallory", (403, "which mallory may not READ")), ("alice", (201, "saved: alice may READ xb"))],
)
async def test_a_pipeline_trigger_cannot_watch_an_unreadable_application(
    api: httpx.AsyncClient,  # noqa: F811
    tokens: Tokens,
    saver: str,
    expected: tuple[int, str],
) -> None:
    """An xa pipeline with a `pipeline` trigger on xb's `deploy`: every xb execution that ends would
    start it and tell it the xb execution's id, pipeline and outcome (trigger.source, payload) —
    reading xb's executions. Mallory may not READ xb. Expected: 403 naming `triggers[0].application`
    and nothing stored; Alice, who may, saves it."""
    name = unique("watcher")
    pipeline = {
        "application": "xa",
        "name": name,
        "triggers": [{"type": "pipeline", "application": "xb", "pipeline": "deploy", "status": ["SUCCEEDED"]}],
        "stages": [{"refId": "w", "type": "wait", "waitTime": 0}],
    }
    token = tokens.mallory if saver == "mallory" else tokens.alice
    saved = await api.put(f"/applications/xa/pipelines/{name}", json=pipeline, headers=bearer(token))
    try:
        assert saved.status_code == expected[0], saved.text
        stored = await api.get(f"/applications/xa/pipelines/{name}", headers=bearer(tokens.root))
        if expected[0] == 403:
            error = saved.json()["error"]
            assert error["field"] == "triggers[0].application", error
            assert f"application xb, {expected[1]}" in error["message"], error
            assert stored.status_code == 404, stored.text
        else:
            assert stored.status_code == 200, stored.text
    finally:
        await api.delete(f"/applications/xa/pipelines/{name}", headers=bearer(tokens.root))


def webhook_pipeline(application: str, name: str, secret: str) -> dict[str, Any]:
    return {
        "application": application,
        "name": name,
        "triggers": [{"type": "webhook", "source": "xb-deploy", "secret": secret}],
        "stages": [{"refId": "w", "type": "wait", "waitTime": 0}],
    }


async def test_a_trigger_cannot_name_another_applications_secret(
    api: httpx.AsyncClient,  # noqa: F811
    tokens: Tokens,
    store: PipelineStore,
    hostile_input: HostileInput,
) -> None:
    """Mallory saves an xa pipeline whose webhook trigger listens on xb's source with xb's secret
    (`xb-hook`, granted to xb only): every delivery of xb's CI would start it with xb's payload.
    Expected: 403 naming `triggers[0].secret`, nothing stored. The same pipeline stored before the
    rule (straight into the store) is not started by xb's delivery; xb's own pipeline is."""
    name = unique("eavesdrop")
    refused = await api.put(
        f"/applications/xa/pipelines/{name}",
        json=webhook_pipeline("xa", name, "xb-hook"),
        headers=bearer(tokens.mallory),
    )
    assert refused.status_code == 403, refused.text
    error = refused.json()["error"]
    assert error["field"] == "triggers[0].secret", error
    assert (
        "policy: application xa may not use trigger secret xb-hook; granted trigger secrets: xa-*" in error["message"]
    )
    assert (await api.get(f"/applications/xa/pipelines/{name}", headers=bearer(tokens.root))).status_code == 404

    own = unique("deploy")
    saved = await api.put(
        f"/applications/xb/pipelines/{own}", json=webhook_pipeline("xb", own, "xb-hook"), headers=bearer(tokens.root)
    )
    assert saved.status_code == 201, saved.text
    await asyncio.to_thread(store.save, "xa", name, webhook_pipeline("xa", name, "xb-hook"), author="mallory")
    try:
        delivery = await api.post(
            "/webhooks/webhook/xb-deploy",
            json={"commit": "xb-private"},
            headers={"X-Gennaker-Secret": SECRETS["xb-hook"], "X-Gennaker-Delivery": unique("d")},
        )
        assert delivery.status_code == 202, delivery.text
        started = {(s["application"], s["pipeline"]) for s in delivery.json()["started"]}
        assert started == {("xb", own)}, delivery.text
        assert "xa" not in delivery.text, delivery.text
    finally:
        for application, pipeline in (("xa", name), ("xb", own)):
            await api.delete(f"/applications/{application}/pipelines/{pipeline}", headers=bearer(tokens.root))
    hostile_input.answer("403 naming triggers[0].secret; an xa pipeline stored earlier is not started by xb's delivery")


async def test_a_spinnaker_import_cannot_name_a_more_powerful_run_as_user(
    api: httpx.AsyncClient,  # noqa: F811
    tokens: Tokens,
    hostile_input: HostileInput,
) -> None:
    """Mallory imports (and saves) a Spinnaker xa pipeline whose cron trigger has `runAsUser: root`
    (Gennaker's serviceAccount). Expected: 403 naming `serviceAccount`; nothing saved."""
    name = unique("imported")
    exported = {
        "application": "xa",
        "name": name,
        "triggers": [{"type": "cron", "cronExpression": "0 0 3 ? * *", "runAsUser": "root", "enabled": True}],
        "stages": [{"refId": "1", "type": "wait", "waitTime": 1}],
    }
    response = await api.post(
        "/import/spinnaker", json={"pipelines": exported, "save": True}, headers=bearer(tokens.mallory)
    )
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert error["field"] == "serviceAccount" and "would act as root, which has admin" in error["message"], error
    listed = await api.get("/applications/xa/pipelines", headers=bearer(tokens.root))
    assert name not in {p["name"] for p in listed.json()}, listed.text
    hostile_input.answer("403 naming serviceAccount (root has admin, mallory does not); nothing saved")


async def test_a_restart_does_not_borrow_the_original_submitters_rights(
    api: httpx.AsyncClient,  # noqa: F811
    tokens: Tokens,
    client: Client,
    hostile_input: HostileInput,
) -> None:
    """Alice (EXECUTE on xa and xb) ran an xa pipeline with an inline child of xb. Mallory (EXECUTE
    on xa only) restarts it from the child stage: the new run would act as Alice, with her xb
    delegation. Expected: 403 naming the child's `application` field; no new run (the execution's
    run is still Alice's, closed). Alice herself may restart it (202)."""
    pipeline = {"application": "xa", "name": unique("parent"), "stages": [child_of_xb()]}
    started = await api.post("/executions", json={"pipeline": pipeline}, headers=bearer(tokens.alice))
    assert started.status_code == 202, started.text
    execution, first_run = started.json()["id"], started.json()["runId"]
    handle = client.get_workflow_handle(execution)
    assert (await Runner.finish(handle)).status.value == "SUCCEEDED"

    refused = await api.post(f"/executions/{execution}/stages/c/restart", headers=bearer(tokens.mallory))
    assert refused.status_code == 403, refused.text
    error = refused.json()["error"]
    assert error["field"] == "stages[c].pipelineConfig.application", error
    assert "names application xb, which mallory may not EXECUTE" in error["message"], error
    described = await handle.describe()
    assert (described.run_id, described.status) == (first_run, WorkflowExecutionStatus.COMPLETED)

    allowed = await api.post(f"/executions/{execution}/stages/c/restart", headers=bearer(tokens.alice))
    assert allowed.status_code == 202, allowed.text
    assert (await Runner.finish(client.get_workflow_handle(execution))).status.value == "SUCCEEDED"
    hostile_input.answer("403 naming stages[c].pipelineConfig.application; no new run (Alice's restart: 202)")


async def test_the_console_account_list_needs_read_somewhere(
    api: httpx.AsyncClient,  # noqa: F811
    tokens: Tokens,
    hostile_input: HostileInput,
) -> None:
    """Sam (a valid token, no right on any application) opens the console's accounts page, which
    lists every account, its kind and the workers serving it; GET /accounts refuses him. Expected:
    the same 403 naming the rule in the console; a reader (Alice) still sees the page."""
    refused_api = await api.get("/accounts", headers=bearer(tokens.sam))
    assert refused_api.status_code == 403, refused_api.text
    api.cookies.set("gennaker_console", tokens.sam)
    refused = await api.get("/console/accounts")
    assert refused.status_code == 403, refused.text
    assert "sam lacks READ on every application" in refused.text
    api.cookies.set("gennaker_console", tokens.alice)
    allowed = await api.get("/console/accounts")
    assert allowed.status_code == 200, allowed.text
    api.cookies.clear()
    hostile_input.answer("403: sam lacks READ on every application (the account list needs it on one)")


# Applications whose names share a prefix, both granted the namespace `shared` of test_tenancy's rig.
PREFIXED = {
    "applications": {
        name: {"EXECUTE": [who], "resources": {"accounts": {ACCOUNT: {"namespaces": ["shared"]}}}}
        for name, who in (("team", "tina"), ("team-x", "xavier"))
    }
}


async def test_a_shorter_application_name_does_not_own_a_longer_ones_clusters(
    rig: Rig,  # noqa: F811
    task_queue: str,
    hostile_input: HostileInput,
) -> None:
    """Tina may EXECUTE `team`; application `team-x` (Xavier's) has the server group
    `team-x-web-v000`. `team`'s clusters are `team` and `team-*` by name, which `team-x-web` matches
    (stack `x`, detail `web`). Tina destroys the newest group of cluster `team-x-web`. Expected:
    TERMINAL naming the cluster and its owner; Xavier's ReplicaSet is still there."""
    prefixed = Rig(rig.client, task_queue, rig.sim, Policy.model_validate(PREFIXED))
    made = await prefixed.submit(Identity(subject="xavier"), "team-x", deploy("d", "shared", stack="web"))
    assert made.stages[0].status is StageStatus.SUCCEEDED, made.stages[0].error
    group = str(made.stages[0].outputs["serverGroup"])
    assert group.startswith("team-x-web-v"), group
    attack = sg("x", "destroyServerGroup", "shared", cluster="team-x-web", target="newest")
    state = await prefixed.submit(Identity(subject="tina"), "team", attack)
    stage = state.stages[0]
    assert stage.status is StageStatus.TERMINAL and stage.error is not None, stage
    expected = "policy: application team may not touch cluster team-x-web; it belongs to application team-x"
    assert expected in stage.error.message, stage.error.message
    still = k8s.AppsV1Api(prefixed.api).read_namespaced_replica_set(group, "shared")
    assert still.metadata.labels["app.kubernetes.io/name"] == "team-x"
    hostile_input.answer(f"TERMINAL: {expected}; {group} untouched")


async def test_a_server_group_stage_on_another_cluster_learns_nothing_of_it(
    rig: Rig,  # noqa: F811
    hostile_input: HostileInput,
) -> None:
    """Alice (appa) disables `appb-web-v999`, a server group that does not exist in appb's cluster
    `appb-web` (test_tenancy's rig made `appb-web-v000` in the namespace both may use). The stage
    took the cluster's lease and read the cluster before checking it is appa's, and its failure
    listed appb's server groups. Expected: TERMINAL naming the policy rule, before any read or
    lease, and no name of appb's groups in the message."""
    attack = sg("x", "disableServerGroup", "shared", serverGroupName="appb-web-v999")
    state = await rig.submit(Identity(subject="alice"), "appa", attack)
    stage = state.stages[0]
    assert stage.status is StageStatus.TERMINAL and stage.error is not None, stage
    assert "policy: application appa may not touch cluster appb-web" in stage.error.message, stage.error.message
    assert "appb-web-v000" not in stage.error.message, stage.error.message
    history = await rig.client.get_workflow_handle(state.id).fetch_history()
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    assert "describeCluster" not in scheduled, scheduled
    hostile_input.answer("TERMINAL: policy: application appa may not touch cluster appb-web; nothing read")
