"""Artifacts through real pipelines on the Temporal dev server, against kubesim over HTTP: a
docker/image artifact from the trigger bound into a manifest fetched from an http/file artifact on
loopback (allow-listed in this worker's egress policy); a Helm chart and a Kustomize overlay in a
local git repository rendered by bakeManifest and deployed by a later deployManifest consuming the
baked artifact; runJob from an inline artifact; and an expected artifact that cannot be bound
ending the execution TERMINAL before any stage, naming it.

This module runs its own kubesim and account (`artifacts-sim`) with a worker serving the manifest,
traffic, resource, artifact and bake activities on the account's queue, as workers/main.py will
once the integrator registers them there.
"""

from __future__ import annotations

import base64
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s
from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

from activities.accounts import KubernetesAccount
from activities.artifacts.activities import ArtifactActivities
from activities.artifacts.settings import ArtifactAccounts
from activities.artifacts.store import ContentStore
from activities.bake_manifest import BakeManifestActivities
from activities.egress import EgressPolicy
from activities.kubernetes.client import KubernetesAccountClient
from activities.kubernetes.jobs import KubernetesJobActivities
from activities.kubernetes.manifest_resources import ManifestResourceActivities
from activities.kubernetes.manifest_traffic import ManifestTrafficActivities
from activities.kubernetes.manifests import KubernetesManifestActivities
from activities.prior_artifacts import PriorArtifactActivities
from activities.triggers import PipelineFinished
from kubesim.testing import RunningKubesim, start_kubesim
from tests.support.eventually import assert_eventually
from tests.support.fake_services import FakeHttp, Reply
from tests.support.runner import Runner, pipeline
from workers.runner import workflow_runner
from workflows.artifacts import Artifact
from workflows.model import PipelineInvalid, parse_pipeline
from workflows.pipeline import PipelineWorkflow
from workflows.search import initial_attributes
from workflows.state import (
    PIPELINE_WORKFLOW,
    ExecutionResult,
    ExecutionState,
    ExecutionStatus,
    PipelineRunInput,
    StageStatus,
    TriggerInfo,
)
from workflows.trigger_artifacts import (
    TriggerArtifactsInvalid,
    docker_image_artifact,
    git_repo_artifact,
    payload_artifacts,
)

ROOT = Path(__file__).resolve().parents[2]
IMAGE_NAME = "registry.local:5000/shop/web"
WEB_YAML = f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: web-from-url}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: web-from-url}}}}
  template:
    metadata: {{labels: {{app: web-from-url}}}}
    spec:
      containers: [{{name: web, image: "{IMAGE_NAME}:placeholder"}}]
"""
CHART_TEMPLATE = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-web
spec:
  replicas: {{ .Values.replicas }}
  selector: {matchLabels: {app: {{ .Release.Name }}-web}}
  template:
    metadata: {labels: {app: {{ .Release.Name }}-web}}
    spec:
      containers: [{name: web, image: {{ .Values.image | quote }}}]
"""


@dataclass
class AccountRig:
    account: KubernetesAccount
    client: KubernetesAccountClient
    sim: RunningKubesim

    @property
    def namespace(self) -> str:
        return self.account.namespaces[0]

    @property
    def apps(self) -> k8s.AppsV1Api:
        return self.client.apps

    @property
    def core(self) -> k8s.CoreV1Api:
        return self.client.core


@asynccontextmanager
async def account_worker(
    client: Client, directory: Path, name: str, namespace: str, artifacts: ArtifactAccounts | None = None
) -> AsyncIterator[AccountRig]:
    """A kubesim, a Kubernetes account on it and a worker on the account's queue serving the
    manifest stages' activities (and, with `artifacts`, fetching and baking)."""
    sim = start_kubesim(ready_delay=0.05, seed=17, directory=directory)
    account = KubernetesAccount(name=name, kubeconfig=sim.kubeconfig_path, namespaces=[namespace], simulated=True)
    kube = KubernetesAccountClient(account)
    kube.core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=namespace)))
    activities: list[Any] = [
        *KubernetesManifestActivities(kube).activities(),
        *KubernetesJobActivities(kube).activities(),
        *ManifestTrafficActivities(kube).activities(),
        *ManifestResourceActivities(kube).activities(),
    ]
    if artifacts is not None:
        store = ContentStore(artifacts.store_dir) if artifacts.store_dir else None
        activities += [
            *ArtifactActivities(artifacts, store).activities(),
            *BakeManifestActivities(artifacts, store).activities(),
        ]
    with ThreadPoolExecutor(max_workers=8, thread_name_prefix=f"k8s-{name}") as pool:
        async with Worker(client, task_queue=account.queue, activities=activities, activity_executor=pool):
            try:
                yield AccountRig(account, kube, sim)
            finally:
                kube.close()
                sim.stop()


