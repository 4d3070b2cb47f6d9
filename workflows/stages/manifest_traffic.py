"""Traffic of manifests, Spinnaker's way: Enable / Disable (Manifest) and Deploy Manifest's
`trafficManagement` (spinnaker.io/docs/guides/user/kubernetes-v2/traffic-management/; deck
`kubernetes/src/manifest/wizard/...ManifestDeploymentOptions`; orca `DeployManifestStage`).

A ReplicaSet's load balancers are the Services in its `traffic.spinnaker.io/load-balancers`
annotation; enabling adds their selector labels to its pods, disabling removes them (see
activities/kubernetes/manifest_traffic.py). With `trafficManagement.enabled`, deployManifest names
each ReplicaSet `<name>-v<NNN>`, annotates `options.services`, starts it enabled when
`options.enableTraffic`, and after it is stable applies `options.strategy`: `redblack` disables every
other version of the cluster, `highlander` disables and then deletes them; no strategy leaves them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from temporalio import workflow

from workflows.account_calls import BATCH, READ, WAIT
from workflows.context import StageContext
from workflows.stages.manifest_base import TargetedStage
from workflows.stages.registry import register_stage

with workflow.unsafe.imports_passed_through():
    from activities.kubernetes.manifest_traffic import (
        NON_RETRYABLE_TRAFFIC,
        ClusterVersionsInput,
        ManifestTrafficActivities,
        ManifestTrafficInput,
        VersionedManifests,
        VersionTrafficInput,
    )
    from activities.kubernetes.manifests import (
        NON_RETRYABLE_MANIFEST,
        DeleteManifestsInput,
        KubernetesManifestActivities,
        ManifestRef,
    )

if TYPE_CHECKING:
    from workflows.stages.manifest_base import KubernetesStage

NON_RETRYABLE = [*NON_RETRYABLE_MANIFEST, *NON_RETRYABLE_TRAFFIC]
TRAFFIC_WAIT = timedelta(seconds=120)


class TrafficOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    services: list[str] = Field(default_factory=list, max_length=16, description="e.g. ['service web']")
    enableTraffic: bool = Field(default=True, description="Send traffic to the new version once it is stable")
    strategy: Literal["redblack", "highlander", "none"] | None = Field(
        default=None, description="What happens to the cluster's other versions"
    )
    namespace: str | None = Field(default=None, description="Spinnaker's; the Services' namespace (informational)")


class TrafficManagement(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    enabled: bool = False
    options: TrafficOptions = Field(default_factory=TrafficOptions)

    @model_validator(mode="after")
    def _usable(self) -> TrafficManagement:
        if self.enabled and not self.options.services:
            raise ValueError("trafficManagement.options.services needs at least one Service (e.g. 'service web')")
        if self.enabled and self.options.strategy in ("redblack", "highlander") and not self.options.enableTraffic:
            raise ValueError(
                f"trafficManagement.options.strategy {self.options.strategy} moves traffic to the new version: "
                "it needs enableTraffic: true"
            )
        return self


async def version_for_traffic(
    stage: KubernetesStage, ctx: StageContext, traffic: TrafficManagement, manifests: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], VersionedManifests]:
    """Version the ReplicaSets and annotate their load balancers (read-only; recorded once)."""
    override = getattr(stage, "namespaceOverride", None)
    if override:
        manifests = [{**m, "metadata": {**m.get("metadata", {}), "namespace": override}} for m in manifests]
    ask = VersionTrafficInput(
        manifests=manifests,
        namespace=override or "default",
        services=list(traffic.options.services),
        enableTraffic=traffic.options.enableTraffic,
        executionId=ctx.execution_id,
        stage=stage.refId,
    )
    versioned = await stage.call(
        ctx,
        ManifestTrafficActivities.version_traffic_manifests,
        ask,
        READ,
        summary="Choose the next version of each ReplicaSet",
        doing="choosing the next version of each ReplicaSet",
        left="Nothing was written.",
        non_retryable=NON_RETRYABLE,
    )
    return versioned.manifests, versioned


async def set_traffic(
    stage: KubernetesStage, ctx: StageContext, ref: ManifestRef, enabled: bool, services: list[str]
) -> list[str]:
    verb = "enable" if enabled else "disable"
    ctx.set_details(f"{verb[:-1]}ing traffic to {ref}")
    result = await stage.call(
        ctx,
        ManifestTrafficActivities.set_manifest_traffic,
        ManifestTrafficInput(
            ref=ref, enabled=enabled, loadBalancers=services, timeoutSeconds=TRAFFIC_WAIT.total_seconds()
        ),
        WAIT,
        summary=f"{verb.capitalize()} traffic to {ref}",
        doing=f"{verb[:-1]}ing traffic to {ref}",
        wait=TRAFFIC_WAIT,
        non_retryable=NON_RETRYABLE,
    )
    return result.loadBalancers


async def shift_traffic(
    stage: KubernetesStage, ctx: StageContext, traffic: TrafficManagement, versioned: VersionedManifests
) -> dict[str, Any]:
    """After the new versions are stable: make sure they serve, then apply the strategy to the others."""
    services = list(traffic.options.services)
    strategy = traffic.options.strategy or "none"
    disabled: list[str] = []
    deleted: list[str] = []
    for ref in versioned.replicaSets:
        if traffic.options.enableTraffic:
            await set_traffic(stage, ctx, ref, True, services)
        if strategy == "none":
            continue
        cluster = versioned.clusters[ref.name]
        others = await stage.call(
            ctx,
            ManifestTrafficActivities.list_cluster_versions,
            ClusterVersionsInput(namespace=ref.namespace, cluster=cluster),
            READ,
            summary=f"List the versions of cluster {cluster}",
            doing=f"listing the versions of cluster {cluster}",
            left=f"{ref} is deployed and serving; older versions were left as they were.",
            non_retryable=NON_RETRYABLE,
        )
        older = [o for o in others if o.name != ref.name]
        for old in older:
            await set_traffic(stage, ctx, old, False, services)
            disabled.append(old.name)
        if strategy == "highlander" and older:
            ctx.set_details(f"deleting {', '.join(o.name for o in older)}")
            await stage.call(
                ctx,
                KubernetesManifestActivities.delete_manifests,
                DeleteManifestsInput(refs=older, namespace=ref.namespace, timeoutSeconds=stage.waitTimeoutSeconds),
                BATCH,
                summary=f"Delete the older versions of cluster {cluster}",
                doing=f"deleting the older versions of cluster {cluster}",
                left="They no longer receive traffic.",
                wait=timedelta(seconds=stage.waitTimeoutSeconds),
                non_retryable=NON_RETRYABLE,
            )
            deleted += [o.name for o in older]
    return {
        "strategy": strategy,
        "services": services,
        "replicaSets": [r.name for r in versioned.replicaSets],
        "disabled": disabled,
        "deleted": deleted,
    }


class _TrafficStage(TargetedStage):
    loadBalancers: list[str] = Field(
        default_factory=list, max_length=16, description="Services to act on; default the workload's annotation"
    )

    async def _switch(self, ctx: StageContext, enabled: bool) -> dict[str, Any]:
        ref = await self.target(ctx)
        services = await set_traffic(self, ctx, ref, enabled, list(self.loadBalancers))
        return {
            "account": self.account_name,
            "manifest": ref.label,
            "namespace": ref.namespace,
            "loadBalancers": services,
            "enabled": enabled,
        }


@register_stage
class EnableManifestStage(_TrafficStage):
    """Send traffic from the workload's load balancers (Services) to its pods again."""

    type: Literal["enableManifest"] = "enableManifest"

    def summary(self) -> str:
        return f"Enable {self.target_text()}"

    async def run(self, ctx: StageContext) -> dict[str, Any]:
        return await self._switch(ctx, True)


@register_stage
class DisableManifestStage(_TrafficStage):
    """Take the workload's pods out of its load balancers (Services); the pods keep running."""

    type: Literal["disableManifest"] = "disableManifest"

    def summary(self) -> str:
        return f"Disable {self.target_text()}"

    async def run(self, ctx: StageContext) -> dict[str, Any]:
        return await self._switch(ctx, False)
