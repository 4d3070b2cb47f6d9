"""Stability per kind (`activities/kubernetes/stability.py`) on status shapes as API servers send them."""

from __future__ import annotations

from typing import Any

import pytest

from activities.kubernetes.stability import WAITING_FOR_OBSERVATION, stability


def obj(
    api_version: str,
    kind: str,
    spec: dict[str, Any] | None = None,
    status: dict[str, Any] | None = None,
    generation: int = 1,
    **meta: Any,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": "x", "namespace": "shop", "generation": generation, **meta},
    }
    if spec is not None:
        out["spec"] = spec
    if status is not None:
        out["status"] = status
    return out


def deployment(status: dict[str, Any], replicas: int = 3, generation: int = 2, **spec: Any) -> dict[str, Any]:
    return obj("apps/v1", "Deployment", {"replicas": replicas, **spec}, status, generation)


ROLLED_OUT = {
    "observedGeneration": 2,
    "replicas": 3,
    "updatedReplicas": 3,
    "readyReplicas": 3,
    "availableReplicas": 3,
    "conditions": [
        {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
        {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
    ],
}


@pytest.mark.parametrize(
    ("status", "stable", "reason"),
    [
        (ROLLED_OUT, True, "rolled out: 3/3 available"),
        ({**ROLLED_OUT, "observedGeneration": 1}, False, WAITING_FOR_OBSERVATION),
        ({}, False, WAITING_FOR_OBSERVATION),
        ({**ROLLED_OUT, "updatedReplicas": 1, "replicas": 4}, False, "1 of 3 replicas updated"),
        ({**ROLLED_OUT, "replicas": 4}, False, "1 old replicas pending termination"),
        ({**ROLLED_OUT, "availableReplicas": 2}, False, "2 of 3 updated replicas available"),
    ],
)
def test_deployment_follows_kubectl_rollout_status(status: dict[str, Any], stable: bool, reason: str) -> None:
    judged = stability(deployment(status))
    assert (judged.stable, judged.reason, judged.failed) == (stable, reason, False)


def test_a_stalled_deployment_fails_and_a_paused_one_has_nothing_to_wait_for() -> None:
    stalled = {
        **ROLLED_OUT,
        "updatedReplicas": 1,
        "conditions": [
            {
                "type": "Progressing",
                "status": "False",
                "reason": "ProgressDeadlineExceeded",
                "message": 'ReplicaSet "web-7d9f" has timed out progressing.',
            }
        ],
    }
    judged = stability(deployment(stalled))
    assert judged.failed and not judged.stable and "has timed out progressing" in judged.reason
    assert stability(deployment({}, paused=True)).stable


def test_replica_set_counts_ready_and_available_replicas() -> None:
    def rs(**status: Any) -> dict[str, Any]:
        return obj("apps/v1", "ReplicaSet", {"replicas": 2}, {"observedGeneration": 1, **status})

    assert stability(rs(replicas=2, readyReplicas=2, availableReplicas=2)).reason == "2/2 replicas ready"
    assert stability(rs(replicas=2, readyReplicas=1)).reason == "1 of 2 replicas ready (2 exist)"
    assert stability(rs(replicas=2, readyReplicas=2, availableReplicas=1)).reason == "1 of 2 replicas available"


def stateful_set(
    status: dict[str, Any], partition: int | None = None, strategy: str = "RollingUpdate"
) -> dict[str, Any]:
    update: dict[str, Any] = {"type": strategy}
    if partition is not None:
        update["rollingUpdate"] = {"partition": partition}
    return obj("apps/v1", "StatefulSet", {"replicas": 3, "updateStrategy": update}, status, generation=3)


def test_stateful_set_waits_for_ready_pods_and_the_update_revision() -> None:
    base = {
        "observedGeneration": 3,
        "replicas": 3,
        "readyReplicas": 3,
        "currentReplicas": 3,
        "updatedReplicas": 3,
        "currentRevision": "db-5c8f",
        "updateRevision": "db-5c8f",
    }
    assert stability(stateful_set(base)).reason == "rolled out: 3/3 ready at revision db-5c8f"
    rolling = {**base, "updatedReplicas": 1, "currentReplicas": 2, "updateRevision": "db-6d9a"}
    assert stability(stateful_set(rolling)).reason == "rolling update: 1 of 3 pods at revision db-6d9a"
    assert stability(stateful_set({**base, "readyReplicas": 2})).reason == "waiting for 1 pods to be ready (2/3)"
    assert stability(stateful_set({**base, "observedGeneration": 2})).reason == WAITING_FOR_OBSERVATION


def test_a_partitioned_stateful_set_is_stable_once_the_pods_above_the_partition_are_updated() -> None:
    status = {
        "observedGeneration": 3,
        "replicas": 3,
        "readyReplicas": 3,
        "updatedReplicas": 1,
        "currentRevision": "db-5c8f",
        "updateRevision": "db-6d9a",
    }
    judged = stability(stateful_set(status, partition=2))
    assert judged.stable and judged.reason == "partitioned rollout complete: 1 new pods updated (partition 2)"
    waiting = stability(stateful_set({**status, "updatedReplicas": 0}, partition=2))
    assert not waiting.stable and "0 of 1 new pods updated" in waiting.reason
    assert stability(stateful_set({}, strategy="OnDelete")).stable


def test_daemon_set_waits_for_updated_then_available_pods() -> None:
    def ds(**status: Any) -> dict[str, Any]:
        return obj(
            "apps/v1",
            "DaemonSet",
            {"updateStrategy": {"type": "RollingUpdate"}},
            {"observedGeneration": 1, "desiredNumberScheduled": 3, **status},
        )

    assert stability(ds(updatedNumberScheduled=2, numberAvailable=3)).reason == "2 of 3 new pods updated"
    assert stability(ds(updatedNumberScheduled=3, numberAvailable=2)).reason == "2 of 3 updated pods available"
    assert stability(ds(updatedNumberScheduled=3, numberAvailable=3)).stable


def test_job_is_stable_when_complete_and_failed_when_out_of_retries() -> None:
    def job(**status: Any) -> dict[str, Any]:
        return obj("batch/v1", "Job", {"completions": 2, "backoffLimit": 1}, status)

    running = stability(job(active=1, succeeded=1))
    assert not running.stable and running.reason == "running: 1 of 2 completions, 1 active, 0 failed"
    done = job(succeeded=2, conditions=[{"type": "Complete", "status": "True"}])
    assert stability(done).stable
    failed = stability(
        job(
            failed=2,
            conditions=[
                {
                    "type": "Failed",
                    "status": "True",
                    "reason": "BackoffLimitExceeded",
                    "message": "Job has reached the specified backoff limit",
                }
            ],
        )
    )
    assert failed.failed and "BackoffLimitExceeded" in failed.reason


def test_pod_ready_succeeded_failed_and_crash_looping() -> None:
    ready = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    assert stability(obj("v1", "Pod", {}, ready)).stable
    assert stability(obj("v1", "Pod", {}, {"phase": "Succeeded"})).stable
    assert stability(obj("v1", "Pod", {}, {"phase": "Failed", "reason": "Evicted"})).failed
    looping = {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "False"}],
        "containerStatuses": [
            {
                "name": "web",
                "ready": False,
                "restartCount": 4,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
            }
        ],
    }
    judged = stability(obj("v1", "Pod", {}, looping))
    assert not judged.stable and judged.reason == "Running, not ready (web: CrashLoopBackOff)"


