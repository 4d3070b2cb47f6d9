"""Manifests of any kind through real pipelines: the corpus app (tests/fixtures/manifests/shop.yaml:
Namespace, RBAC, ConfigMap, Secret, Deployment, Service, Ingress, HPA, PDB, a CRD and its custom
resource) deployed with server-side apply in Kubernetes order, re-applied without a restart, changed,
rolled back and deleted; HPA-owned replicas surviving a re-apply; unknown kinds, field conflicts and
another application's objects refused before anything is written.

Runs against kubesim, or whatever cluster GENNAKER_TEST_KUBECONFIG names (tests/support/kube_rig.py).
"""

from __future__ import annotations

import copy
import uuid
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from temporalio.exceptions import ApplicationError

import workflows.stages.manifests  # noqa: F401  (registers the manifest stages)
from activities.kubernetes.client import KubernetesAccountClient
from activities.kubernetes.manifests import (
    APPLICATION_ANNOTATION,
    EXECUTION_ANNOTATION,
    OWNED_BY_ANOTHER_APPLICATION,
    ApplyManifestsInput,
    DeleteManifestsInput,
    KubernetesManifestActivities,
    ManifestRef,
    PatchManifestInput,
)
from tests.support.kube_rig import KubeRig, kube_fixture  # noqa: F401
from tests.support.runner import Runner, pipeline
from workflows.state import ExecutionState, StageStatus

CORPUS = Path(__file__).parent.parent / "fixtures" / "manifests" / "shop.yaml"
LABEL = "app.kubernetes.io/name"
RELEASE = "shop.example.com/release"


def corpus(namespace: str) -> list[dict[str, Any]]:
    """The shop app, in `namespace`, in the (non-Kubernetes) order the file lists it."""
    return [d for d in yaml.safe_load_all(CORPUS.read_text().replace("shop-prod", namespace)) if d]


