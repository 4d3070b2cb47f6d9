"""Server-group operations as workflow calls, and the deploy strategies built from them.

`ServerGroupOps` names each server-group call's kind (read, write, wait: see
workflows/account_calls.py) and writes the Temporal UI summaries ("Deploy shop-prod-v003 (3
replicas)", "Disable shop-prod-v002"); the deploy strategies and the cluster stages only say what to do.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import TemporalError

from activities.grants import ApplicationGrants
from workflows.account_calls import READ, WAIT, WRITE, AccountCalls, failure_reason
from workflows.context import StageContext
from workflows.stages.base import StageFailed

with workflow.unsafe.imports_passed_through():
    from activities.kubernetes.client import NON_RETRYABLE
    from activities.kubernetes.clusters import ClusterActivities, ClusterQuery, ClusterView, ServerGroupView
    from activities.kubernetes.firewalls import FirewallActivities, SecurityGroupResult, SecurityGroupSpec
    from activities.kubernetes.servergroup_create import NOTHING_CREATED
    from activities.kubernetes.servergroups import (
        Capacity,
        CreateRequest,
        DestroyRequest,
        Health,
        Reservation,
        ReserveRequest,
        ResizeRequest,
        ScalingRequest,
        ScalingResult,
        ServerGroupActivities,
        ServerGroupCreated,
        WaitRequest,
    )
    from activities.kubernetes.traffic import (
        QuickPatchRequest,
        QuickPatchResult,
        SwitchRequest,
        SwitchResult,
        TrafficActivities,
        TrafficRequest,
        TrafficResult,
    )
    from activities.kubernetes.waiting import WAIT_FAILED, WAIT_TIMEOUT

# Red/black switches traffic in one activity (enable the new group, then disable the older ones);
# executions that started before switched with one setServerGroupTraffic call per group.
SWITCH_IN_ONE_CALL = "deploy-redblack-switch-in-one-call"

SERVER_GROUP_NON_RETRYABLE = [*NON_RETRYABLE, WAIT_FAILED, WAIT_TIMEOUT, "ServerGroupExists", "NoAutoscaler"]


# Patch id: server-group stages check the cluster is theirs before its lease and before reading it.
CLAIM_FIRST = "claim-cluster-first"


def short(name: str, cluster: str) -> str:
    """'v003' for 'shop-prod-v003' in messages that already name the cluster."""
    return name[len(cluster) + 1 :] if name.startswith(cluster + "-") else name


def _seconds(limit: float) -> timedelta:
    return timedelta(seconds=limit)


def cluster_of(server_group: str) -> str:
    """`shop-prod` for `shop-prod-v003` (a name without a version is its own cluster)."""
    head, _, version = server_group.rpartition("-v")
    return head if head and version.isdigit() else server_group


class ServerGroupOps:
    """Activities of one Kubernetes account and namespace, on the task queue of its worker.

    Every call checks the grants for the account and namespace (AccountCalls); every change also
    checks that the cluster belongs to the application acting (`<app>` or `<app>-…`, or the
    policy's cluster patterns), so no stage changes another application's server groups."""

    def __init__(
        self, ctx: StageContext, account: str, namespace: str, grants: ApplicationGrants | None = None
    ) -> None:
        self.ctx = ctx
        self.account = account
        self.namespace = namespace
        self.calls = AccountCalls(
            ctx, "kubernetes", account, SERVER_GROUP_NON_RETRYABLE, namespace=namespace, grants=grants
        )

    def claim(self, cluster: str) -> None:
        """Fail the stage (kind `policy`) before any change if `cluster` is not the application's.
        Executions recorded before tenancy (no grants) replay as they ran."""
        if self.ctx.run_input.grants is None:
            return
        refusal = self.calls.grants.cluster_refusal(cluster)
        if refusal is not None:
            raise StageFailed(f"{refusal}. Nothing was changed.", details={"kind": "policy"})

    async def describe(self, cluster: str) -> ClusterView:
        # Reading a cluster tells its server groups' names, images and sizes: the acting
        # application's clusters only (a refused stage used to list another's groups in its error).
        if workflow.patched(CLAIM_FIRST):
            self.claim(cluster)
        return await self.calls.call(
            ClusterActivities.describe_cluster,
            ClusterQuery(namespace=self.namespace, cluster=cluster),
            READ,
            summary=f"Describe cluster {cluster} ({self.account}/{self.namespace})",
            doing=f"reading cluster {cluster} in namespace {self.namespace}",
        )

    async def upsert_security_group(self, spec: SecurityGroupSpec) -> SecurityGroupResult:
        return await self.calls.call(
            FirewallActivities.upsert_security_group,
            spec,
            WRITE,
            summary=f"Upsert security group {spec.name}",
            doing=f"upserting security group {spec.name}",
        )

    async def reserve(self, application: str, cluster: str, deploy_key: str) -> Reservation:
        self.claim(cluster)
        return await self.calls.call(
            ServerGroupActivities.reserve_server_group_version,
            ReserveRequest(namespace=self.namespace, application=application, cluster=cluster, deployKey=deploy_key),
            WRITE,
            summary=f"Reserve the next version of {cluster}",
            doing=f"reserving the next version of {cluster}",
        )

    async def create(self, req: CreateRequest) -> ServerGroupCreated:
        self.claim(req.cluster)
        return await self.calls.call(
            ServerGroupActivities.create_server_group,
            req,
            WRITE,
            summary=f"Deploy {req.name} ({req.replicas} replicas{', disabled' if not req.enabled else ''})",
            doing=f"creating server group {req.name}",
            # On cancel, wait until the create has really stopped, so the rollback that follows sees
            # the group if it was made, instead of racing an attempt still in flight.
            wait_cancellation=True,
        )

    async def wait_healthy(self, name: str, limit: float, max_restarts: int | None = None) -> Health:
        self.ctx.set_details(f"waiting for {name} to be healthy")
        return await self.calls.call(
            ServerGroupActivities.wait_server_group_healthy,
            WaitRequest(namespace=self.namespace, name=name, timeoutSeconds=limit, maxRestarts=max_restarts),
            WAIT,
            wait=_seconds(limit),
            summary=f"Wait for {name} to be healthy",
            doing=f"waiting for {name} to be healthy",
        )

    async def resize(
        self,
        name: str,
        replicas: int,
        limit: float,
        capacity: Capacity | None = None,
        max_restarts: int | None = None,
    ) -> Health:
        self.claim(cluster_of(name))
        await self.calls.call(
            ServerGroupActivities.resize_server_group,
            ResizeRequest(namespace=self.namespace, name=name, replicas=replicas, capacity=capacity),
            WRITE,
            summary=f"Resize {name} to {replicas}",
            doing=f"resizing {name} to {replicas}",
        )
        return await self.wait_healthy(name, limit, max_restarts)

    async def traffic(self, name: str, enabled: bool, pods: int | None = None, limit: float = 120) -> TrafficResult:
        self.claim(cluster_of(name))
        verb = "Enable" if enabled else "Disable"
        summary = f"{verb} {name}" if pods is None else f"Keep traffic on {pods} pod(s) of {name}"
        self.ctx.set_details(summary[0].lower() + summary[1:])
        return await self.calls.call(
            TrafficActivities.set_server_group_traffic,
            TrafficRequest(
                namespace=self.namespace, name=name, enabled=enabled, enabledPods=pods, timeoutSeconds=limit
            ),
            WAIT,
            wait=_seconds(limit),
            summary=summary,
            doing=summary[0].lower() + summary[1:],
        )

    async def switch(self, new: str, older: list[str], limit: float = 120) -> SwitchResult:
        """Enable `new`, then disable `older` once `new` serves: one activity, make before break."""
        for name in (new, *older):
            self.claim(cluster_of(name))
        summary = f"Enable {new}" + (f", then disable {', '.join(older)}" if older else "")
        self.ctx.set_details(summary[0].lower() + summary[1:])
        return await self.calls.call(
            TrafficActivities.switch_server_group_traffic,
            SwitchRequest(namespace=self.namespace, enable=new, disable=older, timeoutSeconds=limit),
            WAIT,
            wait=_seconds(limit),
            summary=summary,
            doing=f"switching traffic to {new}",
        )

    async def destroy(self, name: str, limit: float = 300) -> bool:
        self.claim(cluster_of(name))
        self.ctx.set_details(f"destroying {name}")
        await self.calls.call(
            ServerGroupActivities.destroy_server_group,
            DestroyRequest(namespace=self.namespace, name=name, timeoutSeconds=limit),
            WAIT,
            wait=_seconds(limit),
            summary=f"Destroy {name}",
            doing=f"destroying {name}",
        )
        return True

    async def quick_patch(self, req: QuickPatchRequest) -> QuickPatchResult:
        self.claim(cluster_of(req.name))
        how = "one pod at a time" if req.oneAtATime else "all pods at once"
        return await self.calls.call(
            TrafficActivities.quick_patch_server_group,
            req,
            WAIT,
            wait=_seconds(req.timeoutSeconds),
            summary=f"Quick patch {req.name} to {req.image} ({how})",
            doing=f"quick-patching {req.name} to {req.image}",
        )

    async def scaling(self, name: str, suspend: bool) -> ScalingResult:
        self.claim(cluster_of(name))
        return await self.calls.call(
            ServerGroupActivities.set_server_group_scaling,
            ScalingRequest(namespace=self.namespace, name=name, suspend=suspend),
            WRITE,
            summary=f"{'Suspend' if suspend else 'Resume'} autoscaling of {name}",
            doing=f"{'suspending' if suspend else 'resuming'} autoscaling of {name}",
        )


@dataclass
class DeployPlan:
    """What the deploy stage decided before any strategy runs (all names, no manifests)."""

    application: str
    cluster: str
    strategy: str
    capacity: Capacity
    create: Callable[[int, bool], CreateRequest]  # (replicas, enabled) -> request for the new group
    timeout: float
    max_restarts: int | None
    rollback: bool
    destroy_failed: bool
    scale_down: bool
    delay_before_scale_down: float
    max_remaining: int | None
    target_percentages: list[int]
    approve_step: Callable[[int, int], Awaitable[None]] | None = None  # (step index, percentage)


@dataclass
class DeployRun:
    """What a deploy changed so far: what a failure must undo, and what the outputs report."""

    new: str | None = None
    disabled: list[str] = field(default_factory=list)
    scaled_down: list[str] = field(default_factory=list)
    destroyed: list[str] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)


async def run_strategy(ops: ServerGroupOps, plan: DeployPlan, name: str, older: list[ServerGroupView]) -> DeployRun:
    run = DeployRun()
    enabled_older = [g for g in older if g.enabled]
    creating = phase = f"creating {name} failed"
    try:
        # The name is known (reserved) before the create: a cancel that lands during the create
        # still rolls the new group back, and removing one that was never made is harmless.
        run.new = name
        if plan.strategy == "rollingRedBlack":
            await ops.create(plan.create(0, True))
            phase = f"{name} never became healthy"
            await _rolling(ops, plan, name, enabled_older, run)
        else:
            blue_green = plan.strategy == "redblack"
            await ops.create(plan.create(plan.capacity.desired, not blue_green))
            phase = f"{name} never became healthy"
            await ops.wait_healthy(name, plan.timeout, plan.max_restarts)
            phase = f"switching traffic to {name} failed"
            if blue_green and workflow.patched(SWITCH_IN_ONE_CALL):
                # Counted as disabled before the call: if it fails part-way, any of them may have
                # lost traffic already, and the rollback re-enables them all (harmless if enabled).
                run.disabled = [g.name for g in enabled_older]
                await ops.switch(name, run.disabled)
            elif blue_green:
                await ops.traffic(name, True)
                for group in enabled_older:
                    await ops.traffic(group.name, False)
                    run.disabled.append(group.name)
    # Failures and cancellation roll back; GeneratorExit (the run's coroutines closed by garbage
    # collection, possibly inside another workflow's activation: pipeline.py `run`) and the SDK's
    # eviction must pass untouched: a rollback then would schedule activities for the wrong run.
    except (Exception, asyncio.CancelledError) as exc:
        if phase == creating and isinstance(exc, StageFailed) and NOTHING_CREATED in exc.message:
            run.new = None  # the API server refused it: there is no new group to disable or destroy
        if not plan.rollback or (run.new is None and not run.disabled):
            raise
        note = await _roll_back(ops, plan, run, enabled_older)
        if isinstance(exc, TemporalError | StageFailed):
            reason = exc.message if isinstance(exc, StageFailed) else failure_reason(exc)
            raise StageFailed(f"{phase}: {reason}; {note}", details={"rolledBack": True}) from None
        raise  # canceled: the cleanup above has run
    if plan.strategy == "highlander":
        for group in older:
            await ops.traffic(group.name, False)
            await ops.destroy(group.name)
            run.destroyed.append(group.name)
        return run
    if plan.strategy in ("redblack", "rollingRedBlack"):
        if plan.scale_down and enabled_older:
            if plan.delay_before_scale_down > 0:
                ops.ctx.set_details(f"scaling down {', '.join(run.disabled)} in {plan.delay_before_scale_down:g}s")
                await ops.ctx.sleep(
                    timedelta(seconds=plan.delay_before_scale_down),
                    summary=f"Wait {plan.delay_before_scale_down:g}s before scaling down",
                )
            for group in enabled_older:
                await ops.resize(group.name, 0, plan.timeout)
                run.scaled_down.append(group.name)
        if plan.max_remaining is not None:
            surplus = len(older) + 1 - plan.max_remaining
            for group in older[: max(0, surplus)]:  # oldest first
                await ops.traffic(group.name, False)
                await ops.destroy(group.name)
                run.destroyed.append(group.name)
    return run


async def _rolling(
    ops: ServerGroupOps, plan: DeployPlan, name: str, enabled_older: list[ServerGroupView], run: DeployRun
) -> None:
    desired = plan.capacity.desired
    for index, percentage in enumerate(plan.target_percentages):
        if index > 0 and plan.approve_step is not None:
            await plan.approve_step(index, percentage)
        new_count = math.ceil(desired * percentage / 100)
        ops.ctx.set_details(f"step {index + 1}/{len(plan.target_percentages)}: {percentage}% on {name}")
        await ops.resize(name, new_count, plan.timeout, max_restarts=plan.max_restarts)
        kept: dict[str, int] = {}
        for group in enabled_older:
            keep = 0 if percentage >= 100 else group.desired - math.ceil(group.desired * percentage / 100)
            if keep <= 0:
                await ops.traffic(group.name, False)
            else:
                await ops.traffic(group.name, True, pods=keep)
            if group.name not in run.disabled:
                run.disabled.append(group.name)
            kept[group.name] = keep
        run.steps.append({"percentage": percentage, "newReplicas": new_count, "olderPodsServing": kept})


async def _roll_back(
    ops: ServerGroupOps, plan: DeployPlan, run: DeployRun, enabled_older: list[ServerGroupView]
) -> str:
    """Put traffic back where it was; say what was left behind. Never raises: it reports instead."""
    notes: list[str] = []
    for group in enabled_older:
        try:
            if group.name in run.disabled:
                await ops.traffic(group.name, True)
            notes.append(f"{short(group.name, plan.cluster)} still enabled and serving")
        except (TemporalError, StageFailed) as exc:
            notes.append(f"could not re-enable {group.name}: {failure_reason(exc)}")
    if run.new is not None:
        try:
            if plan.destroy_failed:
                await ops.destroy(run.new)
                notes.insert(0, f"{short(run.new, plan.cluster)} destroyed")
            else:
                await ops.traffic(run.new, False)
                notes.insert(0, f"{short(run.new, plan.cluster)} disabled")
        except (TemporalError, StageFailed) as exc:
            notes.insert(
                0, f"could not {'destroy' if plan.destroy_failed else 'disable'} {run.new}: {failure_reason(exc)}"
            )
    return "; ".join(notes) if notes else "nothing to roll back"
