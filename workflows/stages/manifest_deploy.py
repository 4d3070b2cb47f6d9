"""Deploy Manifest (apply inline or artifact manifests, then wait until stable; optionally with
traffic management) and Delete Manifest (one object, the chosen one of a cluster, or everything of
some kinds matching a label selector).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from temporalio import workflow

from workflows.account_calls import BATCH
from workflows.context import StageContext
from workflows.stages.manifest_base import KubernetesStage, TargetedStage, known_kind, size_checked
from workflows.stages.manifest_sources import (
    ManifestFromArtifact,
    ManifestSource,
    consumed_ids,
    source_problems,
    stage_manifests,
)
from workflows.stages.manifest_traffic import TrafficManagement, shift_traffic, version_for_traffic
from workflows.stages.registry import register_stage

with workflow.unsafe.imports_passed_through():
    from activities.kubernetes.manifests import (
        ApplyManifestsInput,
        DeleteManifestsInput,
        KubernetesManifestActivities,
    )


@register_stage
class DeployManifestStage(KubernetesStage, ManifestFromArtifact):
    """Apply the given manifests (inline or from an artifact), then wait until each is stable; with
    `trafficManagement`, version ReplicaSets and move traffic to the new version (red/black, highlander)."""

    type: Literal["deployManifest"] = "deployManifest"
    manifests: list[dict[str, Any]] = Field(
        default_factory=list, description="source: text — Kubernetes objects; ${{ }} resolves inside"
    )
    namespaceOverride: str | None = Field(default=None, description="Deploy every manifest to this namespace")
    moniker: dict[str, Any] = Field(default_factory=dict, description="Spinnaker's moniker, e.g. {app: shop}")
    source: ManifestSource = Field(default="text", description="text (inline `manifests`) or artifact")
    trafficManagement: TrafficManagement | None = None
    force: bool = Field(
        default=False,
        description="Server-side apply takes fields other managers own (kubectl --force-conflicts); "
        "off by default so a deploy never silently fights an autoscaler or operator",
    )

    raw_fields = frozenset({"manifests"})

    @model_validator(mode="after")
    def _supported(self) -> DeployManifestStage:
        problems = source_problems(self.source, bool(self.manifests), self, "manifests")
        if problems:
            raise ValueError("; ".join(problems))
        for index, manifest in enumerate(self.manifests):
            if not isinstance(manifest.get("metadata"), dict) or not manifest["metadata"].get("name"):
                raise ValueError(f"manifests[{index}] needs metadata.name")
            if "${{" not in str(manifest.get("kind", "")):
                try:
                    known_kind(str(manifest.get("kind")))
                except ValueError as exc:
                    raise ValueError(f"manifests[{index}]: {exc}") from None
        return self

    def consumed_artifact_ids(self) -> list[tuple[str, str]]:
        return consumed_ids(self)

    def summary(self) -> str:
        if self.source == "artifact":
            shown = self.manifestArtifactId or (self.manifestArtifact.describe() if self.manifestArtifact else "")
            return f"Deploy manifests from artifact {shown}"
        names = ", ".join(f"{m.get('kind')} {m.get('metadata', {}).get('name')}" for m in self.manifests[:3])
        return f"Deploy {names}" + (" …" if len(self.manifests) > 3 else "")

    async def run(self, ctx: StageContext) -> dict[str, Any]:
        manifests, about = await stage_manifests(self, self, ctx, self.source, self.manifests)
        size_checked("the manifests", manifests)
        traffic = self.trafficManagement if self.trafficManagement and self.trafficManagement.enabled else None
        versioned = None
        if traffic is not None:
            manifests, versioned = await version_for_traffic(self, ctx, traffic, manifests)
        ctx.set_details(f"applying {len(manifests)} manifest(s)")
        application = str(self.moniker.get("app") or ctx.execution.application)
        request = ApplyManifestsInput(
            manifests=manifests,
            namespaceOverride=self.namespaceOverride,
            executionId=ctx.execution_id,
            stage=self.refId,
            application=application,
            force=self.force,
        )
        applied = await self.call(
            ctx,
            KubernetesManifestActivities.apply_manifests,
            request,
            BATCH,
            summary=self.summary(),
            doing="applying the manifests",
            left="Manifests before the failing one (in order) stay applied; the rest were not written.",
        )
        states = await self.wait_stable(ctx, applied.refs)
        by_namespace: dict[str, list[str]] = {}
        for ref in applied.refs:
            by_namespace.setdefault(ref.namespace, []).append(ref.label)
        outputs: dict[str, Any] = {
            "account": self.account_name,
            "manifestNamesByNamespace": by_namespace,
            "deployedManifests": [r.model_dump() for r in applied.refs],
            "stable": states,
            **about,
        }
        if traffic is not None and versioned is not None:
            outputs["trafficManagement"] = await shift_traffic(self, ctx, traffic, versioned)
        return outputs


class SelectorRule(BaseModel):
    """Spinnaker's label selector entry: {kind: EQUALS, key: app, values: [shop]}."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["ANY", "EQUALS", "NOT_EQUALS", "CONTAINS", "NOT_CONTAINS", "EXISTS", "NOT_EXISTS"]
    key: str = Field(min_length=1)
    values: list[str] = Field(default_factory=list)

    def text(self) -> str:
        joined = ",".join(self.values)
        return {
            "EQUALS": f"{self.key}={joined}",
            "NOT_EQUALS": f"{self.key}!={joined}",
            "CONTAINS": f"{self.key} in ({joined})",
            "NOT_CONTAINS": f"{self.key} notin ({joined})",
            "EXISTS": self.key,
            "ANY": self.key,
            "NOT_EXISTS": f"!{self.key}",
        }[self.kind]