def find(manifests: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    return next(m for m in manifests if m["kind"] == kind)


def stage(rig: KubeRig, ref: str, type_: str, *parents: str, **fields: Any) -> dict[str, Any]:
    return {"refId": ref, "type": type_, "account": rig.account.name, "requisiteStageRefIds": list(parents), **fields}


def deploy(rig: KubeRig, manifests: list[dict[str, Any]], ref: str = "deploy", *parents: str) -> dict[str, Any]:
    return stage(
        rig,
        ref,
        "deployManifest",
        *parents,
        manifests=manifests,
        skipExpressionEvaluation=True,
        moniker={"app": "shop"},
        waitTimeoutSeconds=60,
    )


async def run(runner: Runner, *stages: dict[str, Any]) -> ExecutionState:
    return await runner.run(pipeline(*stages, name=f"any-kind-{uuid.uuid4().hex[:4]}"), timeout=120)


def succeeded(state: ExecutionState, ref: str) -> dict[str, Any]:
    found = state.stage(ref)
    assert found is not None and found.status is StageStatus.SUCCEEDED, state.model_dump_json(indent=1)
    return dict(found.outputs)


def failed(state: ExecutionState, ref: str) -> str:
    found = state.stage(ref)
    assert found is not None and found.status is StageStatus.TERMINAL and found.error, state.model_dump_json(indent=1)
    return found.error.message


def custom(rig: KubeRig) -> k8s.CustomObjectsApi:
    return k8s.CustomObjectsApi(rig.api_client)


def web_replica_sets(kube: KubeRig, namespace: str) -> list[str]:
    """The Deployment's ReplicaSets by name: a changed pod template makes a new one."""
    found = kube.apps.list_namespaced_replica_set(namespace, label_selector=f"{LABEL}=shop").items
    return sorted(rs.metadata.name for rs in found)


def web_pods(rig: KubeRig) -> dict[str, str]:
    """Running web pods: name → uid."""
    pods = rig.core.list_namespaced_pod(rig.namespace, label_selector=f"{LABEL}=shop")
    return {p.metadata.name: p.metadata.uid for p in pods.items if p.metadata.deletion_timestamp is None}


def missing(read: Any, *args: Any) -> bool:
    try:
        read(*args)
    except ApiException as exc:
        if exc.status == 404:
            return True
        raise
    return False


async def test_the_corpus_app_deploys_reapplies_changes_rolls_back_and_deletes(runner: Runner, kube: KubeRig) -> None:
    ns, manifests = kube.namespace, corpus(kube.namespace)
    # Deployed: every kind, the custom resource after its CRD is established, in one stage.
    state = await run(runner, deploy(kube, manifests))
    out = succeeded(state, "deploy")
    assert [r["kind"] for r in out["deployedManifests"]] == [m["kind"] for m in manifests]  # as given
    assert out["manifestNamesByNamespace"][""] == [
        "namespace " + ns,
        "customResourceDefinition caches.shop.example.com",
    ]
    assert out["stable"][f"Deployment {ns}/web"] == "rolled out: 1/1 available"
    assert out["stable"]["CustomResourceDefinition caches.shop.example.com"] == "established"
    assert out["stable"][f"Cache {ns}/sessions"] == "applied (nothing to wait for)"
    cache = custom(kube).get_namespaced_custom_object("shop.example.com", "v1", ns, "caches", "sessions")
    assert cache["spec"]["engine"] == "redis" and cache["metadata"]["annotations"][APPLICATION_ANNOTATION] == "shop"
    web = kube.apps.read_namespaced_deployment("web", ns)
    assert web.metadata.annotations[EXECUTION_ANNOTATION] == state.id
    assert [f.manager for f in web.metadata.managed_fields if f.operation == "Apply"] == ["gennaker"]
    ingress = k8s.NetworkingV1Api(kube.api_client).read_namespaced_ingress("web", ns)
    assert ingress.spec.rules[0].host == "shop.example.com"
    assert kube.core.read_namespace(ns).metadata.labels[LABEL] == "shop"

    # Re-applied unchanged (another execution): nothing rolls, no pod restarts.
    # (Not `generation`: a real API server bumps a Deployment's generation on an annotation change,
    # since annotations are copied to its ReplicaSets; the new execution id is such a change.)
    replica_sets, pods = web_replica_sets(kube, ns), web_pods(kube)
    again = await run(runner, deploy(kube, manifests))
    succeeded(again, "deploy")
    web = kube.apps.read_namespaced_deployment("web", ns)
    assert web_replica_sets(kube, ns) == replica_sets and web_pods(kube) == pods
    assert web.metadata.annotations[EXECUTION_ANNOTATION] == again.id

    # Changed: a new pod template rolls out; then rolled back to the first one.
    changed = copy.deepcopy(manifests)
    find(changed, "Deployment")["spec"]["template"]["metadata"]["annotations"][RELEASE] = "2"
    state = await run(
        runner,
        deploy(kube, changed, "v2"),
        stage(kube, "undo", "undoRolloutManifest", "v2", location=ns, manifestName="deployment web"),
    )
    assert succeeded(state, "v2")["stable"][f"Deployment {ns}/web"] == "rolled out: 1/1 available"
    undo = succeeded(state, "undo")
    assert (undo["fromRevision"], undo["toRevision"]) == (2, 1)
    web = kube.apps.read_namespaced_deployment("web", ns)
    assert web.spec.template.metadata.annotations[RELEASE] == "1"
    assert len(web_replica_sets(kube, ns)) == len(replica_sets) + 1  # v2's, then back to the first one

    # The next deploy of the manifest takes back what the undo (Gennaker's own update) wrote.
    state = await run(runner, deploy(kube, changed))
    succeeded(state, "deploy")
    assert kube.apps.read_namespaced_deployment("web", ns).spec.template.metadata.annotations[RELEASE] == "2"

    # Deleted: every kind by label, the custom resource and its CRD included; the namespace is the rig's.
    kinds = [
        "cache",
        "ingress",
        "horizontalPodAutoscaler",
        "podDisruptionBudget",
        "service",
        "deployment",
        "configMap",
        "secret",
        "roleBinding",
        "role",
        "serviceAccount",
        "customResourceDefinition",
    ]
    state = await run(
        runner,
        stage(
            kube,
            "delete",
            "deleteManifest",
            location=ns,
            mode="label",
            kinds=kinds,
            labelSelectors={"selectors": [{"kind": "EQUALS", "key": LABEL, "values": ["shop"]}]},
        ),
    )
    deleted = succeeded(state, "delete")["deletedManifests"]
    assert len(deleted) == len(manifests) - 1 and "CustomResourceDefinition caches.shop.example.com" in deleted
    assert missing(kube.apps.read_namespaced_deployment, "web", ns)
    assert missing(k8s.ApiextensionsV1Api(kube.api_client).read_custom_resource_definition, "caches.shop.example.com")
    assert kube.core.list_namespaced_pod(ns, label_selector=f"{LABEL}=shop").items == []


async def test_replicas_an_autoscaler_owns_survive_a_reapply(runner: Runner, kube: KubeRig) -> None:
    ns = kube.namespace
    manifests = [m for m in corpus(ns) if m["kind"] in ("ServiceAccount", "ConfigMap", "Secret", "Deployment")]
    find(manifests, "Deployment")["metadata"]["name"] = "hpa-web"
    succeeded(await run(runner, deploy(kube, manifests)), "deploy")
    # The autoscaler writes /scale as its own field manager, as the HPA controller does.
    kube.apps.patch_namespaced_deployment_scale(
        "hpa-web", ns, {"spec": {"replicas": 3}}, field_manager="horizontal-pod-autoscaler"
    )
    state = await run(runner, deploy(kube, manifests))
    assert succeeded(state, "deploy")["stable"][f"Deployment {ns}/hpa-web"] == "rolled out: 3/3 available"
    assert kube.apps.read_namespaced_deployment("hpa-web", ns).spec.replicas == 3


async def test_an_unknown_kind_fails_naming_kind_api_version_and_account_before_any_write(
    runner: Runner, kube: KubeRig
) -> None:
    name = f"cm-{uuid.uuid4().hex[:6]}"
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": kube.namespace}}
    monitor = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "web", "namespace": kube.namespace},
        "spec": {"endpoints": [{"port": "http"}]},
    }
    message = failed(await run(runner, deploy(kube, [config, monitor])), "deploy")
    assert "'ServiceMonitor'" in message and "monitoring.coreos.com/v1" in message, message
    assert f"account {kube.account.name}" in message
    assert missing(kube.core.read_namespaced_config_map, name, kube.namespace)  # nothing was written


