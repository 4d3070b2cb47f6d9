"""The three PATCH flavours: JSON patch (RFC 6902), JSON merge patch (RFC 7386), strategic merge patch.

Strategic merge follows https://github.com/kubernetes/community/blob/master/contributors/devel/sig-api-machinery/strategic-merge-patch.md
for the lists the project touches: lists of objects with a merge key (containers and env by `name`,
container ports by `containerPort`, service ports by `port`, volumeMounts by `mountPath`,
ownerReferences by `uid`, conditions by `type`, ...) are merged item by item; primitive lists with
merge strategy (finalizers) are unioned; every other list is replaced. The `$patch` directive
(`replace`, `delete`), `$retainKeys`, `$deleteFromPrimitiveList/<f>` and `$setElementOrder/<f>` are
understood. The merge keys come from the `patchMergeKey` tags in kubernetes/api `core/v1/types.go`.
"""

from __future__ import annotations

import copy
from typing import Any

from kubesim.errors import ApiError, bad_request

Obj = dict[str, Any]

_MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "ownerReferences": "uid",
    "conditions": "type",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
}
_MERGED_PRIMITIVE_LISTS = {"finalizers"}


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: maps merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _merge_key(field: str, items: list[Any]) -> str | None:
    if field == "ports":
        # Container ports merge on containerPort, Service ports on port.
        sample = next((i for i in items if isinstance(i, dict)), {})
        return "containerPort" if "containerPort" in sample else "port"
    return _MERGE_KEYS.get(field)


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return None
    result: Obj = copy.deepcopy(target) if isinstance(target, dict) else {}
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            result[field] = [v for v in result.get(field) or [] if v not in value]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list):
            result[key] = _merge_list(key, result.get(key), value)
        elif isinstance(value, dict):
            merged = strategic_merge_patch(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        else:
            result[key] = copy.deepcopy(value)
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_list(field: str, current: Any, patch: list[Any]) -> list[Any]:
    current_list: list[Any] = copy.deepcopy(current) if isinstance(current, list) else []
    if any(isinstance(i, dict) and i.get("$patch") == "replace" for i in patch):
        return [copy.deepcopy(i) for i in patch if not (isinstance(i, dict) and "$patch" in i)]
    if field in _MERGED_PRIMITIVE_LISTS:
        return current_list + [v for v in patch if v not in current_list]
    key = _merge_key(field, patch + current_list)
    if key is None or not all(isinstance(i, dict) for i in patch):
        return copy.deepcopy(patch)
    for item in patch:
        idx = next(
            (n for n, c in enumerate(current_list) if isinstance(c, dict) and c.get(key) == item.get(key)), None
        )
        if item.get("$patch") == "delete":
            if idx is not None:
                current_list.pop(idx)
            continue
        if idx is None:
            current_list.append(strategic_merge_patch({}, item))
        else:
            current_list[idx] = strategic_merge_patch(current_list[idx], item)
    return current_list


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise bad_request(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, parts: list[str], path: str) -> Any:
    for part in parts:
        if isinstance(doc, dict) and part in doc:
            doc = doc[part]
        elif isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        else:
            raise _unprocessable(f"doc is missing path: {path!r}")
    return doc


def _unprocessable(message: str) -> ApiError:
    # The apiserver reports JSON patch application failures as 422 with reason Invalid... but without
    # causes; it is a plain message such as "the server rejected our request due to an error in our request".
    return ApiError(422, "Invalid", message)


def json_patch(doc: Any, ops: Any) -> Any:
    """RFC 6902 operations: add, remove, replace, move, copy, test."""
    if not isinstance(ops, list):
        raise bad_request("json patch must be a list of operations")
    result = copy.deepcopy(doc)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise bad_request(f"invalid json patch operation: {op!r}")
        name, path = op["op"], op["path"]
        if name == "test":
            if _walk(result, _pointer(path), path) != op.get("value"):
                raise _unprocessable(f"testing value {path} failed")
        elif name == "add":
            result = _add(result, _pointer(path), copy.deepcopy(op.get("value")), path)
        elif name == "remove":
            result = _remove(result, _pointer(path), path)[0]
        elif name == "replace":
            result = _remove(result, _pointer(path), path)[0]
            result = _add(result, _pointer(path), copy.deepcopy(op.get("value")), path)
        elif name in ("move", "copy"):
            source = op.get("from", "")
            value = copy.deepcopy(_walk(result, _pointer(source), source))
            if name == "move":
                result = _remove(result, _pointer(source), source)[0]
            result = _add(result, _pointer(path), value, path)
        else:
            raise bad_request(f"unexpected json patch operation {name!r}")
    return result


def _add(doc: Any, parts: list[str], value: Any, path: str) -> Any:
    if not parts:
        return value
    parent = _walk(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent):
            parent.insert(int(last), value)
        else:
            raise _unprocessable(f"add operation index out of bounds: {path!r}")
    else:
        raise _unprocessable(f"add operation does not apply: doc is missing path: {path!r}")
    return doc


def _remove(doc: Any, parts: list[str], path: str) -> tuple[Any, Any]:
    if not parts:
        return None, doc
    parent = _walk(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, dict) and last in parent:
        return doc, parent.pop(last)
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return doc, parent.pop(int(last))
    raise _unprocessable(f"remove operation does not apply: doc is missing path: {path!r}")
