"""Request and response bodies of the gateway (the pipeline itself is workflows.model)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

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


class ExecutionRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"pipeline": EXAMPLE_PIPELINE, "parameters": {"tag": "v1.2.3"}}]},
    )
    pipeline: dict[str, Any] = Field(description="A pipeline (see GET /schema)")
    parameters: dict[str, Any] = Field(default_factory=dict)
    artifacts: list[Artifact] = Field(
        default_factory=list, max_length=MAX_ARTIFACTS, description="Artifacts the run is triggered with"
    )


class SavedExecutionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"parameters": {"tag": "v1.2.3"}}]})
    parameters: dict[str, Any] = Field(default_factory=dict)
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