class LabelSelectors(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    selectors: list[SelectorRule] = Field(min_length=1)


class DeleteOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    cascading: bool = Field(default=True, description="Also delete dependents (ReplicaSets, pods); waits for them")
    gracePeriodSeconds: int | None = Field(default=None, ge=0)
    orphanDependants: bool | None = Field(default=None, description="Spinnaker's older spelling of not cascading")


@register_stage
class DeleteManifestStage(TargetedStage):
    """Delete one object, the chosen one of a cluster, or everything of `kinds` matching `labelSelectors`."""

    type: Literal["deleteManifest"] = "deleteManifest"
    options: DeleteOptions = Field(default_factory=DeleteOptions)
    kinds: list[str] = Field(default_factory=list, description="Label mode: kinds to delete")
    labelSelectors: LabelSelectors | None = None

    @model_validator(mode="after")
    def _label_mode(self) -> DeleteManifestStage:
        if self.mode == "label" and (self.labelSelectors is None or not self.kinds):
            raise ValueError("label mode needs `labelSelectors` and `kinds`")
        for kind in self.kinds:
            known_kind(kind)
        return self

    def summary(self) -> str:
        if self.mode == "label" and self.labelSelectors:
            selector = ",".join(s.text() for s in self.labelSelectors.selectors)
            return f"Delete {', '.join(self.kinds)} matching {selector}"
        return f"Delete {self.target_text()}"

    async def run(self, ctx: StageContext) -> dict[str, Any]:
        cascading = self.options.cascading and not self.options.orphanDependants
        request = DeleteManifestsInput(
            namespace=self.location,
            cascading=cascading,
            timeoutSeconds=self.waitTimeoutSeconds,
            gracePeriodSeconds=self.options.gracePeriodSeconds,
        )
        if self.mode == "label" and self.labelSelectors is not None:
            request.kinds = [known_kind(k) for k in self.kinds]
            request.labelSelector = ",".join(s.text() for s in self.labelSelectors.selectors)
        else:
            request.refs = [await self.target(ctx)]
        ctx.set_details(self.summary().lower())
        result = await self.call(
            ctx,
            KubernetesManifestActivities.delete_manifests,
            request,
            BATCH,
            summary=self.summary(),
            doing=self.summary()[0].lower() + self.summary()[1:],
            left="Objects deleted before the failure stay deleted; any being deleted finish in the background.",
            wait=timedelta(seconds=self.waitTimeoutSeconds),
        )
        return {
            "account": self.account_name,
            "cascading": cascading,
            "deletedManifests": [str(r) for r in result.refs],
            "alreadyGone": [str(r) for r in result.alreadyGone],
        }
