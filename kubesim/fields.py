"""Field paths and field sets as server-side apply sees them, and the fieldsV1 encoding.

A path is a tuple of fieldsV1 path elements: `f:<field>`, `k:<json of key fields>` for an item of an
associative list, `v:<json value>` for an item of a set. The encoding and the meaning of `.` follow the
`FieldsV1` docs in kubernetes/api `meta/v1/types.go` ("Each key is either a '.' representing the field
itself ... or a string representing a sub-field or item"), and the printed form of paths in conflict
messages (`.spec.template.spec.containers[name="app"].image`) follows sigs.k8s.io/structured-merge-diff
`fieldpath/path.go`.

List types come from the built-in types' `listType`/`listMapKeys` tags (kubernetes/api `core/v1/types.go`,
`meta/v1/types.go`): containers, env, volumes by `name`; container ports by `containerPort`+`protocol`,
Service ports by `port`+`protocol`; ownerReferences by `uid`; conditions by `type`; finalizers a set.
Every other list is atomic, and so are label selectors. Custom resources are schemaless here: all their
lists are atomic, as for a CRD schema without `x-kubernetes-list-type`.
"""

from __future__ import annotations

import copy
import json
from typing import Any

Obj = dict[str, Any]
Path = tuple[str, ...]

ITEM = "<list item>"  # the value recorded for a list item itself (its fields are recorded separately)
SET = ("<set>",)

_KEYED: dict[str, tuple[str, ...]] = {
    "containers": ("name",),
    "initContainers": ("name",),
    "ephemeralContainers": ("name",),
    "env": ("name",),
    "volumes": ("name",),
    "volumeMounts": ("mountPath",),
    "volumeDevices": ("devicePath",),
    "imagePullSecrets": ("name",),
    "ownerReferences": ("uid",),
    "conditions": ("type",),
    "hostAliases": ("ip",),
    "topologySpreadConstraints": ("topologyKey", "whenUnsatisfiable"),
}
_SETS = {"finalizers"}
_ATOMIC_MAPS = {"selector"}  # metav1.LabelSelector is a structType=atomic; Service selector mapType=atomic
# Fields that belong to the system, never to a field manager (fieldmanager's ignored/reset fields).
_IGNORED_META = {
    "name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp", "managedFields",
    "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink",
}
_KEY_DEFAULTS = {"protocol": "TCP"}


def list_keys(field: str | None, items: list[Any]) -> tuple[str, ...] | None:
    """How a list merges: key fields for associative lists, SET for sets, None when atomic."""
    if field in _SETS and all(not isinstance(i, (dict, list)) for i in items):
        return SET
    if not items or not all(isinstance(i, dict) for i in items):
        return None
    if field == "ports":
        return ("containerPort", "protocol") if any("containerPort" in i for i in items) else ("port", "protocol")
    return _KEYED.get(field or "")


def item_key(item: Obj, keys: tuple[str, ...]) -> Obj:
    return {k: item.get(k, _KEY_DEFAULTS.get(k)) for k in keys if k in item or k in _KEY_DEFAULTS}


def key_element(item: Obj, keys: tuple[str, ...]) -> str:
    return "k:" + json.dumps(item_key(item, keys), separators=(",", ":"), sort_keys=True)


def tracked(obj: Obj | None, subresource: str = "", status_is_subresource: bool = True) -> Obj:
    """The part of an object that field managers can own: no system metadata, and status only from /status."""
    if not obj:
        return {}
    out = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    if subresource == "status":
        return {"status": out["status"]} if "status" in out else {}
    if status_is_subresource:
        out.pop("status", None)
    meta = {k: v for k, v in (out.get("metadata") or {}).items() if k not in _IGNORED_META}
    if meta:
        out["metadata"] = meta
    else:
        out.pop("metadata", None)
    return out


def flatten(value: Any, typed: bool = True) -> dict[Path, Any]:
    """Every owned path of `value` with its value: leaves, atomic lists and maps, and list items (ITEM)."""
    out: dict[Path, Any] = {}
    _flatten(value, typed, (), None, out)
    return out


