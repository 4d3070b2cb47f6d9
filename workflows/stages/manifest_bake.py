"""Bake (Manifest): render a Helm chart or a Kustomization with the real binaries on a worker, as
Spinnaker's rosco does, and produce an `embedded/base64` artifact a later deployManifest consumes
(`source: artifact`, `manifestArtifactId` = one of this stage's `expectedArtifacts`).

Request fields are rosco's (orca `BakeManifestStage` → `HelmBakeManifestRequest` /
`KustomizeBakeManifestRequest`): `templateRenderer` HELM3 | KUSTOMIZE (KUSTOMIZE4 alias),
`outputName` (the Helm release name), `namespace`, `inputArtifacts` — each `{id}` (a bound expected
artifact), `{artifact}` (inline), with an optional `account` overriding the artifact's account —
chart first, then values files; for Kustomize deck writes `inputArtifact` instead. `overrides`
(`--set-string`, `--set` with `rawOverrides`), `includeCRDs`, `helmChartFilePath`,
`kustomizeFilePath`.

Where it runs: on the worker of Kubernetes `account` when one is given (that worker's artifact store
then holds the render for the deploys it runs), otherwise on the pipeline's own task queue, where
generic activities (webhook, script) run. Fetch credentials and the egress policy are that worker's.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from temporalio import workflow

from workflows.account_calls import WAIT, AccountCalls, call_activity
from workflows.artifacts import Artifact, ArtifactError
from workflows.context import StageContext
from workflows.stages.base import StageConfig, StageFailed
from workflows.stages.registry import register_stage

with workflow.unsafe.imports_passed_through():
    from activities.artifacts.errors import NON_RETRYABLE_ARTIFACT
    from activities.bake_manifest import BakeManifestActivities, BakeManifestRequest, BakeManifestResult

# Renderers heartbeat at least every second while they run; the worker's own limit
# (artifacts.limits.max_seconds) ends a render, and the attempt's limit is that plus a margin.
BAKE_MANIFEST = replace(WAIT, heartbeat=timedelta(seconds=30), maximum_attempts=3)
RENDER_LIMIT = timedelta(minutes=5)


class InputArtifact(BaseModel):
    """Spinnaker's input artifact: a bound expected artifact by `id`, or an inline `artifact`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str | None = Field(default=None, description="Expected artifact id")
    artifact: Artifact | None = None
    account: str | None = Field(default=None, description="Artifact account to fetch with")

    @model_validator(mode="after")
    def _one(self) -> InputArtifact:
        if (self.id is None) == (self.artifact is None):
            raise ValueError("give exactly one of `id` (an expected artifact) or `artifact`")
        return self


@register_stage
class BakeManifestStage(StageConfig):
    """Render Helm 3 charts or Kustomizations into one embedded/base64 artifact."""

    type: Literal["bakeManifest"] = "bakeManifest"
    templateRenderer: Literal["HELM3", "KUSTOMIZE", "KUSTOMIZE4"]
    outputName: str = Field(min_length=1, description="Helm release name; the artifact's name by default")
    outputArtifactName: str | None = None
    namespace: str | None = None
    inputArtifacts: list[InputArtifact] = Field(default_factory=list, max_length=32)
    inputArtifact: InputArtifact | None = Field(default=None, description="KUSTOMIZE: the git/repo (deck's field)")
    overrides: dict[str, str | int | float | bool] = Field(default_factory=dict, max_length=200)
    rawOverrides: bool = False
    includeCRDs: bool = False
    helmChartFilePath: str | None = None
    kustomizeFilePath: str | None = None
    account: str | None = Field(default=None, description="Bake on this Kubernetes account's worker")

    @model_validator(mode="after")
    def _inputs(self) -> BakeManifestStage:
        if not self._inputs_in_order():
            raise ValueError("give the chart (HELM3) or the git/repo (KUSTOMIZE) in `inputArtifacts`")
        if self.templateRenderer != "HELM3" and self.overrides:
            raise ValueError("overrides are Helm values; KUSTOMIZE takes none")
        return self

    def _inputs_in_order(self) -> list[InputArtifact]:
        return [*([self.inputArtifact] if self.inputArtifact else []), *self.inputArtifacts]

    def consumed_artifact_ids(self) -> list[tuple[str, str]]:
        return [(f"inputArtifacts[{i}].id", a.id) for i, a in enumerate(self._inputs_in_order()) if a.id]

    def summary(self) -> str:
        return f"Bake ({self.templateRenderer}) {self.outputName}"

    def _request(self, ctx: StageContext) -> BakeManifestRequest:
        inputs: list[Artifact] = []
        try:
            for item in self._inputs_in_order():
                found = ctx.artifacts.get(item.id, f"stage {self.refId}: inputArtifacts") if item.id else item.artifact
                assert found is not None
                inputs.append(found.model_copy(update={"artifactAccount": item.account}) if item.account else found)
        except ArtifactError as exc:
            raise StageFailed(str(exc), details={"kind": "artifact"}) from None
        try:
            return BakeManifestRequest(
                templateRenderer=self.templateRenderer,
                outputName=self.outputName,
                outputArtifactName=self.outputArtifactName,
                namespace=self.namespace,
                inputArtifacts=inputs,
                overrides=dict(self.overrides),
                rawOverrides=self.rawOverrides,
                helmChartFilePath=self.helmChartFilePath,
                kustomizeFilePath=self.kustomizeFilePath,
                includeCRDs=self.includeCRDs,
                application=ctx.execution.application,
            )
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            raise StageFailed(f"bake request is not valid: {exc}") from None

    async def run(self, ctx: StageContext) -> dict[str, Any]:
        request = self._request(ctx)
        chart = request.inputArtifacts[0].describe()
        ctx.set_details(f"rendering {chart} with {self.templateRenderer}")
        doing = f"rendering {chart} with {self.templateRenderer}"
        result: BakeManifestResult
        if self.account:
            calls = AccountCalls(ctx, "kubernetes", self.account, NON_RETRYABLE_ARTIFACT)
            result = await calls.call(
                BakeManifestActivities.bake_manifest,
                request,
                BAKE_MANIFEST,
                wait=RENDER_LIMIT,
                summary=self.summary(),
                doing=doing,
            )
        else:
            options = BAKE_MANIFEST.options(
                summary=self.summary(), non_retryable=NON_RETRYABLE_ARTIFACT, wait=RENDER_LIMIT
            )
            result = await call_activity(BakeManifestActivities.bake_manifest, request, options, doing=doing)
        return {
            "artifacts": [result.artifact.model_dump(exclude_none=True)],
            "manifestDigest": result.digest,
            "objects": result.objects,
            "kinds": result.kinds,
            "renderer": result.tool,
            "size": result.size,
        }
