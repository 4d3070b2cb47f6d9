"""`${{ }}` expressions: typing, interpolation, conditions and errors (no servers)."""

from __future__ import annotations

from typing import Any

import pytest

from workflows.expressions import (
    ExpressionError,
    condition_syntax_errors,
    contains_expression,
    evaluate_condition,
    evaluate_text,
    evaluate_value,
    syntax_errors,
)

CONTEXT: dict[str, Any] = {
    "parameters": {"replicas": 3, "env": "prod", "ratio": 0.5, "tags": ["a", "b"], "flag": True, "none": None},
    "stages": {"deploy-staging": {"status": "SUCCEEDED", "outputs": {"image": "shop:1.2", "ports": [80, 443]}}},
    "judgments": {"approve": "ship"},
    "variables": {"region": "eu"},
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${{ parameters.replicas }}", 3),
        ("  ${{ parameters.replicas * 2 }}  ", 6),
        ("${{ parameters.ratio }}", 0.5),
        ("${{ parameters.flag }}", True),
        ("${{ parameters.tags }}", ["a", "b"]),
        ("${{ parameters.none }}", None),
        ('${{ stages["deploy-staging"].outputs.image }}', "shop:1.2"),
        ('${{ judgments.approve == "ship" }}', True),
        ("${{ {'a': 1} }}", {"a": 1}),
    ],
)
def test_a_whole_expression_keeps_its_type(text: str, expected: Any) -> None:
    assert evaluate_text(text, CONTEXT) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("shop-${{ parameters.env }}", "shop-prod"),
        ("n=${{ parameters.replicas }}, flag=${{ parameters.flag }}", "n=3, flag=true"),
        ("[${{ parameters.none }}]", "[]"),
        ("ports ${{ stages['deploy-staging'].outputs.ports }}", "ports [80,443]"),
        ("m=${{ {'b': 2, 'a': 1} }}", 'm={"a":1,"b":2}'),
        ("no expressions here", "no expressions here"),
        ("${{ variables.region }}-x", "eu-x"),
    ],
)
def test_other_strings_interpolate(text: str, expected: str) -> None:
    assert evaluate_value(text, CONTEXT) == expected


def test_two_expressions_with_text_between_interpolate() -> None:
    assert evaluate_value("${{ parameters.env }}/${{ parameters.replicas }}", CONTEXT) == "prod/3"


def test_values_resolve_inside_lists_and_maps_and_leave_other_types_alone() -> None:
    value = {"a": ["${{ parameters.replicas }}", "x-${{ variables.region }}", 7, None], "b": {"c": "${{ true }}"}}
    assert evaluate_value(value, CONTEXT) == {"a": [3, "x-eu", 7, None], "b": {"c": True}}
    assert contains_expression(value)
    assert not contains_expression({"a": ["plain", 1]})


@pytest.mark.parametrize(
    "source",
    [
        "nosuch.thing",
        '"a" + 1',
        "parameters.env > 3",
    ],
)
def test_failing_expressions_raise_expression_error_quoting_the_expression(source: str) -> None:
    with pytest.raises(ExpressionError) as raised:
        evaluate_value("x ${{ " + source + " }}", CONTEXT)
    assert raised.value.expression == source
    assert source in str(raised.value)
    assert raised.value.reason


@pytest.mark.parametrize("source", ["parameters.missing", 'stages["nope"].outputs.x', "parameters.replicas / 0"])
def test_every_evaluation_failure_is_an_expression_error(source: str) -> None:
    with pytest.raises(ExpressionError) as raised:
        evaluate_value("${{ " + source + " }}", CONTEXT)
    assert raised.value.expression == source


def test_conditions_bare_or_wrapped() -> None:
    assert evaluate_condition('parameters.env == "prod"', CONTEXT) is True
    assert evaluate_condition('${{ parameters.env == "staging" }}', CONTEXT) is False
    assert evaluate_condition("  ${{ parameters.replicas > 2 }} ", CONTEXT) is True


def test_a_condition_must_be_a_boolean() -> None:
    with pytest.raises(ExpressionError) as raised:
        evaluate_condition("parameters.replicas", CONTEXT)
    assert "true or false" in raised.value.reason and "'3'" in raised.value.reason


def test_syntax_errors_name_each_broken_expression() -> None:
    assert syntax_errors("fine ${{ parameters.x + 1 }} and ${{ 'y' }}") == []
    found = syntax_errors("a ${{ 1 + }} b ${{ }} c ${{ ok }}")
    assert len(found) == 2
    assert "${{ 1 + }}" in found[0] and "does not parse" in found[0]
    assert found[1] == "empty expression ${{ }}"
    assert syntax_errors("no expressions") == []


def test_condition_syntax_errors_bare_or_wrapped() -> None:
    assert condition_syntax_errors("parameters.x == 1") == []
    assert condition_syntax_errors("${{ parameters.x == 1 }}") == []
    assert len(condition_syntax_errors("parameters.x ==")) == 1
    assert len(condition_syntax_errors("${{ parameters.x == }}")) == 1
