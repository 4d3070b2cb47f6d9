"""Discovery documents, built from the resource registry.

Shapes (`APIVersions`, `APIGroupList`, `APIGroup`, `APIResourceList` with `name`, `singularName`,
`namespaced`, `kind`, `verbs`, `shortNames`, `categories`) follow kubernetes/kubernetes
`staging/src/k8s.io/apimachinery/pkg/apis/meta/v1/types.go`; `/version` follows `version.Info` in
`staging/src/k8s.io/apimachinery/pkg/version/types.go`. Only the legacy (unaggregated) discovery format
is served: kubectl and client-go ask for the aggregated `apidiscovery.k8s.io/v2` one in `Accept` but
fall back when the server answers plain `application/json`.
"""

from __future__ import annotations

from typing import Any

from kubesim.resources import KUBE_VERSION, Registry, ResourceType

Obj = dict[str, Any]


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


def group_list(registry: Registry) -> Obj:
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group_doc(g, vs) for g, vs in registry.groups().items()],
    }


def group(registry: Registry, name: str) -> Obj | None:
    versions = registry.groups().get(name)
    if versions is None:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_doc(name, versions)}


def resource_list(registry: Registry, group_name: str, version: str) -> Obj | None:
    served = [r for r in registry.all() if r.group == group_name and r.version == version]
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
