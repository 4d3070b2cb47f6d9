"""Spinnaker notifications (pipeline and stage `notifications`, with `level`) → Gennaker's.

Spinnaker: {type, address, level: pipeline|stage, when: [...], message: {"<event>": {text}}, cc}.
Gennaker accepts the same events, Spinnaker's manualJudgment* names included (activities/notify).
"""

from __future__ import annotations

from typing import Any

from core.spinnaker.fields import Context

CHANNELS = ("email", "slack", "sms")
EVENTS = {
    "pipeline.starting", "pipeline.complete", "pipeline.failed",
    "stage.starting", "stage.complete", "stage.failed",
    "manualJudgment", "manualJudgmentContinue", "manualJudgmentStop",
}  # fmt: skip


def notifications(items: list[Any], where: str, ctx: Context, *, stage: bool) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    expected_level = "stage" if stage else "pipeline"
    for i, item in enumerate(items):
        path = f"{where}[{i}]"
        if not isinstance(item, dict):
            ctx.report.untranslated(path, "a notification must be an object")
            continue
        kind = item.get("type")
        if kind not in CHANNELS:
            ctx.report.untranslated(
                path, f"notification type {kind!r} has no Gennaker channel (email, slack, sms, webhook)"
            )
            continue
        level = item.get("level")
        if level not in (None, expected_level):
            ctx.report.untranslated(f"{path}.level", f"level {level!r} on a {expected_level} notification")
        elif level is not None:
            ctx.report.dropped(f"{path}.level", f"level {level!r} is where the notification sits")
        when = [w for w in item.get("when") or [] if w in EVENTS]
        for w in item.get("when") or []:
            if w not in EVENTS:
                ctx.report.untranslated(f"{path}.when", f"event {w!r} is not one Gennaker sends")
        message = ctx.templates.value(item.get("message") or {}, f"{path}.message")
        address = str(item.get("address") or "")
        if not address:
            ctx.report.untranslated(f"{path}.address", "notification without an address")
            continue
        entry: dict[str, Any] = {"type": kind, "address": address, "when": when}
        if message:
            entry["message"] = message
        out.append(entry)
        for cc in str(item.get("cc") or "").replace(";", ",").split(","):
            if cc.strip():
                out.append({**entry, "address": cc.strip(), "when": list(when)})
                ctx.report.mapped(f"{path}.cc", f"cc {cc.strip()} → its own email notification")
        for key in item:
            if key not in ("type", "address", "level", "when", "message", "cc"):
                if key == "isNew" or not item[key]:
                    ctx.report.dropped(f"{path}.{key}", "Deck's editor state")
                else:
                    ctx.report.untranslated(f"{path}.{key}", f"notification field {key!r} has no Gennaker counterpart")
    return out
