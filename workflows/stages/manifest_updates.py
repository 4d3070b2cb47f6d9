"""Changing an existing object in place, then waiting for its rollout: Scale Manifest (replicas),
Patch Manifest (strategic, JSON merge or JSON patch) and Undo Rollout Manifest (`kubectl rollout undo`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from temporalio import workflow

from workflows.context import StageContext
from workflows.stages.base import Expression
from workflows.stages.manifest_base import READ, TargetedStage, size_checked
from workflows.stages.registry import register_stage

with workflow.unsafe.imports_passed_through():
    from activities.kubernetes.manifests import (
        KubernetesManifestActivities,
        PatchManifestInput,
        ScaleManifestInput,
        UndoRolloutPlanInput,
    )


@register_stage
class ScaleManifestStage(TargetedStage):
    """Set the replicas of any kind with a `scale` subresource (Deployment, ReplicaSet, StatefulSet,
    custom resources that declare one), as `kubectl scale` does, then wait for it to settle."""

    type: Literal["scaleManifest"] = "scaleManifest"
    replicas: Annotated[int, Field(ge=0)] | Expression

    def summary(self) -> str:
        return f"Scale {self.target_text()} to {self.replicas}"

    async def run(self, ctx: StageContext) -> dict[str, Any]:
        ref = await self.target(ctx)
        replicas = int(self.replicas)
        scale = ScaleManifestInput(ref=ref, replicas=replicas, application=ctx.execution.application)
        return await self.change_then_wait(
            ctx,
            ref,
            KubernetesManifestActivities.scale_manifest,
            scale,
            details=f"scaling {ref} to {replicas}",
            summary=self.summary(),
            doing=f"scaling {ref}",
            replicas=replicas,
        )


class PatchOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    mergeStrategy: Literal["strategic", "merge", "json"] = "strategic"
    record: bool = Field(default=True, description="Spinnaker's change-cause flag; accepted, not recorded")


@register_stage
class PatchManifestStage(TargetedStage):
    """Patch an object in place: strategic merge (default), JSON merge (RFC 7386) or JSON patch (RFC 6902)."""

    type: Literal["patchManifest"] = "patchManifest"
    patchBody: dict[str, Any] | list[dict[str, Any]]
    options: PatchOptions = Field(default_factory=PatchOptions)
    source: Literal["text"] = "text"

    def summary(self) -> str:
        return f"Patch {self.target_text()} ({self.options.mergeStrategy})"

    async def run(self, ctx: StageContext) -> dict[str, Any]:
        body: Any = self.patchBody
        if self.options.mergeStrategy != "json" and isinstance(body, list) and len(body) == 1:
            body = body[0]  # deck stores a one-document YAML patch as a list
        size_checked("the patch body", body)
        ref = await self.target(ctx)
        patch = PatchManifestInput(ref=ref, patchBody=body, mergeStrategy=self.options.mergeStrategy)
        return await self.change_then_wait(
            ctx,
            ref,
            KubernetesManifestActivities.patch_manifest,
            patch,
            details=f"patching {ref}",
            summary=self.summary(),
            doing=f"patching {ref}",
            mergeStrategy=self.options.mergeStrategy,
        )


@register_stage
class UndoRolloutManifestStage(TargetedStage):
    """`kubectl rollout undo` for a Deployment: bring back the pod template of `numRevisionsBack`
    revisions ago (default the previous one) or of exactly `revision`, then wait for the rollout."""

    type: Literal["undoRolloutManifest"] = "undoRolloutManifest"
    numRevisionsBack: Annotated[int, Field(ge=1)] | Expression = 1
    revision: Annotated[int, Field(ge=1)] | Expression | None = Field(default=None, description="Like --to-revision")

    def summary(self) -> str:
        back = f"revision {self.revision}" if self.revision is not None else f"{self.numRevisionsBack} revision(s) back"
        return f"Undo rollout of {self.target_text()} to {back}"

    async def run(self, ctx: StageContext) -> dict[str, Any]:
        ref = await self.target(ctx)
        ask = UndoRolloutPlanInput(
            ref=ref,
            numRevisionsBack=int(self.numRevisionsBack),
            revision=None if self.revision is None else int(self.revision),
        )
        plan = await self.call(
            ctx,
            KubernetesManifestActivities.plan_undo_rollout,
            ask,
            READ,
            summary=f"Find the revision to restore for {ref}",
            doing=f"finding the revision to restore for {ref}",
            left="The Deployment was not changed.",
        )
        return await self.change_then_wait(
            ctx,
            ref,
            KubernetesManifestActivities.undo_rollout,
            plan,
            details=f"rolling {ref} back from revision {plan.fromRevision} to {plan.toRevision}",
            summary=f"Roll {ref} back to revision {plan.toRevision} ({', '.join(plan.images)})",
            doing=f"rolling back {ref}",
            left="The Deployment was not changed.",
            fromRevision=plan.fromRevision,
            toRevision=plan.toRevision,
            replicaSet=plan.replicaSet,
            images=plan.images,
        )
