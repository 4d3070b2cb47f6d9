"""The `/scale` subresource (autoscaling/v1 `Scale`) of Deployments, ReplicaSets and StatefulSets.

Shape per kubernetes/api `autoscaling/v1/types.go`; writes go through the owner's update path, so
generation, validation and field ownership (manager with subresource "scale") work as for any update.
"""

from __future__ import annotations

import copy
from typing import Any

from kubesim.api import Api
from kubesim.errors import bad_request, conflict, not_found
from kubesim.resources import ResourceType
from kubesim.selectors import selector_string

Obj = dict[str, Any]
_SCALABLE = ("replicasets", "deployments", "statefulsets")


def get_scale(api: Api, rt: ResourceType, namespace: str, name: str) -> Obj:
    if rt.plural not in _SCALABLE or rt.custom:
        raise not_found(f"{rt.plural}/scale", rt.group, name)
    obj = api.existing(rt, namespace, name)
    meta = obj["metadata"]
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")},
        "spec": {"replicas": obj["spec"].get("replicas", 1)},
        "status": {
            "replicas": (obj.get("status") or {}).get("replicas", 0),
            "selector": selector_string(obj["spec"].get("selector") or {}),
        },
    }


def set_scale(
    api: Api,
    rt: ResourceType,
    namespace: str,
    name: str,
    body: Any,
    content_type: str | None,
    dry_run: bool,
    manager: str | None = None,
) -> Obj:
    scale = get_scale(api, rt, namespace, name)
    if content_type is None:
        new_scale = body
    else:
        new_scale = api.apply_patch(content_type.split(";")[0].strip().lower(), scale, body)
    if not isinstance(new_scale, dict):
        raise bad_request("the body of the request was in an unknown format")
    sent_rv = (new_scale.get("metadata") or {}).get("resourceVersion")
    if sent_rv and sent_rv != scale["metadata"]["resourceVersion"]:
        raise conflict(rt.plural, rt.group, name)
    replicas = (new_scale.get("spec") or {}).get("replicas", 0)
    obj = api.existing(rt, namespace, name)
    obj["spec"]["replicas"] = replicas
    api.commit_update(rt, copy.deepcopy(api.existing(rt, namespace, name)), obj, dry_run, False, manager, "scale")
    if dry_run:
        scale["spec"]["replicas"] = replicas
        return scale
    return get_scale(api, rt, namespace, name)
