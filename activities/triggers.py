"""Starting pipelines whose `pipeline` trigger waits for the execution that just ended.

The activity runs the same trigger dispatch the gateway runs for webhooks (core/triggers.py), with
the worker's own Temporal client, settings and store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel
from temporalio import activity

if TYPE_CHECKING:
    from temporalio.client import Client

    from core.settings import GennakerSettings
    from core.store import PipelineStore


class PipelineFinished(BaseModel):
    application: str
    pipeline: str
    executionId: str
    status: str


class PipelineTriggerActivities:
    def __init__(self, client: Client, settings: GennakerSettings, store: PipelineStore) -> None:
        self._client = client
        self._settings = settings
        self._store = store

    @activity.defn(name="fire_pipeline_triggers")
    async def fire_pipeline_triggers(self, event: PipelineFinished) -> list[str]:
        """Ids of the executions started (or already started by an earlier attempt)."""
        # Imported here, not at the top: workflows/pipeline.py imports this module for
        # PipelineFinished, and core.triggers imports workflows/pipeline.py to start executions.
        from core.triggers import dispatch_pipeline_finished

        result = await dispatch_pipeline_finished(
            self._client,
            self._settings,
            self._store.aio,
            application=event.application,
            pipeline=event.pipeline,
            execution_id=event.executionId,
            status=event.status,
        )
        return [started.id for started in result.started]
