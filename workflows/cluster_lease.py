"""ClusterLease: one stage at a time changes a cluster's server groups (issue 11, item 8).

`limitConcurrent` serialises a pipeline, not a cluster: two red/black deploys of one cluster from
two executions each read the cluster, create a group, enable it and disable only the groups they
saw, leaving two enabled. Every stage that changes a cluster's server groups (deploy, enable,
disable, resize, destroy, shrink, quick patch, scaling) therefore holds the cluster's lease for its
whole run: one lease workflow per account/namespace/cluster (id `lease.<account>.<namespace>.<cluster>`),
shaped like the concurrency gate (workflows/gate.py).

- A stage asks with signal-with-start (`acquire`, through a local activity: it needs a client),
  waits for the `clusterLeaseGranted` signal carrying its token, and releases in a `finally`, so a
  failure or a cancel releases too. Requests queue in arrival order.
- A holder that dies without releasing (terminated, its worker gone for good, reset) is noticed:
  while the lease is held, the lease workflow asks every LEASE_CHECK seconds whether the holder's
  workflow still runs (a local activity that describes it) and releases it if not. A grant that
  cannot be delivered (the execution already closed) releases at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.exceptions import ActivityError, FailureError

with workflow.unsafe.imports_passed_through():
    from activities.cluster_lease import ClusterLeaseActivities, HolderQuery, LeaseAsk

if TYPE_CHECKING:
    from workflows.context import StageContext

LEASE_WORKFLOW = "ClusterLease"
LEASE_GRANTED_SIGNAL = "clusterLeaseGranted"
LEASE_CHECK = timedelta(seconds=10)


def lease_id(account: str, namespace: str, cluster: str) -> str:
    return f"lease.{account}.{namespace}.{cluster}"


class LeaseRequest(BaseModel):
    token: str = Field(description="Unique per stage attempt: <workflow id>/<run id>/<refId>/<uuid>")
    workflowId: str
    runId: str
    stage: str


class LeaseState(BaseModel):
    holder: LeaseRequest | None = None
    waiting: list[LeaseRequest] = Field(default_factory=list)


@workflow.defn(name=LEASE_WORKFLOW)
class ClusterLease:
    @workflow.init
    def __init__(self, state: LeaseState | None = None) -> None:
        self._state = state or LeaseState()
        self._outbox: list[LeaseRequest] = []  # grants to deliver

    @workflow.run
    async def run(self, state: LeaseState | None = None) -> None:
        while True:
            holder = self._state.holder
            try:
                await workflow.wait_condition(
                    self._changed(holder),
                    timeout=LEASE_CHECK if holder is not None else None,
                    timeout_summary="Check that the lease holder still runs",
                )
            except TimeoutError:
                if holder is not None and self._state.holder is holder and not await self._still_running(holder):
                    self._release(holder.token)
            while self._outbox:
                granted = self._outbox.pop(0)
                try:
                    await workflow.get_external_workflow_handle(granted.workflowId).signal(
                        LEASE_GRANTED_SIGNAL, granted.token
                    )
                except FailureError:
                    self._release(granted.token)  # the execution already ended: it will never release
            if self._idle():
                await workflow.wait_condition(workflow.all_handlers_finished)
                if self._idle() and not self._outbox:
                    return  # the next request starts a fresh lease workflow
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(self._state)

    def _changed(self, holder: LeaseRequest | None) -> Callable[[], bool]:
        return lambda: bool(self._outbox) or self._idle() or self._state.holder is not holder

    async def _still_running(self, holder: LeaseRequest) -> bool:
        try:
            return await workflow.execute_local_activity_method(
                ClusterLeaseActivities.holder_running,
                HolderQuery(workflowId=holder.workflowId, runId=holder.runId),
                start_to_close_timeout=timedelta(seconds=10),
                summary=f"Is {holder.workflowId} still running?",
            )
        except ActivityError:
            return True  # cannot tell: keep the lease, ask again later

    def _idle(self) -> bool:
        return self._state.holder is None and not self._state.waiting

    def _grant_next(self) -> None:
        if self._state.holder is None and self._state.waiting:
            self._state.holder = self._state.waiting.pop(0)
            self._outbox.append(self._state.holder)

    def _release(self, token: str) -> None:
        if self._state.holder is not None and self._state.holder.token == token:
            self._state.holder = None
        self._state.waiting = [w for w in self._state.waiting if w.token != token]
        self._grant_next()

    @workflow.signal(name="acquire")
    def acquire(self, request: LeaseRequest) -> None:
        known = [self._state.holder, *self._state.waiting]
        if any(r is not None and r.token == request.token for r in known):
            return  # a retried request
        self._state.waiting.append(request)
        self._grant_next()

    @workflow.signal(name="release")
    def release(self, token: str) -> None:
        self._release(token)

    @workflow.query(name="lease")
    def lease(self) -> LeaseState:
        return self._state


@asynccontextmanager
async def hold_cluster_lease(ctx: StageContext, account: str, namespace: str, cluster: str) -> AsyncIterator[None]:
    """Run the body holding the lease of `cluster` (queued behind earlier stages of any execution);
    released when the body ends, however it ends. Executions recorded before the lease replay
    without it."""
    if not workflow.patched("cluster-lease"):
        yield
        return
    info = workflow.info()
    lease = lease_id(account, namespace, cluster)
    request = LeaseRequest(
        token=f"{info.workflow_id}/{info.run_id}/{ctx.stage.refId}/{workflow.uuid4().hex[:12]}",
        workflowId=info.workflow_id,
        runId=info.run_id,
        stage=ctx.stage.refId,
    )
    evicted = False
    try:
        ctx.set_details(f"waiting for the lease of cluster {cluster} (another stage is changing it)")
        await workflow.execute_local_activity_method(
            ClusterLeaseActivities.request_cluster_lease,
            LeaseAsk(leaseId=lease, taskQueue=info.task_queue, request=request.model_dump()),
            start_to_close_timeout=timedelta(seconds=10),
            summary=f"Queue for the lease of cluster {cluster} ({account}/{namespace})",
        )
        await workflow.wait_condition(lambda: ctx.lease_granted(request.token))
        yield
    except GeneratorExit:
        # The worker evicted this run from its cache and is closing its coroutines: there is no
        # workflow to signal from, and the run's replay elsewhere still holds or releases the lease.
        evicted = True
        raise
    finally:
        if not evicted:
            with contextlib.suppress(FailureError):
                await workflow.get_external_workflow_handle(lease).signal("release", request.token)
