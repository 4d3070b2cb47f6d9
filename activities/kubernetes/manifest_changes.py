"""Acting on objects that already exist: delete, patch (scale is a merge patch), undo rollout, and
resolving a cluster + criteria target to one object.

Idempotent under activity retry: deletes treat NotFound as done, patches and undo write absolute
states (undo's target is planned once, read-only).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.kubernetes.client import NOT_FOUND
from activities.kubernetes.manifest_kinds import (
    MANIFEST_INVALID,
    PATCH_CONTENT_TYPES,
    REVISION_ANNOTATION,
    TARGET_NOT_FOUND,
    UNSUPPORTED_KIND,
    ManifestObjects,
    ManifestRef,
    ManifestRefs,
    check_size,
    kind_of,
)
from activities.kubernetes.waiting import heartbeat


class DeleteManifestsInput(BaseModel):
    refs: list[ManifestRef] = Field(default_factory=list)
    namespace: str = "default"
    kinds: list[str] = Field(default_factory=list, description="With labelSelector: the kinds to delete")
    labelSelector: str | None = None
    cascading: bool = True
    gracePeriodSeconds: int | None = None
    timeoutSeconds: float = 600


class PatchManifestInput(BaseModel):
    ref: ManifestRef
    patchBody: dict[str, Any] | list[dict[str, Any]]
    mergeStrategy: Literal["strategic", "merge", "json"] = "strategic"


class ResolveTargetInput(BaseModel):
    kind: str
    namespace: str
    cluster: str
    criteria: Literal["newest", "second_newest", "oldest", "largest", "smallest"]


class UndoRolloutPlanInput(BaseModel):
    ref: ManifestRef
    numRevisionsBack: int = Field(default=1, ge=1)
    revision: int | None = Field(default=None, description="Roll back to exactly this revision instead")


class UndoRolloutPlan(BaseModel):
    ref: ManifestRef
    fromRevision: int
    toRevision: int
    replicaSet: str
    images: list[str]


class ManifestChangeActivities(ManifestObjects):
    """Delete, patch, resolve and roll back objects (activities of `KubernetesManifestActivities`)."""

    @activity.defn
    def delete_manifests(self, input: DeleteManifestsInput) -> ManifestRefs:
        """Delete by name or by label selector; NotFound counts as done. Cascading uses Foreground
        propagation so that 'deleted' means the dependents (ReplicaSets, pods) are gone too."""
        refs = list(input.refs)
        if input.labelSelector is not None:
            self.client.check_namespace(input.namespace)
            for kind_name in input.kinds:
                kind = kind_of(kind_name)
                listing: Any = self.client.call(
                    self._op(kind, "list"),
                    input.namespace,
                    label_selector=input.labelSelector,
                    what=f"list {kind.kind} matching {input.labelSelector}",
                )
                refs += [
                    ManifestRef(kind=kind.kind, name=o.metadata.name, namespace=input.namespace) for o in listing.items
                ]
        result = ManifestRefs()
        policy = "Foreground" if input.cascading else "Orphan"
        for ref in refs:
            self.client.check_namespace(ref.namespace)
            heartbeat(f"deleting {ref}")
            try:
                self.client.call(
                    self._op(kind_of(ref.kind), "delete"),
                    ref.name,
                    ref.namespace,
                    propagation_policy=policy,
                    grace_period_seconds=input.gracePeriodSeconds,
                    what=f"delete {ref}",
                )
            except ApplicationError as exc:
                if exc.type != NOT_FOUND:
                    raise
                result.alreadyGone.append(ref)
                continue
            self.wait_gone(ref, input.timeoutSeconds)
            result.refs.append(ref)
        return result

    @activity.defn
    def patch_manifest(self, input: PatchManifestInput) -> ManifestRef:
        check_size("the patch body", input.patchBody)
        if (input.mergeStrategy == "json") != isinstance(input.patchBody, list):
            raise ApplicationError(
                "mergeStrategy json takes a list of RFC 6902 operations; strategic and merge take an object",
                type=MANIFEST_INVALID,
                non_retryable=True,
            )
        self.client.check_namespace(input.ref.namespace)
        self.client.call(
            self._op(kind_of(input.ref.kind), "patch"),
            input.ref.name,
            input.ref.namespace,
            input.patchBody,
            _content_type=PATCH_CONTENT_TYPES[input.mergeStrategy],
            what=f"{input.mergeStrategy} patch of {input.ref}",
        )
        return input.ref

    @activity.defn
    def resolve_manifest_target(self, input: ResolveTargetInput) -> ManifestRef:
        """Spinnaker's dynamic target: in `cluster`, the newest/oldest/… object of `kind`. Members are
        `<cluster>-v<NNN>` server groups or objects annotated moniker.spinnaker.io/cluster=<cluster>."""
        kind = kind_of(input.kind)
        self.client.check_namespace(input.namespace)
        listing: Any = self.client.call(self._op(kind, "list"), input.namespace, what=f"list {kind.kind}")
        member = re.compile(rf"^{re.escape(input.cluster)}-v\d{{3,}}$")
        found = [
            o
            for o in listing.items
            if member.match(o.metadata.name)
            or (o.metadata.annotations or {}).get("moniker.spinnaker.io/cluster") == input.cluster
        ]
        if len(found) < (2 if input.criteria == "second_newest" else 1):
            raise ApplicationError(
                f"account {self.client.account.name}: no {input.criteria} {kind.kind} in cluster "
                f"{input.cluster!r} (namespace {input.namespace}; found {len(found)})",
                type=TARGET_NOT_FOUND,
                non_retryable=True,
            )
        by_age = sorted(found, key=lambda o: (o.metadata.creation_timestamp, o.metadata.name))
        by_size = sorted(found, key=lambda o: (1 if o.spec.replicas is None else o.spec.replicas, o.metadata.name))
        chosen = {
            "newest": by_age[-1],
            "second_newest": by_age[-2],
            "oldest": by_age[0],
            "largest": by_size[-1],
            "smallest": by_size[0],
        }[input.criteria]
        return ManifestRef(kind=kind.kind, name=chosen.metadata.name, namespace=input.namespace)

    @activity.defn
    def plan_undo_rollout(self, input: UndoRolloutPlanInput) -> UndoRolloutPlan:
        """Which ReplicaSet `kubectl rollout undo` would bring back. Read-only, so the workflow records
        the choice once and a retried undo cannot step back twice."""
        ref = input.ref
        if kind_of(ref.kind).kind != "Deployment":
            raise ApplicationError(
                f"undo rollout needs a Deployment, not {ref}", type=UNSUPPORTED_KIND, non_retryable=True
            )
        self.client.check_namespace(ref.namespace)
        deployment = self._read(ref, True)
        current = _revision(deployment)
        listing: Any = self.client.call(
            self.client.apps.list_namespaced_replica_set, ref.namespace, what=f"list ReplicaSets of {ref}"
        )
        owned = {
            _revision(rs): rs
            for rs in listing.items
            if any(o.uid == deployment.metadata.uid for o in rs.metadata.owner_references or [])
        }
        history = sorted(r for r in owned if r != current)
        back = input.numRevisionsBack
        target = input.revision if input.revision is not None else (history[-back] if back <= len(history) else -1)
        if target not in owned or target == current:
            wanted = f"revision {input.revision}" if input.revision is not None else f"{back} revision(s) back"
            raise ApplicationError(
                f"{ref}: cannot roll back to {wanted} — current revision {current}, earlier "
                f"revisions kept: {history or 'none'}",
                type=TARGET_NOT_FOUND,
                non_retryable=True,
            )
        rs = owned[target]
        return UndoRolloutPlan(
            ref=ref,
            fromRevision=current,
            toRevision=target,
            replicaSet=rs.metadata.name,
            images=[c.image for c in rs.spec.template.spec.containers],
        )

    @activity.defn
    def undo_rollout(self, input: UndoRolloutPlan) -> ManifestRef:
        """Copy the chosen ReplicaSet's pod template into the Deployment, as `kubectl rollout undo` does.
        Writing the same template twice changes nothing, so retries are safe."""
        rs = self._read(ManifestRef(kind="ReplicaSet", name=input.replicaSet, namespace=input.ref.namespace), True)
        template = self.client.api_client.sanitize_for_serialization(rs.spec.template)
        template.get("metadata", {}).get("labels", {}).pop("pod-template-hash", None)
        patch = [{"op": "replace", "path": "/spec/template", "value": template}]
        self.client.call(
            self.client.apps.patch_namespaced_deployment,
            input.ref.name,
            input.ref.namespace,
            patch,
            _content_type=PATCH_CONTENT_TYPES["json"],
            what=f"roll back {input.ref}",
        )
        return input.ref


def _revision(obj: Any) -> int:
    return int((obj.metadata.annotations or {}).get(REVISION_ANNOTATION, "0"))