async def test_a_field_another_manager_owns_conflicts_unless_forced(runner: Runner, kube: KubeRig) -> None:
    name, ns = f"flags-{uuid.uuid4().hex[:6]}", kube.namespace
    kube.core.create_namespaced_config_map(
        ns, {"metadata": {"name": name}, "data": {"checkout": "old"}}, field_manager="kubectl-edit"
    )
    manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns},
        "data": {"checkout": "new"},
    }
    message = failed(await run(runner, deploy(kube, [manifest])), "deploy")
    assert "'kubectl-edit' owns .data.checkout" in message and "force" in message, message
    assert kube.core.read_namespaced_config_map(name, ns).data == {"checkout": "old"}

    forced = copy.deepcopy(manifest)
    forced["metadata"]["annotations"] = {"strategy.spinnaker.io/server-side-apply": "force-conflicts"}
    succeeded(await run(runner, deploy(kube, [forced])), "deploy")
    assert kube.core.read_namespaced_config_map(name, ns).data == {"checkout": "new"}

    # The activity's own option does the same (the stage-side `force` field is not wired yet).
    kube.core.patch_namespaced_config_map(name, ns, {"data": {"checkout": "edited"}}, field_manager="kubectl-edit")
    activities = KubernetesManifestActivities(KubernetesAccountClient(kube.account))
    activities.apply_manifests(
        ApplyManifestsInput(manifests=[manifest], executionId="direct", stage="s", application="shop", force=True)
    )
    assert kube.core.read_namespaced_config_map(name, ns).data == {"checkout": "new"}