def test_load_balancer_service_needs_an_ingress_and_other_services_do_not() -> None:
    def svc(type_: str, status: dict[str, Any]) -> dict[str, Any]:
        return obj("v1", "Service", {"type": type_, "ports": [{"port": 80}]}, status)

    assert stability(svc("ClusterIP", {"loadBalancer": {}})).stable
    assert not stability(svc("LoadBalancer", {"loadBalancer": {}})).stable
    assert stability(svc("LoadBalancer", {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}]}})).reason == (
        "load balancer at 203.0.113.7"
    )


def test_claim_is_stable_when_bound() -> None:
    assert stability(obj("v1", "PersistentVolumeClaim", {"volumeName": "pvc-1"}, {"phase": "Bound"})).stable
    pending = stability(obj("v1", "PersistentVolumeClaim", {}, {"phase": "Pending"}))
    assert not pending.stable and "Pending" in pending.reason
    assert stability(obj("v1", "PersistentVolumeClaim", {}, {"phase": "Lost"})).failed


def test_crd_waits_for_established_and_fails_on_refused_names() -> None:
    def crd(*conditions: dict[str, str]) -> dict[str, Any]:
        return obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", {}, {"conditions": list(conditions)})

    assert not stability(crd()).stable
    assert stability(crd({"type": "NamesAccepted", "status": "True"}, {"type": "Established", "status": "True"})).stable
    refused = stability(
        crd(
            {
                "type": "NamesAccepted",
                "status": "False",
                "reason": "KindConflict",
                "message": '"Cache" is already in use',
            }
        )
    )
    assert refused.failed and "already in use" in refused.reason


def test_any_other_kind_uses_observed_generation_then_ready_or_available() -> None:
    cert = obj(
        "cert-manager.io/v1",
        "Certificate",
        {"secretName": "tls"},
        {"conditions": [{"type": "Ready", "status": "False", "reason": "Issuing", "message": "Issuing certificate"}]},
    )
    judged = stability(cert)
    assert not judged.stable and judged.reason == "not ready: Issuing certificate"
    cert["status"]["conditions"][0].update(status="True")
    assert stability(cert).stable
    behind = obj("example.com/v1", "Cache", {}, {"observedGeneration": 1}, generation=2)
    assert stability(behind).reason == WAITING_FOR_OBSERVATION
    available = obj(
        "apiregistration.k8s.io/v1",
        "APIService",
        {},
        {"conditions": [{"type": "Available", "status": "False", "reason": "MissingEndpoints"}]},
    )
    assert stability(available).reason == "not available: MissingEndpoints"
    assert stability(obj("v1", "ConfigMap")).reason == "applied (nothing to wait for)"
    hpa = obj(
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        {"maxReplicas": 5},
        {"currentReplicas": 2, "conditions": [{"type": "ScalingActive", "status": "False"}]},
    )
    assert stability(hpa).stable


def test_an_object_being_deleted_is_not_stable() -> None:
    assert not stability(obj("v1", "ConfigMap", deletionTimestamp="2026-12-01T10:00:00Z")).stable
