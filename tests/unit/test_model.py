"""parse_pipeline, resolve_parameters and the JSON Schema: what people get told when a pipeline is wrong."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from workflows.model import (
    FieldError,
    PipelineInvalid,
    parse_pipeline,
    pipeline_json_schema,
    resolve_parameters,
)
from workflows.stages.registry import registered_stage_types
from workflows.stages.wait import WaitStage


def wait(ref: str, *parents: str, **fields: Any) -> dict[str, Any]:
    return {"refId": ref, "type": "wait", "waitTime": 1, "requisiteStageRefIds": list(parents), **fields}


def pipeline(*stages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"application": "shop", "name": "release", "stages": list(stages), **extra}


def errors_of(data: Any) -> list[FieldError]:
    with pytest.raises(PipelineInvalid) as raised:
        parse_pipeline(data)
    assert raised.value.errors, "PipelineInvalid without errors"
    return raised.value.errors


def fields_of(data: Any) -> dict[str, str]:
    return {e.field: e.message for e in errors_of(data)}


def test_a_valid_pipeline_parses_into_typed_stages() -> None:
    spec = parse_pipeline(
        pipeline(
            wait("a"),
            wait("b", "a"),
            {"refId": "approve", "type": "manualJudgment", "judgmentInputs": ["ship", {"value": "hold"}]},
            wait("c", "b", "approve", waitTime="${{ parameters.t }}"),
            parameters=[{"name": "t", "default": 2}],
        )
    )
    assert [s.refId for s in spec.stages] == ["a", "b", "approve", "c"]
    assert isinstance(spec.stage("a"), WaitStage)
    assert spec.stage("approve").options() == ["ship", "hold"]  # type: ignore[attr-defined]
    assert spec.descendants("a") == {"b", "c"}
    assert spec.descendants("c") == set()
    # The parsed spec round-trips through its JSON form (it crosses Temporal as a payload).
    again = parse_pipeline(spec.model_dump(mode="json", exclude_none=True))
    assert again == spec


def test_duplicate_ref_ids_are_rejected() -> None:
    assert fields_of(pipeline(wait("a"), wait("b"), wait("a"))) == {"stages[a].refId": "duplicate refId"}


def test_unknown_requisite_refs_are_rejected_naming_the_stage_and_the_ref() -> None:
    found = errors_of(pipeline(wait("a"), wait("b", "a", "ghost"), wait("c", "nobody")))
    assert {(e.field, e.message) for e in found} == {
        ("stages[b].requisiteStageRefIds", "unknown refId 'ghost'"),
        ("stages[c].requisiteStageRefIds", "unknown refId 'nobody'"),
    }


def test_self_dependency_is_rejected() -> None:
    assert fields_of(pipeline(wait("a", "a"))) == {"stages[a].requisiteStageRefIds": "stage depends on itself"}


def test_cycles_are_rejected_showing_the_cycle() -> None:
    found = errors_of(pipeline(wait("root"), wait("a", "root", "c"), wait("b", "a"), wait("c", "b"), wait("d", "c")))
    assert len(found) == 1
    error = found[0]
    assert error.field.endswith(".requisiteStageRefIds")
    assert error.message.startswith("dependency cycle: ")
    path = error.message.removeprefix("dependency cycle: ").split(" -> ")
    assert path[0] == path[-1], "the cycle is shown closed"
    assert sorted(path[:-1]) == ["a", "b", "c"], "only the stages on the cycle are named"
    # Every step of the printed cycle is a real edge (child -> parent) of the pipeline.
    parents = {"a": {"root", "c"}, "b": {"a"}, "c": {"b"}}
    assert all(after in parents[before] for before, after in itertools.pairwise(path))
    assert error.field == f"stages[{path[0]}].requisiteStageRefIds"


def test_unknown_stage_type_lists_the_known_ones() -> None:
    message = fields_of(pipeline(wait("a"), {"refId": "deploy", "type": "teleport"}))["stages[deploy].type"]
    assert "'teleport'" in message
    for known in registered_stage_types():
        assert known in message


def test_stage_without_a_type_is_rejected() -> None:
    assert fields_of(pipeline({"refId": "x"})) == {"stages[x].type": "is required"}


def test_bad_stage_field_is_reported_with_the_stage_ref_id() -> None:
    found = errors_of(pipeline(wait("a"), wait("slow", "a", waitTime="soon"), wait("c", "a", bogus=True)))
    fields = [e.field for e in found]
    assert any(f.startswith("stages[slow].waitTime") for f in fields), fields
    assert "stages[c].bogus" in fields
    assert all(f.startswith(("stages[slow]", "stages[c]")) for f in fields), fields


def test_bad_field_of_a_stage_without_ref_id_is_reported_by_index() -> None:
    fields = [e.field for e in errors_of(pipeline(wait("a"), {"type": "wait", "waitTime": 1}))]
    assert "stages[1].refId" in fields


def test_unknown_top_level_field_is_rejected() -> None:
    found = fields_of(pipeline(wait("a"), stagez=[]))
    assert list(found) == ["stagez"]
    assert "not permitted" in found["stagez"]


def test_envelope_problems_are_reported() -> None:
    assert "pipeline" in fields_of([1, 2])
    found = fields_of({"application": "Shop!", "name": "release", "stages": []})
    assert set(found) == {"application", "stages"}
    assert fields_of({"application": "shop", "name": "release", "stages": "wait"}).keys() >= {"stages"}


def test_duplicate_parameter_names_are_rejected() -> None:
    found = fields_of(pipeline(wait("a"), parameters=[{"name": "tag"}, {"name": "tag"}]))
    assert found == {"parameters[tag]": "duplicate parameter name"}


def test_expression_syntax_errors_are_rejected_with_the_field_path() -> None:
    found = fields_of(
        pipeline(
            wait("a", waitTime="${{ parameters.t + }}"),
            {"refId": "vars", "type": "evaluateVariables", "variables": [{"key": "x", "value": "v-${{ ) }}"}]},
            wait("b", name="${{ }}"),
            wait("c", stageEnabled={"expression": "parameters.env =="}),
        )
    )
    assert set(found) == {
        "stages[a].waitTime",
        "stages[vars].variables[0].value",
        "stages[b].name",
        "stages[c].stageEnabled.expression",
    }
    assert "parameters.t +" in found["stages[a].waitTime"]
    assert "does not parse" in found["stages[vars].variables[0].value"]
    assert "empty expression" in found["stages[b].name"]


def test_precondition_syntax_errors_are_rejected_at_parse() -> None:
    found = fields_of(
        pipeline(
            {"refId": "check", "type": "checkPreconditions", "preconditions": [{"context": {"expression": "1 +"}}]}
        )
    )
    assert "stages[check].preconditions[0].context.expression" in found


def test_inline_child_pipeline_is_validated_at_parse() -> None:
    child = pipeline(wait("x", "y"), wait("y", "x"))
    found = fields_of(pipeline({"refId": "child", "type": "pipeline", "pipelineConfig": child}))
    assert any(f.startswith("stages[child].pipelineConfig") for f in found), found


def test_pipeline_stage_needs_exactly_one_source() -> None:
    for stage in (
        {"refId": "child", "type": "pipeline"},
        {"refId": "child", "type": "pipeline", "pipeline": "a", "pipelineConfig": {}},
    ):
        found = errors_of(pipeline(stage))
        assert any(e.field.startswith("stages[child]") and "exactly one" in e.message for e in found), found


# ---- parameters ------------------------------------------------------------------------------------

PARAMETERS = [
    {"name": "tag", "required": True},
    {"name": "env", "default": "staging", "options": ["staging", "prod"]},
    {"name": "replicas", "default": 0},
    {"name": "note"},
]


def test_parameters_get_defaults_and_keep_given_values() -> None:
    spec = parse_pipeline(pipeline(wait("a"), parameters=PARAMETERS))
    assert resolve_parameters(spec, {"tag": "1.2"}) == {"tag": "1.2", "env": "staging", "replicas": 0, "note": None}
    assert resolve_parameters(spec, {"tag": "1.3", "env": "prod", "replicas": 3, "note": "hi"}) == {
        "tag": "1.3",
        "env": "prod",
        "replicas": 3,
        "note": "hi",
    }


def test_missing_required_unknown_and_out_of_options_parameters_are_all_reported() -> None:
    spec = parse_pipeline(pipeline(wait("a"), parameters=PARAMETERS))
    with pytest.raises(PipelineInvalid) as raised:
        resolve_parameters(spec, {"env": "qa", "tga": "1.2"})
    found = {e.field: e.message for e in raised.value.errors}
    assert set(found) == {"parameters.tag", "parameters.env", "parameters.tga"}
    assert found["parameters.tag"] == "is required"
    assert "staging, prod" in found["parameters.env"] and "'qa'" in found["parameters.env"]
    assert "not a parameter" in found["parameters.tga"]


def test_default_outside_the_options_is_reported() -> None:
    spec = parse_pipeline(pipeline(wait("a"), parameters=[{"name": "env", "default": "qa", "options": ["prod"]}]))
    with pytest.raises(PipelineInvalid) as raised:
        resolve_parameters(spec, {})
    assert [e.field for e in raised.value.errors] == ["parameters.env"]


def test_bad_parameter_name_is_rejected() -> None:
    found = fields_of(pipeline(wait("a"), parameters=[{"name": "my-param"}]))
    assert list(found) == ["parameters[0].name"]


# ---- JSON Schema ---------------------------------------------------------------------------------


def test_json_schema_offers_every_registered_stage_type() -> None:
    schema = pipeline_json_schema()
    assert schema["$schema"].endswith("2020-12/schema")
    stage_items = schema["properties"]["stages"]["items"]
    discriminated = stage_items.get("discriminator", {}).get("mapping", {})
    registered = registered_stage_types()
    assert set(registered) <= set(discriminated), discriminated
    for name, cls in registered.items():
        definition = schema["$defs"][cls.__name__]
        assert definition["properties"]["type"]["const"] == name
        assert "refId" in definition["required"]
    assert {"wait", "manualJudgment", "evaluateVariables", "checkPreconditions", "pipeline"} <= set(registered)
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) >= {"application", "name", "stages"}
