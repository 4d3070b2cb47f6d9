"""Bounds on `${{ }}` expressions, so that no expression can use more than a bounded amount of CPU or
memory (issue 11: one depth-7 `map` nesting drove the service to 4 GB and minutes of CPU per replay).

CEL itself guarantees termination, not cost: every comprehension (`map`, `filter`, `all`, `exists`,
`exists_one`) multiplies the work of the ones inside it. The limits are checked on the source before
it is parsed (at submission when the expression is in the pipeline; again before every evaluation,
when the sizes of the lists in the expression's context are known), and on the size of the result.
All checks are pure functions of the source and the context, so a workflow replays them identically.

| limit | value | why |
|---|---|---|
| MAX_EXPRESSION_LENGTH | 1,000 characters | a readable expression fits; bounds everything below |
| MAX_NESTING_DEPTH | 32 brackets | parser recursion |
| MAX_COMPREHENSION_DEPTH | 2 nested macros | work grows as (list size)^depth |
| MAX_RANGE_SIZE | 1,000 elements | a `[a..b]` range or a list literal |
| MAX_COMPREHENSION_COST | 1,000,000 iterations | (largest list)^(comprehension depth) |
| MAX_RESULT_BYTES | 65,536 bytes (JSON) | what an expression may put into a stage's config |
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

MAX_EXPRESSION_LENGTH = 1_000
MAX_NESTING_DEPTH = 32
MAX_COMPREHENSION_DEPTH = 2
MAX_RANGE_SIZE = 1_000
MAX_COMPREHENSION_COST = 1_000_000
MAX_RESULT_BYTES = 65_536

MACROS = frozenset({"map", "filter", "all", "exists", "exists_one", "transformList", "transformMap"})
_RANGE = re.compile(r"\[\s*(-?\d+)\s*\.\.\s*(-?\d+)\s*\]")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class ExpressionTooCostly(ValueError):
    """The expression is over one of the limits; the message names it and its value."""


def _code(source: str) -> Iterator[tuple[int, str]]:
    """(index, character) of `source` outside string literals (CEL: '…', "…", triple-quoted, raw)."""
    i = 0
    while i < len(source):
        char = source[i]
        if char in "'\"":
            raw = i > 0 and source[i - 1] in "rR"
            quote = source[i : i + 3] if source[i : i + 3] in ("'''", '"""') else char
            i += len(quote)
            while i < len(source) and not source.startswith(quote, i):
                i += 2 if source[i] == "\\" and not raw else 1
            i += len(quote)
            continue
        yield i, char
        i += 1


def structure(source: str) -> tuple[int, int, int]:
    """(bracket nesting depth, comprehension nesting depth, largest literal list or range)."""
    chars = dict(_code(source))
    plain = "".join(chars.get(i, " ") for i in range(len(source)))  # strings blanked out
    depth = max_depth = 0
    macro_depth = max_macro = 0
    stack: list[bool] = []  # per open bracket: does it open a comprehension?
    elements: list[int] = []  # per open '[': commas seen at its level
    largest = 0
    for i, char in enumerate(plain):
        if char in "([{":
            before = plain[max(0, i - 40) : i].rstrip()
            word = _IDENTIFIER.findall(before[-20:])
            is_macro = (
                char == "("
                and bool(word)
                and word[-1] in MACROS
                and before.endswith(word[-1])
                and (before[: -len(word[-1])].rstrip().endswith("."))
            )
            stack.append(is_macro)
            elements.append(1 if char == "[" else 0)
            depth += 1
            max_depth = max(max_depth, depth)
            if is_macro:
                macro_depth += 1
                max_macro = max(max_macro, macro_depth)
        elif char in ")]}" and stack:
            if stack.pop():
                macro_depth -= 1
            count = elements.pop()
            if char == "]":
                largest = max(largest, count)
            depth -= 1
        elif char == "," and elements and elements[-1]:
            elements[-1] += 1
    for low, high in _RANGE.findall(plain):
        largest = max(largest, int(high) - int(low) + 1)
    return max_depth, max_macro, largest


def largest_list(value: Any, budget: int = 100_000) -> int:
    """The longest list (or map) anywhere in `value`; stops looking after `budget` nodes."""
    longest = 0
    pending = [value]
    seen = 0
    while pending and seen < budget:
        item = pending.pop()
        seen += 1
        if isinstance(item, Mapping):
            longest = max(longest, len(item))
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            longest = max(longest, len(item))
            pending.extend(item)
    return longest


def check_source(source: str, context: Mapping[str, Any] | None = None) -> None:
    """Raise ExpressionTooCostly if `source` is over a limit; with `context`, the lists it may
    iterate over count too (at run time)."""
    if len(source) > MAX_EXPRESSION_LENGTH:
        raise ExpressionTooCostly(
            f"it is {len(source)} characters; the limit is {MAX_EXPRESSION_LENGTH} (MAX_EXPRESSION_LENGTH)"
        )
    depth, macros, largest = structure(source)
    if depth > MAX_NESTING_DEPTH:
        raise ExpressionTooCostly(f"nesting depth {depth} exceeds the limit of {MAX_NESTING_DEPTH} (MAX_NESTING_DEPTH)")
    if macros > MAX_COMPREHENSION_DEPTH:
        raise ExpressionTooCostly(
            f"comprehension (map/filter/all/exists) nesting depth {macros} exceeds the limit of "
            f"{MAX_COMPREHENSION_DEPTH} (MAX_COMPREHENSION_DEPTH)"
        )
    if largest > MAX_RANGE_SIZE:
        raise ExpressionTooCostly(
            f"a list or range of {largest} elements exceeds the limit of {MAX_RANGE_SIZE} (MAX_RANGE_SIZE)"
        )
    if macros and context is not None:
        largest = max(largest, largest_list(dict(context)))
    cost = max(largest, 1) ** macros if macros else 0
    if cost > MAX_COMPREHENSION_COST:
        raise ExpressionTooCostly(
            f"up to {cost:,} iterations ({largest} elements, comprehension depth {macros}) exceeds the limit of "
            f"{MAX_COMPREHENSION_COST:,} (MAX_COMPREHENSION_COST)"
        )


def check_result(value: Any) -> None:
    size = len(json.dumps(value, separators=(",", ":"), default=str))
    if size > MAX_RESULT_BYTES:
        raise ExpressionTooCostly(
            f"its result is {size:,} bytes of JSON; the limit is {MAX_RESULT_BYTES:,} (MAX_RESULT_BYTES)"
        )
