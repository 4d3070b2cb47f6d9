"""Failures of artifact fetching and rendering, typed so the retry policy does the right thing:
what retrying cannot fix (a bad reference, a 404, a refused destination, an over-large file) is
non-retryable; a 5xx, 429 or broken connection is retryable. Messages name the artifact (never its
embedded content, never a credential)."""

from __future__ import annotations

from temporalio.exceptions import ApplicationError

from activities.egress import EGRESS_DENIED

ARTIFACT_INVALID = "ArtifactInvalid"
ARTIFACT_NOT_FOUND = "ArtifactNotFound"
ARTIFACT_TOO_LARGE = "ArtifactTooLarge"
ARTIFACT_UNAVAILABLE = "ArtifactUnavailable"
ARTIFACT_ACCOUNT = "ArtifactAccountRefused"
RENDER_FAILED = "ManifestRenderFailed"
TOOL_MISSING = "RenderToolMissing"
NON_RETRYABLE_ARTIFACT = [
    ARTIFACT_INVALID,
    ARTIFACT_NOT_FOUND,
    ARTIFACT_TOO_LARGE,
    ARTIFACT_ACCOUNT,
    EGRESS_DENIED,
    RENDER_FAILED,
    TOOL_MISSING,
]


def artifact_error(what: str, message: str, kind: str) -> ApplicationError:
    """An error about artifact `what` (its `describe()`); retryable only for ARTIFACT_UNAVAILABLE."""
    return ApplicationError(f"artifact {what}: {message}", type=kind, non_retryable=kind != ARTIFACT_UNAVAILABLE)
