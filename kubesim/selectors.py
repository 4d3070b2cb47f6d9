"""Label and field selectors, in their query-string and object forms.

Grammar follows kubernetes/kubernetes `staging/src/k8s.io/apimachinery/pkg/labels/selector.go`
(`=`, `==`, `!=`, `in (...)`, `notin (...)`, `key`, `!key`) and
`staging/src/k8s.io/apimachinery/pkg/fields/selector.go` (`=`, `==`, `!=`, comma-joined).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from kubesim.errors import bad_request

Obj = dict[str, Any]
Requirement = Callable[[dict[str, str]], bool]

_SET_EXPR = re.compile(r"^\s*([^\s!=()]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def _split_outside_parens(text: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    current = ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def _requirement(term: str) -> Requirement:
    m = _SET_EXPR.match(term)
    if m:
        key, op, raw = m.group(1), m.group(2), m.group(3)
        values = {v.strip() for v in raw.split(",") if v.strip()}
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    for op in ("!=", "==", "="):
        if op in term:
            key, value = (s.strip() for s in term.split(op, 1))
            if not key:
                raise bad_request(f"unable to parse requirement: {term!r}")
            if op == "!=":
                return lambda labels: labels.get(key) != value
            return lambda labels: labels.get(key) == value
    if term.startswith("!"):
        key = term[1:].strip()
        return lambda labels: key not in labels
    key = term
    if not re.fullmatch(r"[A-Za-z0-9._/-]+", key):
        raise bad_request(f"unable to parse requirement: {term!r}")
    return lambda labels: key in labels


def parse_label_selector(text: str | None) -> Requirement:
    """Parse a `labelSelector` query value into a predicate over a label map."""
    if not text:
        return lambda labels: True
    reqs = [_requirement(t) for t in _split_outside_parens(text)]
    return lambda labels: all(r(labels) for r in reqs)


def match_label_selector(selector: Obj | None, labels: dict[str, str]) -> bool:
    """Match a `LabelSelector` object (matchLabels + matchExpressions). An empty selector matches all."""
    if selector is None:
        return False
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key", ""), expr.get("operator", ""), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def match_map_selector(selector: dict[str, str] | None, labels: dict[str, str]) -> bool:
    """Service-style selector: a plain map; an empty or missing one selects nothing."""
    if not selector:
        return False
    return all(labels.get(k) == v for k, v in selector.items())


def selector_string(selector: Obj) -> str:
    """Render a LabelSelector as the string form (used by the scale subresource's status.selector)."""
    terms = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key", ""), expr.get("operator", ""), expr.get("values") or []
        if op in ("In", "NotIn"):
            terms.append(f"{key} {op.lower()} ({','.join(sorted(values))})")
        elif op == "Exists":
            terms.append(key)
        elif op == "DoesNotExist":
            terms.append(f"!{key}")
    return ",".join(terms)


def field_value(obj: Obj, path: str) -> str | None:
    """Resolve a dotted field path (e.g. `status.phase`) to its string value."""
    current: Any = obj
    for part in path.split("."):
        if not isinstance(current, dict) or part not in current:
            return None
        current = current[part]
    if current is None or isinstance(current, (dict, list)):
        return None
    if isinstance(current, bool):
        return "true" if current else "false"
    return str(current)


def parse_field_selector(text: str | None) -> Callable[[Obj], bool]:
    """Parse `fieldSelector`; any dotted path is accepted (a real server limits these per kind)."""
    if not text:
        return lambda obj: True
    checks: list[Callable[[Obj], bool]] = []
    for term in _split_outside_parens(text):
        for op in ("!=", "==", "="):
            if op in term:
                path, value = (s.strip() for s in term.split(op, 1))
                break
        else:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{term}'")
        checks.append(_field_check(path, op, value))
    return lambda obj: all(c(obj) for c in checks)


def _field_check(path: str, op: str, value: str) -> Callable[[Obj], bool]:
    def check(obj: Obj) -> bool:
        actual = field_value(obj, path) or ""
        return actual != value if op == "!=" else actual == value

    return check
