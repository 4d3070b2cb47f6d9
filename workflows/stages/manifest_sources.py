"""Where a manifest stage's manifests come from: written inline (`source: text`) or an artifact
(`source: artifact`, by `manifestArtifactId` or an inline `manifestArtifact`), then `${{ }}`
evaluated unless `skipExpressionEvaluation`, then images bound.

Spinnaker's order (orca `ManifestEvaluator`): fetch the artifact, evaluate expressions, and let
clouddriver bind the `requiredArtifactIds` plus every other artifact the execution holds (its
"optional" artifacts) into the manifests: a `docker/image` artifact replaces the image of each
container whose image name matches (activities/artifacts/binding.py). A required id that is not
bound fails the stage naming it. Fetching runs on the account's worker (its artifact credentials and
egress policy); evaluation and binding are pure and run here.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field
from temporalio import workflow

from workflows.account_calls import CallProfile
from workflows.artifacts import Artifact, ArtifactError, stage_artifact
from workflows.context import StageContext
from workflows.stages.base import StageFailed

with workflow.unsafe.imports_passed_through():
    from activities.artifacts.activities import ArtifactActivities, FetchManifestsInput
    from activities.artifacts.binding import bind_images
    from activities.artifacts.errors import NON_RETRYABLE_ARTIFACT
    from activities.artifacts.manifests import MANIFEST_TYPES
    from activities.kubernetes.manifests import NON_RETRYABLE_MANIFEST

if TYPE_CHECKING:
    from workflows.stages.manifest_base import KubernetesStage

ManifestSource = Literal["text", "artifact"]
# One fetch of a file (HTTP, GitHub, GitLab or the worker's store): the worker's own limit
# (artifacts.limits.max_seconds, 300 s by default) bounds it; retried on 5xx/429/broken connections.
FETCH = CallProfile("fetch", start_to_close=timedelta(minutes=5, seconds=30), maximum_attempts=5)


class ManifestFromArtifact(BaseModel):
    """The fields a stage needs to take its manifests from an artifact (Spinnaker's names)."""

    manifestArtifactId: str | None = Field(
        default=None, description="source: artifact — the id of an expected artifact holding the manifests"
    )
    manifestArtifact: Artifact | None = Field(default=None, description="source: artifact — the artifact itself")
    manifestArtifactAccount: str | None = Field(
        default=None, description="Artifact account to fetch with (overrides the artifact's artifactAccount)"
    )
    requiredArtifactIds: list[str] = Field(
        default_factory=list, max_length=64, description="Expected artifacts that must be bound into the manifests"
    )
    requiredArtifacts: list[dict[str, Any]] = Field(
        default_factory=list, max_length=64, description="Spinnaker's newer form: [{expectedArtifactId: …}]"
    )
    skipExpressionEvaluation: bool = Field(default=False, description="Send manifests exactly as written/fetched")


def source_problems(source: str, has_text: bool, fields: ManifestFromArtifact, text_field: str) -> list[str]:
    """What is wrong with the combination of `source` and the fields given."""
    if source == "text":
        extra = [f for f in ("manifestArtifactId", "manifestArtifact") if getattr(fields, f) is not None]
        if not has_text:
            return [f"source: text needs `{text_field}`"]
        return [f"`{f}` is for source: artifact" for f in extra]
    problems = []
    if (fields.manifestArtifactId is None) == (fields.manifestArtifact is None):
        problems.append("source: artifact needs exactly one of `manifestArtifactId` or `manifestArtifact`")
    if has_text:
        problems.append(
            f"`{text_field}` is for source: text; with source: artifact the manifests come from the artifact"
        )
    return problems


def required_ids(fields: ManifestFromArtifact) -> list[str]:
    ids = list(fields.requiredArtifactIds)
    for item in fields.requiredArtifacts:
        value = item.get("expectedArtifactId") or item.get("id")
        if isinstance(value, str) and value not in ids:
            ids.append(value)
    return ids


def consumed_ids(fields: ManifestFromArtifact) -> list[tuple[str, str]]:
    found = [(f"requiredArtifactIds[{i}]", a) for i, a in enumerate(required_ids(fields))]
    if fields.manifestArtifactId is not None:
        found.append(("manifestArtifactId", fields.manifestArtifactId))
    return found


async def stage_manifests(
    stage: KubernetesStage,
    fields: ManifestFromArtifact,
    ctx: StageContext,
    source: ManifestSource,
    text: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The stage's manifests, evaluated and bound, and what to say about them in outputs."""
    who = f"stage {stage.refId}"
    try:
        required = ctx.artifacts.required(required_ids(fields), who)
        artifact = None
        if source == "artifact":
            artifact = stage_artifact(
                ctx.artifacts,
                f"{who}: manifestArtifact",
                fields.manifestArtifactId,
                fields.manifestArtifact,
                MANIFEST_TYPES,
            )
            if fields.manifestArtifactAccount:
                artifact = artifact.model_copy(update={"artifactAccount": fields.manifestArtifactAccount})
    except ArtifactError as exc:
        raise StageFailed(f"{exc}. Nothing was written.", details={"kind": "artifact"}) from None
    about: dict[str, Any] = {}
    manifests = text
    if artifact is not None:
        ctx.set_details(f"fetching manifests from {artifact.describe()}")
        fetched = await stage.call(
            ctx,
            ArtifactActivities.fetch_manifests,
            FetchManifestsInput(artifact=artifact, application=ctx.execution.application),
            FETCH,
            summary=f"Fetch manifests from {artifact.describe()}",
            doing=f"fetching manifests from {artifact.describe()}",
            left="Nothing was written.",
            non_retryable=[*NON_RETRYABLE_MANIFEST, *NON_RETRYABLE_ARTIFACT],
        )
        manifests = fetched.manifests
        about = {"manifestArtifact": artifact.describe(), "manifestDigest": fetched.digest}
    if not fields.skipExpressionEvaluation:
        manifests = ctx.evaluate(manifests)
    # Required artifacts first: when two artifacts name the same image, the required one wins.
    optional = [a for a in ctx.artifacts.artifacts if a not in required]
    manifests, bound = bind_images(manifests, [*required, *optional])
    about["boundArtifacts"] = [b.model_dump() for b in bound]
    return manifests, about
