"""Manifest operations (Spinnaker's clouddriver manifest ops) on any kind the cluster serves: apply
(server-side apply in Kubernetes order), wait for stable, delete, patch, scale, undo rollout, and
resolving a cluster + criteria target to one object.

Kinds are resolved through API discovery (`discovery.py`); stability per kind is `stability.py`;
who may touch what is `ownership.py`. Idempotent under activity retry: apply converges on the
declared fields, deletes treat NotFound as done, patches, scales and undo write absolute states
(undo's target is planned once, read-only). Waits watch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# The activity classes, models and helpers live in the modules below, one idea each; they are
# re-exported so that `activities.kubernetes.manifests` stays the one import path callers use.
from activities.kubernetes.manifest_apply import ApplyManifestsInput, ManifestApplyActivities
from activities.kubernetes.manifest_changes import (
    DeleteManifestsInput,
    ManifestChangeActivities,
    PatchManifestInput,
    ResolveTargetInput,
    ScaleManifestInput,
)
from activities.kubernetes.manifest_kinds import (
    APPLICATION_ANNOTATION,
    EXECUTION_ANNOTATION,
    FIELD_CONFLICT,
    FIELD_MANAGER,
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
    UNKNOWN_KIND,
    UNSUPPORTED_KIND,
    Kind,
    ManifestObjects,
    ManifestRef,
    ManifestRefs,
    check_size,
    kind_of,
)
from activities.kubernetes.manifest_undo import ManifestUndoActivities, UndoRolloutPlan, UndoRolloutPlanInput
from activities.kubernetes.manifest_wait import StableInput
from activities.kubernetes.ownership import OWNED_BY_ANOTHER_APPLICATION

__all__ = [
    "APPLICATION_ANNOTATION",
    "EXECUTION_ANNOTATION",
    "FIELD_CONFLICT",
    "FIELD_MANAGER",
    "KINDS",
    "MANAGED_BY_LABEL",
    "MANIFEST_INVALID",
    "MANIFEST_TOO_LARGE",
    "MAX_MANIFEST_BYTES",
    "NON_RETRYABLE_MANIFEST",
    "OWNED_BY_ANOTHER_APPLICATION",
    "PATCH_CONTENT_TYPES",
    "REVISION_ANNOTATION",
    "STAGE_ANNOTATION",
    "TARGET_NOT_FOUND",
    "UNKNOWN_KIND",
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
    "ScaleManifestInput",
    "StableInput",
    "UndoRolloutPlan",
    "UndoRolloutPlanInput",
    "check_size",
    "kind_of",
]


class KubernetesManifestActivities(ManifestApplyActivities, ManifestUndoActivities):
    """Manifest activities bound to one account's client (built once by the account's worker)."""

    def activities(self) -> list[Callable[..., Any]]:
        return [
            self.apply_manifests,
            self.wait_for_manifests_stable,
            self.delete_manifests,
            self.patch_manifest,
            self.scale_manifest,
            self.resolve_manifest_target,
            self.plan_undo_rollout,
            self.undo_rollout,
        ]
