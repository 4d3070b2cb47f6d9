"""Defaults and validation for the kinds added beside the first workloads: StatefulSet, DaemonSet,
PersistentVolumeClaim, CronJob, PodDisruptionBudget and CustomResourceDefinition.

Defaults mirror `pkg/apis/apps/v1/defaults.go`, `pkg/apis/batch/v1/defaults.go`, `pkg/apis/core/v1/defaults.go`
and apiextensions `v1/defaults.go`; validation keeps to the mistakes a manifest really makes (missing
schedule, CRD name not `<plural>.<group>`, no storage version).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubesim.errors import Cause

Obj = dict[str, Any]


def _required(field: str) -> Cause:
    return Cause("FieldValueRequired", "Required value", field)


def default(kind: str, obj: Obj, spec: Obj, default_pod_spec: Callable[[Obj], None]) -> None:
    if kind in ("StatefulSet", "DaemonSet"):
        default_pod_spec(spec.setdefault("template", {}).setdefault("spec", {}))
        spec.setdefault("revisionHistoryLimit", 10)
        strategy = spec.setdefault("updateStrategy", {"type": "RollingUpdate"})
        strategy.setdefault("type", "RollingUpdate")
    if kind == "StatefulSet":
        spec.setdefault("replicas", 1)
        spec.setdefault("podManagementPolicy", "OrderedReady")
        if spec["updateStrategy"]["type"] == "RollingUpdate":
            spec["updateStrategy"].setdefault("rollingUpdate", {}).setdefault("partition", 0)
        spec.setdefault("persistentVolumeClaimRetentionPolicy", {"whenDeleted": "Retain", "whenScaled": "Retain"})
    elif kind == "DaemonSet" and spec["updateStrategy"]["type"] == "RollingUpdate":
        rolling = spec["updateStrategy"].setdefault("rollingUpdate", {})
        rolling.setdefault("maxUnavailable", 1)
        rolling.setdefault("maxSurge", 0)
    elif kind == "PersistentVolumeClaim":
        spec.setdefault("volumeMode", "Filesystem")
    elif kind == "CronJob":
        spec.setdefault("concurrencyPolicy", "Allow")
        spec.setdefault("suspend", False)
        spec.setdefault("successfulJobsHistoryLimit", 3)
        spec.setdefault("failedJobsHistoryLimit", 1)
        job_spec = spec.setdefault("jobTemplate", {}).setdefault("spec", {})
        default_pod_spec(job_spec.setdefault("template", {}).setdefault("spec", {}))
    elif kind == "CustomResourceDefinition":
        names = spec.setdefault("names", {})
        if names.get("kind"):
            names.setdefault("singular", str(names["kind"]).lower())
            names.setdefault("listKind", f"{names['kind']}List")
        spec.setdefault("conversion", {"strategy": "None"})


def validate(kind: str, obj: Obj, old: Obj | None) -> list[Cause]:
    spec = obj.get("spec") or {}
    causes: list[Cause] = []
    if kind == "PersistentVolumeClaim":
        if not spec.get("accessModes"):
            causes.append(_required("spec.accessModes"))
        if not ((spec.get("resources") or {}).get("requests") or {}).get("storage"):
            causes.append(_required("spec.resources[storage]"))
    elif kind == "CronJob":
        if not spec.get("schedule"):
            causes.append(_required("spec.schedule"))
        template = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}
        if not (template.get("spec") or {}).get("containers"):
            causes.append(_required("spec.jobTemplate.spec.template.spec.containers"))
    elif kind == "PodDisruptionBudget":
        if "minAvailable" in spec and "maxUnavailable" in spec:
            causes.append(Cause("FieldValueInvalid", "minAvailable and maxUnavailable cannot be both set", "spec"))
    elif kind == "CustomResourceDefinition":
        causes.extend(_validate_crd(obj, old))
    return causes


def _validate_crd(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = obj.get("spec") or {}
    names = spec.get("names") or {}
    causes: list[Cause] = []
    for field in ("group", "scope"):
        if not spec.get(field):
            causes.append(_required(f"spec.{field}"))
    for field in ("plural", "kind"):
        if not names.get(field):
            causes.append(_required(f"spec.names.{field}"))
    if spec.get("scope") and spec["scope"] not in ("Namespaced", "Cluster"):
        causes.append(Cause("FieldValueNotSupported",
                            f'Unsupported value: "{spec["scope"]}": supported values: "Cluster", "Namespaced"',
                            "spec.scope"))
    expected = f"{names.get('plural')}.{spec.get('group')}"
    if obj["metadata"].get("name") != expected:
        causes.append(Cause("FieldValueInvalid", f'Invalid value: "{obj["metadata"].get("name")}": must be '
                            "spec.names.plural+\".\"+spec.group", "metadata.name"))
    versions = spec.get("versions") or []
    if not versions:
        causes.append(_required("spec.versions"))
    elif sum(1 for v in versions if isinstance(v, dict) and v.get("storage")) != 1:
        causes.append(Cause("FieldValueInvalid", "must have exactly one version marked as storage version",
                            "spec.versions"))
    if old is not None:
        for field in ("group", "scope"):
            if (old.get("spec") or {}).get(field) != spec.get(field):
                causes.append(Cause("FieldValueInvalid", "field is immutable", f"spec.{field}"))
    return causes
