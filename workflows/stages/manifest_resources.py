"""Rolling Restart (Manifest) and Find Artifacts From Resource (Manifest).

Rolling restart does what `kubectl rollout restart` does: it sets the pod template annotation
`kubectl.kubernetes.io/restartedAt` to the current time, so the controller replaces every pod under
its own rollout strategy, then waits for the rollout. The time is the workflow's (`workflow.now()`),
so a retried patch writes the same value and restarts once.

Find artifacts from resource reads a live workload and outputs its manifest and one `docker/image`
artifact per image (`outputs.artifacts`, which the engine binds to the stage's `expectedArtifacts`),
as Spinnaker's `findArtifactsFromResource` does.
"""

from __future__ import annotations

from typing import Any, Literal

from temporalio import workflow

from workflows.context import StageContext
from workflows.stages.base import StageFailed
from workflows.stages.manifest_base import READ, TargetedStage
from workflows.stages.registry import register_stage

with workflow.unsafe.imports_passed_through():
    from activities.kubernetes.manifest_resources import RESOURCE_UNSUPPORTED, ManifestResourceActivities
    from activities.kubernetes.manifests import NON_RETRYABLE_MANIFEST, KubernetesManifestActivities, PatchManifestInput

RESTARTED_AT_ANNOTATION = "kubectl.kubernetes.io/restartedAt"
RESTARTABLE = ("Deployment", "StatefulSet", "DaemonSet")


@register_stage
class RollingRestartManifestStage(TargetedStage):
    """Replace every pod of a Deployment (StatefulSet, DaemonSet) under its rollout strategy."""

    type: Literal["rollingRestartManifest"] = "rollingRestartManifest"

    def summary(self) -> str:
        return f"Rolling restart of {self.target_text()}"

    async def run(self, ctx: StageContext) -> dict[str, Any]:
        ref = await self.target(ctx)
        if ref.kind not in RESTARTABLE:
            raise StageFailed(f"cannot restart {ref}: only {', '.join(RESTARTABLE)} roll out. Nothing was changed.")
        restarted_at = ctx.now().strftime("%Y-%m-%dT%H:%M:%SZ")
        patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT_ANNOTATION: restarted_at}}}}}
        return await self.change_then_wait(
            ctx,
            ref,
            KubernetesManifestActivities.patch_manifest,
            PatchManifestInput(ref=ref, patchBody=patch, mergeStrategy="strategic"),
            details=f"restarting {ref}",
            summary=self.summary(),
            doing=f"restarting {ref}",
            restartedAt=restarted_at,
        )


@register_stage
class FindArtifactsFromResourceStage(TargetedStage):
    """Output a live workload's manifest and its images as docker/image artifacts."""

    type: Literal["findArtifactsFromResource"] = "findArtifactsFromResource"

    def summary(self) -> str:
        return f"Find artifacts from {self.target_text()}"

    async def run(self, ctx: StageContext) -> dict[str, Any]:
        ref = await self.target(ctx)
        ctx.set_details(f"reading {ref}")
        found = await self.call(
            ctx,
            ManifestResourceActivities.find_artifacts_from_resource,
            ref,
            READ,
            summary=self.summary(),
            doing=f"reading the images of {ref}",
            non_retryable=[*NON_RETRYABLE_MANIFEST, RESOURCE_UNSUPPORTED],
        )
        return {
            "account": self.account_name,
            "manifest": found.manifest,
            "artifacts": [a.model_dump(exclude_none=True) for a in found.artifacts],
        }
