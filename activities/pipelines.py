"""Reading saved pipeline configurations for the child-pipeline stage.

The store itself belongs to the gateway (core/store); the worker hands an object satisfying
SavedPipelineLookup to SavedPipelineActivities, so this module stays free of gateway imports.
"""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError


class SavedPipelineRef(BaseModel):
    application: str
    name: str
    revision: int | None = None


class SavedPipelineConfig(BaseModel):
    application: str
    name: str
    revision: int
    config: dict[str, Any]


class SavedPipelineLookup(Protocol):
    def get_pipeline_config(
        self, application: str, name: str, revision: int | None = None
    ) -> tuple[int, dict[str, Any]] | None: ...


class SavedPipelineActivities:
    def __init__(self, lookup: SavedPipelineLookup) -> None:
        self._lookup = lookup

    @activity.defn(name="load_saved_pipeline")
    def load_saved_pipeline(self, ref: SavedPipelineRef) -> SavedPipelineConfig:
        found = self._lookup.get_pipeline_config(ref.application, ref.name, ref.revision)
        if found is None:
            which = f" revision {ref.revision}" if ref.revision is not None else ""
            raise ApplicationError(
                f"no saved pipeline {ref.application}/{ref.name}{which}", type="PipelineNotFound", non_retryable=True
            )
        revision, config = found
        return SavedPipelineConfig(application=ref.application, name=ref.name, revision=revision, config=config)
