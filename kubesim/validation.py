"""Defaulting and validation for the served kinds: the subset that catches real mistakes.

Cause reasons (`FieldValueRequired`, `FieldValueInvalid`, `FieldValueNotSupported`) and messages
("Required value", "Invalid value: ...", "field is immutable") follow kubernetes/kubernetes
`staging/src/k8s.io/apimachinery/pkg/util/validation/field/errors.go`; the name rules follow
`staging/src/k8s.io/apimachinery/pkg/util/validation/validation.go` (IsDNS1123Subdomain/Label).
Defaults mirror `pkg/apis/*/v1/defaults.go` for the fields clients read back.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
from typing import Any

from kubesim import kinds
from kubesim.errors import Cause, invalid
from kubesim.resources import ResourceType
from kubesim.selectors import match_label_selector

Obj = dict[str, Any]

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and "
    "must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    r"'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
    "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
# Kinds whose names must be DNS labels rather than subdomains.
_LABEL_NAMED = {"Namespace", "Service", "StatefulSet"}
# RBAC names only need to be valid path segments (ValidateRBACName), e.g. "system:controller:x".
_PATH_SEGMENT_NAMED = {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}
# Kinds that have a spec defaulted to {} when missing.
_SPEC_KINDS = {
    "Namespace", "Node", "Pod", "Service", "ReplicaSet", "Deployment", "StatefulSet", "DaemonSet", "Job",
    "CronJob", "HorizontalPodAutoscaler", "NetworkPolicy", "Ingress", "PodDisruptionBudget",
    "PersistentVolumeClaim", "CustomResourceDefinition",
}
_service_ips = itertools.count(10)


def required(field: str) -> Cause:
    return Cause("FieldValueRequired", "Required value", field)


def invalid_value(field: str, value: Any, detail: str) -> Cause:
    return Cause("FieldValueInvalid", f"Invalid value: {json.dumps(value)}: {detail}", field)


def immutable(field: str, value: Any) -> Cause:
    return Cause("FieldValueInvalid", f"Invalid value: {json.dumps(value)}: field is immutable", field)


def _image_pull_policy(image: str) -> str:
    tail = image.rsplit("/", 1)[-1]
    if "@" in tail:
        return "IfNotPresent"
    return "Always" if ":" not in tail or tail.endswith(":latest") else "IfNotPresent"


def default_pod_spec(spec: Obj) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("securityContext", {})
    for container in spec.get("containers") or []:
        if isinstance(container, dict):
            container.setdefault("imagePullPolicy", _image_pull_policy(str(container.get("image", ""))))
            container.setdefault("terminationMessagePath", "/dev/termination-log")
            container.setdefault("terminationMessagePolicy", "File")
            container.setdefault("resources", {})
            for port in container.get("ports") or []:
                port.setdefault("protocol", "TCP")


def _validate_pod_spec(spec: Any, path: str) -> list[Cause]:
    if not isinstance(spec, dict):
        return [required(path)]
    containers = spec.get("containers")
    if not containers:
        return [required(f"{path}.containers")]
    causes: list[Cause] = []
    for i, container in enumerate(containers):
        if not container.get("name"):
            causes.append(required(f"{path}.containers[{i}].name"))
        if not container.get("image"):
            causes.append(required(f"{path}.containers[{i}].image"))
    return causes


def _validate_workload(obj: Obj, causes: list[Cause]) -> None:
    """ReplicaSet and Deployment: selector present and matching the template's labels."""
    spec = obj.get("spec") or {}
    selector = spec.get("selector")
    replicas = spec.get("replicas", 1)
    if isinstance(replicas, int) and replicas < 0:
        causes.append(invalid_value("spec.replicas", replicas, "must be greater than or equal to 0"))
    if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        causes.append(required("spec.selector"))
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    if selector and not match_label_selector(selector, labels):
        causes.append(
            invalid_value("spec.template.metadata.labels", labels, "`selector` does not match template `labels`")
        )
    causes.extend(_validate_pod_spec(template.get("spec"), "spec.template.spec"))


