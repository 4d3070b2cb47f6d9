"""One Spinnaker pipeline (with the rest of its export for references) → one Gennaker pipeline."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from core.spinnaker.deploy_clusters import deploy_cluster
from core.spinnaker.envelope import BOOKKEEPING, parameters, triggers
from core.spinnaker.fields import Context, Fields, ImportOptions, identifier, is_empty, slug
from core.spinnaker.notifications import notifications
from core.spinnaker.report import ImportedPipeline
from core.spinnaker.stages import CORE_MAPPERS, StageMapper, common, known_gennaker_type, passthrough
from core.spinnaker.stages_kubernetes import KUBERNETES_MAPPERS
from core.spinnaker.translate import Scope

_REF_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_ENVELOPE = {"application", "name", "description", "parameterConfig", "triggers", "notifications", "stages",
             "limitConcurrent", "keepWaitingPipelines", "disabled", "expectedArtifacts", "roles",
             "maxConcurrentExecutions"}  # fmt: skip


def pipeline_names(raw: list[dict[str, Any]], options: ImportOptions) -> dict[str, str]:
    """Spinnaker pipeline names and ids → unique Gennaker names (per application)."""
    table: dict[str, str] = {}
    taken: set[tuple[str, str]] = set()
    for data in raw:
        application = slug(str(options.application or data.get("application") or ""))
        original = str(data.get("name") or data.get("id") or "pipeline")
        name = base = slug(original)
        counter = 2
        while (application, name) in taken:
            name = f"{base[:58]}-{counter}"
            counter += 1
        taken.add((application, name))
        table.setdefault(original, name)
        if data.get("id"):
            table[str(data["id"])] = name
    return table


def _scope(data: dict[str, Any], pipelines: dict[str, str], options: ImportOptions) -> Scope:
    scope = Scope(pipelines=pipelines)
    used: set[str] = set()
    for i, stage in enumerate(data.get("stages") or []):
        ref = str(stage.get("refId", i + 1))
        new_ref = ref if _REF_ID.match(ref) else (slug(ref, 60) or f"stage-{i + 1}")
        while new_ref in used:
            new_ref = f"{new_ref}-{i + 1}"
        used.add(new_ref)
        scope.ref_ids[ref] = new_ref
        if stage.get("name"):
            scope.stage_refs.setdefault(str(stage["name"]), new_ref)
        scope.stage_types[new_ref] = str(stage.get("type"))
        literals = {k: v for k, v in stage.items() if isinstance(v, str | int | float | bool) and "${" not in str(v)}
        for key in ("account", "credentials"):
            if key in literals:
                literals[key] = options.account_map.get(str(literals[key]), literals[key])
        scope.stage_literals[new_ref] = literals
        for variable in stage.get("variables") or [] if stage.get("type") == "evaluateVariables" else []:
            key = str(variable.get("key", ""))
            scope.variables[key] = identifier(key)
    for item in data.get("parameterConfig") or []:
        name = str(item.get("name", ""))
        scope.parameters[name] = identifier(name)
    return scope


def _mapper(spinnaker_type: str) -> tuple[str, StageMapper] | None:
    if spinnaker_type in KUBERNETES_MAPPERS:
        return KUBERNETES_MAPPERS[spinnaker_type]
    if spinnaker_type in CORE_MAPPERS:
        return spinnaker_type, CORE_MAPPERS[spinnaker_type]
    if known_gennaker_type(spinnaker_type):
        return spinnaker_type, passthrough(spinnaker_type)
    return None


def _stages(raw_stages: list[Any], ctx: Context) -> tuple[list[dict[str, Any]], bool]:
    out: list[dict[str, Any]] = []
    complete = True
    expansions: dict[str, list[str]] = {}  # a deploy with N clusters becomes N stages
    for i, raw in enumerate(raw_stages):
        where = f"stages[{i}]"
        fields = Fields(raw, where, ctx)
        stage: dict[str, Any] = {"type": raw.get("type")}
        fields.take("type")
        common(fields, stage)
        spinnaker_type = str(raw.get("type"))
        if spinnaker_type == "deploy":
            clusters = fields.take("clusters") or []
            made = [deploy_cluster(c, fields, f"{where}.clusters[{n}]") for n, c in enumerate(clusters)]
            fields.leftovers("deploy stage")
            if not clusters or any(m is None for m in made):
                complete = False
                out.append({**stage, **{k: v for k, v in raw.items() if k not in stage}})
                continue
            refs = [stage["refId"]] + [f"{stage['refId']}-{n + 1}" for n in range(1, len(made))]
            for ref, cluster in zip(refs, made, strict=True):
                name = stage.get("name") or "Deploy"
                out.append(
                    {**stage, "refId": ref, "name": name if ref == refs[0] else f"{name} ({ref})", **(cluster or {})}
                )
            if len(refs) > 1:
                expansions[stage["refId"]] = refs
                ctx.report.mapped(where, f"{len(refs)} clusters → parallel deploy stages {', '.join(refs)}")
            continue
        found = _mapper(spinnaker_type)
        if found is None:
            ctx.report.untranslated(f"{where}.type", f"stage type {spinnaker_type!r}: Gennaker has no such stage")
            complete = False
            out.append(dict(raw))
            continue
        target_type, mapper = found
        stage["type"] = target_type
        result = mapper(fields, stage)
        fields.leftovers(f"{spinnaker_type} stage")
        if result is None:
            complete = False
            out.append({**stage, "type": spinnaker_type})
            continue
        stage["type"] = result
        out.append(stage)
    for stage in out:  # stages after an expanded deploy wait for every cluster
        parents = stage.get("requisiteStageRefIds") or []
        stage["requisiteStageRefIds"] = [r for p in parents for r in expansions.get(p, [p])]
    return out, complete


def convert(data: dict[str, Any], source: str, options: ImportOptions, pipelines: dict[str, str]) -> ImportedPipeline:
    original = str(data.get("name") or "")
    result = ImportedPipeline(source=source, originalName=original or None)
    application_raw = options.application or data.get("application")
    if not application_raw:
        result.items.append(
            _missing("application", "no application: pass --application (Deck's 'Edit as JSON' hides it)")
        )
        return result
    application = slug(str(application_raw))
    ctx = Context(options, _scope(data, pipelines, options), application)
    if data.get("type") == "templatedPipeline" or data.get("template"):
        ctx.report.untranslated("template", "a templated pipeline (MPT): export the rendered pipeline instead")
        result.items = ctx.report.items
        return result
    if application != application_raw:
        ctx.report.mapped("application", f"application {application_raw!r} → {application!r}")
    name = pipelines.get(original) or slug(original or _stem(source))
    out: dict[str, Any] = {"application": application, "name": name}
    description = data.get("description")
    if name != original:
        ctx.report.mapped("name", f"name {original!r} → {name!r}; the original is kept in description")
        description = f"{original} — {description}" if description else original
    if description:
        out["description"] = description
    for key, why in BOOKKEEPING.items():
        if key in data and not (key == "appConfig" and data[key]) and not (key == "type" and data[key] != "pipeline"):
            ctx.report.dropped(key, why)
    params = parameters(data.get("parameterConfig") or data.get("parameters") or [], ctx)
    if params:
        out["parameters"] = params
    disabled = bool(data.get("disabled"))
    if disabled:
        ctx.report.mapped("disabled", "a disabled pipeline: its triggers are imported disabled")
    mapped_triggers, run_as = triggers(data.get("triggers") or [], ctx, disabled)
    if mapped_triggers:
        out["triggers"] = mapped_triggers
    if run_as:
        out["serviceAccount"] = run_as
        ctx.report.mapped("triggers", f"runAsUser {run_as!r} → serviceAccount")
    pipeline_notifications = notifications(data.get("notifications") or [], "notifications", ctx, stage=False)
    if pipeline_notifications:
        out["notifications"] = pipeline_notifications
    for key in ("limitConcurrent", "keepWaitingPipelines"):
        if key in data:
            out[key] = bool(data[key])
    if data.get("maxConcurrentExecutions") not in (None, 0):
        ctx.report.untranslated("maxConcurrentExecutions", "Gennaker limits to one (limitConcurrent) or none")
    if data.get("roles"):
        ctx.report.untranslated("roles", "Fiat roles of a managed service account: grant them in Gennaker's policy")
    if data.get("expectedArtifacts"):
        ctx.report.untranslated("expectedArtifacts", "expected artifacts have no Gennaker counterpart yet")
    for key, value in data.items():
        if key in _ENVELOPE or key in BOOKKEEPING:
            continue
        if is_empty(value):
            ctx.report.dropped(key, "empty")
        else:
            ctx.report.untranslated(key, f"pipeline field {key!r} has no Gennaker counterpart")
    stages, complete = _stages(data.get("stages") or [], ctx)
    out["stages"] = stages
    result.pipeline = out
    result.complete = complete and bool(stages)
    result.items = ctx.report.items
    return result


def _stem(source: str) -> str:
    """A pipeline without a name (Deck's 'Edit as JSON') is named after its file."""
    return Path(source.split("[", 1)[0]).stem


def _missing(path: str, message: str) -> Any:
    from core.spinnaker.report import ReportItem

    return ReportItem(path=path, outcome="untranslated", message=message)
