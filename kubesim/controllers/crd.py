"""CustomResourceDefinition controller: serves a CRD's kind shortly after it is created, removes it after.

Follows the apiextensions-apiserver: a new CRD gets `NamesAccepted` (reason NoConflicts) and then
`Established` (reason InitialNamesAccepted) conditions, `acceptedNames` and `storedVersions`, and the
`customresourcecleanup.apiextensions.k8s.io` finalizer; deleting it marks it Terminating, deletes every
custom resource of the kind, then lets the CRD go (apiextensions `pkg/controller/{establish,finalizer}`).
Custom resources are stored schemaless: the CRD's `openAPIV3Schema` is kept but not enforced.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

from kubesim.controllers.base import Context, condition, is_terminating, merge_conditions
from kubesim.resources import CRD, Registry, ResourceType
from kubesim.store import Store

Obj = dict[str, Any]
CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def _version_priority(name: str) -> tuple[int, int, int, str]:
    """Kube-aware version order (v2 > v1 > v1beta2 > v1beta1 > v1alpha1 > others), for the preferred version."""
    match = _VERSION.match(name)
    if match is None:
        return (3, 0, 0, name)
    stage = {None: 0, "beta": 1, "alpha": 2}[match.group(2)]
    return (stage, -int(match.group(1)), -int(match.group(3) or 0), name)


def served_types(crd: Obj) -> tuple[ResourceType, ...]:
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    out: list[ResourceType] = []
    for version in sorted(spec.get("versions") or [], key=lambda v: _version_priority(str(v.get("name")))):
        if not version.get("served", True):
            continue
        subresources = version.get("subresources") or {}
        out.append(ResourceType(
            group=str(spec["group"]), version=str(version["name"]), plural=str(names["plural"]),
            singular=str(names.get("singular") or str(names["kind"]).lower()), kind=str(names["kind"]),
            namespaced=spec.get("scope") == "Namespaced", short_names=tuple(names.get("shortNames") or ()),
            categories=tuple(names.get("categories") or ()),
            subresources=tuple(s for s in ("status", "scale") if s in subresources),
            has_generation=True, custom=True,
        ))
    return tuple(out)


@dataclass
class CustomResourceDefinitionController:
    ctx: Context
    _pending: set[str] = field(default_factory=set)

    def reconcile(self) -> None:
        registry = self.ctx.api.registry
        seen: set[str] = set()
        for crd in self.ctx.store.list(CRD.key):
            name = crd["metadata"]["name"]
            seen.add(name)
            if is_terminating(crd):
                self._finalize(crd)
            elif not _established(crd):
                if name not in self._pending:
                    self._pending.add(name)
                    # "After a brief moment", as the establishing controller's queue does.
                    self.ctx.later(self.ctx.jittered(self.ctx.ready_delay / 2),
                                   functools.partial(self._establish, name))
            elif registry.custom(name) != served_types(crd):
                registry.set_custom(name, served_types(crd))
        for name in list(registry.custom_names()):
            if name not in seen:
                self._remove_instances(name)

    def _establish(self, name: str) -> None:
        self._pending.discard(name)
        crd = self.ctx.store.get(CRD.key, "", name)
        if crd is None or is_terminating(crd):
            return
        spec = crd["spec"]
        clash = self._kind_clash(crd)
        old = crd.get("status") or {}
        if clash:
            conditions = [condition("NamesAccepted", "False", "KindConflict", clash),
                          condition("Established", "False", "NotAccepted", "not all names are accepted")]
            status = {**old, "conditions": merge_conditions(old.get("conditions") or [], conditions)}
            self.ctx.write_status(CRD, crd, status)
            return
        conditions = [condition("NamesAccepted", "True", "NoConflicts", "no conflicts found"),
                      condition("Established", "True", "InitialNamesAccepted", "the initial names have been accepted")]
        storage = next(v["name"] for v in spec["versions"] if v.get("storage"))
        stored = list(old.get("storedVersions") or [])
        status = {
            "conditions": merge_conditions(old.get("conditions") or [], conditions),
            "acceptedNames": spec["names"],
            "storedVersions": stored if storage in stored else [*stored, storage],
        }
        finalizers = crd["metadata"].setdefault("finalizers", [])
        if CLEANUP_FINALIZER not in finalizers:
            finalizers.append(CLEANUP_FINALIZER)
        self.ctx.api.registry.set_custom(name, served_types(crd))
        self.ctx.write_status(CRD, crd, status)
        self.ctx.wake()

    def _kind_clash(self, crd: Obj) -> str:
        spec = crd["spec"]
        for other in self.ctx.api.registry.all():
            if other.group == spec["group"] and other.kind == spec["names"]["kind"] and \
                    other.plural != spec["names"]["plural"]:
                return f'"{other.kind}" is already in use'
        return ""

    def _finalize(self, crd: Obj) -> None:
        name = crd["metadata"]["name"]
        self._remove_instances(name)
        self.ctx.store.delete(CRD.key, "", name)

    def _remove_instances(self, name: str) -> None:
        """Stop serving the kind and delete its objects (the finalizer's job on a real server)."""
        types = self.ctx.api.registry.custom(name)
        self.ctx.api.registry.remove_custom(name)
        if not types:
            return
        key = types[0].key
        for obj in self.ctx.store.list(key):
            self.ctx.store.delete(key, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])


def register_established(store: Store, registry: Registry) -> None:
    """Serve the kinds of CRDs loaded from a state file at once, before the first reconcile pass."""
    for crd in store.list(CRD.key):
        if _established(crd) and not is_terminating(crd):
            registry.set_custom(crd["metadata"]["name"], served_types(crd))


def _established(crd: Obj) -> bool:
    return any(c.get("type") == "Established" and c.get("status") == "True"
               for c in (crd.get("status") or {}).get("conditions") or [])
