"""The kinds kubesim serves, and the discovery documents that describe them.

Discovery shapes (`APIVersions`, `APIGroupList`, `APIGroup`, `APIResourceList` with `name`,
`singularName`, `namespaced`, `kind`, `verbs`, `shortNames`, `categories`) follow kubernetes/kubernetes
`staging/src/k8s.io/apimachinery/pkg/apis/meta/v1/types.go`; `/version` follows `version.Info` in
`staging/src/k8s.io/apimachinery/pkg/version/types.go`. kubesim only serves the legacy (unaggregated)
discovery format: kubectl asks for the aggregated one in `Accept` but falls back when the server answers
plain `application/json`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]

KUBE_VERSION = "v1.31.0-kubesim"

ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@dataclass(frozen=True)
class ResourceType:
    group: str  # "" for the core group
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()  # "status", "scale", "log"
    # Kinds whose spec changes bump metadata.generation (those with a controller that reports
    # status.observedGeneration, plus the others that have it on a real server).
    has_generation: bool = False
    verbs: tuple[str, ...] = tuple(ALL_VERBS)
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> str:
        """Storage key, e.g. `pods` or `deployments.apps`."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"


_STATUS = ("status",)
_SCALED = ("status", "scale")

RESOURCES: tuple[ResourceType, ...] = (
    ResourceType(
        "", "v1", "namespaces", "namespace", "Namespace", namespaced=False, short_names=("ns",),
        subresources=_STATUS, verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
    ),
    ResourceType(
        "", "v1", "pods", "pod", "Pod", short_names=("po",), categories=("all",),
        subresources=("status", "log"),
    ),
    ResourceType(
        "", "v1", "services", "service", "Service", short_names=("svc",), categories=("all",),
        subresources=_STATUS, verbs=("create", "delete", "deletecollection", "get", "list", "patch", "update",
                                     "watch"),
    ),
    ResourceType("", "v1", "endpoints", "endpoints", "Endpoints", short_names=("ep",)),
    ResourceType("", "v1", "configmaps", "configmap", "ConfigMap", short_names=("cm",)),
    ResourceType("", "v1", "secrets", "secret", "Secret"),
    ResourceType("", "v1", "events", "event", "Event", short_names=("ev",)),
    ResourceType(
        "apps", "v1", "replicasets", "replicaset", "ReplicaSet", short_names=("rs",), categories=("all",),
        subresources=_SCALED, has_generation=True,
    ),
    ResourceType(
        "apps", "v1", "deployments", "deployment", "Deployment", short_names=("deploy",), categories=("all",),
        subresources=_SCALED, has_generation=True,
    ),
    ResourceType(
        "networking.k8s.io", "v1", "networkpolicies", "networkpolicy", "NetworkPolicy", short_names=("netpol",),
        has_generation=True,
    ),
    ResourceType(
        "autoscaling", "v2", "horizontalpodautoscalers", "horizontalpodautoscaler", "HorizontalPodAutoscaler",
        short_names=("hpa",), categories=("all",), subresources=_STATUS, has_generation=True,
    ),
    ResourceType(
        "batch", "v1", "jobs", "job", "Job", categories=("all",), subresources=_STATUS, has_generation=True,
    ),
)

_BY_PATH: dict[tuple[str, str, str], ResourceType] = {(r.group, r.version, r.plural): r for r in RESOURCES}
_BY_KEY: dict[str, ResourceType] = {r.key: r for r in RESOURCES}


def lookup(group: str, version: str, plural: str) -> ResourceType | None:
    return _BY_PATH.get((group, version, plural))


def by_key(key: str) -> ResourceType:
    return _BY_KEY[key]


def by_kind(api_version: str, kind: str) -> ResourceType | None:
    for r in RESOURCES:
        if r.api_version == api_version and r.kind == kind:
            return r
    return None


POD = by_key("pods")
NAMESPACE = by_key("namespaces")
SERVICE = by_key("services")
ENDPOINTS = by_key("endpoints")
EVENT = by_key("events")
REPLICASET = by_key("replicasets.apps")
DEPLOYMENT = by_key("deployments.apps")
JOB = by_key("jobs.batch")
HPA = by_key("horizontalpodautoscalers.autoscaling")


def groups() -> dict[str, list[str]]:
    """Non-core groups and their versions, in registration order."""
    out: dict[str, list[str]] = {}
    for r in RESOURCES:
        if r.group and r.version not in out.setdefault(r.group, []):
            out[r.group].append(r.version)
    return out


def version_info() -> Obj:
    return {
        "major": "1",
        "minor": "31",
        "gitVersion": KUBE_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2024-08-13T00:00:00Z",
        "goVersion": "kubesim (python)",
        "compiler": "kubesim",
        "platform": "linux/amd64",
    }


def core_versions(server_address: str) -> Obj:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _group_doc(name: str, versions: list[str]) -> Obj:
    entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": entries, "preferredVersion": entries[0]}


def group_list() -> Obj:
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group_doc(g, vs) for g, vs in groups().items()],
    }


def group(name: str) -> Obj | None:
    versions = groups().get(name)
    if versions is None:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_doc(name, versions)}


def resource_list(group_name: str, version: str) -> Obj | None:
    served = [r for r in RESOURCES if r.group == group_name and r.version == version]
    if not served:
        return None
    entries: list[Obj] = []
    for r in served:
        entry: Obj = {
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": list(r.verbs),
        }
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.categories:
            entry["categories"] = list(r.categories)
        entries.append(entry)
        for sub in r.subresources:
            entries.append(_subresource_entry(r, sub))
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group_name}/{version}" if group_name else version,
        "resources": entries,
    }


def _subresource_entry(r: ResourceType, sub: str) -> Obj:
    entry: Obj = {"name": f"{r.plural}/{sub}", "singularName": "", "namespaced": r.namespaced}
    if sub == "scale":
        entry.update(group="autoscaling", version="v1", kind="Scale", verbs=["get", "patch", "update"])
    elif sub == "log":
        entry.update(kind="Pod", verbs=["get"])
    else:
        entry.update(kind=r.kind, verbs=["get", "patch", "update"])
    return entry
