"""The API verbs (create, get, list, update, patch, delete, scale) over the store, free of HTTP.

Object and list shapes follow kubernetes/kubernetes
`staging/src/k8s.io/apiserver/pkg/registry/generic/registry/store.go` and `.../endpoints/handlers/`:
lists carry `metadata.resourceVersion` (and `continue` when paged) and their items carry no
kind/apiVersion; a delete that finishes at once answers a `Status` of
"Success" with `details{name, group, kind, uid}`, one that waits (foreground) answers the object.
Dry run (`dryRun=All`) runs defaulting and validation and answers without storing, as described in
https://kubernetes.io/docs/reference/using-api/api-concepts/#dry-run
"""

from __future__ import annotations

import base64
import copy
import json
import random
from typing import Any

import yaml

from kubesim import managedfields
from kubesim import patch as patching
from kubesim.errors import ApiError, already_exists, bad_request, conflict, not_found, success_status
from kubesim.resources import NAMESPACE, Registry, ResourceType
from kubesim.selectors import parse_field_selector, parse_label_selector
from kubesim.store import Store, new_uid, now_rfc3339
from kubesim.validation import apply_defaults, validate

Obj = dict[str, Any]

APPLY_PATCH = "application/apply-patch+yaml"

# Same alphabet as k8s.io/apimachinery/pkg/util/rand.String (no vowels, no confusable digits).
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def random_suffix(n: int = 5) -> str:
    return "".join(random.choice(_NAME_ALPHABET) for _ in range(n))


def _strip_list_item(obj: Obj) -> Obj:
    obj.pop("kind", None)
    obj.pop("apiVersion", None)
    return obj


