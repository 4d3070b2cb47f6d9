"""Cluster stages: act on one server group of a cluster, picked by name or by target.

Targets as in Spinnaker: `newest` (`current_asg_dynamic`), `previous` (`ancestor_asg_dynamic`),
`oldest` (`oldest_asg_dynamic`), `largest` (`largest_asg_dynamic`; ties go to the newest). Each
stage resolves its target with one read of the cluster, then mutates by absolute values (so an
activity retry changes nothing twice) and waits for the result by watching.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, model_validator
from temporalio import workflow

from workflows.cluster_lease import hold_cluster_lease
from workflows.context import StageContext
from workflows.stages.base import StageConfig, StageFailed
from workflows.stages.deploy_strategies import CLAIM_FIRST, ServerGroupOps
from workflows.stages.registry import register_stage

with workflow.unsafe.imports_passed_through():
    from activities.kubernetes.clusters import ServerGroupView
    from activities.kubernetes.servergroups import Capacity
    from activities.kubernetes.traffic import QuickPatchRequest

Target = Literal[
    "newest",
    "previous",
    "oldest",
    "largest",
    "current_asg_dynamic",
    "ancestor_asg_dynamic",
    "oldest_asg_dynamic",
    "largest_asg_dynamic",
]
ALIASES = {
    "current_asg_dynamic": "newest",
    "ancestor_asg_dynamic": "previous",
    "oldest_asg_dynamic": "oldest",
    "largest_asg_dynamic": "largest",
}


def pick_target(groups: list[ServerGroupView], target: str) -> ServerGroupView | None:
    """`groups` oldest first (as describe_cluster returns them)."""
    kind = ALIASES.get(target, target)
    if not groups:
        return None
    if kind == "newest":
        return groups[-1]
    if kind == "previous":
        return groups[-2] if len(groups) > 1 else None
    if kind == "oldest":
        return groups[0]
    return max(reversed(groups), key=lambda g: g.desired)  # largest; max keeps the first (newest) tie


class ServerGroupStage(StageConfig):
    account: str = Field(min_length=1)
    namespace: str = "default"
    cluster: str | None = Field(default=None, description="Cluster name, e.g. shop-prod")
    serverGroupName: str | None = Field(default=None, description="A server group by name instead of a target")
    target: Target = "newest"

    @model_validator(mode="after")
    def _what(self) -> ServerGroupStage:
        if self.cluster is None and self.serverGroupName is None:
            raise ValueError("give `cluster` (with `target`) or `serverGroupName`")
        return self

    async def run(self, ctx: StageContext) -> dict[str, Any]:
        if workflow.patched(CLAIM_FIRST):  # another application's cluster: refused before queueing for it
            ServerGroupOps(ctx, self.account, self.namespace).claim(self._cluster_name())
        # One change to a cluster's server groups at a time, from any execution (workflows/cluster_lease.py).
        async with hold_cluster_lease(ctx, self.account, self.namespace, self._cluster_name()):
            return await self.change(ctx)

    async def change(self, ctx: StageContext) -> dict[str, Any]:
        """What a stage that changes the server group does, holding the cluster's lease."""
        raise NotImplementedError

    def _cluster_name(self) -> str:
        if self.cluster is not None:
            return self.cluster
        name = str(self.serverGroupName)
        return name.rsplit("-v", 1)[0] if "-v" in name else name

    async def resolve(self, ctx: StageContext) -> tuple[ServerGroupOps, ServerGroupView, list[ServerGroupView]]:
        ops = ServerGroupOps(ctx, self.account, self.namespace)
        cluster = self._cluster_name()
        view = await ops.describe(cluster)
        groups = view.serverGroups
        if self.serverGroupName is not None:
            found = next((g for g in groups if g.name == self.serverGroupName), None)
            wanted = f"server group {self.serverGroupName}"
        else:
            found = pick_target(groups, self.target)
            wanted = f"the {ALIASES.get(self.target, self.target)} server group of {cluster}"
        if found is None:
            names = ", ".join(g.name for g in groups) or "none"
            raise StageFailed(f"no {wanted} in {self.account}/{self.namespace} (server groups: {names})")
        return ops, found, groups

    @staticmethod
    def outputs(group: ServerGroupView, **extra: Any) -> dict[str, Any]:
        return {
            "account": group.account,
            "namespace": group.namespace,
            "cluster": group.cluster,
            "serverGroup": group.name,
            "version": group.version,
            "image": group.image,
            **extra,
        }


