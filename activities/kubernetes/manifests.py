"""Manifest operations (Spinnaker's clouddriver manifest ops): apply, wait for stable, delete, patch
(scale is a merge patch), undo rollout, and resolving a cluster + criteria target to one object.

Idempotent under activity retry: apply replaces toward the declared object, deletes treat NotFound as
done, patches and undo write absolute states (undo's target is planned once, read-only). Waits watch.
Stability per kind follows `kubectl rollout status`: a Deployment is stable when its controller has
observed the latest generation and every desired replica is updated and available with no old ones
left; a ReplicaSet when all its replicas are ready; other kinds as soon as they are written.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# The activity classes, models and helpers live in the modules below, one idea each; they are
# re-exported so that `activities.kubernetes.manifests` stays the one import path callers use.
from activities.kubernetes.manifest_apply import (
    ApplyManifestsInput,
    ManifestApplyActivities,
    StableInput,
    deployment_verdict,
    replica_set_verdict,
)
from activities.kubernetes.manifest_changes import (
    DeleteManifestsInput,
    ManifestChangeActivities,
    PatchManifestInput,
    ResolveTargetInput,
    UndoRolloutPlan,
    UndoRolloutPlanInput,
)
from activities.kubernetes.manifest_kinds import (
    APPLICATION_ANNOTATION,
    EXECUTION_ANNOTATION,
    KINDS,
    MANAGED_BY_LABEL,
    MANIFEST_INVALID,
    MANIFEST_TOO_LARGE,
    MAX_MANIFEST_BYTES,
    NON_RETRYABLE_MANIFEST,
    PATCH_CONTENT_TYPES,
    REVISION_ANNOTATION,
    STAGE_ANNOTATION,
    TARGET_NOT_FOUND,
    UNSUPPORTED_KIND,
    Kind,
    ManifestObjects,
    ManifestRef,
    ManifestRefs,
    check_size,
    kind_of,
)

__all__ = [
    "APPLICATION_ANNOTATION",
    "EXECUTION_ANNOTATION",
    "KINDS",
    "MANAGED_BY_LABEL",
    "MANIFEST_INVALID",
    "MANIFEST_TOO_LARGE",
    "MAX_MANIFEST_BYTES",
    "NON_RETRYABLE_MANIFEST",
    "PATCH_CONTENT_TYPES",
    "REVISION_ANNOTATION",
    "STAGE_ANNOTATION",
    "TARGET_NOT_FOUND",
    "UNSUPPORTED_KIND",
    "ApplyManifestsInput",
    "DeleteManifestsInput",
    "Kind",
    "KubernetesManifestActivities",
    "ManifestApplyActivities",
    "ManifestChangeActivities",
    "ManifestObjects",
    "ManifestRef",
    "ManifestRefs",
    "PatchManifestInput",
    "ResolveTargetInput",
    "StableInput",
    "UndoRolloutPlan",
    "UndoRolloutPlanInput",
    "check_size",
    "deployment_verdict",
    "kind_of",
    "replica_set_verdict",
]


class KubernetesManifestActivities(ManifestApplyActivities, ManifestChangeActivities):
    """Manifest activities bound to one account's client (built once by the account's worker)."""

    def activities(self) -> list[Callable[..., Any]]:
        return [
            self.apply_manifests,
            self.wait_for_manifests_stable,
            self.delete_manifests,
            self.patch_manifest,
            self.resolve_manifest_target,
            self.plan_undo_rollout,
            self.undo_rollout,
        ]
