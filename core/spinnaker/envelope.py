"""The pipeline envelope: Deck's bookkeeping, `parameterConfig`, and triggers."""

from __future__ import annotations

import re
from typing import Any

from core.spinnaker.cron import NoEquivalent, quartz_to_cron
from core.spinnaker.fields import Context, boolean, is_empty, slug

# Fields Deck and front50 write that say nothing about how a pipeline runs.
BOOKKEEPING = {
    "id": "Spinnaker's pipeline id; Gennaker names a pipeline by application and name",
    "index": "Deck's display order",
    "updateTs": "front50's save time; Gennaker keeps its own revisions",
    "createTs": "front50's save time; Gennaker keeps its own revisions",
    "lastModifiedBy": "front50's author; Gennaker records who saves each revision",
    "lastModified": "front50's save time",
    "appConfig": "Deck's per-pipeline application settings (empty)",
    "spelEvaluator": "SpEL evaluator version; expressions are translated to CEL",
    "schema": "Deck's pipeline schema version",
    "locked": "Deck's edit lock (UI only)",
    "migrationStatus": "Deck's migration marker",
    "stageCounter": "Deck's counter for new stage refIds",
    "isNew": "Deck's editor state",
    "type": "front50's kind of document ('pipeline')",
}

_SECRET_NAME = re.compile(r"[^a-z0-9-]+")


def parameters(items: list[Any], ctx: Context) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        where = f"parameterConfig[{i}]"
        name = str(item.get("name", ""))
        new_name = ctx.scope.parameters.get(name, name)
        if new_name != name:
            ctx.report.mapped(f"{where}.name", f"parameter {name!r} → {new_name!r} (CEL reads parameters.{new_name})")
        entry: dict[str, Any] = {"name": new_name}
        for key in ("label", "description"):
            if item.get(key):
                entry[key] = str(item[key])
        required = boolean(item.get("required", False))
        if required:
            entry["required"] = True
        options = [str(o.get("value") if isinstance(o, dict) else o) for o in item.get("options") or []]
        options = [o for o in options if o != ""]
        has_options = boolean(item.get("hasOptions", bool(options)))
        if has_options and options:
            entry["options"] = options
        elif options:
            ctx.report.dropped(f"{where}.options", "hasOptions is off, so Spinnaker did not enforce them")
        default = item.get("default")
        if default not in (None, ""):
            entry["default"] = default
            if entry.get("options") and str(default) not in entry["options"]:
                ctx.report.untranslated(f"{where}.default", f"default {default!r} is not one of the options")
        elif default == "" and required:
            ctx.report.dropped(f"{where}.default", "an empty default; Gennaker then asks for the required value")
        elif default == "" and not entry.get("options"):
            entry["default"] = ""  # `${parameters.x}` stays "" rather than null, as in Spinnaker
        for key in ("pinned",):
            if key in item:
                ctx.report.dropped(f"{where}.{key}", "only where Deck shows the parameter")
        for key, value in item.items():
            if key in ("name", "label", "description", "required", "options", "hasOptions", "default", "pinned"):
                continue
            if is_empty(value):
                ctx.report.dropped(f"{where}.{key}", "empty")
            else:
                ctx.report.untranslated(f"{where}.{key}", f"parameter field {key!r} has no Gennaker counterpart")
        out.append(entry)
    return out


def _secret(ctx: Context, where: str, kind: str, hint: str) -> str:
    name = _SECRET_NAME.sub("-", f"{kind}-{hint}".lower()).strip("-")[:60] or kind
    ctx.report.mapped(
        f"{where}.secret",
        f"secret asked for by name {name!r}: create it on the gateway (GENNAKER_TRIGGER_SECRET_"
        f"{name.upper().replace('-', '_')}); values are never imported",
    )
    return name


_PIPELINE_STATUS = {"successful": "SUCCEEDED", "failed": "TERMINAL", "canceled": "CANCELED"}
_TRIGGER_NOISE = {"isNew", "description", "expectedArtifactIds", "runAsUser", "user", "rebake", "type", "enabled", "id"}


