"""Starting pipelines whose `pipeline` trigger waits for the execution that just ended.

The starting itself is the gateway's trigger dispatch; the worker hands it in as `fire`, so this
module stays free of gateway imports (workers/ wires them).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from pydantic import BaseModel
from temporalio import activity


class PipelineFinished(BaseModel):
    application: str
    pipeline: str
    executionId: str
    status: str


class PipelineTriggerActivities:
    def __init__(self, fire: Callable[[PipelineFinished], Awaitable[list[str]]]) -> None:
        self._fire = fire

    @activity.defn(name="fire_pipeline_triggers")
    async def fire_pipeline_triggers(self, event: PipelineFinished) -> list[str]:
        """Ids of the executions started (or already started by an earlier attempt)."""
        return await self._fire(event)
