"""Imported Spinnaker pipelines run, and POST /import/spinnaker answers: a sample of tests/fixtures/spinnaker is translated and each
pipeline run end to end on the real Temporal dev server with the session worker, Kubernetes stages
against kubesim (the manifests rig for deploy/patch/scale/undo/delete manifest and runJob, the
server-group rig for deploy and the cluster stages)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import Depends
from temporalio.client import Client

from api.app import create_app
from api.auth import authenticate
from api.routers import imports
from api.settings import GatewaySettings
from core.spinnaker import MAX_BYTES, ImportOptions, ImportResult, import_path
from core.store import PipelineStore
from core.store.tokens import TokenStore
from tests.support.kube_manifests_rig import ACCOUNT, KubeRig, kube_worker_fixture  # noqa: F401
from tests.support.kube_rig import KubeRig as ServerGroupRig
from tests.support.kube_rig import kube_fixture  # noqa: F401
from tests.support.runner import Runner
from workers.devserver import TemporalDevServer
from workflows.model import parse_pipeline, resolve_parameters
from workflows.pipeline import PipelineWorkflow
from workflows.state import ExecutionState, ExecutionStatus, JudgmentRequest, StageStatus

CORPUS = Path(__file__).parents[1] / "fixtures" / "spinnaker"


def imported(options: ImportOptions) -> dict[str, dict[str, Any]]:
    result: ImportResult = import_path(CORPUS, options)
    return {Path(p.source.split("[")[0]).stem: p.pipeline for p in result.pipelines if p.valid and p.pipeline}


async def start(runner: Runner, pipeline: dict[str, Any], given: dict[str, Any] | None = None) -> Any:
    """Start as the gateway does: parameter defaults applied, required ones checked."""
    return await runner.start(pipeline, resolve_parameters(parse_pipeline(pipeline), given or {}))


async def run(
    runner: Runner, pipeline: dict[str, Any], given: dict[str, Any] | None = None, timeout: float = 60
) -> ExecutionState:
    return await runner.finish(await start(runner, pipeline, given), timeout=timeout)


def succeeded(state: ExecutionState) -> None:
    assert state.status is ExecutionStatus.SUCCEEDED, [(s.refId, s.status, s.error) for s in state.stages]


def outputs(state: ExecutionState, ref: str) -> dict[str, Any]:
    stage = state.stage(ref)
    assert stage is not None
    return stage.outputs


@pytest.fixture(scope="module")
def pure() -> dict[str, dict[str, Any]]:
    return imported(ImportOptions(application="shop"))


@pytest.mark.parametrize(
    "stem",
    [
        "01-wait",
        "02-params-and-vars",
        "08-pipeline-trigger",
        "19-spel-forms",
        "21-edit-as-json",
        "24-flags-and-branches",
    ],
)
async def test_imported_pipeline_runs(runner: Runner, pure: dict[str, dict[str, Any]], stem: str) -> None:
    succeeded(await run(runner, pure[stem]))


async def test_translated_expressions_give_spinnakers_values_in_a_run(
    runner: Runner, pure: dict[str, dict[str, Any]]
) -> None:
    state = await run(runner, pure["19-spel-forms"])
    succeeded(state)
    forms = outputs(state, "2")
    assert (forms["tag"], forms["repo"], forms["app"], forms["status"]) == ("latest", "shop/web", "shop", "SUCCEEDED")
    assert (forms["exists"], forms["semver"], forms["child"], forms["n"]) == (True, "dev", "deploy-manifest", 42)
    assert json.loads(forms["json"]) == {"run": state.id, "tag": "latest"} and forms["run"] == state.id
    assert (forms["hello"], forms["starts"]) == ("hello-world", True)
    branches = await run(runner, pure["24-flags-and-branches"])
    assert branches.stage("2").status is StageStatus.SKIPPED  # type: ignore[union-attr]


async def test_imported_judgment_gate_waits_for_a_person(runner: Runner, pure: dict[str, dict[str, Any]]) -> None:
    handle = await start(runner, pure["03-judgment-gate"], {"version": "1.4.0"})
    waiting = await runner.wait_until(handle, lambda s: s.stage("1") is not None and s.stage("1").waitingForJudgment)
    assert waiting.stage("3").status is StageStatus.NOT_STARTED  # type: ignore[union-attr]
    ack = await handle.execute_update(
        PipelineWorkflow.judge, JudgmentRequest(refId="1", input="ship", user="ana", groups=["release-managers"])
    )
    assert ack.judgment is not None and ack.judgment.user == "ana" and ack.judgment.verified
    state = await runner.finish(handle)
    succeeded(state)
    assert state.stage("3").status is StageStatus.SUCCEEDED  # type: ignore[union-attr]  # stageEnabled held


async def test_imported_manifest_and_job_pipelines_run_on_kubesim(runner: Runner, kube_worker: KubeRig) -> None:
    pipelines = imported(
        ImportOptions(account_map={"k8s-prod": ACCOUNT}, namespace_map={"default": "gn-manifests", "jobs": "gn-jobs"})
    )
    state = await run(runner, pipelines["04-deploy-manifest"], {"tag": "1.26-alpine"})
    succeeded(state)
    config = kube_worker.client.core.read_namespaced_config_map("web-config", "gn-manifests")
    assert config.data["tag"] == "1.26-alpine" and config.data["run"] == state.id
    assert config.data["params"] == '{"tag":"1.26-alpine"}'  # #toJson(parameters), JSON text
    job = await run(runner, pipelines["05-run-job"])
    succeeded(job)
    assert outputs(job, "2") == {"version": "42", "account": ACCOUNT}
    ops = await run(runner, pipelines["06-manifest-ops"], timeout=90)
    succeeded(ops)
    assert [s.refId for s in ops.stages if s.status is StageStatus.SUCCEEDED] == ["1", "2", "3", "4", "5"]


async def test_imported_server_group_pipeline_runs_on_kubesim(runner: Runner, kube: ServerGroupRig) -> None:
    pipelines = imported(
        ImportOptions(account_map={"k8s-v1": kube.account.name}, namespace_map={"default": kube.namespace})
    )
    state = await run(runner, pipelines["13-server-group-ops"], timeout=120)
    succeeded(state)
    groups = kube.server_groups("shop-ops")
    assert list(groups) == ["shop-ops-v001"] and kube.replicas("shop-ops-v001") == 3


# ---- POST /import/spinnaker (the router, included as api/app.py will include it) ---------------

POLICY = """
applications:
  imp:
    READ: [group:viewers]
    WRITE: [group:editors]