class Api:
    def __init__(self, store: Store, registry: Registry | None = None) -> None:
        self.store = store
        self.registry = registry or Registry()

    # -- helpers -------------------------------------------------------------------------------------

    def existing(self, rt: ResourceType, namespace: str, name: str) -> Obj:
        obj = self.store.get(rt.key, namespace, name)
        if obj is None:
            raise not_found(rt.plural, rt.group, name)
        return obj

    def _check_namespace(self, rt: ResourceType, namespace: str, name: str) -> None:
        if not rt.namespaced:
            return
        ns = self.store.get(NAMESPACE.key, "", namespace)
        if ns is None:
            raise not_found("namespaces", "", namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise ApiError(
                403, "Forbidden",
                f'{rt.plural} "{name}" is forbidden: unable to create new content in namespace {namespace} '
                "because it is being terminated",
            )

    def _normalise_body(self, rt: ResourceType, namespace: str, body: Any) -> Obj:
        if not isinstance(body, dict):
            raise bad_request("the body of the request was in an unknown format")
        obj = copy.deepcopy(body)
        if obj.get("kind", rt.kind) != rt.kind or obj.get("apiVersion", rt.api_version) != rt.api_version:
            raise bad_request(f"the API version in the data ({obj.get('apiVersion')}) does not match the "
                              f"expected API version ({rt.api_version})")
        obj["kind"], obj["apiVersion"] = rt.kind, rt.api_version
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        if rt.namespaced:
            if meta.get("namespace", namespace) != namespace:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        return obj

    # -- verbs ---------------------------------------------------------------------------------------

    def create(
        self, rt: ResourceType, namespace: str, body: Any, dry_run: bool = False, manager: str | None = None
    ) -> Obj:
        """Create an object; `manager` (a field manager) is given the fields it set, unless None."""
        obj = self._normalise_body(rt, namespace, body)
        meta = obj["metadata"]
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + random_suffix()
        for field in ("resourceVersion", "deletionTimestamp", "uid"):
            meta.pop(field, None)
        self._check_namespace(rt, namespace, meta.get("name", ""))
        meta["uid"] = new_uid()
        meta["creationTimestamp"] = now_rfc3339()
        if rt.has_generation:
            meta["generation"] = 1
        if rt.kind == "Job":
            _default_job_selector(obj)
        apply_defaults(rt, obj)
        if "status" in rt.subresources and rt.kind not in ("Pod", "Namespace", "Service", "Node"):
            obj.pop("status", None)
        validate(rt, obj, None)
        if manager is not None:
            managedfields.record_update(rt, None, obj, manager)
        if self.store.get(rt.key, meta.get("namespace", ""), meta["name"]) is not None:
            raise already_exists(rt.plural, rt.group, meta["name"])
        if dry_run:
            return obj
        return self.store.create(rt.key, obj)

    def get(self, rt: ResourceType, namespace: str, name: str) -> Obj:
        return self.existing(rt, namespace, name)

    def list(
        self,
        rt: ResourceType,
        namespace: str | None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> Obj:
        labels_ok = parse_label_selector(label_selector)
        fields_ok = parse_field_selector(field_selector)
        items = [
            o for o in self.store.list(rt.key, namespace)
            if labels_ok(o["metadata"].get("labels") or {}) and fields_ok(o)
        ]
        meta: Obj = {"resourceVersion": str(self.store.rv)}
        if continue_token:
            try:
                state = json.loads(base64.urlsafe_b64decode(continue_token.encode()))
                after = (state["ns"], state["name"])
            except (ValueError, KeyError, TypeError) as exc:
                raise bad_request("continue key is not valid") from exc
            items = [o for o in items if (o["metadata"].get("namespace", ""), o["metadata"]["name"]) > after]
        if limit and len(items) > limit:
            last = items[limit - 1]["metadata"]
            token = json.dumps({"ns": last.get("namespace", ""), "name": last["name"]})
            meta["continue"] = base64.urlsafe_b64encode(token.encode()).decode()
            meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        return {
            "kind": rt.list_kind,
            "apiVersion": rt.api_version,
            "metadata": meta,
            "items": [_strip_list_item(o) for o in items],
        }

    def update(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        dry_run: bool = False,
        status: bool = False,
        manager: str | None = None,
    ) -> Obj:
        old = self.existing(rt, namespace, name)
        obj = self._normalise_body(rt, namespace, body)
        meta = obj["metadata"]
        if meta.get("name", name) != name:
            raise bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})"
            )
        meta["name"] = name
        sent_rv = meta.get("resourceVersion")
        if sent_rv and sent_rv != old["metadata"]["resourceVersion"]:
            raise conflict(rt.plural, rt.group, name)
        return self.commit_update(rt, old, obj, dry_run, status, manager)

    def commit_update(
        self,
        rt: ResourceType,
        old: Obj,
        obj: Obj,
        dry_run: bool,
        status: bool,
        manager: str | None = None,
        subresource: str = "",
    ) -> Obj:
        meta = obj["metadata"]
        old_meta = old["metadata"]
        for field in ("uid", "creationTimestamp", "deletionTimestamp", "generation"):
            if field in old_meta:
                meta[field] = old_meta[field]
            else:
                meta.pop(field, None)
        if status:
            # The status subresource changes only .status (registry strategies' PrepareForUpdate).
            new = copy.deepcopy(old)
            new["status"] = obj.get("status", {})
            if "managedFields" in meta:
                new["metadata"]["managedFields"] = meta["managedFields"]
            obj = new
        elif "status" in rt.subresources:
            if "status" in old:
                obj["status"] = old["status"]
            else:
                obj.pop("status", None)
        apply_defaults(rt, obj)
        if rt.has_generation and _generation_fields(obj) != _generation_fields(old):
            obj["metadata"]["generation"] = int(old_meta.get("generation", 1)) + 1
        validate(rt, obj, old)
        if manager is not None:
            managedfields.record_update(rt, old, obj, manager, "status" if status else subresource)
        if dry_run:
            obj["metadata"]["resourceVersion"] = old_meta["resourceVersion"]
            return obj
        if _same(obj, old):
            return old  # a no-op write keeps the resourceVersion, as with etcd-backed storage
        stored = self.store.update(rt.key, obj)
        final = obj["metadata"]
        if final.get("deletionTimestamp") and not final.get("finalizers") and rt is not NAMESPACE:
            self.store.delete(rt.key, final.get("namespace", ""), final["name"])  # the last finalizer went
        return stored

    def patch(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        raw: bytes,
        content_type: str,
        dry_run: bool = False,
        status: bool = False,
        manager: str | None = None,
        force: bool = False,
    ) -> Obj:
        kind = content_type.split(";")[0].strip().lower()
        try:
            body = yaml.safe_load(raw) if kind == APPLY_PATCH else json.loads(raw or b"null")
        except (ValueError, yaml.YAMLError) as exc:
            raise bad_request(f"error decoding patch: {exc}") from exc
        current = self.store.get(rt.key, namespace, name)
        if kind == APPLY_PATCH:
            return self._server_side_apply(rt, namespace, name, current, body, manager or "", force, dry_run, status)
        if current is None:
            raise not_found(rt.plural, rt.group, name)
        patched = self.apply_patch(kind, current, body)
        if not isinstance(patched, dict):
            raise bad_request("patch produced a non-object")
        sent_rv = (patched.get("metadata") or {}).get("resourceVersion")
        if sent_rv and sent_rv != current["metadata"]["resourceVersion"]:
            raise conflict(rt.plural, rt.group, name)
        obj = self._normalise_body(rt, namespace, patched)
        if obj["metadata"].get("name") != name:
            raise bad_request("the name of the object does not match the name on the URL")
        return self.commit_update(rt, current, obj, dry_run, status, manager)

    def _server_side_apply(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        current: Obj | None,
        body: Any,
        manager: str,
        force: bool,
        dry_run: bool,
        status: bool,
    ) -> Obj:
        config = self._normalise_body(rt, namespace, body)
        if not isinstance(body, dict) or not body.get("apiVersion") or not body.get("kind"):
            raise bad_request("apiVersion and kind must be set in an apply configuration")
        if config["metadata"].get("name", name) != name:
            raise bad_request("the name of the object does not match the name on the URL")
        config["metadata"]["name"] = name
        if current is None:
            if status:
                raise not_found(rt.plural, rt.group, name)
            merged = managedfields.apply(rt, None, config, manager, force)
            return self.create(rt, namespace, merged, dry_run)
        merged = managedfields.apply(rt, current, config, manager, force, "status" if status else "")
        return self.commit_update(rt, current, self._normalise_body(rt, namespace, merged), dry_run, status)

    @staticmethod
    def apply_patch(kind: str, current: Obj, body: Any) -> Any:
        if kind == "application/json-patch+json":
            return patching.json_patch(current, body)
        if kind == "application/merge-patch+json":
            return patching.merge_patch(current, body)
        if kind == "application/strategic-merge-patch+json":
            return patching.strategic_merge_patch(current, body)
        raise ApiError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - "
                       f"accepted media types include: application/json-patch+json, application/merge-patch+json, "
                       f"application/apply-patch+yaml, application/strategic-merge-patch+json (got {kind})")

    def delete(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        propagation: str | None = None,
        dry_run: bool = False,
        preconditions: Obj | None = None,
    ) -> Obj:
        obj = self.existing(rt, namespace, name)
        meta = obj["metadata"]
        pre = preconditions or {}
        if pre.get("uid") and pre["uid"] != meta["uid"]:
            raise conflict(rt.plural, rt.group, name)
        if pre.get("resourceVersion") and pre["resourceVersion"] != meta["resourceVersion"]:
            raise conflict(rt.plural, rt.group, name)
        if propagation is None:
            # batch/v1 Jobs still default to orphaning their pods over the REST API (kubectl asks for
            # Background explicitly); everything else defaults to Background.
            propagation = "Orphan" if rt.kind == "Job" else "Background"
        if propagation not in ("Orphan", "Background", "Foreground"):
            raise bad_request(f"propagationPolicy {propagation!r} is not supported")
        details = {"name": name, "group": rt.group, "kind": rt.plural, "uid": meta["uid"]}
        if not rt.group:
            details.pop("group")
        if dry_run:
            return success_status(details)
        if meta.get("finalizers") and propagation != "Foreground":
            # Finalizers hold the object (with a deletionTimestamp) until their controllers remove them.
            if not meta.get("deletionTimestamp"):
                meta["deletionTimestamp"] = now_rfc3339()
                meta["deletionGracePeriodSeconds"] = 0
                obj = self.store.update(rt.key, obj)
            return obj
        if rt is NAMESPACE or propagation == "Foreground":
            # Deletion waits for dependents (or namespace contents); the garbage collector finishes it.
            if not meta.get("deletionTimestamp"):
                meta["deletionTimestamp"] = now_rfc3339()
                meta["deletionGracePeriodSeconds"] = 0
                if rt is NAMESPACE:
                    obj.setdefault("status", {})["phase"] = "Terminating"
                else:
                    meta["finalizers"] = [*meta.get("finalizers", []), "foregroundDeletion"]
                    if rt.has_generation:
                        meta["generation"] = int(meta.get("generation", 1)) + 1
                obj = self.store.update(rt.key, obj)
            return obj
        if propagation == "Orphan":
            self.orphan_dependents(meta["uid"])
        gone = self.store.delete(rt.key, namespace, name)
        if rt.kind == "Pod" and gone is not None:
            return gone
        return success_status(details)

    def orphan_dependents(self, owner_uid: str) -> None:
        for key, obj in list(self.store.iter_all()):
            refs = obj["metadata"].get("ownerReferences") or []
            if any(r.get("uid") == owner_uid for r in refs):
                changed = copy.deepcopy(obj)
                changed["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != owner_uid]
                if not changed["metadata"]["ownerReferences"]:
                    del changed["metadata"]["ownerReferences"]
                self.store.update(key, changed)

    def delete_collection(
        self, rt: ResourceType, namespace: str | None, label_selector: str | None, field_selector: str | None,
        propagation: str | None, dry_run: bool,
    ) -> Obj:
        listed = self.list(rt, namespace, label_selector, field_selector)
        for item in listed["items"]:
            meta = item["metadata"]
            self.delete(rt, meta.get("namespace", ""), meta["name"], propagation, dry_run)
        return listed

    # -- scale subresource ---------------------------------------------------------------------------

def _generation_fields(obj: Obj) -> Obj:
    """What a generation counts: everything but metadata and status (spec, for built-in kinds)."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def _same(a: Obj, b: Obj) -> bool:
    a2, b2 = copy.deepcopy(a), copy.deepcopy(b)
    a2["metadata"].pop("resourceVersion", None)
    b2["metadata"].pop("resourceVersion", None)
    return a2 == b2


def _default_job_selector(obj: Obj) -> None:
    """Jobs get a generated selector on their uid (`manualSelector` unset), as the batch registry does."""
    spec = obj.setdefault("spec", {})
    if spec.get("manualSelector"):
        return
    uid = obj["metadata"]["uid"]
    name = obj["metadata"]["name"]
    spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    labels = spec.setdefault("template", {}).setdefault("metadata", {}).setdefault("labels", {})
    labels.update({
        "batch.kubernetes.io/controller-uid": uid,
        "batch.kubernetes.io/job-name": name,
        "controller-uid": uid,
        "job-name": name,
    })
