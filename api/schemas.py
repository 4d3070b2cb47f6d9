"""Request and response bodies of the gateway (the pipeline itself is workflows.model)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from core.executions import ExecutionList, ExecutionSummary
from core.launch import ExecutionLinks, ExecutionStarted
from workflows.artifacts import MAX_ARTIFACTS, Artifact

__all__ = [
    "EXAMPLE_PIPELINE",
    "Application",
    "ControlBody",
    "ExecutionLinks",
    "ExecutionList",
    "ExecutionRequest",
    "ExecutionStarted",
    "ExecutionSummary",
    "JudgmentBody",
    "SavedExecutionRequest",
    "SavedPipeline",
    "SavedPipelineRef",
]

EXAMPLE_PIPELINE: dict[str, Any] = {
    "application": "shop",
    "name": "release",
    "parameters": [{"name": "tag", "required": True}],
    "stages": [
        {"refId": "soak", "type": "wait", "waitTime": 30},
        {
            "refId": "approve",
            "type": "manualJudgment",
            "requisiteStageRefIds": ["soak"],
            "instructions": "Ship ${{ parameters.tag }}?",
            "judgmentInputs": ["ship", "hold"],
        },
    ],
}


# Parameters travel in the execution's input (Temporal payloads warn at 256 KB and fail at 2 MB) and
# are evaluated by every expression: bounded in number and in size per value.
MAX_PARAMETERS = 100
MAX_PARAMETER_BYTES = 16 * 1024


def _bounded_values(values: dict[str, Any]) -> dict[str, Any]:
    for name, value in values.items():
        size = len(json.dumps(value, default=str).encode())
        if size > MAX_PARAMETER_BYTES:
            raise ValueError(f"parameter {name!r} is {size} bytes; the limit is {MAX_PARAMETER_BYTES} bytes per value")
    return values


Parameters = Annotated[
    dict[str, Any],
    Field(max_length=MAX_PARAMETERS, description=f"At most {MAX_PARAMETERS}, each at most {MAX_PARAMETER_BYTES} bytes"),
    AfterValidator(_bounded_values),
]


class ExecutionRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"pipeline": EXAMPLE_PIPELINE, "parameters": {"tag": "v1.2.3"}}]},
    )
    pipeline: dict[str, Any] = Field(description="A pipeline (see GET /schema)")
    parameters: Parameters = Field(default_factory=dict)
    artifacts: list[Artifact] = Field(
        default_factory=list, max_length=MAX_ARTIFACTS, description="Artifacts the run is triggered with"
    )


class SavedExecutionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"parameters": {"tag": "v1.2.3"}}]})
    parameters: Parameters = Field(default_factory=dict)
    artifacts: list[Artifact] = Field(
        default_factory=list, max_length=MAX_ARTIFACTS, description="Artifacts the run is triggered with"
    )
    revision: int | None = Field(
        default=None, ge=1, le=2**31 - 1, description="Run this saved revision; default latest"
    )


class JudgmentBody(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"judgmentStatus": "continue", "input": "ship", "comment": "LGTM"}]},
    )
    judgmentStatus: Literal["continue", "stop"] = "continue"
    input: str | None = Field(default=None, description="One of the stage's judgmentInputs")
    comment: str | None = Field(default=None, max_length=2000)


class ControlBody(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"reason": "bad canary"}]})
    reason: str | None = Field(default=None, max_length=2000)


class SavedPipeline(BaseModel):
    application: str
    name: str
    revision: int
    author: str | None
    createdAt: datetime
    config: dict[str, Any]


class SavedPipelineRef(BaseModel):
    application: str
    name: str
    revision: int
    deleted: bool = False
    author: str | None = None
    createdAt: datetime | None = None


class Application(BaseModel):
    name: str
    pipelines: list[str]
