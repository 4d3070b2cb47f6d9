"""Stages answer the engine's questions; the engine names no stage type."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from workflows.model import PipelineInvalid, parse_pipeline
from workflows.stages.registry import registered_stage_types, stage_class
from workflows.stages.run_job import RunJobStage

ROOT = Path(__file__).parent.parent.parent


def pipeline(*stages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"application": "shop", "name": "release", "stages": list(stages), **extra}


def test_an_alias_is_read_as_the_stage_type_it_names() -> None:
    job = {
        "refId": "job",
        "type": "runJobManifest",
        "account": "prod",
        "container": {"image": "busybox"},
    }
    spec = parse_pipeline(pipeline(job))
    assert isinstance(spec.stages[0], RunJobStage) and spec.stages[0].type == "runJob"
    assert stage_class("runJobManifest") is RunJobStage
    assert "runJobManifest" not in registered_stage_types(), "aliases are not listed as types of their own"


def test_stage_types_answer_the_engine() -> None:
    types = registered_stage_types()
    assert [name for name, cls in types.items() if cls.skippable] == ["wait"]
    judgment = parse_pipeline(
        pipeline(
            {
                "refId": "approve",
                "type": "manualJudgment",
                "judgmentInputs": ["ship", "hold"],
                "approvers": ["alice"],
                "instructions": "Ship it?",
            }
        )
    ).stages[0]
    gate = judgment.judgment_gate()
    assert gate is not None and (gate.options, gate.approvers, gate.instructions) == (
        ["ship", "hold"],
        ["alice"],
        "Ship it?",
    )
    variables = parse_pipeline(
        pipeline({"refId": "vars", "type": "evaluateVariables", "variables": [{"key": "a", "value": 1}]})
    ).stages[0]
    assert variables.exported_variables({"a": 1}) == {"a": 1}
    wait = parse_pipeline(pipeline({"refId": "w", "type": "wait", "waitTime": 1})).stages[0]
    assert wait.judgment_gate() is None and wait.exported_variables({"waitTime": 1}) == {}


def test_a_rolling_deploy_with_step_judgments_accepts_judgments_itself() -> None:
    deploy = {
        "refId": "deploy",
        "type": "deploy",
        "account": "prod",
        "container": {"image": "shop:2"},
        "strategy": "rollingRedBlack",
        "targetPercentages": [50, 100],
        "stepJudgment": {"judgmentInputs": ["go"], "approvers": ["group:release"]},
    }
    gate = parse_pipeline(pipeline(deploy)).stages[0].judgment_gate()
    assert gate is not None and gate.options == ["go"] and gate.approvers == ["group:release"]
    plain = parse_pipeline(pipeline({**deploy, "stepJudgment": None})).stages[0]
    assert plain.judgment_gate() is None


@pytest.mark.parametrize("module", ["workflows/handlers.py", "workflows/notifications.py", "workflows/pipeline.py"])
def test_the_engine_names_no_stage_type(module: str) -> None:
    tree = ast.parse((ROOT / module).read_text())
    imported = [
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("workflows.stages.")
    ]
    assert imported == [] or imported == ["workflows.stages.base"], imported
    strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    # "pipeline" is also the expression context's key for the pipeline name, not the stage type.
    named = strings & (set(registered_stage_types()) - {"pipeline"})
    assert not named, named


@pytest.mark.parametrize(
    ("cron", "problem"),
    [
        ("99 * * * *", "minute '99' is out of range 0-59"),
        ("0 24 * * *", "hour '24' is out of range 0-23"),
        ("0 3 * 13 *", "month '13' is out of range 1-12"),
        ("*/0 * * * *", "step of 0"),
        ("0 3 * * 5-1", "runs backwards"),
        ("0 3 * *", "must have 5 fields"),
    ],
)
def test_bad_cron_expressions_are_rejected_with_the_field_path(cron: str, problem: str) -> None:
    with pytest.raises(PipelineInvalid) as raised:
        parse_pipeline(
            pipeline({"refId": "w", "type": "wait", "waitTime": 1}, triggers=[{"type": "cron", "cron": cron}])
        )
    errors = {e.field: e.message for e in raised.value.errors}
    assert "triggers[0].cron" in errors, errors
    assert problem in errors["triggers[0].cron"]


@pytest.mark.parametrize("cron", ["0 3 * * 1-5", "*/15 * * * *", "0 0 1,15 * *", "30 2 * JAN-MAR MON", "0 0 ? * 7"])
def test_good_cron_expressions_pass(cron: str) -> None:
    parse_pipeline(pipeline({"refId": "w", "type": "wait", "waitTime": 1}, triggers=[{"type": "cron", "cron": cron}]))