def _flatten(value: Any, typed: bool, prefix: Path, field: str | None, out: dict[Path, Any]) -> None:
    if isinstance(value, dict) and value and not (typed and field in _ATOMIC_MAPS):
        for key, child in value.items():
            if child is not None:
                _flatten(child, typed, (*prefix, f"f:{key}"), key, out)
        return
    if isinstance(value, list) and typed and value:
        keys = list_keys(field, value)
        if keys == SET:
            for item in value:
                out[(*prefix, "v:" + json.dumps(item, separators=(",", ":")))] = item
            return
        if keys is not None:
            for item in value:
                element = (*prefix, key_element(item, keys))
                out[element] = ITEM
                for key, child in item.items():
                    if child is not None:
                        _flatten(child, typed, (*element, f"f:{key}"), key, out)
            return
    if prefix:
        out[prefix] = value


def merge(live: Any, config: Any, typed: bool = True, field: str | None = None) -> Any:
    """Merge an applied configuration into a live object: maps by key, associative lists by item key."""
    if isinstance(config, dict) and isinstance(live, dict) and not (typed and field in _ATOMIC_MAPS):
        out = copy.deepcopy(live)
        for key, value in config.items():
            if value is not None:
                out[key] = merge(live.get(key), value, typed, key)
        return out
    if typed and isinstance(config, list) and isinstance(live, list):
        keys = list_keys(field, config + live)
        if keys == SET:
            return copy.deepcopy(live) + [copy.deepcopy(v) for v in config if v not in live]
        if keys is not None:
            result = copy.deepcopy(live)
            for item in config:
                wanted = item_key(item, keys)
                at = next((n for n, cur in enumerate(result) if item_key(cur, keys) == wanted), None)
                if at is None:
                    result.append(merge(None, item, typed))
                else:
                    result[at] = merge(result[at], item, typed)
            return result
    if isinstance(config, dict):
        return {k: merge(None, v, typed, k) for k, v in config.items() if v is not None}
    return copy.deepcopy(config)


def remove(obj: Obj, path: Path) -> None:
    """Delete the field or list item at `path` (if present), and maps it leaves empty."""
    parents: list[tuple[Any, Any]] = []
    node: Any = obj
    for element in path:
        found = _child(node, element)
        if found is None:
            return
        parents.append((node, found[0]))
        node = found[1]
    for container, where in reversed(parents):
        if isinstance(container, dict):
            container.pop(where, None)
        else:
            container.pop(where)
        if container or container is obj:
            return
        # an emptied map or list goes too, one level up


def _child(node: Any, element: str) -> tuple[Any, Any] | None:
    kind, _, text = element.partition(":")
    if kind == "f" and isinstance(node, dict) and text in node:
        return text, node[text]
    if isinstance(node, list):
        wanted = json.loads(text)
        for n, item in enumerate(node):
            if kind == "v" and item == wanted:
                return n, item
            if kind == "k" and isinstance(item, dict) and item_key(item, tuple(wanted)) == wanted:
                return n, item
    return None


def to_fields_v1(paths: set[Path]) -> Obj:
    root: Obj = {}
    for path in sorted(paths):
        node = root
        for element in path:
            node = node.setdefault(element, {})
    for path in paths:
        node = root
        for element in path:
            node = node[element]
        if node and "." not in node:
            children = dict(node)
            node.clear()
            node["."] = {}  # the item itself first, as the apiserver writes it
            node.update(children)
    return root


def from_fields_v1(tree: Any, prefix: Path = ()) -> set[Path]:
    out: set[Path] = set()
    if not isinstance(tree, dict):
        return out
    for key, child in tree.items():
        if key == ".":
            out.add(prefix)
        elif not child:
            out.add((*prefix, key))
        else:
            out |= from_fields_v1(child, (*prefix, key))
    return out


def path_string(path: Path) -> str:
    """`.spec.template.spec.containers[name="app"].image`, as structured-merge-diff prints paths."""
    text = ""
    for element in path:
        kind, _, rest = element.partition(":")
        if kind == "f":
            text += "." + rest
        elif kind == "k":
            fields = json.loads(rest)
            text += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in fields.items()) + "]"
        elif kind == "v":
            text += f"[={rest}]"
    return text
