"""Is a Kubernetes object stable yet, and why (not)? One pure function over the object as the API
server sends it (a JSON dict), so it is tested on realistic status shapes without a server.

The rules are `kubectl rollout status` (kubectl `polymorphichelpers/rollout_status.go`) for
Deployment, StatefulSet and DaemonSet, and Spinnaker's manifest status (clouddriver's
`Kubernetes*Handler.status`) for the kinds kubectl has no rollout for: ReplicaSet, Job, Pod, Service,
PersistentVolumeClaim, CustomResourceDefinition. Any other kind is stable once its controller has
observed the latest generation (when it reports one) and its `Ready` or `Available` condition (when
it has one) is True; without either it is stable as soon as it is applied.

`failed` marks states that waiting cannot fix (a Job out of retries, a stalled rollout, a failed Pod,
a CRD whose names were refused): the wait gives up at once with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]


@dataclass(frozen=True)
class Stability:
    stable: bool
    reason: str
    failed: bool = False


def stability(obj: Obj) -> Stability:
    """Whether `obj` (a dict in the API's JSON shape) is stable, and a sentence saying why (not)."""
    meta = obj.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return Stability(False, "being deleted")
    judge = _BY_KIND.get(_group_kind(obj), _any_kind)
    return judge(obj)


def _group_kind(obj: Obj) -> tuple[str, str]:
    api_version = str(obj.get("apiVersion") or "")
    group = api_version.rpartition("/")[0]
    return group, str(obj.get("kind") or "")


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _conditions(status: Obj) -> dict[str, Obj]:
    return {str(c.get("type")): c for c in status.get("conditions") or [] if isinstance(c, dict)}


def _observed(obj: Obj) -> bool:
    """The controller has seen the latest spec (`observedGeneration` ≥ `generation`)."""
    generation = _int((obj.get("metadata") or {}).get("generation"))
    return _int((obj.get("status") or {}).get("observedGeneration")) >= generation


WAITING_FOR_OBSERVATION = "waiting for the controller to observe the new spec"


def _deployment(obj: Obj) -> Stability:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if spec.get("paused"):
        return Stability(True, "paused: no rollout to wait for")
    if not status or not _observed(obj):
        return Stability(False, WAITING_FOR_OBSERVATION)
    progressing = _conditions(status).get("Progressing") or {}
    if progressing.get("reason") == "ProgressDeadlineExceeded":
        return Stability(False, f"rollout stalled: {progressing.get('message', 'progress deadline exceeded')}", True)
    want = _int(spec.get("replicas"), 1)
    updated, total = _int(status.get("updatedReplicas")), _int(status.get("replicas"))
    available = _int(status.get("availableReplicas"))
    if updated < want:
        return Stability(False, f"{updated} of {want} replicas updated")
    if total > updated:
        return Stability(False, f"{total - updated} old replicas pending termination")
    if available < updated:
        return Stability(False, f"{available} of {updated} updated replicas available")
    return Stability(True, f"rolled out: {available}/{want} available")


def _replica_set(obj: Obj) -> Stability:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if not status or not _observed(obj):
        return Stability(False, WAITING_FOR_OBSERVATION)
    want = _int(spec.get("replicas"), 1)
    ready, total = _int(status.get("readyReplicas")), _int(status.get("replicas"))
    available = _int(status.get("availableReplicas"), ready)
    if ready < want or total != want:
        return Stability(False, f"{ready} of {want} replicas ready ({total} exist)")
    if available < want:
        return Stability(False, f"{available} of {want} replicas available")
    return Stability(True, f"{ready}/{want} replicas ready")


def _stateful_set(obj: Obj) -> Stability:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    strategy = spec.get("updateStrategy") or {}
    if strategy.get("type") == "OnDelete":
        return Stability(True, "updateStrategy OnDelete: pods change only when deleted, no rollout to wait for")
    if not status or _int(status.get("observedGeneration")) == 0 or not _observed(obj):
        return Stability(False, WAITING_FOR_OBSERVATION)
    want = _int(spec.get("replicas"), 1)
    ready = _int(status.get("readyReplicas"))
    if ready < want:
        return Stability(False, f"waiting for {want - ready} pods to be ready ({ready}/{want})")
    partition = _int((strategy.get("rollingUpdate") or {}).get("partition"))
    if partition > 0:
        updated = _int(status.get("updatedReplicas"))
        if updated < want - partition:
            return Stability(
                False, f"partitioned rollout: {updated} of {want - partition} new pods updated (partition {partition})"
            )
        return Stability(True, f"partitioned rollout complete: {updated} new pods updated (partition {partition})")
    update_revision = status.get("updateRevision")
    if update_revision != status.get("currentRevision"):
        updated = _int(status.get("updatedReplicas"))
        return Stability(False, f"rolling update: {updated} of {want} pods at revision {update_revision}")
    return Stability(True, f"rolled out: {ready}/{want} ready at revision {status.get('currentRevision')}")


def _daemon_set(obj: Obj) -> Stability:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if (spec.get("updateStrategy") or {}).get("type") == "OnDelete":
        return Stability(True, "updateStrategy OnDelete: pods change only when deleted, no rollout to wait for")
    if not status or not _observed(obj):
        return Stability(False, WAITING_FOR_OBSERVATION)
    desired = _int(status.get("desiredNumberScheduled"))
    updated, available = _int(status.get("updatedNumberScheduled")), _int(status.get("numberAvailable"))
    if updated < desired:
        return Stability(False, f"{updated} of {desired} new pods updated")
    if available < desired:
        return Stability(False, f"{available} of {desired} updated pods available")
    return Stability(True, f"rolled out: {available}/{desired} pods available")


def _job(obj: Obj) -> Stability:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    conditions = _conditions(status)
    failed = conditions.get("Failed") or {}
    if failed.get("status") == "True":
        return Stability(False, f"failed: {failed.get('reason', '')} {failed.get('message', '')}".strip(), True)
    if (conditions.get("Complete") or {}).get("status") == "True":
        return Stability(True, f"complete: {_int(status.get('succeeded'))} succeeded")
    completions = _int(spec.get("completions"), 1)
    return Stability(
        False,
        f"running: {_int(status.get('succeeded'))} of {completions} completions, "
        f"{_int(status.get('active'))} active, {_int(status.get('failed'))} failed",
    )


def _pod(obj: Obj) -> Stability:
    status = obj.get("status") or {}
    phase = status.get("phase") or "Pending"
    if phase == "Succeeded":
        return Stability(True, "succeeded")
    if phase == "Failed":
        why = status.get("reason") or status.get("message") or "a container failed"
        return Stability(False, f"failed: {why}", True)
    if (_conditions(status).get("Ready") or {}).get("status") == "True":
        return Stability(True, "running and ready")
    waiting = [
        f"{c.get('name')}: {(c.get('state') or {}).get('waiting', {}).get('reason')}"
        for c in status.get("containerStatuses") or []
        if isinstance(c, dict) and (c.get("state") or {}).get("waiting")
    ]
    return Stability(False, f"{phase}, not ready" + (f" ({'; '.join(waiting)})" if waiting else ""))


def _service(obj: Obj) -> Stability:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if spec.get("type") != "LoadBalancer":
        return Stability(True, f"{spec.get('type') or 'ClusterIP'} service")
    ingress = (status.get("loadBalancer") or {}).get("ingress") or []
    if not ingress:
        return Stability(False, "waiting for the load balancer to get an ingress address")
    first = ingress[0] if isinstance(ingress[0], dict) else {}
    return Stability(True, f"load balancer at {first.get('ip') or first.get('hostname') or 'an address'}")


def _claim(obj: Obj) -> Stability:
    phase = (obj.get("status") or {}).get("phase") or "Pending"
    if phase == "Bound":
        return Stability(True, f"bound to {(obj.get('spec') or {}).get('volumeName') or 'a volume'}")
    if phase == "Lost":
        return Stability(False, "lost: its volume is gone", True)
    return Stability(False, f"waiting for the claim to be bound (phase {phase})")


def _crd(obj: Obj) -> Stability:
    conditions = _conditions(obj.get("status") or {})
    names = conditions.get("NamesAccepted") or {}
    if names.get("status") == "False":
        return Stability(False, f"names not accepted: {names.get('message') or names.get('reason')}", True)
    if (conditions.get("Established") or {}).get("status") == "True":
        return Stability(True, "established")
    return Stability(False, "waiting for the CRD to be established")


def _any_kind(obj: Obj) -> Stability:
    raw = obj.get("status")
    status: Obj = raw if isinstance(raw, dict) else {}
    if "observedGeneration" in status and not _observed(obj):
        return Stability(False, WAITING_FOR_OBSERVATION)
    conditions = _conditions(status)
    for wanted in ("Ready", "Available"):
        condition = conditions.get(wanted)
        if condition is None:
            continue
        if condition.get("status") == "True":
            return Stability(True, f"{wanted}")
        why = condition.get("message") or condition.get("reason") or condition.get("status")
        return Stability(False, f"not {wanted.lower()}: {why}")
    return Stability(True, "applied (nothing to wait for)")


_BY_KIND: dict[tuple[str, str], Callable[[Obj], Stability]] = {
    ("apps", "Deployment"): _deployment,
    ("apps", "ReplicaSet"): _replica_set,
    ("apps", "StatefulSet"): _stateful_set,
    ("apps", "DaemonSet"): _daemon_set,
    ("batch", "Job"): _job,
    ("", "Pod"): _pod,
    ("", "Service"): _service,
    ("", "PersistentVolumeClaim"): _claim,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _crd,
}
