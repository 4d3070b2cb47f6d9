"""The kinds kubesim serves: one table of built-in resources plus the custom ones CRDs add at run time.

Everything that describes a kind (discovery, OpenAPI, REST routing, scope, subresources) is derived from
this table, so a kind is added in one place. Custom resources are added to a `Registry` when their
CustomResourceDefinition becomes Established and removed when it goes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]

KUBE_VERSION = "v1.31.0-kubesim"

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
NO_COLLECTION_DELETE = ("create", "delete", "get", "list", "patch", "update", "watch")


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
    verbs: tuple[str, ...] = ALL_VERBS
    custom: bool = False  # served because a CustomResourceDefinition says so (schemaless storage)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> str:
        """Storage key, e.g. `pods` or `deployments.apps` (shared by all versions of a resource)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"


_STATUS = ("status",)
_SCALED = ("status", "scale")
_RBAC = "rbac.authorization.k8s.io"


def _r(group: str, version: str, plural: str, kind: str, **options: Any) -> ResourceType:
    return ResourceType(group, version, plural, kind.lower(), kind, **options)


BUILTIN: tuple[ResourceType, ...] = (
    _r("", "v1", "namespaces", "Namespace", namespaced=False, short_names=("ns",), subresources=_STATUS,
       verbs=NO_COLLECTION_DELETE),
    _r("", "v1", "nodes", "Node", namespaced=False, short_names=("no",), subresources=_STATUS),
    _r("", "v1", "pods", "Pod", short_names=("po",), categories=("all",), subresources=("status", "log")),
    _r("", "v1", "services", "Service", short_names=("svc",), categories=("all",), subresources=_STATUS),
    ResourceType("", "v1", "endpoints", "endpoints", "Endpoints", short_names=("ep",)),
    _r("", "v1", "configmaps", "ConfigMap", short_names=("cm",)),
    _r("", "v1", "secrets", "Secret"),
    _r("", "v1", "events", "Event", short_names=("ev",)),
    _r("", "v1", "serviceaccounts", "ServiceAccount", short_names=("sa",)),
    _r("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", short_names=("pvc",), subresources=_STATUS),
    _r("apps", "v1", "replicasets", "ReplicaSet", short_names=("rs",), categories=("all",),
       subresources=_SCALED, has_generation=True),
    _r("apps", "v1", "deployments", "Deployment", short_names=("deploy",), categories=("all",),
       subresources=_SCALED, has_generation=True),
    _r("apps", "v1", "statefulsets", "StatefulSet", short_names=("sts",), categories=("all",),
       subresources=_SCALED, has_generation=True),
    _r("apps", "v1", "daemonsets", "DaemonSet", short_names=("ds",), categories=("all",),
       subresources=_STATUS, has_generation=True),
    _r("apps", "v1", "controllerrevisions", "ControllerRevision"),
    _r("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", short_names=("netpol",),
       has_generation=True),
    _r("networking.k8s.io", "v1", "ingresses", "Ingress", short_names=("ing",), subresources=_STATUS,
       has_generation=True),
    _r("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", short_names=("hpa",),
       categories=("all",), subresources=_STATUS, has_generation=True),
    _r("batch", "v1", "jobs", "Job", categories=("all",), subresources=_STATUS, has_generation=True),
    _r("batch", "v1", "cronjobs", "CronJob", short_names=("cj",), categories=("all",), subresources=_STATUS,
       has_generation=True),
    _r("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", short_names=("pdb",),
       subresources=_STATUS, has_generation=True),
    _r(_RBAC, "v1", "roles", "Role"),
    _r(_RBAC, "v1", "rolebindings", "RoleBinding"),
    _r(_RBAC, "v1", "clusterroles", "ClusterRole", namespaced=False),
    _r(_RBAC, "v1", "clusterrolebindings", "ClusterRoleBinding", namespaced=False),
    _r("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", namespaced=False,
       short_names=("crd", "crds"), categories=("api-extensions",), subresources=_STATUS, has_generation=True),
)

_BUILTIN_BY_KEY: dict[str, ResourceType] = {r.key: r for r in BUILTIN}


def builtin(key: str) -> ResourceType:
    return _BUILTIN_BY_KEY[key]


POD = builtin("pods")
NODE = builtin("nodes")
NAMESPACE = builtin("namespaces")
SERVICE = builtin("services")
ENDPOINTS = builtin("endpoints")
EVENT = builtin("events")
PVC = builtin("persistentvolumeclaims")
REPLICASET = builtin("replicasets.apps")
DEPLOYMENT = builtin("deployments.apps")
STATEFULSET = builtin("statefulsets.apps")
DAEMONSET = builtin("daemonsets.apps")
CONTROLLER_REVISION = builtin("controllerrevisions.apps")
JOB = builtin("jobs.batch")
HPA = builtin("horizontalpodautoscalers.autoscaling")
PDB = builtin("poddisruptionbudgets.policy")
CRD = builtin("customresourcedefinitions.apiextensions.k8s.io")


class Registry:
    """What one kubesim serves right now: the built-in table plus Established custom resources."""

    def __init__(self) -> None:
        self._custom: dict[str, tuple[ResourceType, ...]] = {}  # by CRD name

    def all(self) -> list[ResourceType]:
        out = list(BUILTIN)
        for types in self._custom.values():
            out.extend(types)
        return out

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        for r in self.all():
            if r.group == group and r.version == version and r.plural == plural:
                return r
        return None

    def by_key(self, key: str) -> ResourceType | None:
        found = _BUILTIN_BY_KEY.get(key)
        if found is not None:
            return found
        return next((r for types in self._custom.values() for r in types if r.key == key), None)

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        return next((r for r in self.all() if r.api_version == api_version and r.kind == kind), None)

    def set_custom(self, crd_name: str, types: tuple[ResourceType, ...]) -> None:
        self._custom[crd_name] = types

    def remove_custom(self, crd_name: str) -> None:
        self._custom.pop(crd_name, None)

    def custom_names(self) -> list[str]:
        return list(self._custom)

    def custom(self, crd_name: str) -> tuple[ResourceType, ...]:
        return self._custom.get(crd_name, ())

    def groups(self) -> dict[str, list[str]]:
        """Non-core groups and their versions, in registration order (preferred version first)."""
        out: dict[str, list[str]] = {}
        for r in self.all():
            if r.group and r.version not in out.setdefault(r.group, []):
                out[r.group].append(r.version)
        return out