async def test_objects_of_another_application_are_not_changed(runner: Runner, kube: KubeRig) -> None:
    name, ns = f"billing-{uuid.uuid4().hex[:6]}", kube.namespace
    theirs = {"metadata": {"name": name, "annotations": {APPLICATION_ANNOTATION: "billing"}}, "data": {"rate": "1"}}
    kube.core.create_namespaced_config_map(ns, theirs)
    mine = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, "data": {"rate": "0"}}
    other = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{name}-mine", "namespace": ns}}
    message = failed(await run(runner, deploy(kube, [other, mine])), "deploy")
    assert "belongs to application 'billing'" in message and "Nothing was written" in message, message
    assert kube.core.read_namespaced_config_map(name, ns).data == {"rate": "1"}
    assert missing(kube.core.read_namespaced_config_map, f"{name}-mine", ns)


def stateful_set(name: str, release: str) -> dict[str, Any]:
    labels = {LABEL: name}
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": 2,
            "serviceName": name,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels, "annotations": {RELEASE: release}},
                "spec": {
                    "containers": [{"name": "db", "image": "busybox:1.36", "command": ["sh", "-c", "sleep 3600"]}]
                },
            },
        },
    }


async def test_a_stateful_set_rolls_out_and_back_through_its_controller_revisions(
    runner: Runner, kube: KubeRig
) -> None:
    name, ns = f"db-{uuid.uuid4().hex[:6]}", kube.namespace
    state = await run(
        runner,
        stage(kube, "v1", "deployManifest", manifests=[stateful_set(name, "1")], namespaceOverride=ns),
        stage(kube, "v2", "deployManifest", "v1", manifests=[stateful_set(name, "2")], namespaceOverride=ns),
        stage(kube, "undo", "undoRolloutManifest", "v2", location=ns, manifestName=f"statefulSet {name}"),
    )
    assert succeeded(state, "v2")["stable"][f"StatefulSet {ns}/{name}"].startswith("rolled out: 2/2 ready")
    undo = succeeded(state, "undo")
    assert (undo["fromRevision"], undo["toRevision"]) == (2, 1) and undo["stable"][f"StatefulSet {ns}/{name}"]
    live = kube.apps.read_namespaced_stateful_set(name, ns)
    assert live.spec.template.metadata.annotations[RELEASE] == "1"
    assert live.status.update_revision == live.status.current_revision


async def test_scale_goes_through_the_scale_subresource(runner: Runner, kube: KubeRig) -> None:
    ns, manifests = kube.namespace, corpus(kube.namespace)
    deployment = find(manifests, "Deployment")
    deployment["metadata"]["name"] = name = f"scaled-{uuid.uuid4().hex[:6]}"
    state = await run(
        runner,
        deploy(kube, [m for m in manifests if m["kind"] in ("ServiceAccount", "ConfigMap", "Secret", "Deployment")]),
        stage(kube, "scale", "scaleManifest", "deploy", location=ns, manifestName=f"deploy {name}", replicas=2),
    )
    assert succeeded(state, "scale")["stable"] == {f"Deployment {ns}/{name}": "rolled out: 2/2 available"}
    live = kube.apps.read_namespaced_deployment(name, ns)
    assert live.spec.replicas == 2
    if kube.sim is not None:
        # kubesim records the scale request as its own managedFields entry; a real API server folds it
        # into the manager's existing entry (docs/kubesim.md, differences), so only kubesim shows it.
        fields = live.metadata.managed_fields
        assert [(f.manager, f.operation) for f in fields if f.subresource == "scale"] == [("gennaker", "Update")]


async def test_a_rollout_that_cannot_finish_reports_every_object(runner: Runner, kube: KubeRig) -> None:
    kube.needs_kubesim()  # the crash loop is kubesim's image-tag convention
    name, ns = f"loop-{uuid.uuid4().hex[:6]}", kube.namespace
    labels = {LABEL: name}
    broken = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": "shop/web:crashloop"}]},
            },
        },
    }
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {}}
    state = await run(runner, {**deploy(kube, [config, broken]), "namespaceOverride": ns, "waitTimeoutSeconds": 2})
    message = failed(state, "deploy")
    assert f"ConfigMap {ns}/{name}: applied (nothing to wait for)" in message, message
    assert f"Deployment {ns}/{name}: 0 of 1 updated replicas available" in message, message


