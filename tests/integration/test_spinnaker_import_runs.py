"""Imported Spinnaker pipelines run: a sample of tests/fixtures/spinnaker is translated and each
pipeline run end to end on the real Temporal dev server with the session worker, Kubernetes stages
against kubesim (the manifests rig for deploy/patch/scale/undo/delete manifest and runJob, the
server-group rig for deploy and the cluster stages)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from core.spinnaker import ImportOptions, ImportResult, import_path
from tests.conftest import Runner
from tests.support.kube_manifests_rig import ACCOUNT, KubeRig, kube_worker_fixture  # noqa: F401
from tests.support.kube_rig import KubeRig as ServerGroupRig
from tests.support.kube_rig import kube_fixture  # noqa: F401
from workflows.model import parse_pipeline, resolve_parameters
from workflows.state import ExecutionState, ExecutionStatus, JudgmentRecord, JudgmentRequest, StageStatus

CORPUS = Path(__file__).parents[1] / "fixtures" / "spinnaker"


def imported(options: ImportOptions) -> dict[str, dict[str, Any]]:
    result: ImportResult = import_path(CORPUS, options)
    return {Path(p.source.split("[")[0]).stem: p.pipeline for p in result.pipelines if p.valid and p.pipeline}


async def start(runner: Runner, pipeline: dict[str, Any], given: dict[str, Any] | None = None) -> Any:
    """Start as the gateway does: parameter defaults applied, required ones checked."""
    return await runner.start(pipeline, resolve_parameters(parse_pipeline(pipeline), given or {}))


async def run(runner: Runner, pipeline: dict[str, Any], given: dict[str, Any] | None = None, timeout: float = 60) -> ExecutionState:
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
    "stem", ["01-wait", "02-params-and-vars", "08-pipeline-trigger", "19-spel-forms", "21-edit-as-json", "24-flags-and-branches"]
)
async def test_imported_pipeline_runs(runner: Runner, pure: dict[str, dict[str, Any]], stem: str) -> None:
    succeeded(await run(runner, pure[stem]))


async def test_translated_expressions_give_spinnakers_values_in_a_run(runner: Runner, pure: dict[str, dict[str, Any]]) -> None:
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
    await handle.execute_update("judge", JudgmentRequest(refId="1", input="ship", user="ana", groups=["release-managers"]), result_type=JudgmentRecord)
    state = await runner.finish(handle)
    succeeded(state)
    assert state.stage("3").status is StageStatus.SUCCEEDED  # type: ignore[union-attr]  # stageEnabled held


async def test_imported_manifest_and_job_pipelines_run_on_kubesim(runner: Runner, kube_worker: KubeRig) -> None:
    pipelines = imported(ImportOptions(account_map={"k8s-prod": ACCOUNT}, namespace_map={"default": "gn-manifests", "jobs": "gn-jobs"}))
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
    pipelines = imported(ImportOptions(account_map={"k8s-v1": kube.account.name}, namespace_map={"default": kube.namespace}))
    state = await run(runner, pipelines["13-server-group-ops"], timeout=120)
    succeeded(state)
    groups = kube.server_groups("shop-ops")
    assert list(groups) == ["shop-ops-v001"] and kube.replicas("shop-ops-v001") == 3