def apply_defaults(rt: ResourceType, obj: Obj) -> None:
    kind = rt.kind
    spec = obj.setdefault("spec", {}) if kind in _SPEC_KINDS and not rt.custom else None
    if spec is not None and not isinstance(spec, dict):
        raise invalid(kind, rt.group, str(obj["metadata"].get("name", "")),
                      [invalid_value("spec", spec, "must be an object")])
    if kind == "Namespace" and spec is not None:
        name = obj["metadata"].get("name", "")
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
        spec.setdefault("finalizers", ["kubernetes"])
        obj.setdefault("status", {})["phase"] = obj.get("status", {}).get("phase", "Active")
    elif kind == "Pod" and spec is not None:
        default_pod_spec(spec)
        obj.setdefault("status", {}).setdefault("phase", "Pending")
    elif kind in ("ReplicaSet", "Deployment") and spec is not None:
        spec.setdefault("replicas", 1)
        default_pod_spec(spec.setdefault("template", {}).setdefault("spec", {}))
        if kind == "Deployment":
            spec.setdefault("revisionHistoryLimit", 10)
            spec.setdefault("progressDeadlineSeconds", 600)
            strategy = spec.setdefault("strategy", {"type": "RollingUpdate"})
            if strategy.get("type", "RollingUpdate") == "RollingUpdate":
                strategy["type"] = "RollingUpdate"
                rolling = strategy.setdefault("rollingUpdate", {})
                rolling.setdefault("maxSurge", "25%")
                rolling.setdefault("maxUnavailable", "25%")
    elif kind == "Job" and spec is not None:
        spec.setdefault("parallelism", 1)
        spec.setdefault("completions", 1)
        spec.setdefault("backoffLimit", 6)
        spec.setdefault("completionMode", "NonIndexed")
        spec.setdefault("suspend", False)
        default_pod_spec(spec.setdefault("template", {}).setdefault("spec", {}))
    elif kind == "Service" and spec is not None:
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if "clusterIP" not in spec:
            n = next(_service_ips)
            spec["clusterIP"] = f"10.96.{n // 250}.{n % 250 + 1}"
        spec.setdefault("clusterIPs", [spec["clusterIP"]])
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        for port in spec.get("ports") or []:
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
        obj.setdefault("status", {}).setdefault("loadBalancer", {})
    elif kind == "Secret":
        # stringData is write-only: the server folds it into base64 `data` (core/v1 Secret docs).
        for key, value in (obj.pop("stringData", None) or {}).items():
            obj.setdefault("data", {})[key] = base64.b64encode(str(value).encode()).decode()
        obj.setdefault("type", "Opaque")
    elif kind == "HorizontalPodAutoscaler" and spec is not None:
        spec.setdefault("minReplicas", 1)
    elif spec is not None:
        kinds.default(kind, obj, spec, default_pod_spec)


def validate(rt: ResourceType, obj: Obj, old: Obj | None) -> None:
    """Raise 422 Invalid with field causes if `obj` would not be accepted by a real server."""
    causes: list[Cause] = []
    meta = obj.get("metadata") or {}
    name = meta.get("name") or ""
    pattern, message = (_LABEL, _LABEL_MSG) if rt.kind in _LABEL_NAMED else (_SUBDOMAIN, _SUBDOMAIN_MSG)
    if not name:
        causes.append(Cause("FieldValueRequired", "name or generateName is required", "metadata.name"))
    elif rt.kind in _PATH_SEGMENT_NAMED:
        if name in (".", "..") or "/" in name or "%" in name:
            causes.append(invalid_value("metadata.name", name, "may not contain '/' or '%'"))
    elif not pattern.match(name) or len(name) > (63 if rt.kind in _LABEL_NAMED else 253):
        causes.append(invalid_value("metadata.name", name, message))
    spec = obj.get("spec") or {}
    if rt.kind == "Pod":
        causes.extend(_validate_pod_spec(spec, "spec"))
    elif rt.kind in ("ReplicaSet", "Deployment", "StatefulSet", "DaemonSet"):
        _validate_workload(obj, causes)
        if old is not None and old["spec"].get("selector") != spec.get("selector"):
            causes.append(immutable("spec.selector", spec.get("selector")))
    elif rt.kind == "Job":
        template = spec.get("template") or {}
        policy = (template.get("spec") or {}).get("restartPolicy")
        if policy not in ("Never", "OnFailure"):
            causes.append(Cause(
                "FieldValueNotSupported",
                f'Unsupported value: "{policy}": supported values: "OnFailure", "Never"',
                "spec.template.spec.restartPolicy",
            ))
        if spec.get("backoffLimit", 0) < 0:
            limit = spec["backoffLimit"]
            causes.append(invalid_value("spec.backoffLimit", limit, "must be greater than or equal to 0"))
        causes.extend(_validate_pod_spec(template.get("spec"), "spec.template.spec"))
        if old is not None and old["spec"].get("template") != spec.get("template"):
            causes.append(immutable("spec.template", spec.get("template")))
    elif rt.kind == "Service":
        if not spec.get("ports") and spec.get("clusterIP") != "None":
            causes.append(required("spec.ports"))
        if old is not None and old["spec"].get("clusterIP") != spec.get("clusterIP"):
            causes.append(immutable("spec.clusterIP", spec.get("clusterIP")))
    elif rt.kind == "HorizontalPodAutoscaler":
        if not spec.get("scaleTargetRef"):
            causes.append(required("spec.scaleTargetRef"))
        if not spec.get("maxReplicas"):
            causes.append(required("spec.maxReplicas"))
    elif not rt.custom:
        causes.extend(kinds.validate(rt.kind, obj, old))
    if causes:
        raise invalid(rt.kind, rt.group, name, causes)
