"""Spinnaker stages → Gennaker stages: the fields every stage has, and the non-Kubernetes types.

Spinnaker shapes are those Deck writes (spinnaker.io reference/pipeline/stages, orca's stage
classes for field names); the Kubernetes ones live in `stages_kubernetes.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.spinnaker.fields import Fields, boolean, identifier, is_empty, number, slug
from core.spinnaker.notifications import notifications
from workflows.stages.registry import registered_stage_types

StageMapper = Callable[[Fields, dict[str, Any]], str | None]
"""Fill the Gennaker stage dict from the Spinnaker fields; return the Gennaker type, or None when the
stage cannot be translated (after reporting why)."""

_UI_ONLY = "Deck's editor state"


def common(f: Fields, out: dict[str, Any]) -> None:
    """The fields of Spinnaker's stage envelope that Gennaker's StageConfig shares."""
    ctx = f.ctx
    ref = str(f.take("refId"))
    out["refId"] = ctx.scope.ref_ids.get(ref, ref)
    name = f.take("name")
    if isinstance(name, str) and name:
        out["name"] = name
    parents = f.take("requisiteStageRefIds") or []
    out["requisiteStageRefIds"] = [ctx.scope.ref_ids.get(str(p), str(p)) for p in parents]
    for key in ("failPipeline", "continuePipeline", "completeOtherBranchesThenFail", "sendNotifications"):
        if key in f.data:
            out[key] = boolean(f.take(key))
    if f.has("stageTimeoutMs"):
        out["stageTimeoutMs"] = number(f.take("stageTimeoutMs"))
    else:
        f.take("stageTimeoutMs")
    f.drop("overrideTimeout", "Deck's checkbox for stageTimeoutMs, which is kept when set")
    if f.has("comments"):
        out["comments"] = f.take("comments")
    enabled = f.take("stageEnabled")
    if isinstance(enabled, dict) and isinstance(enabled.get("expression"), str) and enabled["expression"].strip():
        condition = ctx.templates.condition(enabled["expression"], f.path("stageEnabled.expression"))
        out["stageEnabled"] = {"type": "expression", "expression": condition}
    elif enabled:
        ctx.report.untranslated(f.path("stageEnabled"), f"stageEnabled {enabled!r} is not an expression condition")
    stage_notifications = f.take("notifications") or []
    if stage_notifications:
        out["notifications"] = notifications(stage_notifications, f.path("notifications"), ctx, stage=True)
    for key in ("isNew", "group", "graphOutline"):
        f.drop(key, _UI_ONLY)
    f.drop("cloudProviderType", "Deck's provider hint; the stage type says what runs")
    f.drop("failOnFailedExpressions", "Gennaker always fails a stage whose expression fails", only_if=True)
    if f.data.get("failOnFailedExpressions") is False:
        f.take("failOnFailedExpressions")
        ctx.report.mapped(
            f.path("failOnFailedExpressions"),
            "Gennaker always fails a stage whose expression fails (Spinnaker left the text in place)",
        )
    f.drop("restrictExecutionDuringTimeWindow", "off", only_if=False)
    if not f.data.get("restrictExecutionDuringTimeWindow"):
        f.drop("restrictedExecutionWindow", "restrictExecutionDuringTimeWindow is off")
        f.drop("skipWindowText", "restrictExecutionDuringTimeWindow is off")
    for key in ("requiredArtifactIds", "requiredArtifacts", "expectedArtifacts"):
        f.drop(key, "no artifacts are bound", only_if=None)


def wait(f: Fields, out: dict[str, Any]) -> str:
    value = number(f.take("waitTime", 0))
    out["waitTime"] = f.ctx.templates.text(value, f.path("waitTime")) if isinstance(value, str) else value
    if f.has("skipWaitText"):
        out["skipWaitText"] = f.text("skipWaitText")
    return "wait"


def manual_judgment(f: Fields, out: dict[str, Any]) -> str:
    if f.has("instructions"):
        out["instructions"] = f.text("instructions")
    inputs = f.take("judgmentInputs") or []
    out["judgmentInputs"] = [i["value"] if isinstance(i, dict) else i for i in inputs if i]
    roles = f.take("selectedStageRoles") or []
    if roles:
        # Gennaker's approvers name users, or groups as `group:<name>` (workflows/handlers.py).
        out["approvers"] = [f"group:{role}" for role in roles]
        f.ctx.report.mapped(f.path("selectedStageRoles"), "authorized roles → approvers group:<role>")
    f.drop("propagateAuthenticationContext", "off", only_if=False)
    return "manualJudgment"


def check_preconditions(f: Fields, out: dict[str, Any]) -> str | None:
    ctx = f.ctx
    result = []
    for i, item in enumerate(f.take("preconditions") or []):
        where = f.path(f"preconditions[{i}]")
        kind = item.get("type")
        context = item.get("context") or {}
        fail = boolean(item.get("failPipeline", True))
        if kind == "expression":
            expression = context.get("expression")
            if isinstance(expression, bool):
                expression = "true" if expression else "false"
            condition = ctx.templates.condition(str(expression), f"{where}.context.expression")
            entry: dict[str, Any] = {"expression": condition}
            if context.get("failureMessage"):
                entry["failureMessage"] = ctx.templates.text(
                    context["failureMessage"], f"{where}.context.failureMessage"
                )
        elif kind == "stageStatus":
            stage_name, status = context.get("stageName"), context.get("stageStatus")
            ref = ctx.scope.stage_refs.get(str(stage_name))
            if ref is None:
                ctx.report.untranslated(where, f"stageStatus precondition: no stage named {stage_name!r}")
                continue
            entry = {
                "expression": f'stages["{ref}"].status == "{status}"',
                "failureMessage": f"stage {stage_name} is not {status}",
            }
            ctx.report.mapped(where, "stageStatus precondition → an expression on stages[...].status")
        else:
            ctx.report.untranslated(where, f"precondition type {kind!r} has no Gennaker counterpart (only expression)")
            continue
        result.append({"type": "expression", "context": entry, "failPipeline": fail})
    if not result:
        return None
    out["preconditions"] = result
    return "checkPreconditions"


def evaluate_variables(f: Fields, out: dict[str, Any]) -> str:
    result = []
    for i, item in enumerate(f.take("variables") or []):
        key = str(item.get("key", ""))
        entry: dict[str, Any] = {
            "key": f.ctx.scope.variables.get(key, identifier(key)),
            "value": f.ctx.templates.value(item.get("value"), f.path(f"variables[{i}].value")),
        }
        if item.get("description"):
            entry["description"] = item["description"]
        result.append(entry)
    out["variables"] = result
    return "evaluateVariables"


def child_pipeline(f: Fields, out: dict[str, Any]) -> str | None:
    ctx = f.ctx
    application = f.take("application")
    if isinstance(application, str) and application and slug(application) != ctx.application:
        out["application"] = slug(application)
    target = f.take("pipeline")
    where = f.path("pipeline")
    if isinstance(target, str) and "${" in target:
        translated = ctx.templates.text(target, where)
        literal = translated.removeprefix('${{ "').removesuffix('" }}')
        target = literal if literal != translated and '"' not in literal else translated
    elif isinstance(target, str) and target in ctx.scope.pipelines:
        ctx.report.mapped(where, f"pipeline id {target} → saved pipeline {ctx.scope.pipelines[target]!r}")
        target = ctx.scope.pipelines[target]
    else:
        ctx.report.untranslated(where, f"pipeline {target!r} is not a pipeline of this export (id or name)")
    out["pipeline"] = target
    parameters = f.take("pipelineParameters") or {}
    out["pipelineParameters"] = {
        identifier(k): ctx.templates.value(v, f.path(f"pipelineParameters.{k}")) for k, v in parameters.items()
    }
    if "waitForCompletion" in f.data:
        out["waitForCompletion"] = boolean(f.take("waitForCompletion"))
    return "pipeline"


def _status_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [s.strip() for s in value.split(",") if s.strip()]
    return [str(s) for s in value or []]


def webhook(f: Fields, out: dict[str, Any]) -> str:
    out["url"] = f.text("url")
    out["method"] = str(f.take("method") or "POST").upper()
    for key in ("customHeaders", "payload"):
        if f.has(key):
            out[key] = f.value(key)
    for key in ("failFastStatusCodes", "retryStatusCodes"):
        if f.has(key):
            out[key] = [int(number(c)) for c in f.take(key)]
    for key in ("statusUrlResolution", "statusUrlJsonPath", "statusJsonPath", "progressJsonPath"):
        if f.has(key):
            out[key] = f.take(key)
    for key in ("successStatuses", "canceledStatuses", "terminalStatuses"):
        if key in f.data:
            statuses = _status_list(f.take(key))
            if statuses:
                out[key] = statuses
    if "waitForCompletion" in f.data:
        out["waitForCompletion"] = boolean(f.take("waitForCompletion"))
    f.drop("signalCancellation", "off", only_if=False)
    if not f.data.get("signalCancellation"):
        for key in ("cancelEndpoint", "cancelMethod", "cancelPayload"):
            f.drop(key, "signalCancellation is off")
    f.drop("waitBeforeMonitor", "no wait before polling", only_if=None)
    if not f.data.get("waitForCompletion"):
        for key in ("statusUrlResolution", "statusJsonPath", "statusUrlJsonPath", "progressJsonPath"):
            if key in out and is_empty(out[key]):
                del out[key]
    return "webhook"


def jenkins(f: Fields, out: dict[str, Any]) -> str:
    out["master"] = f.take("master")
    out["job"] = f.text("job")
    if f.has("parameters"):
        out["parameters"] = f.value("parameters")
    if f.has("propertyFile"):
        out["propertyFile"] = f.text("propertyFile")
    for key in ("markUnstableAsSuccessful", "waitForCompletion"):
        if key in f.data:
            out[key] = boolean(f.take(key))
    return "jenkins"


def unsupported(reason: str) -> StageMapper:
    def mapper(f: Fields, out: dict[str, Any]) -> None:
        f.ctx.report.untranslated(f.where, reason)
        f.taken.update(f.data)

    return mapper


def passthrough(type_name: str) -> StageMapper:
    """A Spinnaker type Gennaker has under the same name with no mapper here (e.g. one added by a
    later issue): fields go across as they are, with expressions translated."""

    def mapper(f: Fields, out: dict[str, Any]) -> str:
        for key in list(f.data):
            if key not in f.taken:
                out[key] = f.value(key)
        return type_name

    return mapper


CORE_MAPPERS: dict[str, StageMapper] = {
    "wait": wait,
    "manualJudgment": manual_judgment,
    "checkPreconditions": check_preconditions,
    "evaluateVariables": evaluate_variables,
    "pipeline": child_pipeline,
    "webhook": webhook,
    "jenkins": jenkins,
    "bake": unsupported(
        "Spinnaker's bake makes a VM image from an OS package (rosco/packer); Gennaker's bake builds a container "
        "image from a Docker build context: write a bake stage with account, repository and context"
    ),
    "script": unsupported(
        "Spinnaker's script stage runs a script on Jenkins; Gennaker's script runs a container image: "
        "write a script stage with image and command"
    ),
    "quickPatch": unsupported(
        "Spinnaker's quick patch installs an OS package on AWS instances; Gennaker's quickPatchServerGroup "
        "sets a container image on a server group's pods"
    ),
    "findImageFromTags": unsupported(
        "Find Image from Tags looks up VM images by tag; use Gennaker's findImage (registry tags)"
    ),
}


def known_gennaker_type(name: str) -> bool:
    return name in registered_stage_types()
