"""Check Preconditions (expression form): fail the stage when a condition does not hold."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from workflows.context import StageContext
from workflows.expressions import condition_syntax_errors, evaluate_condition
from workflows.stages.base import StageConfig, StageFailed
from workflows.stages.registry import register_stage


class ExpressionPreconditionContext(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    expression: str = Field(min_length=1)
    failureMessage: str | None = None


class Precondition(BaseModel):
    """Spinnaker's shape: {type: expression, context: {expression, failureMessage}, failPipeline}."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["expression"] = "expression"
    context: ExpressionPreconditionContext
    failPipeline: bool = True


@register_stage
class CheckPreconditionsStage(StageConfig):
    type: Literal["checkPreconditions"] = "checkPreconditions"
    preconditions: list[Precondition] = Field(min_length=1)
    # Evaluated here, so a failure can quote the expression as written.
    raw_fields: ClassVar[frozenset[str]] = frozenset({"preconditions"})

    def problems(self) -> list[tuple[str, str]]:
        return [
            (f"preconditions[{i}].context.expression", message)
            for i, precondition in enumerate(self.preconditions)
            for message in condition_syntax_errors(precondition.context.expression)
        ]

    def summary(self) -> str:
        return f"Check {len(self.preconditions)} precondition(s)"

    async def run(self, ctx: StageContext) -> dict[str, Any]:
        results = []
        failures = []
        for precondition in self.preconditions:
            expression = precondition.context.expression
            passed = evaluate_condition(expression, ctx.expression_context())
            results.append({"expression": expression, "passed": passed})
            if not passed and precondition.failPipeline:
                failures.append(precondition.context.failureMessage or f"{expression} is false")
        if failures:
            raise StageFailed("precondition failed: " + "; ".join(failures), details={"results": results})
        return {"preconditions": results}
