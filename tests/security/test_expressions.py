"""Expressions cannot take the service down: each bound fails fast, naming its limit — at
submission when the expression is in the pipeline, at run time when the cost depends on the data."""

from __future__ import annotations

import time

import pytest

from tests.support.builders import variables, wait
from tests.support.runner import Runner, pipeline
from workflows.model import PipelineInvalid, parse_pipeline, resolve_parameters
from workflows.state import ExecutionStatus, StageStatus

TEN = "[0,1,2,3,4,5,6,7,8,9]"
# The depth-7 expression, `[0..9]` written out (CEL has no range literal).
DEPTH_7 = "${{ size(" + "".join(f"{TEN}.map(v{i}, " for i in range(6, -1, -1)) + "'abcdefgh'" + ")" * 7 + ") }}"


def refused(document: dict[str, object]) -> str:
    began = time.monotonic()
    with pytest.raises(PipelineInvalid) as caught:
        parse_pipeline(document)
    assert time.monotonic() - began < 1.0
    return str(caught.value)


@pytest.mark.parametrize(
    ("value", "limit"),
    [
        (DEPTH_7, "MAX_COMPREHENSION_DEPTH"),
        ("${{ " + " + ".join(["1"] * 600) + " }}", "MAX_EXPRESSION_LENGTH"),
        ("${{ " + "(" * 40 + "1" + ")" * 40 + " }}", "MAX_NESTING_DEPTH"),
        ("${{ size([" + ",".join(["1"] * 1001) + "].map(x, x)) }}", "MAX_EXPRESSION_LENGTH"),
    ],
)
def test_static_expression_over_a_limit_is_refused_at_submission(value: str, limit: str) -> None:
    message = refused(pipeline(variables("v", x=value)))
    assert limit in message


def test_a_stage_condition_is_bounded_too() -> None:
    message = refused(pipeline(wait("w", 0, stageEnabled={"type": "expression", "expression": DEPTH_7})))
    assert "MAX_COMPREHENSION_DEPTH" in message


def test_stage_count_is_bounded() -> None:
    message = refused(pipeline(*(wait(f"w{i}", 0) for i in range(501))))
    assert "501 stages; the limit is 500 (MAX_STAGES)" in message


def test_parameter_values_are_bounded() -> None:
    spec = parse_pipeline(pipeline(wait("w", 0), parameters=[{"name": "blob"}]))
    with pytest.raises(PipelineInvalid, match="MAX_PARAMETER_BYTES"):
        resolve_parameters(spec, {"blob": "x" * 20_000})


async def test_cost_that_depends_on_the_data_fails_at_run_time(runner: Runner) -> None:
    # Two nested comprehensions are allowed, but over a 2,000-element parameter they would be
    # 4,000,000 iterations: refused before evaluating, and the execution stays readable.
    items = list(range(2_000))
    document = pipeline(
        variables("v", n="${{ size(parameters.items.map(a, parameters.items.map(b, a + b))) }}"),
        parameters=[{"name": "items"}],
    )
    began = time.monotonic()
    state = await runner.finish(await runner.start(document, {"items": items}), timeout=30)
    assert time.monotonic() - began < 15
    assert state.status is ExecutionStatus.TERMINAL
    stage = state.stages[0]
    assert stage.status is StageStatus.TERMINAL
    assert stage.error is not None and "MAX_COMPREHENSION_COST" in stage.error.message


async def test_result_size_is_bounded_at_run_time(runner: Runner) -> None:
    document = pipeline(
        variables("v", big="${{ [parameters.s, parameters.s, parameters.s, parameters.s, parameters.s] }}"),
        parameters=[{"name": "s"}],
    )
    state = await runner.finish(await runner.start(document, {"s": "y" * 15_000}), timeout=30)
    assert state.status is ExecutionStatus.TERMINAL
    error = state.stages[0].error
    assert error is not None and "MAX_RESULT_BYTES" in error.message
