"""Asking a pipeline's gate for a turn (signal-with-start needs a client, so it is an activity)."""

from __future__ import annotations

from pydantic import BaseModel
from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy


class GateAcquire(BaseModel):
    gateId: str
    executionId: str
    keepWaiting: bool
    taskQueue: str


class GateActivities:
    def __init__(self, client: Client) -> None:
        self._client = client

    @activity.defn(name="request_gate")
    async def request_gate(self, request: GateAcquire) -> None:
        # Typed by name: activities do not import workflow modules.
        await self._client.start_workflow(
            "PipelineGate",
            None,
            id=request.gateId,
            task_queue=request.taskQueue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            start_signal="acquire",
            start_signal_args=[
                {"gateId": request.gateId, "executionId": request.executionId, "keepWaiting": request.keepWaiting}
            ],
            static_summary=f"Concurrency gate {request.gateId} (limitConcurrent)",
        )
