"""Spinnaker's 401 trap, for real: an account whose kubeconfig carries a revoked token, one whose token
RBAC does not allow what Gennaker does, and an operator fixing the kubeconfig file while the worker runs.

Against scripts/kube-up.sh's control plane (GENNAKER_TEST_KUBECONFIG plus the revoked and limited
kubeconfigs it writes, GENNAKER_KUBE_REVOKED_KUBECONFIG / GENNAKER_KUBE_LIMITED_KUBECONFIG), or, by
default, a kubesim that requires a bearer token (the "revoked" kubeconfig carries another one; a 403
comes from its `forbid` fault, worded as the API server words it).
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from temporalio.client import Client

import workflows.stages.deploy  # noqa: F401  (registers `deploy`)
from activities.accounts import KubernetesAccount
from activities.kubernetes.client import KubernetesAccountClient
from activities.kubernetes.health import check_kubernetes_account
from api.app import create_app
from api.settings import GatewaySettings
from core.store import PipelineStore
from kubesim.testing import RunningKubesim, start_kubesim
from tests.support.eventually import assert_eventually
from tests.support.kube_rig import REAL_KUBECONFIG, KubeRig, deploy_stage, serve_account
from tests.support.runner import Runner, pipeline
from workers.devserver import TemporalDevServer
from workflows.state import StageStatus


@dataclass
class Cluster:
    good: Path  # a kubeconfig the API server accepts, with every right
    revoked: Path  # the same cluster, a token it no longer accepts
    limited: Path | None  # a token RBAC lets read namespaces only (None on kubesim: see `forbid`)
    namespace: str
    sim: RunningKubesim | None


def _rewrite_token(source: Path, target: Path, token: str) -> None:
    config = yaml.safe_load(source.read_text())
    for user in config["users"]:
        user["user"] = {"token": token}
    target.write_text(yaml.safe_dump(config))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    directory = tmp_path_factory.mktemp("credentials")
    namespace = f"gk-cred-{uuid.uuid4().hex[:6]}"
    sim: RunningKubesim | None = None
    if REAL_KUBECONFIG:
        revoked, limited = (os.environ.get(f"GENNAKER_KUBE_{kind}_KUBECONFIG") for kind in ("REVOKED", "LIMITED"))
        if not revoked or not limited:
            pytest.skip("needs scripts/kube-up.sh's revoked and limited kubeconfigs (source .data/kubeplane/env)")
        found = Cluster(Path(REAL_KUBECONFIG), Path(revoked), Path(limited), namespace, None)
    else:
        sim = start_kubesim(ready_delay=0.05, token="the-good-token", directory=directory)
        _rewrite_token(sim.kubeconfig_path, directory / "revoked.kubeconfig", "a-revoked-token")
        found = Cluster(sim.kubeconfig_path, directory / "revoked.kubeconfig", None, namespace, sim)
    admin = k8s_config.new_client_from_config(config_file=str(found.good))  # type: ignore[no-untyped-call]
    k8s.CoreV1Api(admin).create_namespace({"metadata": {"name": namespace}})
    yield found
    if sim is not None:
        sim.stop()
    else:
        k8s.CoreV1Api(admin).delete_namespace(namespace)
    admin.close()


def account_with(cluster: Cluster, kubeconfig: Path, tmp_path: Path) -> KubernetesAccount:
    """An account whose kubeconfig is a file of its own (the tests rewrite it)."""
    own = tmp_path / f"{uuid.uuid4().hex[:6]}.kubeconfig"
    shutil.copyfile(kubeconfig, own)
    return KubernetesAccount(
        name=f"cred-{uuid.uuid4().hex[:6]}",
        kubeconfig=own,
        namespaces=[cluster.namespace],
        simulated=cluster.sim is not None,
    )


def replace_file(target: Path, source: Path) -> None:
    """What an operator's tooling does: write the new file beside it, then rename over it."""
    staged = target.with_suffix(".new")
    shutil.copyfile(source, staged)
    os.replace(staged, target)


def test_a_revoked_token_reports_401_with_account_and_kubeconfig(cluster: Cluster, tmp_path: Path) -> None:
    account = account_with(cluster, cluster.revoked, tmp_path)
    client = KubernetesAccountClient(account)
    try:
        health = check_kubernetes_account(client)
    finally:
        client.close()
    assert not health.healthy and not health.authenticated and health.reachable
    assert health.lastError is not None
    assert f"account {account.name}: 401 Unauthorized" in health.lastError, health.lastError
    assert str(account.kubeconfig) in health.lastError
    assert health.details["kubeconfig"] == str(account.kubeconfig)


def test_a_token_rbac_refuses_reports_403_naming_verb_and_resource(cluster: Cluster, tmp_path: Path) -> None:
    if cluster.limited is None:
        assert cluster.sim is not None
        account = account_with(cluster, cluster.good, tmp_path)
        cluster.sim.inject(forbid=[{"verb": "list", "resource": "pods"}])
    else:
        account = account_with(cluster, cluster.limited, tmp_path)
    client = KubernetesAccountClient(account)
    try:
        health = check_kubernetes_account(client)
    finally:
        client.close()
        if cluster.sim is not None:
            cluster.sim.reset_faults()
    assert not health.healthy and health.authenticated and health.reachable
    assert health.lastError is not None
    assert f"account {account.name}: 403 Forbidden" in health.lastError, health.lastError
    assert 'cannot list resource "pods"' in health.lastError, health.lastError
    assert cluster.namespace in health.lastError