"""


@pytest.fixture(scope="module")
async def gateway(
    temporal_server: TemporalDevServer, client: Client, store: PipelineStore, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    policy = tmp_path_factory.mktemp("import") / "policy.yaml"
    policy.write_text(POLICY)
    settings = GatewaySettings(
        temporal_address=temporal_server.address, database_url=store.database_url, auth_policy_file=policy
    )
    app = create_app(settings, client=client, store=store)
    app.include_router(imports.router, dependencies=[Depends(authenticate)])
    issued = TokenStore(store.database_url)
    tokens = {
        "editor": issued.create("eve", ["editors"], "import-test")[0],
        "viewer": issued.create("vera", ["viewers"], "import-test")[0],
    }
    issued.close()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://gennaker.test") as http,
    ):
        yield http, {k: f"Bearer {v}" for k, v in tokens.items()}


def corpus(stem: str) -> Any:
    return json.loads((CORPUS / "shop" / f"{stem}.json").read_text())


async def test_api_imports_and_saves_only_for_writers(gateway: tuple[httpx.AsyncClient, dict[str, str]]) -> None:
    http, auth = gateway
    body = {"pipelines": [corpus("01-wait"), corpus("11-bake-vm")], "application": "imp", "save": True}
    denied = await http.post("/import/spinnaker", json=body, headers={"Authorization": auth["viewer"]})
    assert denied.status_code == 403, denied.text
    assert (
        await http.get("/applications/imp/pipelines/wait-a-bit", headers={"Authorization": auth["viewer"]})
    ).status_code == 404
    looked = await http.post(
        "/import/spinnaker", json={**body, "save": False}, headers={"Authorization": auth["viewer"]}
    )
    assert looked.status_code == 200 and looked.json()["saved"] == []
    response = await http.post("/import/spinnaker", json=body, headers={"Authorization": auth["editor"]})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["summary"] == {"pipelines": 2, "imported": 1, "validated": 1, "untranslated_expressions": 0}
    assert [(s["application"], s["name"]) for s in answer["saved"]] == [("imp", "wait-a-bit")]
    bake = answer["pipelines"][1]
    assert not bake["valid"] and any(i["outcome"] == "untranslated" and i["path"] == "stages[0]" for i in bake["items"])
    saved = await http.get("/applications/imp/pipelines/wait-a-bit", headers={"Authorization": auth["viewer"]})
    assert saved.status_code == 200 and saved.json()["config"]["stages"][0]["waitTime"] == 1
    assert (await http.post("/import/spinnaker", json=body)).status_code == 401


async def test_api_bounds_and_strictness(gateway: tuple[httpx.AsyncClient, dict[str, str]]) -> None:
    http, auth = gateway
    headers = {"Authorization": auth["viewer"], "Content-Type": "application/json"}
    huge = b'{"pipelines": {"name": "' + b"x" * (MAX_BYTES + 1) + b'"}}'
    too_large = await http.post("/import/spinnaker", content=huge, headers=headers)
    assert too_large.status_code == 413 and str(MAX_BYTES) in too_large.json()["error"]["message"]
    bad = await http.post("/import/spinnaker", content=b"{nope", headers=headers)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "body"
    unknown = await http.post("/import/spinnaker", json={"pipelines": {}, "saveAll": True}, headers=headers)
    assert unknown.status_code == 422 and unknown.json()["error"]["field"] == "saveAll"
    strict = {"pipelines": corpus("20-spel-untranslatable"), "strict": True}
    refused = await http.post("/import/spinnaker", json=strict, headers=headers)
    assert refused.status_code == 422, refused.text
    fields = [e["field"] for e in refused.json()["error"]["errors"]]
    assert "pipelines: stages[0].variables[0].value" in fields