async def test_namespaces_outside_the_account_and_the_authorization_hook_stop_everything_first(
    kube: KubeRig, monkeypatch: Any
) -> None:
    activities = KubernetesManifestActivities(KubernetesAccountClient(kube.account))
    name = f"hook-{uuid.uuid4().hex[:6]}"
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": kube.namespace}}

    def apply(*manifests: dict[str, Any]) -> str:
        try:
            activities.apply_manifests(
                ApplyManifestsInput(manifests=list(manifests), executionId="e", stage="s", application="shop")
            )
        except ApplicationError as exc:
            return f"{exc.type}: {exc.message}"
        raise AssertionError("applied")

    system = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system"}}
    assert "NamespaceNotAllowed" in apply(config, system)
    seen: list[list[str]] = []

    def refuse(account: Any, application: str, objects: Any, grant: Any = None) -> None:
        seen.append([str(o) for o in objects])
        raise ApplicationError("not yours", type="ManifestNotAuthorized", non_retryable=True)

    monkeypatch.setattr("activities.kubernetes.manifest_apply.authorize_objects", refuse)
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name},
        "rules": [],
    }
    assert apply(config, role).startswith("ManifestNotAuthorized")
    assert seen == [[f"ConfigMap {kube.namespace}/{name} (v1)", f"ClusterRole {name} (rbac.authorization.k8s.io/v1)"]]
    assert missing(kube.core.read_namespaced_config_map, name, kube.namespace)


async def test_delete_and_patch_refuse_another_applications_objects(kube: KubeRig) -> None:
    activities = KubernetesManifestActivities(KubernetesAccountClient(kube.account))
    name, ns = f"theirs-{uuid.uuid4().hex[:6]}", kube.namespace
    kube.core.create_namespaced_config_map(
        ns, {"metadata": {"name": name, "annotations": {APPLICATION_ANNOTATION: "billing"}}, "data": {"a": "1"}}
    )
    ref = ManifestRef(kind="configMap", name=name, namespace=ns)
    for attempt in (
        lambda: activities.delete_manifests(DeleteManifestsInput(refs=[ref], application="shop")),
        lambda: activities.patch_manifest(
            PatchManifestInput(ref=ref, patchBody={"data": {"a": "2"}}, mergeStrategy="merge", application="shop")
        ),
    ):
        try:
            attempt()
        except ApplicationError as exc:
            assert exc.type == OWNED_BY_ANOTHER_APPLICATION and "'billing'" in exc.message
        else:
            raise AssertionError("changed another application's object")
    assert kube.core.read_namespaced_config_map(name, ns).data == {"a": "1"}


async def test_objects_earlier_gennaker_versions_replaced_are_taken_over_others_are_not(
    runner: Runner, kube: KubeRig
) -> None:
    ns, ours, unknown = kube.namespace, f"old-{uuid.uuid4().hex[:6]}", f"kubectl-{uuid.uuid4().hex[:6]}"
    # What create-or-replace wrote before: an update under the client's User-Agent, annotated for shop.
    kube.core.create_namespaced_config_map(
        ns, {"metadata": {"name": ours, "annotations": {APPLICATION_ANNOTATION: "shop"}}, "data": {"a": "1"}}
    )
    kube.core.create_namespaced_config_map(ns, {"metadata": {"name": unknown}, "data": {"a": "1"}})
    manifests = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": n, "namespace": ns}, "data": {"a": "2"}}
        for n in (ours, unknown)
    ]
    succeeded(await run(runner, deploy(kube, manifests[:1])), "deploy")
    assert kube.core.read_namespaced_config_map(ours, ns).data == {"a": "2"}
    message = failed(await run(runner, deploy(kube, manifests[1:])), "deploy")
    assert "'OpenAPI-Generator' owns .data.a" in message, message
