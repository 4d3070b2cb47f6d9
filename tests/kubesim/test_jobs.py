"""Jobs: completion, backoffLimit, the fail-once tag, and pod logs by the documented convention."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from kubesim.testing import wait_until
from tests.kubesim.util import status_body


def _job(name: str, script: str, image: str = "busybox:1.36", backoff: int = 6) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": backoff,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": image, "command": ["sh", "-c", script]}],
                }
            },
        },
    }


def _finished(batch: client.BatchV1Api, ns: str, name: str) -> Any:
    job = batch.read_namespaced_job(name, ns)
    for cond in job.status.conditions or []:
        if cond.type in ("Complete", "Failed") and cond.status == "True":
            return job
    return None


def _pods(core: client.CoreV1Api, ns: str, job: str) -> list[Any]:
    return core.list_namespaced_pod(ns, label_selector=f"job-name={job}").items


def test_job_completes_and_logs(batch: client.BatchV1Api, core: client.CoreV1Api, ns: str) -> None:
    batch.create_namespaced_job(ns, _job("migrate", 'echo "migrating 3 tables"; sleep 0.1; echo done'))
    job = wait_until(lambda: _finished(batch, ns, "migrate"))
    assert job.status.succeeded == 1 and job.status.conditions[0].type == "Complete"
    assert job.status.completion_time is not None and job.status.start_time is not None
    pod = _pods(core, ns, "migrate")[0]
    assert pod.status.phase == "Succeeded"
    assert pod.status.container_statuses[0].state.terminated.exit_code == 0
    assert core.read_namespaced_pod_log(pod.metadata.name, ns) == "migrating 3 tables\ndone\n"
    assert core.read_namespaced_pod_log(pod.metadata.name, ns, tail_lines=1) == "done\n"
    stamped = core.read_namespaced_pod_log(pod.metadata.name, ns, timestamps=True)
    assert stamped.splitlines()[0].endswith("Z migrating 3 tables")


def test_job_fails_after_backoff_limit(batch: client.BatchV1Api, core: client.CoreV1Api, ns: str) -> None:
    batch.create_namespaced_job(ns, _job("broken", "echo boom; exit 3", backoff=1))
    job = wait_until(lambda: _finished(batch, ns, "broken"))
    failed = job.status.conditions[-1]
    assert (failed.type, failed.reason) == ("Failed", "BackoffLimitExceeded")
    assert job.status.failed == 2 and not job.status.succeeded
    pods = _pods(core, ns, "broken")
    assert {p.status.container_statuses[0].state.terminated.exit_code for p in pods} == {3}


def test_fail_once_then_succeeds(batch: client.BatchV1Api, ns: str) -> None:
    batch.create_namespaced_job(ns, _job("flaky", "echo ok", image="tool:fail-once", backoff=1))
    job = wait_until(lambda: _finished(batch, ns, "flaky"))
    assert job.status.conditions[-1].type == "Complete"
    assert (job.status.failed, job.status.succeeded) == (1, 1)


def test_follow_logs_streams_until_exit(batch: client.BatchV1Api, core: client.CoreV1Api, ns: str) -> None:
    batch.create_namespaced_job(ns, _job("tail", "echo first; sleep 0.3; echo second"))
    pods = wait_until(lambda: [p for p in _pods(core, ns, "tail") if p.status.phase == "Running"])
    resp = core.read_namespaced_pod_log(pods[0].metadata.name, ns, follow=True, _preload_content=False)
    lines = [line.decode() for line in resp.stream()]
    assert "".join(lines) == "first\nsecond\n"
    assert len(lines) == 2, "the second line arrives later, in its own chunk"


def test_logs_before_start_and_without_command(core: client.CoreV1Api, ns: str) -> None:
    core.create_namespaced_pod(
        ns, {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "app", "image": "shop:1.2"}]}}
    )
    with pytest.raises(client.ApiException) as err:
        core.read_namespaced_pod_log("p", ns)
    assert err.value.status == 400
    assert status_body(err.value)["message"] == 'container "app" in pod "p" is waiting to start: ContainerCreating'
    wait_until(lambda: core.read_namespaced_pod("p", ns).status.phase == "Running")
    assert core.read_namespaced_pod_log("p", ns) == "kubesim: container app started (image shop:1.2)\n"


def test_job_validation(batch: client.BatchV1Api, ns: str) -> None:
    bad = _job("bad", "true")
    bad["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    with pytest.raises(client.ApiException) as err:
        batch.create_namespaced_job(ns, bad)
    cause = status_body(err.value)["details"]["causes"][0]
    assert cause == {
        "reason": "FieldValueNotSupported",
        "field": "spec.template.spec.restartPolicy",
        "message": 'Unsupported value: "Always": supported values: "OnFailure", "Never"',
    }
