"""Evaluate Variables: name values once, for later stages (`variables.<key>`)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from workflows.context import StageContext
from workflows.stages.base import StageConfig
from workflows.stages.registry import register_stage


class Variable(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    key: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    value: Any = None
    description: str | None = None


@register_stage
class EvaluateVariablesStage(StageConfig):
    """Evaluated in order, so a value may use the variables defined above it in the same stage."""

    type: Literal["evaluateVariables"] = "evaluateVariables"
    variables: list[Variable] = Field(min_length=1)
    raw_fields: ClassVar[frozenset[str]] = frozenset({"variables"})

    @field_validator("variables")
    @classmethod
    def _unique_keys(cls, value: list[Variable]) -> list[Variable]:
        keys = [v.key for v in value]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise ValueError(f"duplicate variable keys: {', '.join(duplicates)}")
        return value

    def exported_variables(self, outputs: dict[str, Any]) -> dict[str, Any]:
        return outputs

    def summary(self) -> str:
        return f"Evaluate variables: {', '.join(v.key for v in self.variables)}"

    async def run(self, ctx: StageContext) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for variable in self.variables:
            context = ctx.expression_context()
            context["variables"] = {**context["variables"], **values}
            values[variable.key] = ctx.evaluate(variable.value, extra={"variables": context["variables"]})
        return values