@register_stage
class DestroyServerGroupStage(ServerGroupStage):
    """Disable (take it out of its load balancers), then delete the ReplicaSet and its pods."""

    type: Literal["destroyServerGroup"] = "destroyServerGroup"

    def summary(self) -> str:
        return f"Destroy {self.serverGroupName or f'{self.target} of {self.cluster}'}"

    async def change(self, ctx: StageContext) -> dict[str, Any]:
        ops, group, _ = await self.resolve(ctx)
        if group.enabled:
            await ops.traffic(group.name, False)
        await ops.destroy(group.name)
        return self.outputs(group, destroyed=True)


@register_stage
class DisableServerGroupStage(ServerGroupStage):
    type: Literal["disableServerGroup"] = "disableServerGroup"

    async def change(self, ctx: StageContext) -> dict[str, Any]:
        ops, group, _ = await self.resolve(ctx)
        result = await ops.traffic(group.name, False)
        return self.outputs(group, enabled=False, loadBalancers=result.loadBalancers)


@register_stage
class EnableServerGroupStage(ServerGroupStage):
    type: Literal["enableServerGroup"] = "enableServerGroup"

    async def change(self, ctx: StageContext) -> dict[str, Any]:
        ops, group, _ = await self.resolve(ctx)
        result = await ops.traffic(group.name, True)
        return self.outputs(group, enabled=True, loadBalancers=result.loadBalancers, enabledPods=result.enabledPods)


@register_stage
class ResizeServerGroupStage(ServerGroupStage):
    """`exact`: to `capacity`; `percentage`: up/down by `scalePct` % of the current desired count;
    `incremental`: up/down by `scaleNum`. The target count is computed here, the resize is absolute."""

    type: Literal["resizeServerGroup"] = "resizeServerGroup"
    resizeType: Literal["exact", "percentage", "incremental"] = "exact"
    action: Literal["scale_up", "scale_down"] = "scale_up"
    capacity: Capacity | None = None
    scalePct: float | None = Field(default=None, gt=0)
    scaleNum: int | None = Field(default=None, ge=0)
    waitForHealthySec: float = Field(default=600, gt=0)

    @model_validator(mode="after")
    def _amount(self) -> ResizeServerGroupStage:
        needed = {"exact": self.capacity, "percentage": self.scalePct, "incremental": self.scaleNum}[self.resizeType]
        if needed is None:
            field = {"exact": "capacity", "percentage": "scalePct", "incremental": "scaleNum"}[self.resizeType]
            raise ValueError(f"resizeType {self.resizeType} needs `{field}`")
        return self

    def target_capacity(self, current: Capacity) -> Capacity:
        if self.resizeType == "exact" and self.capacity is not None:
            return self.capacity
        sign = 1 if self.action == "scale_up" else -1
        if self.resizeType == "percentage":
            change = math.ceil(current.desired * float(self.scalePct or 0) / 100)
        else:
            change = int(self.scaleNum or 0)
        desired = max(0, current.desired + sign * change)
        return Capacity(min=min(current.min, desired), max=max(current.max, desired), desired=desired)

    def summary(self) -> str:
        return f"Resize {self.serverGroupName or f'{self.target} of {self.cluster}'} ({self.resizeType})"

    async def change(self, ctx: StageContext) -> dict[str, Any]:
        ops, group, _ = await self.resolve(ctx)
        current = group.capacity.model_copy(update={"desired": group.desired})
        capacity = self.target_capacity(current)
        ctx.set_details(f"resizing {group.name} from {group.desired} to {capacity.desired}")
        health = await ops.resize(group.name, capacity.desired, self.waitForHealthySec, capacity=capacity)
        return self.outputs(
            group,
            previousDesired=group.desired,
            desired=health.desired,
            ready=health.ready,
            capacity=capacity.model_dump(),
        )