def git(*args: str, cwd: Path) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@e",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@e",
    }
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture(scope="module")
def tools_dir() -> Path:
    """helm and kustomize from scripts/tools-up.sh (cached after the first build)."""
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "tools-up.sh")], capture_output=True, text=True, timeout=3600, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return Path(done.stdout.strip().splitlines()[-1].removeprefix("tools: "))


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git repository with a chart (charts/web) and a kustomize base + prod overlay."""
    repo = tmp_path_factory.mktemp("git") / "deploy.git"
    chart = repo / "charts" / "web"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: web\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text(f"image: {IMAGE_NAME}:chart\nreplicas: 1\n")
    (chart / "templates" / "deployment.yaml").write_text(CHART_TEMPLATE)
    base = repo / "kustomize" / "base"
    base.mkdir(parents=True)
    (base / "deployment.yaml").write_text(WEB_YAML.replace("web-from-url", "kweb"))
    (base / "kustomization.yaml").write_text("resources: [deployment.yaml]\n")
    overlay = repo / "kustomize" / "overlays" / "prod"
    overlay.mkdir(parents=True)
    (overlay / "kustomization.yaml").write_text("resources: [../../base]\nnamePrefix: prod-\n")
    git("init", "--quiet", "--initial-branch=main", cwd=repo)
    git("add", ".", cwd=repo)
    git("commit", "--quiet", "-m", "v1", cwd=repo)
    return repo


@pytest.fixture(scope="module")
def files() -> Iterator[FakeHttp]:
    with FakeHttp() as server:
        server.route("GET", "/manifests/web.yaml", Reply(200, WEB_YAML.encode(), {"Content-Type": "application/yaml"}))
        yield server


@pytest.fixture(scope="module")
async def rig(
    client: Client, tmp_path_factory: pytest.TempPathFactory, files: FakeHttp, repository: Path, tools_dir: Path
) -> AsyncIterator[AccountRig]:
    egress = EgressPolicy(allow_url_prefixes=[files.url + "/manifests/", repository.parent.as_uri() + "/"])
    store = tmp_path_factory.mktemp("store")
    settings = ArtifactAccounts(egress=egress, store_dir=store, tools_dir=tools_dir)
    async with account_worker(
        client, tmp_path_factory.mktemp("kubesim"), "artifacts-sim", "gn-artifacts", settings
    ) as made:
        yield made


async def run(
    client: Client,
    queue: str,
    spec: dict[str, Any],
    trigger: TriggerInfo | None = None,
    timeout: float = 60,
) -> ExecutionState:
    parsed = parse_pipeline(spec)
    handle = await client.start_workflow(
        PIPELINE_WORKFLOW,
        PipelineRunInput(pipeline=parsed, trigger=trigger or TriggerInfo()),
        id=f"test-artifacts-{uuid.uuid4().hex[:8]}",
        task_queue=queue,
        result_type=ExecutionResult,
        search_attributes=initial_attributes(parsed.application, parsed.name, trigger.type if trigger else "manual"),
    )
    return await Runner.finish(handle, timeout)


def stage(ref: str, type_: str, *parents: str, **fields: Any) -> dict[str, Any]:
    return {"refId": ref, "type": type_, "account": "artifacts-sim", "requisiteStageRefIds": list(parents), **fields}


def outputs(state: ExecutionState, ref: str) -> dict[str, Any]:
    found = state.stage(ref)
    assert found is not None and found.status is StageStatus.SUCCEEDED, state.model_dump_json(indent=1)
    return dict(found.outputs)


def image_of(rig: AccountRig, name: str) -> str:
    live = rig.apps.read_namespaced_deployment(name, rig.namespace)
    return str(live.spec.template.spec.containers[0].image)


async def test_trigger_image_is_bound_into_a_manifest_fetched_over_http(
    client: Client, worker: None, task_queue: str, rig: AccountRig, files: FakeHttp
) -> None:
    pushed = Artifact(type="docker/image", name=IMAGE_NAME, reference=f"{IMAGE_NAME}:1.4.2", version="1.4.2")
    spec = pipeline(
        stage(
            "deploy",
            "deployManifest",
            source="artifact",
            manifestArtifactId="web-manifest",
            requiredArtifactIds=["web-image"],
            namespaceOverride=rig.namespace,
        ),
        name="from-url",
        expectedArtifacts=[
            {"id": "web-image", "matchArtifact": {"type": "docker/image", "name": IMAGE_NAME.replace(".", r"\.")}},
            {
                "id": "web-manifest",
                "matchArtifact": {"type": "http/file", "name": "web.yaml"},
                "useDefaultArtifact": True,
                "defaultArtifact": {
                    "type": "http/file",
                    "name": "web.yaml",
                    "reference": files.url + "/manifests/web.yaml",
                },
            },
        ],
    )
    state = await run(client, task_queue, spec, TriggerInfo(type="docker", artifacts=[pushed]))
    out = outputs(state, "deploy")
    assert image_of(rig, "web-from-url") == f"{IMAGE_NAME}:1.4.2"
    assert out["manifestArtifact"] == "http/file web.yaml"
    assert [(b["image"], b["boundTo"]) for b in out["boundArtifacts"]] == [
        (f"{IMAGE_NAME}:placeholder", f"{IMAGE_NAME}:1.4.2")
    ]
    assert set(state.artifacts.bound) == {"web-image", "web-manifest"}
    assert [r.method for r in files.requests] == ["GET"]


async def test_helm_chart_in_git_baked_then_deployed(
    client: Client, worker: None, task_queue: str, rig: AccountRig, repository: Path
) -> None:
    chart = {"type": "git/repo", "reference": repository.as_uri(), "version": "main", "metadata": {"subPath": "charts"}}
    spec = pipeline(
        stage(
            "bake",
            "bakeManifest",
            templateRenderer="HELM3",
            outputName="shop",
            inputArtifacts=[{"artifact": chart}],
            helmChartFilePath="web",
            overrides={"replicas": 2},
            rawOverrides=True,
            expectedArtifacts=[{"id": "baked", "matchArtifact": {"type": "embedded/base64", "name": "shop"}}],
        ),
        stage(
            "deploy",
            "deployManifest",
            "bake",
            source="artifact",
            manifestArtifactId="baked",
            namespaceOverride=rig.namespace,
        ),
        name="helm-bake",
    )
    state = await run(client, task_queue, spec)
    baked = outputs(state, "bake")
    assert baked["kinds"] == {"Deployment": 1} and baked["renderer"].startswith("helm")
    assert state.artifacts.bound["baked"].metadata["contentDigest"] == baked["manifestDigest"]
    rendered = base64.b64decode(state.artifacts.bound["baked"].reference or "")
    assert b"name: shop-web" in rendered
    deployed = outputs(state, "deploy")
    assert deployed["manifestNamesByNamespace"] == {rig.namespace: ["deployment shop-web"]}
    live = rig.apps.read_namespaced_deployment("shop-web", rig.namespace)
    assert (live.spec.replicas, live.status.available_replicas) == (2, 2)
    assert live.spec.template.spec.containers[0].image == f"{IMAGE_NAME}:chart"


async def test_kustomize_overlay_baked_then_deployed_with_the_trigger_image(
    client: Client, worker: None, task_queue: str, rig: AccountRig, repository: Path
) -> None:
    pushed = Artifact(type="docker/image", name=IMAGE_NAME, reference=f"{IMAGE_NAME}@sha256:{'a' * 64}")
    spec = pipeline(
        stage(
            "bake",
            "bakeManifest",
            templateRenderer="KUSTOMIZE",
            outputName="prod",
            inputArtifact={"id": "deploy-repo"},
            kustomizeFilePath="kustomize/overlays/prod/kustomization.yaml",
            expectedArtifacts=[{"id": "prod-manifests", "matchArtifact": {"type": "embedded/base64"}}],
        ),
        stage(
            "deploy",
            "deployManifest",
            "bake",
            source="artifact",
            manifestArtifactId="prod-manifests",
            requiredArtifactIds=["image"],
            namespaceOverride=rig.namespace,
        ),
        name="kustomize-bake",
        expectedArtifacts=[
            {"id": "image", "matchArtifact": {"type": "docker/image"}},
            {
                "id": "deploy-repo",
                "matchArtifact": {"type": "git/repo"},
                "useDefaultArtifact": True,
                "defaultArtifact": {"type": "git/repo", "reference": repository.as_uri(), "version": "main"},
            },
        ],
    )
    state = await run(client, task_queue, spec, TriggerInfo(type="webhook", artifacts=[pushed]))
    assert outputs(state, "bake")["kinds"] == {"Deployment": 1}
    assert outputs(state, "deploy")["manifestNamesByNamespace"] == {rig.namespace: ["deployment prod-kweb"]}
    assert image_of(rig, "prod-kweb") == pushed.reference


async def test_run_job_manifest_from_an_inline_artifact_with_the_trigger_image(
    client: Client, worker: None, task_queue: str, rig: AccountRig
) -> None:
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "migrate"},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "migrate",
                            "image": "shop/migrate:placeholder",
                            "command": ["sh", "-c", "echo 'GENNAKER_OUTPUTS {\"done\": true}'"],
                        }
                    ],
                }
            },
        },
    }
    inline = {
        "type": "embedded/base64",
        "name": "migrate.yaml",
        "reference": base64.b64encode(yaml.safe_dump(job).encode()).decode(),
    }
    spec = pipeline(
        stage(
            "job",
            "runJobManifest",
            source="artifact",
            manifestArtifact=inline,
            namespace=rig.namespace,
            requiredArtifactIds=["migrate-image"],
            waitTimeoutSeconds=60,
        ),
        name="job-from-artifact",
        expectedArtifacts=[{"id": "migrate-image", "matchArtifact": {"type": "docker/image", "name": "shop/migrate"}}],
    )
    pushed = Artifact(type="docker/image", name="shop/migrate", reference="shop/migrate:7")
    state = await run(client, task_queue, spec, TriggerInfo(type="docker", artifacts=[pushed]))
    out = outputs(state, "job")
    assert state.stage("job").type == "runJob"  # type: ignore[union-attr]
    assert out["done"] is True and out["manifestArtifact"] == "embedded/base64 migrate.yaml"
    live = rig.client.batch.read_namespaced_job(out["jobName"], rig.namespace)
    assert live.spec.template.spec.containers[0].image == "shop/migrate:7"


async def test_an_expected_artifact_that_cannot_be_bound_ends_the_execution_before_any_stage(
    client: Client, worker: None, task_queue: str, rig: AccountRig
) -> None:
    spec = pipeline(
        stage(
            "deploy",
            "deployManifest",
            source="artifact",
            manifestArtifactId="chart-values",
            namespaceOverride=rig.namespace,
        ),
        name="unbound",
        expectedArtifacts=[
            {
                "id": "chart-values",
                "displayName": "values for prod",
                "matchArtifact": {"type": "github/file", "name": "values/prod.yaml"},
            }
        ],
    )
    state = await run(
        client,
        task_queue,
        spec,
        TriggerInfo(
            type="docker", artifacts=[Artifact(type="docker/image", name=IMAGE_NAME, reference=f"{IMAGE_NAME}:9")]
        ),
    )
    assert state.status is ExecutionStatus.TERMINAL
    assert state.failure is not None and "chart-values (values for prod)" in state.failure
    assert "was not found in the trigger's artifacts" in state.failure
    assert [s.status for s in state.stages] == [StageStatus.NOT_STARTED]


async def test_use_prior_artifact_binds_the_last_successful_executions_artifact(client: Client) -> None:
    """On a pipeline worker of its own that serves the prior-artifacts local activity (as
    workers/runner.py will once the integrator registers it)."""
    queue = f"prior-{uuid.uuid4().hex[:8]}"
    name = f"prior-{uuid.uuid4().hex[:6]}"
    spec = pipeline(
        {"refId": "note", "type": "evaluateVariables", "variables": [{"key": "image", "value": "x"}]},
        name=name,
        expectedArtifacts=[
            {"id": "api-image", "usePriorArtifact": True, "matchArtifact": {"type": "docker/image", "name": "shop/api"}}
        ],
    )
    pushed = Artifact(type="docker/image", name="shop/api", reference="shop/api:41")

    @activity.defn(name="fire_pipeline_triggers")  # this test saves no pipelines: nothing to trigger
    async def no_pipeline_triggers(finished: PipelineFinished) -> list[str]:
        return []

    async with Worker(
        client,
        task_queue=queue,
        workflows=[PipelineWorkflow],
        activities=[
            *PriorArtifactActivities(client).activities(),
            no_pipeline_triggers,
        ],
        workflow_runner=workflow_runner(),
    ):
        first = await run(client, queue, spec, TriggerInfo(type="docker", artifacts=[pushed]))
        assert first.status is ExecutionStatus.SUCCEEDED, first.model_dump_json(indent=1)
        query = f"GennakerPipeline = '{name}' AND GennakerStatus = 'SUCCEEDED'"

        async def listed() -> list[str]:
            return [e.id async for e in client.list_workflows(query)]

        # Visibility is eventually consistent: the next run reads the last one through it.
        await assert_eventually(listed, what=f"the first run listed by {query}", timeout=10)
        second = await run(client, queue, spec, TriggerInfo(type="manual"))
        assert second.status is ExecutionStatus.SUCCEEDED, second.model_dump_json(indent=1)
        assert second.artifacts.bound["api-image"] == pushed
        lonely = await run(client, queue, {**spec, "name": f"{name}-new"}, TriggerInfo(type="manual"))
    assert lonely.status is ExecutionStatus.TERMINAL
    assert lonely.failure is not None and "api-image" in lonely.failure
    assert "a prior execution (there is none)" in lonely.failure


def test_artifact_ids_are_checked_when_the_pipeline_is_submitted() -> None:
    spec = pipeline(
        stage("deploy", "deployManifest", source="artifact", manifestArtifactId="nope", requiredArtifactIds=["img"]),
        expectedArtifacts=[{"id": "img", "matchArtifact": {"type": "docker/image"}}],
    )
    with pytest.raises(PipelineInvalid) as caught:
        parse_pipeline(spec)
    assert [(e.field, e.message) for e in caught.value.errors] == [
        ("stages[deploy].manifestArtifactId", "no expected artifact has id 'nope' (declared: img)")
    ]
    both = stage(
        "deploy",
        "deployManifest",
        source="artifact",
        manifestArtifactId="img",
        manifests=[{"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "x"}}],
    )
    with pytest.raises(PipelineInvalid, match="`manifests` is for source: text"):
        parse_pipeline(pipeline(both, expectedArtifacts=[{"id": "img", "matchArtifact": {"type": "docker/image"}}]))
    with pytest.raises(PipelineInvalid, match="source: text needs `manifests`"):
        parse_pipeline(pipeline(stage("deploy", "deployManifest")))


def test_trigger_artifacts_in_spinnakers_shapes() -> None:
    pushed = docker_image_artifact("registry.local:5000", "shop/web", "1.4", None)
    assert (pushed.name, pushed.reference, pushed.version) == (IMAGE_NAME, f"{IMAGE_NAME}:1.4", "1.4")
    pinned = docker_image_artifact("registry.local:5000", "shop/web", "1.4", "sha256:" + "c" * 64)
    assert pinned.reference == f"{IMAGE_NAME}@sha256:{'c' * 64}"
    commit = git_repo_artifact("https://github.com/shop/deploy.git", "abc123", "main")
    assert (commit.type, commit.version, commit.metadata) == ("git/repo", "abc123", {"branch": "main"})
    assert payload_artifacts({"artifacts": [{"type": "docker/image", "reference": "x:1"}]})[0].reference == "x:1"
    assert payload_artifacts({"other": 1}) == []
    with pytest.raises(TriggerArtifactsInvalid) as caught:
        payload_artifacts({"artifacts": [{"type": "docker/image"}, {"type": "http/file", "surprise": True}]})
    assert caught.value.field == "artifacts[1].surprise"
    with pytest.raises(TriggerArtifactsInvalid, match=r"artifacts\[0\]\.reference: .*the limit is 98304"):
        payload_artifacts({"artifacts": [{"type": "embedded/base64", "reference": "A" * 100_000}]})
