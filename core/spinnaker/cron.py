"""Quartz cron (Spinnaker's `cronExpression`) → the 5-field cron of Gennaker's cron trigger.

Quartz has seconds first, an optional year last, `?` for "no specific value", and numbers days of
the week 1-7 from Sunday (standard cron: 0-6 from Sunday). Only schedules that fire at second 0 of
a minute and use no Quartz-only features (`L`, `W`, `#`, a year) have a 5-field equivalent; anything
else raises NoEquivalent and the trigger is reported.
(Quartz CronTrigger tutorial; Spinnaker echo runs them in America/Los_Angeles unless
`scheduler.cron.timezone` says otherwise — echo's SchedulerConfiguration.)
"""

from __future__ import annotations

import re

SPINNAKER_DEFAULT_TIMEZONE = "America/Los_Angeles"
_DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_NAMES = re.compile(r"JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC|SUN|MON|TUE|WED|THU|FRI|SAT")
_FIELD_MAX = {"minute": 59, "hour": 23, "day": 31, "month": 12, "weekday": 6}


class NoEquivalent(ValueError):
    pass


def quartz_to_cron(expression: str) -> str:
    fields = expression.split()
    if len(fields) not in (6, 7):
        raise NoEquivalent(f"{expression!r} is not a Quartz expression (6 or 7 fields, seconds first)")
    second, minute, hour, day, month, weekday = fields[:6]
    if len(fields) == 7 and fields[6] not in ("*", "?"):
        raise NoEquivalent(f"year field {fields[6]!r}: 5-field cron has no year")
    if second != "0":
        raise NoEquivalent(f"seconds field {second!r}: 5-field cron fires only at second 0 of a minute")
    for text in fields[:6]:
        if re.search(r"[LW#C]", _NAMES.sub("", text.upper())):
            raise NoEquivalent(f"{text!r} uses a Quartz-only feature (L, W, # or C)")
    if day not in ("?", "*") and weekday not in ("?", "*"):
        raise NoEquivalent("both day-of-month and day-of-week are set; cron would fire on either (Quartz forbids)")
    return " ".join(
        [
            _plain(minute, "minute"),
            _plain(hour, "hour"),
            "*" if day == "?" else _plain(day, "day"),
            _plain(month, "month"),
            "*" if weekday == "?" else _weekday(weekday),
        ]
    )


def _plain(text: str, name: str) -> str:
    if not re.fullmatch(r"[0-9A-Za-z*,/\-]+", text):
        raise NoEquivalent(f"{name} field {text!r} is not understood")
    # Quartz `5/15` means from 5 every 15; write it as the range form every cron reads.
    return ",".join(_step_from(part, _FIELD_MAX[name]) for part in text.split(","))


def _step_from(part: str, maximum: int) -> str:
    start, slash, step = part.partition("/")
    if slash and start != "*" and "-" not in start:
        return f"{start}-{maximum}/{step}"
    return part


def _weekday(text: str) -> str:
    def day(token: str) -> str:
        if token.isdigit():
            number = int(token)
            if not 1 <= number <= 7:
                raise NoEquivalent(f"day of week {token} is outside Quartz's 1-7")
            return str(number - 1)
        if token.upper()[:3] in _DAY_NAMES:
            return token.upper()[:3]
        raise NoEquivalent(f"day of week {token!r} is not understood")

    out = []
    for part in text.split(","):
        base, slash, step = part.partition("/")
        if base == "*":
            converted = "*"
        elif "-" in base:
            low, high = base.split("-", 1)
            converted = f"{day(low)}-{day(high)}"
        else:
            converted = day(base)
            if slash:
                converted = f"{converted}-6"
        out.append(converted + (f"/{step}" if slash else ""))
    return ",".join(out)
