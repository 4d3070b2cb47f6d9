"""ControllerRevisions: the pod-template history of StatefulSets and DaemonSets.

As in kubernetes/kubernetes `pkg/controller/history/controller_history.go`, each distinct template is
stored once as an `apps/v1` ControllerRevision owned by the workload, named `<owner>-<hash>`, with
`data` holding the patch `{"spec": {"template": {..., "$patch": "replace"}}}` that `kubectl rollout
undo` applies, and an increasing `revision`. The hash is kubesim's own (FNV in the real controller).
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from kubesim.controllers.base import Context, controller_ref
from kubesim.resources import CONTROLLER_REVISION

Obj = dict[str, Any]


def template_hash(template: Obj) -> str:
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()
    # Same alphabet as pod-template-hash values (no vowels), ten characters.
    return "".join("bcdfghjklmnpqrstvwxz2456789"[int(digest[i:i + 2], 16) % 27] for i in range(0, 20, 2))


def owned_revisions(ctx: Context, owner: Obj) -> list[Obj]:
    uid = owner["metadata"]["uid"]
    revisions = [r for r in ctx.store.list(CONTROLLER_REVISION.key, owner["metadata"]["namespace"])
                 if any(ref.get("uid") == uid for ref in r["metadata"].get("ownerReferences") or [])]
    return sorted(revisions, key=lambda r: int(r.get("revision", 0)))


def ensure_revision(ctx: Context, owner: Obj, labels: dict[str, str]) -> str:
    """The name of the revision for `owner`'s current template, creating (or re-numbering) it."""
    template = owner["spec"].get("template") or {}
    name = f"{owner['metadata']['name']}-{template_hash(template)}"
    namespace = owner["metadata"]["namespace"]
    revisions = owned_revisions(ctx, owner)
    latest = max((int(r.get("revision", 0)) for r in revisions), default=0)
    existing = next((r for r in revisions if r["metadata"]["name"] == name), None)
    if existing is None:
        patch = copy.deepcopy(template)
        patch["$patch"] = "replace"
        ctx.store.create(CONTROLLER_REVISION.key, {
            "apiVersion": "apps/v1",
            "kind": "ControllerRevision",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(labels),
                         "ownerReferences": [controller_ref(owner)]},
            "data": {"spec": {"template": patch}},
            "revision": latest + 1,
        })
    elif int(existing.get("revision", 0)) != latest:
        existing["revision"] = latest + 1  # rolled back to an older template: it becomes the newest
        ctx.store.update(CONTROLLER_REVISION.key, existing)
    return name


def revision_template(ctx: Context, namespace: str, name: str) -> Obj | None:
    revision = ctx.store.get(CONTROLLER_REVISION.key, namespace, name)
    if revision is None:
        return None
    template = copy.deepcopy(((revision.get("data") or {}).get("spec") or {}).get("template") or {})
    template.pop("$patch", None)
    return template
