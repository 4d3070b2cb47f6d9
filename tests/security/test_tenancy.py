"""Cross-application attempts, table-driven: each stage type that touches resources, times own / another
application's resource → allowed, refused at submission (403) or TERMINAL naming the rule.

Submitted through core.launch.start_execution with a real policy, as the gateway does: `alice` may
EXECUTE `appa` only; `bob` owns `appb`. Both are granted the namespace `shared`, so refusals there
come from ownership (cluster names, the gennaker.io/application annotation), not from namespaces.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes import config
from temporalio.client import Client
from temporalio.worker import Worker

from activities.accounts import KubernetesAccount, ProvidedAccount
from activities.kubernetes import account_activities
from activities.kubernetes.client import KubernetesAccountClient
from activities.kubernetes.health import check_kubernetes_account
from core.errors import ServiceError
from core.launch import start_execution
from core.policy import Identity, Policy
from core.settings import GennakerSettings
from kubesim.testing import RunningKubesim, start_kubesim
from tests.support.accounts import report_and_wait
from tests.support.runner import DIRECTORY_QUEUE, Runner
from workflows.model import parse_pipeline
from workflows.state import ExecutionState, StageStatus, TriggerInfo

ACCOUNT = "tenancy-sim"
NAMESPACES = ["appa", "appb", "shared"]
POLICY = {
    "applications": {
        "appa": {
            "EXECUTE": ["alice"],
            "resources": {"accounts": {ACCOUNT: {"namespaces": ["appa", "appa-*", "shared"]}}},
        },
        "appb": {
            "EXECUTE": ["bob"],
            "resources": {"accounts": {ACCOUNT: {"namespaces": ["appb", "shared"]}}},
        },
    }
}
ALICE = Identity(subject="alice")
BOB = Identity(subject="bob")


class Rig:
    def __init__(self, client: Client, task_queue: str, sim: RunningKubesim, policy: Policy) -> None:
        self.client = client
        self.sim = sim
        self.policy = policy
        self.settings = GennakerSettings(task_queue=task_queue)
        self.api = config.new_client_from_config(config_file=str(sim.kubeconfig_path))  # type: ignore[no-untyped-call]

    async def submit(self, who: Identity, application: str, *stages: dict[str, Any], **params: Any) -> ExecutionState:
        spec = parse_pipeline(
            {
                "application": application,
                "name": "t" + uuid.uuid4().hex[:6],
                "parameters": [{"name": k} for k in params],
                "stages": [
                    {**s, "requisiteStageRefIds": [stages[i - 1]["refId"]] if i else []} for i, s in enumerate(stages)
                ],
            }
        )
        started = await start_execution(
            self.client, self.settings, spec, params, TriggerInfo(user=who.subject), policy=self.policy, submitter=who
        )
        return await Runner.finish(self.client.get_workflow_handle(started.id), timeout=90)


@pytest.fixture(scope="module")
async def rig(
    client: Client, worker: None, task_queue: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Rig]:
    sim = start_kubesim(ready_delay=0.05, directory=tmp_path_factory.mktemp("tenancy"))
    account = KubernetesAccount(name=ACCOUNT, kubeconfig=sim.kubeconfig_path, namespaces=NAMESPACES, simulated=True)
    kube = KubernetesAccountClient(account)
    for namespace in NAMESPACES:
        kube.core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=namespace)))
    account_worker = Worker(
        client,
        task_queue=account.queue,
        activities=account_activities(kube),
        activity_executor=ThreadPoolExecutor(max_workers=8, thread_name_prefix="tenancy"),
    )
    task = asyncio.create_task(account_worker.run())
    provided = ProvidedAccount(
        name=ACCOUNT,
        kind="kubernetes",
        queue=account.queue,
        activities=[],
        check_health=lambda: check_kubernetes_account(kube),
    )
    await report_and_wait(client, "tenancy-rig", [provided], DIRECTORY_QUEUE)
    path = Path(tmp_path_factory.mktemp("policy")) / "policy.yaml"
    path.write_text(yaml.safe_dump(POLICY))
    the_rig = Rig(client, task_queue, sim, Policy.load(path))
    # appb's resources, made by appb's owner: a server group in `shared`, a ConfigMap and a Secret.
    state = await the_rig.submit(
        BOB,
        "appb",
        deploy("appb-setup-deploy", "shared", stack="web"),
        manifest("appb-setup-objects", "shared", config_map("appb-config"), secret("appb-secret", token="appb-token")),
    )
    assert all(s.status is StageStatus.SUCCEEDED for s in state.stages), [s.error for s in state.stages]
    yield the_rig
    await account_worker.shutdown()
    await asyncio.gather(task, return_exceptions=True)
    kube.close()
    sim.stop()


def deploy(ref: str, namespace: str, **fields: Any) -> dict[str, Any]:
    return {
        "refId": ref,
        "type": "deploy",
        "account": ACCOUNT,
        "namespace": namespace,
        "strategy": "redblack",
        "capacity": {"min": 1, "max": 1, "desired": 1},
        "waitForHealthySec": 30,
        "container": {"image": "shop/web:1.0", "ports": [{"containerPort": 8080}]},
        **fields,
    }


def manifest(ref: str, namespace: str, *objects: dict[str, Any]) -> dict[str, Any]:
    return {
        "refId": ref,
        "type": "deployManifest",
        "account": ACCOUNT,
        "namespaceOverride": namespace,
        "manifests": list(objects),
        "waitTimeoutSeconds": 30,
    }


def config_map(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}}


def secret(name: str, token: str = "attacker") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": {"token": token}}


def cluster_role_binding(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "appa"}],
    }


def sg(ref: str, type_: str, namespace: str, **fields: Any) -> dict[str, Any]:
    return {"refId": ref, "type": type_, "account": ACCOUNT, "namespace": namespace, **fields}


def delete(ref: str, namespace: str, what: str) -> dict[str, Any]:
    return {"refId": ref, "type": "deleteManifest", "account": ACCOUNT, "location": namespace, "manifestName": what}


def child(ref: str, **fields: Any) -> dict[str, Any]:
    return {"refId": ref, "type": "pipeline", **fields}


INLINE_APPB = {"application": "appb", "name": "evil", "stages": [{"refId": "w", "type": "wait", "waitTime": 0}]}

# (case, stages alice submits for appa, expected: "ok" | ("403", text) | ("TERMINAL", text))
CASES: list[tuple[str, list[dict[str, Any]], Any]] = [
    ("deploy own cluster", [deploy("d", "shared", stack="web")], "ok"),
    (
        "destroy own server group",
        [
            deploy("d", "appa", stack="gone"),
            sg("x", "destroyServerGroup", "appa", cluster="appa-gone", target="newest"),
        ],
        "ok",
    ),
    (
        "destroy appb's server group",
        [sg("x", "destroyServerGroup", "shared", cluster="appb-web", target="newest")],
        ("TERMINAL", "policy: application appa may not touch cluster appb-web"),
    ),
    (
        "disable appb's server group",
        [sg("x", "disableServerGroup", "shared", serverGroupName="appb-web-v000")],
        ("TERMINAL", "policy: application appa may not touch cluster appb-web"),
    ),
    (
        "resize appb's server group",
        [sg("x", "resizeServerGroup", "shared", cluster="appb-web", capacity={"min": 0, "max": 0, "desired": 0})],
        ("TERMINAL", "policy: application appa may not touch cluster appb-web"),
    ),
    (
        "server group in a namespace not granted",
        [sg("x", "disableServerGroup", "appb", cluster="appa-web")],
        ("TERMINAL", "policy: application appa may not touch account tenancy-sim namespace appb"),
    ),
    (
        "deploy with application: appb",
        [deploy("d", "shared", stack="web", application="appb")],
        ("403", "names application appb, which alice may not EXECUTE"),
    ),
    (
        "deploy with application: appb from a parameter",
        [deploy("d", "shared", stack="web", application="${{ parameters.app }}")],
        ("TERMINAL", "may not act for application appb"),
    ),
    (
        "saved child pipeline of appb",
        [child("c", application="appb", pipeline="anything")],
        ("403", "names application appb, which alice may not EXECUTE"),
    ),
    (
        "inline child pipeline of appb",
        [child("c", pipelineConfig=INLINE_APPB)],
        ("403", "names application appb, which alice may not EXECUTE"),
    ),
    (
        "own ConfigMap",
        [manifest("m", "appa", config_map("appa-config")), delete("x", "appa", "configMap appa-config")],
        "ok",
    ),
    (
        "deleteManifest of appb's ConfigMap",
        [delete("x", "shared", "configMap appb-config")],
        ("TERMINAL", "belongs to application 'appb'"),
    ),
    (
        "deployManifest overwriting appb's Secret",
        [manifest("m", "shared", secret("appb-secret"))],
        ("TERMINAL", "belongs to application 'appb'"),
    ),
    (
        "manifest in a namespace not granted",
        [manifest("m", "appb", config_map("appa-sneaky"))],
        ("TERMINAL", "namespace appb is not granted"),
    ),
    (
        "runJob in a namespace not granted",
        [{"refId": "j", "type": "runJob", "account": ACCOUNT, "namespace": "appb", "container": {"image": "busybox"}}],
        ("TERMINAL", "namespace appb is not granted"),
    ),
    (
        "ClusterRoleBinding without cluster-scoped grant",
        [manifest("m", "appa", cluster_role_binding("appa-admin"))],
        ("TERMINAL", "cluster-scoped kinds are not granted"),
    ),
]


@pytest.mark.parametrize(("case", "stages", "expected"), CASES, ids=[c[0] for c in CASES])
async def test_cross_application_attempt(rig: Rig, case: str, stages: list[dict[str, Any]], expected: Any) -> None:
    params = {"app": "appb"} if any("parameters.app" in str(s) for s in stages) else {}
    if isinstance(expected, tuple) and expected[0] == "403":
        with pytest.raises(ServiceError) as caught:
            await rig.submit(ALICE, "appa", *stages, **params)
        assert caught.value.status == 403
        assert expected[1] in caught.value.message
        return
    state = await rig.submit(ALICE, "appa", *stages, **params)
    if expected == "ok":
        assert all(s.status is StageStatus.SUCCEEDED for s in state.stages), [(s.refId, s.error) for s in state.stages]
        return
    failed = [s for s in state.stages if s.status is StageStatus.TERMINAL]
    assert failed, [(s.refId, s.status, s.error) for s in state.stages]
    assert failed[0].error is not None and expected[1] in failed[0].error.message, failed[0].error
    # Nothing of appb's changed.
    apps = k8s.AppsV1Api(rig.api)
    groups = apps.list_namespaced_replica_set("shared").items
    assert any(g.metadata.name == "appb-web-v000" and g.spec.replicas == 1 for g in groups)
    core = k8s.CoreV1Api(rig.api)
    assert core.read_namespaced_config_map("appb-config", "shared").data == {"k": "v"}
    assert core.read_namespaced_secret("appb-secret", "shared").data["token"] != "YXR0YWNrZXI="  # "attacker"
