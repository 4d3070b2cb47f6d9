"""JSONPath for the webhook stage's `statusJsonPath`, `progressJsonPath` and `statusUrlJsonPath`.

Spinnaker's orca reads these with Jayway JsonPath; Deck's help gives `$.buildInfo.status` as the shape
(spinnaker/deck help.contents.ts, `pipeline.config.webhook.statusJsonPath`), and pipelines brought
over also use filters such as `$.stages[?(@.name == 'Deploy prod')].status`. We parse with
`jsonpath-ng`'s extended parser (filters, `&&`/`||`), not by hand.

A tenant writes the path and may also run the server that answers the poll, so both are hostile
input. jsonpath-ng walks plain Python objects at tens of microseconds per node, so the cost is
bounded three ways: the path (length, and only selectors whose cost is linear in the document: no
regex `=~`, no `sub()`/`split()`/`sorted`/arithmetic, at most one `..`, no filter inside a filter, no
`$` inside a filter), the document (nodes and depth, checked before any path runs) and the result
(match count). Whatever is refused says which limit and what was given.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jsonpath_ng import Child, Descendants, Fields, Index, JSONPath, Root, Slice, This
from jsonpath_ng.exceptions import JSONPathError
from jsonpath_ng.ext.filter import And, Expression, Filter, Or
from jsonpath_ng.ext.parser import parse
from jsonpath_ng.jsonpath import Wildcard

MAX_PATH_LENGTH = 256
MAX_DOCUMENT_NODES = 10_000  # a build or job status document is a few hundred
MAX_DOCUMENT_DEPTH = 64
MAX_MATCHES = 100
# Comparisons only: `=~` runs a tenant's regex over a tenant's text (catastrophic backtracking).
_COMPARISONS = {"==", "=", "!=", "<", "<=", ">", ">=", "!"}
_SCALARS = (str, int, float, bool)


class JsonPathError(ValueError):
    """A path that is malformed, too costly, or that does not lead to one value."""


class DocumentTooLarge(JsonPathError):
    """A response over the size, node or depth limit: polling again would only burn the worker again."""


def _check_node(node: JSONPath, path: str, in_filter: bool, budget: dict[str, int]) -> None:
    kind = type(node)
    if kind in (Child, Descendants):
        if kind is Descendants:
            budget["descendants"] += 1
            if budget["descendants"] > 1:
                raise JsonPathError(f"{path!r}: at most one '..' (recursive descent) is allowed")
        _check_node(node.left, path, in_filter, budget)  # type: ignore[attr-defined]
        _check_node(node.right, path, in_filter, budget)  # type: ignore[attr-defined]
    elif kind is Filter:
        if in_filter:
            raise JsonPathError(f"{path!r}: a filter inside a filter is not allowed")
        for expression in node.expressions:  # type: ignore[attr-defined]
            _check_node(expression, path, True, budget)
    elif kind in (And, Or):
        for operand in node.operands:  # type: ignore[attr-defined]
            _check_node(operand, path, in_filter, budget)
    elif kind is Expression:
        op, value = node.op, node.value  # type: ignore[attr-defined]
        if op is not None and op not in _COMPARISONS:
            raise JsonPathError(f"{path!r}: operator {op!r} is not allowed (only comparisons: == != < <= > >=)")
        if isinstance(value, JSONPath):
            raise JsonPathError(f"{path!r}: compare with a literal, not with another path")
        _check_node(node.target, path, in_filter, budget)  # type: ignore[attr-defined]
    elif kind is Root:
        if in_filter:
            raise JsonPathError(f"{path!r}: '$' inside a filter is not allowed (use '@')")
    elif kind not in (This, Fields, Index, Slice, Wildcard):
        raise JsonPathError(f"{path!r}: {kind.__name__} is not supported in webhook paths")


@lru_cache(maxsize=512)
def compile_path(path: str) -> JSONPath:
    """The parsed path, or JsonPathError naming what is wrong (cached: validation runs on every replay)."""
    text = path.strip()
    if not text:
        raise JsonPathError("the path is empty")
    if len(text) > MAX_PATH_LENGTH:
        raise JsonPathError(f"the path is {len(text)} characters; at most {MAX_PATH_LENGTH}")
    try:
        parsed = parse(text)
    except (JSONPathError, ValueError, TypeError, AttributeError, RecursionError) as exc:
        raise JsonPathError(f"{text!r} is not valid JSONPath: {exc}") from None
    _check_node(parsed, text, False, {"descendants": 0})
    return parsed


def check_document(data: Any) -> None:
    """Refuse a document too big or too deep for paths to walk (iterative: depth is not trusted)."""
    nodes, stack = 0, [(data, 1)]
    while stack:
        value, depth = stack.pop()
        nodes += 1
        if nodes > MAX_DOCUMENT_NODES:
            raise DocumentTooLarge(f"the response has over {MAX_DOCUMENT_NODES} JSON values; paths are not run on it")
        if depth > MAX_DOCUMENT_DEPTH:
            raise DocumentTooLarge(f"the response nests deeper than {MAX_DOCUMENT_DEPTH} levels")
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)


def find_value(data: Any, path: str) -> Any:
    """The one value `path` selects in `data` (already checked with `check_document`).

    Jayway returns a list for a filter; orca then wants a single value. We take a filter's result as
    that value when it selects exactly one (or several equal ones), and refuse anything else.
    """
    try:
        matches = [m.value for m in compile_path(path).find(data)]
    except RecursionError:
        raise JsonPathError(f"{path} nests too deep to evaluate") from None
    if not matches:
        raise JsonPathError(f"{path} not found in the response")
    if len(matches) > MAX_MATCHES:
        raise JsonPathError(f"{path} selects {len(matches)} values; at most {MAX_MATCHES}")
    first = matches[0]
    if any(m != first for m in matches[1:]):
        shown = ", ".join(repr(m)[:40] for m in matches[:5])
        raise JsonPathError(f"{path} selects {len(matches)} different values ({shown}); it must select one")
    return first


def find_scalar(data: Any, path: str) -> str:
    """`find_value` as text, refusing objects and lists (a status or URL is a string or number)."""
    value = find_value(data, path)
    if value is None or not isinstance(value, _SCALARS):
        raise JsonPathError(f"{path} selects {type(value).__name__}, not a string or number")
    return str(value)
