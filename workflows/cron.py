"""Checking a 5-field cron expression before it becomes a Temporal Schedule.

Hand-written on purpose (about 40 lines): the expression is run by the Temporal server's own cron
parser, so all this check must do is reject what no scheduler accepts (`99 * * * *`, `* * * 13 *`,
a step of 0) and name the field, while accepting the dialect Temporal accepts (names such as MON
and JAN, `?`, ranges, lists, steps). The libraries considered (croniter, cronsim) each implement
their own dialect and would add a dependency whose rules drift from the server's.
"""

from __future__ import annotations

import re

FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    (
        "month",
        1,
        12,
        {
            m: i + 1
            for i, m in enumerate(["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"])
        },
    ),
    # 7 is Sunday too, as in Vixie cron and Temporal.
    ("day of week", 0, 7, {d: i for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])}),
)
_ITEM = re.compile(r"^(?P<range>\*|\?|[A-Za-z0-9]+(?:-[A-Za-z0-9]+)?)(?:/(?P<step>\d+))?$")


def _value(text: str, low: int, high: int, names: dict[str, int]) -> int | None:
    number = names.get(text.upper()) if not text.isdigit() else int(text)
    return number if number is not None and low <= number <= high else None


def _field_problem(text: str, name: str, low: int, high: int, names: dict[str, int]) -> str | None:
    for item in text.split(","):
        match = _ITEM.match(item)
        if match is None:
            return f"{name} {item!r} is not a value, range, list or step"
        if match.group("step") is not None and int(match.group("step")) == 0:
            return f"{name} {item!r} has a step of 0"
        span = match.group("range")
        if span in ("*", "?"):
            continue
        bounds = [_value(part, low, high, names) for part in span.split("-")]
        if any(b is None for b in bounds):
            return f"{name} {item!r} is out of range {low}-{high}"
        if len(bounds) == 2 and bounds[0] is not None and bounds[1] is not None and bounds[0] > bounds[1]:
            return f"{name} range {item!r} runs backwards"
    return None


def cron_problem(expression: str) -> str | None:
    """Why `expression` is not a valid 5-field cron expression, or None if it is."""
    parts = expression.split()
    if len(parts) != len(FIELDS):
        return f"cron {expression!r} must have 5 fields (minute hour day-of-month month day-of-week)"
    for text, (name, low, high, names) in zip(parts, FIELDS, strict=True):
        problem = _field_problem(text, name, low, high, names)
        if problem is not None:
            return f"cron {expression!r}: {problem}"
    return None
