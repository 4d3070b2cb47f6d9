"""The client side of the cluster lease (workflows/cluster_lease.py): asking for it with
signal-with-start, and telling whether a holder's workflow still runs."""

from __future__ import annotations

from pydantic import BaseModel
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode


class LeaseAsk(BaseModel):
    leaseId: str
    taskQueue: str
    request: dict[str, str]


class HolderQuery(BaseModel):
    workflowId: str
    runId: str


class ClusterLeaseActivities:
    def __init__(self, client: Client) -> None:
        self._client = client

    @activity.defn(name="request_cluster_lease")
    async def request_cluster_lease(self, ask: LeaseAsk) -> None:
        # Typed by name: activities do not import workflow modules.
        await self._client.start_workflow(
            "ClusterLease",
            None,
            id=ask.leaseId,
            task_queue=ask.taskQueue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            start_signal="acquire",
            start_signal_args=[ask.request],
            static_summary=f"Cluster lease {ask.leaseId}: one server-group change at a time",
        )

    @activity.defn(name="cluster_lease_holder_running")
    async def holder_running(self, query: HolderQuery) -> bool:
        try:
            description = await self._client.get_workflow_handle(query.workflowId, run_id=query.runId).describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return description.status == WorkflowExecutionStatus.RUNNING
