"""Manifest stages (Spinnaker's Kubernetes V2 provider): Deploy, Delete, Scale, Patch, Undo Rollout,
Enable, Disable, Rolling Restart, Find Artifacts From Resource (Bake Manifest: manifest_bake.py).

Field names follow Spinnaker's pipeline JSON so pipelines can be brought over: `account`,
`manifests`, `moniker`, `namespaceOverride`, `skipExpressionEvaluation`, `trafficManagement`
(deployManifest); `location` (the namespace), `manifestName: "<kind> <name>"` or `cluster` +
`criteria` (newest, second_newest, oldest, largest, smallest) as the target; `options.cascading`,
`labelSelectors`, `kinds` (deleteManifest); `replicas` (scaleManifest); `patchBody` +
`options.mergeStrategy: strategic|json|merge` (patchManifest); `numRevisionsBack` (undoRolloutManifest).
Sources: spinnaker.io/guides/user/kubernetes-v2/ (deploy-manifest, patch-manifest), deck
`kubernetes/src/pipelines/stages/*` and orca `clouddriver/pipeline/manifest/*Stage` (field names).

Every stage writes through the account's worker (task queue `ctx.account_queue("kubernetes", …)`),
then waits for the objects to be stable by watching, reporting progress in the stage details.
"""

from __future__ import annotations

# Each stage lives in the module of its idea; importing them here registers them, which is what
# workflows/stages/builtin.py relies on, and keeps `workflows.stages.manifests` the import path.
from workflows.stages.manifest_base import (
    Criteria,
    KubernetesStage,
    TargetedStage,
    known_kind,
    parse_manifest_name,
    size_checked,
)
from workflows.stages.manifest_deploy import (
    DeleteManifestStage,
    DeleteOptions,
    DeployManifestStage,
    LabelSelectors,
    SelectorRule,
)
from workflows.stages.manifest_resources import FindArtifactsFromResourceStage, RollingRestartManifestStage
from workflows.stages.manifest_traffic import DisableManifestStage, EnableManifestStage, TrafficManagement
from workflows.stages.manifest_updates import (
    PatchManifestStage,
    PatchOptions,
    ScaleManifestStage,
    UndoRolloutManifestStage,
)

__all__ = [
    "Criteria",
    "DeleteManifestStage",
    "DeleteOptions",
    "DeployManifestStage",
    "DisableManifestStage",
    "EnableManifestStage",
    "FindArtifactsFromResourceStage",
    "KubernetesStage",
    "LabelSelectors",
    "PatchManifestStage",
    "PatchOptions",
    "RollingRestartManifestStage",
    "ScaleManifestStage",
    "SelectorRule",
    "TargetedStage",
    "TrafficManagement",
    "UndoRolloutManifestStage",
    "known_kind",
    "parse_manifest_name",
    "size_checked",
]
