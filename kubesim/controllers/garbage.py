"""Garbage collector and namespace finaliser: cascading deletion through ownerReferences.

Follows https://kubernetes.io/docs/concepts/architecture/garbage-collection/ : with Background
propagation the owner goes at once and dependents whose owners are all gone follow; with Foreground
the owner keeps a deletionTimestamp and the `foregroundDeletion` finalizer until its dependents are
gone (they are deleted in foreground too); Orphan is handled by the API (ownerReferences removed
before the owner goes). A namespace being deleted is emptied, then removed.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from kubesim.controllers.base import Context, is_terminating
from kubesim.errors import ApiError
from kubesim.resources import NAMESPACE

Obj = dict[str, Any]


@dataclass
class GarbageCollector:
    ctx: Context

    def reconcile(self) -> None:
        store = self.ctx.store
        everything = [(key, obj) for key, obj in store.iter_all()]
        uids = {obj["metadata"]["uid"]: (key, obj) for key, obj in everything}
        dependents: dict[str, list[tuple[str, Obj]]] = {}
        for key, obj in everything:
            for ref in obj["metadata"].get("ownerReferences") or []:
                dependents.setdefault(str(ref.get("uid")), []).append((key, obj))
        for key, obj in everything:
            meta = obj["metadata"]
            refs = meta.get("ownerReferences") or []
            if refs and all(str(r.get("uid")) not in uids for r in refs):
                store.delete(key, meta.get("namespace", ""), meta["name"])
                continue
            foreground_owner = any(
                "foregroundDeletion" in (uids[str(r.get("uid"))][1]["metadata"].get("finalizers") or [])
                for r in refs if str(r.get("uid")) in uids
            )
            if foreground_owner and not is_terminating(obj):
                self._delete(key, obj, "Foreground")
        for key, obj in everything:
            meta = obj["metadata"]
            if "foregroundDeletion" in (meta.get("finalizers") or []) and not dependents.get(meta["uid"]):
                store.delete(key, meta.get("namespace", ""), meta["name"])
        for ns in store.list(NAMESPACE.key):
            if is_terminating(ns):
                name = ns["metadata"]["name"]
                for key, obj in everything:
                    if obj["metadata"].get("namespace") == name:
                        store.delete(key, name, obj["metadata"]["name"])
                store.delete(NAMESPACE.key, "", name)

    def _delete(self, key: str, obj: Obj, propagation: str) -> None:
        meta = obj["metadata"]
        rt = self.ctx.api.registry.by_key(key)
        if rt is None:  # a custom resource whose definition is going away; the CRD controller removes it
            return
        with contextlib.suppress(ApiError):  # already gone
            self.ctx.api.delete(rt, meta.get("namespace", ""), meta["name"], propagation)
