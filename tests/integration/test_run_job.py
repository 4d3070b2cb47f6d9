"""runJob through real pipelines on the Temporal dev server against kubesim over HTTP (or a real
cluster with GENNAKER_TEST_KUBECONFIG): outputs parsed from the log, failure after backoffLimit with
the log tail in the error, deleteOnCompletion, and one Job per stage run under activity retry."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.kubernetes.jobs import JOB_NOT_OURS, StartJobInput, WaitForJobInput, job_name, parse_outputs
from kubesim.testing import wait_until
from tests.support.kube_manifests_rig import (  # noqa: F401
    SHELL_IMAGE,
    KubeRig,
    k8s_stage,
    kube_fixture,
    kube_worker_fixture,
    run_stages,
    unique,
)
from tests.support.runner import Runner, pipeline
from workflows.state import ExecutionState, StageStatus


def job_manifest(name: str, script: str, backoff_limit: int = 0, image: str = SHELL_IMAGE) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": backoff_limit,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": image, "command": ["sh", "-c", script]}],
                }
            },
        },
    }


def stage_of(state: ExecutionState, ref: str) -> Any:
    stage = state.stage(ref)
    assert stage is not None, state.model_dump_json(indent=1)
    return stage


async def test_outputs_are_parsed_from_the_log_and_flow_downstream(runner: Runner, kube: KubeRig) -> None:
    kube.needs_containers()  # the outputs are what the container prints
    script = 'echo migrating; echo \'GENNAKER_OUTPUTS {"version": "1.2.3", "rows": 42}\'; echo SPINNAKER_PROPERTY_REGION=eu; echo done'
    state = await run_stages(
        runner,
        k8s_stage(
            "migrate",
            "runJob",
            manifest={**job_manifest("migrate", script), "metadata": {"name": "migrate", "namespace": "gn-jobs"}},
            deleteOnCompletion=True,
        ),
        {
            "refId": "use",
            "type": "evaluateVariables",
            "requisiteStageRefIds": ["migrate"],
            "variables": [
                {"key": "tag", "value": "v${{ stages.migrate.outputs.version }}-${{ stages.migrate.outputs.region }}"}
            ],
        },
    )
    migrate = stage_of(state, "migrate")
    assert migrate.status is StageStatus.SUCCEEDED, migrate.error
    out = migrate.outputs
    assert (out["version"], out["rows"], out["region"]) == ("1.2.3", 42, "eu")
    assert out["propertyFileContents"] == {"version": "1.2.3", "rows": 42, "region": "eu"}
    assert out["logTail"][0] == "migrating" and out["logTail"][-1] == "done"
    assert out["jobStatus"]["succeeded"] and out["namespace"] == "gn-jobs"
    assert out["jobName"] == job_name("migrate", state.id, state.runId, "migrate")
    assert stage_of(state, "use").outputs == {"tag": "v1.2.3-eu"}
    kube.wait_gone(kube.batch.read_namespaced_job, out["jobName"], "gn-jobs")  # deleteOnCompletion


async def test_failure_after_backoff_limit_carries_the_log_tail(runner: Runner, kube: KubeRig) -> None:
    kube.needs_containers()  # the log tail is what the container printed
    script = "echo step one; echo 'error: table locked'; exit 3"
    state = await run_stages(
        runner,
        k8s_stage(
            "job",
            "runJob",
            namespace=kube.namespace,
            backoffLimit=1,
            logTailLines=2,
            container={"image": SHELL_IMAGE, "command": ["sh", "-c", script]},
        ),
    )
    job = stage_of(state, "job")
    assert job.status is StageStatus.TERMINAL
    message = job.error.message
    assert "BackoffLimitExceeded" in message and "2 pod(s) failed with backoffLimit 1" in message, message
    assert message.endswith(
        "Last 2 log lines of pod " + job.error.details["jobStatus"]["pod"] + ":\nstep one\nerror: table locked"
    ), message
    assert "is left in place for inspection" in message
    live = kube.batch.read_namespaced_job(job.error.details["jobName"], kube.namespace)
    assert live.status.failed == 2


async def test_a_pod_that_fails_once_is_retried_within_backoff_limit(runner: Runner, kube: KubeRig) -> None:
    kube.require_sim()  # the :fail-once tag is kubesim's
    state = await run_stages(
        runner,
        k8s_stage(
            "job",
            "runJob",
            namespace=kube.namespace,
            backoffLimit=1,
            deleteOnCompletion=True,
            manifest=job_manifest(unique("flaky"), "echo ok", image="shell:fail-once"),
        ),
    )
    job = stage_of(state, "job")
    assert job.status is StageStatus.SUCCEEDED, job.error
    assert (job.outputs["jobStatus"]["failedPods"], job.outputs["jobStatus"]["succeededPods"]) == (1, 1)


async def test_canceling_the_pipeline_deletes_its_running_job(runner: Runner, kube: KubeRig) -> None:
    name = unique("slow")
    handle = await runner.start(
        pipeline(
            k8s_stage("job", "runJob", namespace=kube.namespace, manifest=job_manifest(name, "echo started; sleep 60")),
            name="cancel-job",
        )
    )
    running = await runner.wait_until(handle, lambda s: "running Job" in (s.stage("job").details or ""))
    job_name_ = running.stage("job").details.rsplit("/", 1)[-1]
    wait_until(lambda: kube.batch.read_namespaced_job(job_name_, kube.namespace).status.active, 10, what="a pod")
    await handle.cancel()
    state = await runner.finish(handle)
    assert state.stage("job").status is StageStatus.CANCELED
    kube.wait_gone(kube.batch.read_namespaced_job, job_name_)


async def test_a_retried_start_reattaches_to_the_same_job(kube: KubeRig) -> None:
    env = ActivityEnvironment()
    start = StartJobInput(
        manifest=job_manifest("retry", "echo 'GENNAKER_OUTPUTS {\"ok\": true}'"),
        namespace=kube.namespace,
        executionId=unique("exec"),
        runId="run-1",
        stage="job",
        application="shop",
    )
    first = env.run(kube.jobs.start_job, start)
    second = env.run(kube.jobs.start_job, start)
    assert (first.name, first.reattached, second.name, second.reattached) == (second.name, False, first.name, True)
    jobs = kube.batch.list_namespaced_job(kube.namespace, label_selector="app.kubernetes.io/managed-by=gennaker")
    assert [j.metadata.name for j in jobs.items].count(first.name) == 1
    outcome = env.run(kube.jobs.wait_for_job, WaitForJobInput(job=second, timeoutSeconds=30))
    assert outcome.succeeded
    if kube.runs_containers():  # on kwok no container prints the outputs
        assert outcome.outputs == {"ok": True}
    # A restarted stage is a new run: it gets its own Job rather than the finished one.
    assert env.run(kube.jobs.start_job, start.model_copy(update={"runId": "run-2"})).name != first.name
    # Someone else's Job under our name is not adopted.
    kube.batch.patch_namespaced_job(
        first.name,
        kube.namespace,
        {"metadata": {"annotations": {"gennaker.io/execution-id": "someone-else"}}},
        _content_type="application/merge-patch+json",
    )
    with pytest.raises(ApplicationError) as raised:
        env.run(kube.jobs.start_job, start)
    assert raised.value.type == JOB_NOT_OURS and "already exists" in raised.value.message
    for run in ("run-1", "run-2"):
        env.run(
            kube.jobs.delete_job, first.model_copy(update={"name": job_name("retry", start.executionId, run, "job")})
        )
    kube.wait_gone(kube.batch.read_namespaced_job, first.name)


def test_parse_outputs_reports_the_bad_line() -> None:
    assert parse_outputs(["x", 'GENNAKER_OUTPUTS {"a": 1}', 'GENNAKER_OUTPUTS {"a": 2, "b": "c"}']) == (
        {"a": 2, "b": "c"},
        None,
    )
    found, error = parse_outputs(["GENNAKER_OUTPUTS {not json"])
    assert found == {} and error is not None and "log line 1" in error
    assert parse_outputs(["GENNAKER_OUTPUTS [1]"])[1] == "log line 1: GENNAKER_OUTPUTS needs a JSON object, got list"
    assert len(job_name("x" * 80, "e", "r", "s")) <= 63