def triggers(items: list[Any], ctx: Context, disabled: bool) -> tuple[list[dict[str, Any]], str | None]:
    """Map the triggers; also return the runAsUser they share (Gennaker's serviceAccount)."""
    out: list[dict[str, Any]] = []
    run_as: set[str] = set()
    for i, item in enumerate(items):
        where = f"triggers[{i}]"
        kind = item.get("type")
        entry: dict[str, Any] = {"type": kind}
        used: set[str] = set()
        if kind == "cron":
            used = {"cronExpression", "cronExpressionTz"}
            expression = str(item.get("cronExpression", ""))
            try:
                entry["cron"] = quartz_to_cron(expression)
            except NoEquivalent as exc:
                ctx.report.untranslated(f"{where}.cronExpression", f"Quartz {expression!r} has no 5-field form: {exc}")
                continue
            entry["timezone"] = item.get("cronExpressionTz") or ctx.options.cron_timezone
            ctx.report.mapped(
                f"{where}.cronExpression",
                f"Quartz {expression!r} → cron {entry['cron']!r} in {entry['timezone']} (Spinnaker's echo default "
                "zone unless its scheduler.cron.timezone was changed)",
            )
        elif kind == "docker":
            used = {"account", "repository", "tag", "registry", "organization"}
            entry["account"] = ctx.account(item.get("account"), f"{where}.account")
            entry["repository"] = item.get("repository")
            if item.get("tag"):
                entry["tag"] = item["tag"]
        elif kind == "git" and item.get("source", "github") == "github":
            used = {"source", "project", "slug", "branch", "secret"}
            entry.update(source="github", project=item.get("project"), slug=item.get("slug"))
            if item.get("branch"):
                entry["branch"] = item["branch"]
            entry["secret"] = _secret(ctx, where, "github", f"{item.get('project')}-{item.get('slug')}")
        elif kind == "jenkins":
            used = {"master", "job", "propertyFile"}
            entry.update(master=item.get("master"), job=item.get("job"))
            entry["secret"] = _secret(ctx, where, "jenkins", str(item.get("master")))
            if item.get("propertyFile"):
                ctx.report.untranslated(
                    f"{where}.propertyFile", "Gennaker's Jenkins trigger does not read the build's property file"
                )
        elif kind == "pipeline":
            used = {"application", "pipeline", "status"}
            application = str(item.get("application") or ctx.application)
            source = str(item.get("pipeline"))
            if source not in ctx.scope.pipelines:
                ctx.report.untranslated(f"{where}.pipeline", f"pipeline {source!r} is not in this export")
                continue
            statuses = [_PIPELINE_STATUS.get(str(s).lower(), str(s).upper()) for s in item.get("status") or []]
            entry.update(application=slug(application), pipeline=ctx.scope.pipelines[source])
            entry["status"] = statuses or ["SUCCEEDED"]
        elif kind == "webhook":
            used = {"source", "payloadConstraints"}
            entry["source"] = slug(str(item.get("source") or "webhook"))
            entry["secret"] = _secret(ctx, where, "webhook", entry["source"])
            if item.get("payloadConstraints"):
                entry["payloadConstraints"] = {k: str(v) for k, v in item["payloadConstraints"].items()}
        else:
            ctx.report.untranslated(where, f"trigger type {kind!r} has no Gennaker counterpart")
            continue
        if item.get("enabled") is False or disabled:
            entry["enabled"] = False
        trigger_id = item.get("id")
        if isinstance(trigger_id, str) and re.fullmatch(r"[a-z0-9][a-z0-9-]{0,40}", trigger_id):
            entry["id"] = trigger_id
        if item.get("runAsUser"):
            run_as.add(str(item["runAsUser"]))
        if item.get("expectedArtifactIds"):
            ctx.report.untranslated(
                f"{where}.expectedArtifactIds", "trigger artifacts have no Gennaker counterpart yet"
            )
        for key, value in item.items():
            if key in used or key in _TRIGGER_NOISE:
                continue
            if is_empty(value):
                ctx.report.dropped(f"{where}.{key}", "empty")
            else:
                ctx.report.untranslated(f"{where}.{key}", f"{kind} trigger field {key!r} has no Gennaker counterpart")
        out.append(entry)
    if len(run_as) > 1:
        ctx.report.untranslated("triggers", f"triggers run as different users {sorted(run_as)}; Gennaker has one")
    return out, (next(iter(run_as)) if len(run_as) == 1 else None)
