"""Field ownership (`metadata.managedFields`) and server-side apply.

Semantics follow https://kubernetes.io/docs/reference/using-api/server-side-apply/ and
sigs.k8s.io/structured-merge-diff `merge/update.go`:

- Update operations (create, PUT, non-apply PATCH, /scale, /status) give the manager every field they
  add or change, taking it from other managers without conflict; removed fields leave every set.
- Apply merges the applied configuration into the live object. A field it would change that another
  manager owns is a conflict (409, one `FieldManagerConflict` cause per field) unless `force`, which
  moves the field to the applier. Applying the same value co-owns the field. Fields the applier owned
  before and no longer applies are removed, unless another manager owns them too.

Conflict messages follow apiserver `endpoints/handlers/fieldmanager/internal/conflict.go`.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from kubesim import fields
from kubesim.errors import ApiError, Cause
from kubesim.fields import Path
from kubesim.resources import ResourceType
from kubesim.store import now_rfc3339

Obj = dict[str, Any]


@dataclass
class Entry:
    manager: str
    operation: str  # Apply or Update
    api_version: str
    time: str
    owned: set[Path] = field(default_factory=set)
    subresource: str = ""

    def same_owner(self, manager: str, operation: str, subresource: str) -> bool:
        return (self.manager, self.operation, self.subresource) == (manager, operation, subresource)

    def dump(self) -> Obj:
        out: Obj = {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": fields.to_fields_v1(self.owned),
        }
        if self.subresource:
            out["subresource"] = self.subresource
        return out

    def describe(self) -> str:
        """The manager as conflict messages name it (printManager)."""
        text = json.dumps(self.manager)
        if self.subresource:
            text += f" with subresource {json.dumps(self.subresource)}"
        if self.operation == "Update":
            text += f" using {self.api_version}"
        return text


def read_entries(obj: Obj | None) -> list[Entry]:
    out: list[Entry] = []
    for raw in ((obj or {}).get("metadata") or {}).get("managedFields") or []:
        if not isinstance(raw, dict) or not raw.get("manager"):
            continue
        out.append(Entry(str(raw["manager"]), str(raw.get("operation", "Update")), str(raw.get("apiVersion", "")),
                         str(raw.get("time", "")), fields.from_fields_v1(raw.get("fieldsV1")),
                         str(raw.get("subresource", ""))))
    return out


def _write_entries(obj: Obj, entries: list[Entry]) -> None:
    kept = [e.dump() for e in entries if e.owned]
    if kept:
        obj["metadata"]["managedFields"] = kept
    else:
        obj["metadata"].pop("managedFields", None)


def _flat(rt: ResourceType, obj: Obj | None, subresource: str) -> dict[Path, Any]:
    return fields.flatten(fields.tracked(obj, subresource, "status" in rt.subresources), typed=not rt.custom)


def _base_entries(old: Obj | None, new: Obj) -> list[Entry]:
    """Which managedFields an update starts from: the request's, unless it sent none (or `[]`)."""
    sent = (new.get("metadata") or {}).get("managedFields")
    if sent == [{}]:
        return []  # the documented way to reset field management
    if sent and sent != ((old or {}).get("metadata") or {}).get("managedFields"):
        return read_entries(new)
    return read_entries(old)


def record_update(rt: ResourceType, old: Obj | None, new: Obj, manager: str, subresource: str = "") -> None:
    """Give `manager` the fields this create/update changed, and write `new.metadata.managedFields`."""
    entries = _base_entries(old, new)
    before, after = _flat(rt, old, subresource), _flat(rt, new, subresource)
    changed = {p for p, v in after.items() if p not in before or before[p] != v}
    removed = set(before) - set(after)
    for entry in entries:
        entry.owned -= changed | removed
    if changed:
        mine = next((e for e in entries if e.same_owner(manager, "Update", subresource)), None)
        if mine is None:
            mine = Entry(manager, "Update", rt.api_version, "", subresource=subresource)
            entries.append(mine)
        mine.owned |= changed
        mine.time = now_rfc3339()
        mine.api_version = rt.api_version
    _write_entries(new, entries)


def apply(
    rt: ResourceType, live: Obj | None, config: Obj, manager: str, force: bool, subresource: str = ""
) -> Obj:
    """The object after applying `config` as `manager` (managedFields included); 409 on conflicts."""
    if (config.get("metadata") or {}).get("managedFields") is not None:
        raise ApiError(400, "BadRequest", "metadata.managedFields must be nil")
    typed = not rt.custom
    entries = read_entries(live)
    base = copy.deepcopy(live) if live else {}
    merged: Obj = fields.merge(base, config, typed)
    before, after = _flat(rt, live, subresource), _flat(rt, merged, subresource)
    changed = {p for p, v in after.items() if p not in before or before[p] != v}
    applied = set(_flat(rt, config, subresource))
    mine = next((e for e in entries if e.same_owner(manager, "Apply", subresource)), None)
    others = [e for e in entries if e is not mine]
    conflicts = [(e, p) for e in others for p in sorted(e.owned & changed)]
    if conflicts and not force:
        raise _conflict_error(conflicts)
    for entry in others:
        entry.owned -= changed
    previously = mine.owned if mine else set()
    still_owned = set().union(*(e.owned for e in others)) if others else set()
    for path in sorted(previously - applied, key=len):  # parents first: an item goes with its fields
        if not any(p[: len(path)] == path for p in still_owned):
            fields.remove(merged, path)
    if mine is None:
        mine = Entry(manager, "Apply", rt.api_version, "", subresource=subresource)
        entries.append(mine)
    if mine.owned != applied or merged != base:
        mine.owned = applied
        mine.time = now_rfc3339()
        mine.api_version = rt.api_version
    merged.setdefault("metadata", {})
    _write_entries(merged, entries)
    return merged


def _conflict_error(conflicts: list[tuple[Entry, Path]]) -> ApiError:
    causes = [Cause("FieldManagerConflict", f"conflict with {e.describe()}", fields.path_string(p))
              for e, p in conflicts]
    if len(conflicts) == 1:
        entry, path = conflicts[0]
        message = f"Apply failed with 1 conflict: conflict with {entry.describe()}: {fields.path_string(path)}"
    else:
        by_manager: dict[str, list[str]] = {}
        for entry, path in conflicts:
            by_manager.setdefault(entry.describe(), []).append(fields.path_string(path))
        lines: list[str] = []
        for who in sorted(by_manager):
            lines.append(f"conflicts with {who}:")
            lines.extend(f"- {p}" for p in by_manager[who])
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return ApiError(409, "Conflict", message, causes=causes)