@register_stage
class ShrinkClusterStage(StageConfig):
    """Keep `shrinkToSize` server groups (the newest, or the largest with `retainLargerOverNewer`);
    destroy the rest, except enabled ones unless `allowDeleteActive`."""

    type: Literal["shrinkCluster"] = "shrinkCluster"
    account: str = Field(min_length=1)
    namespace: str = "default"
    cluster: str = Field(min_length=1)
    shrinkToSize: int = Field(default=1, ge=0)
    allowDeleteActive: bool = False
    retainLargerOverNewer: bool = False

    async def run(self, ctx: StageContext) -> dict[str, Any]:
        if workflow.patched(CLAIM_FIRST):
            ServerGroupOps(ctx, self.account, self.namespace).claim(self.cluster)
        async with hold_cluster_lease(ctx, self.account, self.namespace, self.cluster):
            return await self.shrink(ctx)

    async def shrink(self, ctx: StageContext) -> dict[str, Any]:
        ops = ServerGroupOps(ctx, self.account, self.namespace)
        groups = list(reversed((await ops.describe(self.cluster)).serverGroups))  # newest first
        if self.retainLargerOverNewer:
            groups.sort(key=lambda g: -g.desired)  # stable: newest first among equals
        keep = groups[: self.shrinkToSize]
        doomed = [g for g in groups[self.shrinkToSize :] if self.allowDeleteActive or not g.enabled]
        for group in doomed:
            if group.enabled:
                await ops.traffic(group.name, False)
            await ops.destroy(group.name)
        spared = [g.name for g in groups[self.shrinkToSize :] if g not in doomed]
        return {
            "account": self.account,
            "namespace": self.namespace,
            "cluster": self.cluster,
            "kept": [g.name for g in keep],
            "destroyed": [g.name for g in doomed],
            "sparedEnabled": spared,
        }


@register_stage
class FindImageFromClusterStage(ServerGroupStage):
    """The image (and digest, when a pod is running it) of a cluster's server group, for later stages:
    `${{ stages.find.outputs.image }}`. `onlyEnabled` looks only at enabled groups."""

    type: Literal["findImageFromCluster"] = "findImageFromCluster"
    onlyEnabled: bool = True

    async def run(self, ctx: StageContext) -> dict[str, Any]:
        ops = ServerGroupOps(ctx, self.account, self.namespace)
        cluster = self._cluster_name()
        groups = [g for g in (await ops.describe(cluster)).serverGroups if g.enabled or not self.onlyEnabled]
        group = (
            next((g for g in groups if g.name == self.serverGroupName), None)
            if self.serverGroupName
            else pick_target(groups, self.target)
        )
        if group is None or not group.images:
            which = "enabled " if self.onlyEnabled else ""
            raise StageFailed(f"no {which}server group with an image in {self.account}/{self.namespace}/{cluster}")
        first = group.images[0]
        return self.outputs(
            group,
            image=first.image,
            imageId=first.imageId,
            digest=first.imageId.split("@", 1)[1] if first.imageId and "@" in first.imageId else None,
            images=[i.model_dump() for i in group.images],
        )


@register_stage
class QuickPatchServerGroupStage(ServerGroupStage):
    """Set a new image on a server group in place and replace its pods, one at a time (each
    replacement ready before the next goes) or all at once. No new version is made."""

    type: Literal["quickPatchServerGroup"] = "quickPatchServerGroup"
    image: str = Field(min_length=1)
    container: str | None = None
    rollingPatch: bool = Field(default=True, description="One pod at a time; false = all at once")
    waitForHealthySec: float = Field(default=600, gt=0)

    async def change(self, ctx: StageContext) -> dict[str, Any]:
        ops, group, _ = await self.resolve(ctx)
        ctx.set_details(f"patching {group.name} to {self.image}")
        result = await ops.quick_patch(
            QuickPatchRequest(
                namespace=self.namespace,
                name=group.name,
                image=self.image,
                container=self.container,
                oneAtATime=self.rollingPatch,
                timeoutSeconds=self.waitForHealthySec,
            )
        )
        return self.outputs(
            group,
            image=self.image,
            previousImage=group.image,
            container=result.container,
            replacedPods=result.replacedPods,
        )


@register_stage
class ModifyScalingProcessStage(ServerGroupStage):
    """Suspend or resume the HorizontalPodAutoscaler of a server group (pins min = max while suspended)."""

    type: Literal["modifyScalingProcess"] = "modifyScalingProcess"
    action: Literal["suspend", "resume"]
    processes: list[str] = Field(default_factory=list, description="Accepted for Spinnaker pipelines; unused")

    async def change(self, ctx: StageContext) -> dict[str, Any]:
        ops, group, _ = await self.resolve(ctx)
        result = await ops.scaling(group.name, self.action == "suspend")
        return self.outputs(group, action=self.action, autoscalers=result.autoscalers)
