"""GET /applications/{app}/clusters: the gateway reads clusters through the account worker (it holds no
credentials) with ClusterReadWorkflow, here served by the rig's worker on the account's queue."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from kubernetes import client as k8s
from temporalio.client import Client

import workflows.stages.deploy  # noqa: F401  (registers `deploy`)
from activities.accounts import AccountHealth, ProvidedAccount
from api.app import create_app
from api.routers import clusters
from api.settings import GatewaySettings
from core.store import PipelineStore
from tests.support.accounts import report_and_wait
from tests.support.kube_rig import KubeRig, deploy_stage, kube_fixture  # noqa: F401
from tests.support.runner import DIRECTORY_QUEUE, Runner, pipeline
from workers.devserver import TemporalDevServer
from workers.reporting import report_once
from workflows.state import StageStatus


@pytest.fixture(scope="module")
async def gateway(
    temporal_server: TemporalDevServer, client: Client, store: PipelineStore, kube: KubeRig
) -> AsyncIterator[httpx.AsyncClient]:
    # ClusterReadWorkflow runs on the gateway's task queue: here the rig worker's (it registers it).
    settings = GatewaySettings(
        task_queue=kube.account.queue,
        temporal_address=temporal_server.address,
        database_url=store.database_url,
        auth_disabled=True,
    )
    app = create_app(settings, client=client, store=store)
    if not any(getattr(r, "path", "") == "/applications/{application}/clusters" for r in app.routes):
        app.include_router(clusters.router)  # until api/app.py includes it
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        yield http


async def test_clusters_show_versions_images_replicas_traffic_and_security_groups(
    runner: Runner, kube: KubeRig, gateway: httpx.AsyncClient
) -> None:
    s = "t" + uuid.uuid4().hex[:6]
    lb = f"shop-{s}"
    kube.service(lb)
    web = {
        "name": f"web-{s}",
        "ingress": [{"cidr": "10.0.0.0/8", "protocol": "TCP", "startPort": 8080, "endPort": 8090}],
    }
    handle = await runner.start(
        pipeline(
            deploy_stage(kube, "d0", stack=s, loadBalancers=[lb], securityGroups=[web]),
            deploy_stage(
                kube,
                "d1",
                stack=s,
                loadBalancers=[lb],
                securityGroups=[web["name"]],
                strategy="redblack",
                container=kube.container("2.0"),
                requisiteStageRefIds=["d0"],
            ),
        )
    )
    state = await runner.finish(handle, timeout=60)
    assert all(st.status is StageStatus.SUCCEEDED for st in state.stages), [st.error for st in state.stages]

    response = await gateway.get("/applications/shop/clusters", params={"account": kube.account.name})
    assert response.status_code == 200, response.text
    body = response.json()
    found = [c for c in body["clusters"] if c["name"] == f"shop-{s}"]
    assert len(found) == 1 and found[0]["account"] == kube.account.name
    assert found[0]["simulated"] is (kube.sim is not None)
    groups = {g["name"]: g for g in found[0]["serverGroups"]}
    v0, v1 = groups[f"shop-{s}-v000"], groups[f"shop-{s}-v001"]
    assert (v0["version"], v0["enabled"], v1["version"], v1["enabled"]) == (0, False, 1, True)
    assert v1["images"] == [kube.container("2.0")["image"]] and (v1["ready"], v1["desired"]) == (2, 2)
    assert v1["loadBalancers"] == [lb] and v1["securityGroups"] == [web["name"]]
    assert v1["executionId"] == handle.id

    policy = k8s.NetworkingV1Api(kube.api_client).read_namespaced_network_policy(web["name"], kube.namespace)
    rule = policy.spec.ingress[0]
    assert rule._from[0].ip_block.cidr == "10.0.0.0/8"
    assert (rule.ports[0].port, rule.ports[0].end_port, rule.ports[0].protocol) == (8080, 8090, "TCP")
    pod = next(iter(kube.pods(f"shop-{s}-v001")))
    labels = kube.core.read_namespaced_pod(pod, kube.namespace).metadata.labels
    assert labels[f"security-group.gennaker.io/{web['name']}"] == "true"


async def test_an_unreadable_account_is_reported_not_hidden(gateway: httpx.AsyncClient, client: Client) -> None:
    # A worker reported this account, but nothing polls its queue now (the worker is gone).
    ghost = ProvidedAccount(
        name="ghost",
        kind="kubernetes",
        queue="k8s-ghost-nobody-polls",
        activities=[],
        check_health=lambda: AccountHealth(
            name="ghost",
            kind="kubernetes",
            taskQueue="k8s-ghost-nobody-polls",
            healthy=True,
            reachable=True,
            authenticated=True,
            checkedAt=datetime.now(UTC),
        ),
    )
    await report_and_wait(client, "ghost-worker", [ghost], DIRECTORY_QUEUE)
    try:
        response = await gateway.get("/applications/shop/clusters", params={"account": "ghost"})
    finally:
        # Withdraw the ghost: left reported, every later listing of all accounts in this session
        # would wait out its read deadline for two minutes, until the report goes stale.
        await report_once(client, "ghost-worker", [], DIRECTORY_QUEUE)
    # Not a server error: the answer says which account could not be read and why.
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["clusters"] == []
    assert [e["account"] for e in body["errors"]] == ["ghost"], body
    assert body["errors"][0]["message"], body


async def test_an_account_no_worker_reported_is_a_404(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get("/applications/shop/clusters", params={"account": "nobody-serves-this"})
    assert response.status_code == 404, response.text
    assert "nobody-serves-this" in response.json()["error"]["message"]