@pytest.fixture
async def gateway(
    temporal_server: TemporalDevServer, client: Client, store: PipelineStore
) -> AsyncIterator[httpx.AsyncClient]:
    settings = GatewaySettings(
        temporal_address=temporal_server.address, database_url=store.database_url, auth_disabled=True
    )
    app = create_app(settings, client=client, store=store)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        yield http


async def reported(gateway: httpx.AsyncClient, name: str) -> dict[str, object]:
    response = await gateway.get("/accounts")
    assert response.status_code == 200, response.text
    found = [a for a in response.json() if a["name"] == name]
    assert len(found) == 1, response.json()
    return dict(found[0])


async def test_fixing_the_kubeconfig_heals_the_account_without_a_worker_restart(
    cluster: Cluster, tmp_path: Path, runner: Runner, client: Client, gateway: httpx.AsyncClient
) -> None:
    account = account_with(cluster, cluster.revoked, tmp_path)
    rig = KubeRig(account=account, namespace=cluster.namespace, sim=cluster.sim, api_client=None)
    one_replica = {"stack": "cred", "capacity": {"min": 1, "max": 1, "desired": 1}}
    async with serve_account(client, account) as report:
        listed = await reported(gateway, account.name)
        assert listed["healthy"] is False and "401 Unauthorized" in str(listed["lastError"]), listed
        assert str(account.kubeconfig) in str(listed["lastError"])

        # A stage on it fails at once, saying why and where to look.
        started = time.monotonic()
        state = await runner.finish(await runner.start(pipeline(deploy_stage(rig, **one_replica))), timeout=30)
        stage = state.stage("deploy")
        assert stage is not None and stage.status is StageStatus.TERMINAL and stage.error is not None
        assert f"account {account.name}: 401 Unauthorized" in stage.error.message, stage.error.message
        assert str(account.kubeconfig) in stage.error.message
        assert time.monotonic() - started < 10

        # The operator fixes the file; the same worker (the same client object) now deploys.
        replace_file(Path(str(account.kubeconfig)), cluster.good)
        state = await runner.finish(await runner.start(pipeline(deploy_stage(rig, **one_replica))), timeout=60)
        stage = state.stage("deploy")
        assert stage is not None and stage.status is StageStatus.SUCCEEDED, stage.error if stage else state
        await report()
        # The directory folds the report into its memo a moment later: wait for that, not a sleep.
        listed = await assert_eventually(
            lambda: reported(gateway, account.name),
            lambda row: row["healthy"] is True and row["lastError"] is None,
            what=f"account {account.name} healthy in GET /accounts",
            timeout=20,
        )
        assert listed["healthy"] is True and listed["lastError"] is None, listed


async def test_a_stage_on_a_token_rbac_refuses_fails_at_once_naming_verb_and_resource(
    cluster: Cluster, tmp_path: Path, runner: Runner, client: Client
) -> None:
    if cluster.limited is None:
        assert cluster.sim is not None
        account = account_with(cluster, cluster.good, tmp_path)
        cluster.sim.inject(forbid=[{"verb": "list", "resource": "replicasets"}])
    else:
        account = account_with(cluster, cluster.limited, tmp_path)
    rig = KubeRig(account=account, namespace=cluster.namespace, sim=cluster.sim, api_client=None)
    try:
        async with serve_account(client, account):
            started = time.monotonic()
            spec = deploy_stage(rig, stack="rbac", capacity={"min": 1, "max": 1, "desired": 1})
            state = await runner.finish(await runner.start(pipeline(spec)), timeout=30)
    finally:
        if cluster.sim is not None:
            cluster.sim.reset_faults()
    stage = state.stage("deploy")
    assert stage is not None and stage.status is StageStatus.TERMINAL and stage.error is not None
    message = stage.error.message
    assert f"account {account.name}: 403 Forbidden" in message, message
    assert 'cannot list resource "replicasets" in API group "apps"' in message, message
    assert time.monotonic() - started < 10


def test_a_kubeconfig_that_does_not_load_is_reported_and_picked_up_once_fixed(cluster: Cluster, tmp_path: Path) -> None:
    account = account_with(cluster, cluster.good, tmp_path)
    kubeconfig = Path(str(account.kubeconfig))
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
    client = KubernetesAccountClient(account)  # a worker starts even so
    try:
        broken = check_kubernetes_account(client)
        assert not broken.healthy and not broken.reachable and broken.lastError is not None
        assert f"account {account.name}: cannot load the kubeconfig at {kubeconfig}" in broken.lastError, broken
        replace_file(kubeconfig, cluster.good)
        healed = check_kubernetes_account(client)
        assert healed.healthy, healed.lastError
    finally:
        client.close()
