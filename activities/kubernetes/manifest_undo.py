"""Undo rollout (`kubectl rollout undo`) for Deployments, StatefulSets and DaemonSets.

A Deployment's history is its ReplicaSets (revision annotation `deployment.kubernetes.io/revision`);
undo copies the chosen ReplicaSet's pod template into the Deployment. A StatefulSet's or DaemonSet's
history is its ControllerRevisions (field `revision`); undo applies the revision's `data` (a strategic
merge patch replacing `spec.template`) to the object, as kubectl's `StatefulSetRollbacker` and
`DaemonSetRollbacker` do. The current revision is the highest one.

The target is planned once by a read-only activity, so the workflow records the choice and a retried
undo cannot step back twice; writing the same template again changes nothing.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.grants import AccountGrant
from activities.kubernetes.manifest_changes import ManifestChangeActivities
from activities.kubernetes.manifest_kinds import (
    FIELD_MANAGER,
    PATCH_CONTENT_TYPES,
    REVISION_ANNOTATION,
    TARGET_NOT_FOUND,
    UNSUPPORTED_KIND,
    ManifestRef,
)

Obj = dict[str, Any]
_ROLLBACK_KINDS = ("Deployment", "StatefulSet", "DaemonSet")


class UndoRolloutPlanInput(BaseModel):
    ref: ManifestRef
    numRevisionsBack: int = Field(default=1, ge=1)
    revision: int | None = Field(default=None, description="Roll back to exactly this revision instead")
    application: str | None = Field(default=None, description="Refuse objects Gennaker applied for another one")
    grant: AccountGrant | None = Field(default=None, description="Stamped by the workflow (AccountCalls)")


class UndoRolloutPlan(BaseModel):
    ref: ManifestRef
    fromRevision: int
    toRevision: int
    replicaSet: str = Field(description="The ReplicaSet (Deployment) or ControllerRevision restored")
    images: list[str]
    application: str | None = None
    grant: AccountGrant | None = None


class ManifestUndoActivities(ManifestChangeActivities):
    @activity.defn
    def plan_undo_rollout(self, input: UndoRolloutPlanInput) -> UndoRolloutPlan:
        """Which revision `kubectl rollout undo` would bring back. Read-only."""
        [(ref, served)] = self.authorized([input.ref], input.application, input.grant)
        if ref.kind not in _ROLLBACK_KINDS or ref.apiVersion != "apps/v1":
            raise ApplicationError(
                f"undo rollout needs a Deployment, StatefulSet or DaemonSet, not {ref}",
                type=UNSUPPORTED_KIND,
                non_retryable=True,
            )
        owner = self.read(ref, served, required=True)
        assert owner is not None
        self.refuse_foreign(ref, owner, input.application)
        history = self._history(ref, owner)
        current = max(history, default=0)
        earlier = sorted(r for r in history if r != current)
        back = input.numRevisionsBack
        target = input.revision if input.revision is not None else (earlier[-back] if back <= len(earlier) else -1)
        if target not in history or target == current:
            wanted = f"revision {input.revision}" if input.revision is not None else f"{back} revision(s) back"
            raise ApplicationError(
                f"{ref}: cannot roll back to {wanted} — current revision {current}, earlier "
                f"revisions kept: {earlier or 'none'}",
                type=TARGET_NOT_FOUND,
                non_retryable=True,
            )
        source = history[target]
        return UndoRolloutPlan(
            ref=ref,
            fromRevision=current,
            toRevision=target,
            replicaSet=source["metadata"]["name"],
            images=[str(c.get("image")) for c in _template(ref, source).get("spec", {}).get("containers") or []],
            application=input.application,
            grant=input.grant,
        )

    def _history(self, ref: ManifestRef, owner: Obj) -> dict[int, Obj]:
        """Revision number → the ReplicaSet or ControllerRevision the owner controls."""
        history_kind = "ReplicaSet" if ref.kind == "Deployment" else "ControllerRevision"
        served = self.discovery.kind("apps/v1", history_kind)
        listing = self.discovery.request(
            "GET", served.path(namespace=ref.namespace), what=f"list {history_kind}s of {ref}"
        )
        uid = owner["metadata"]["uid"]
        owned = [
            o
            for o in listing.get("items") or []
            if any(r.get("uid") == uid for r in o["metadata"].get("ownerReferences") or [])
        ]
        if ref.kind == "Deployment":
            return {int((o["metadata"].get("annotations") or {}).get(REVISION_ANNOTATION, "0")): o for o in owned}
        return {int(o.get("revision", 0)): o for o in owned}

    @activity.defn
    def undo_rollout(self, input: UndoRolloutPlan) -> ManifestRef:
        """Restore the planned revision's pod template. Writing the same template twice changes nothing."""
        [(ref, served)] = self.authorized([input.ref], input.application, input.grant)
        self.refuse_foreign(ref, self.read(ref, served, required=True), input.application)
        source_kind = "ReplicaSet" if ref.kind == "Deployment" else "ControllerRevision"
        source_ref = ManifestRef(kind=source_kind, name=input.replicaSet, namespace=ref.namespace, apiVersion="apps/v1")
        source_ref, source_served = self.resolved(source_ref)
        source = self.read(source_ref, source_served, required=True)
        assert source is not None
        if ref.kind == "Deployment":
            template = _template(ref, source)
            template.get("metadata", {}).get("labels", {}).pop("pod-template-hash", None)
            body: Any = [{"op": "replace", "path": "/spec/template", "value": template}]
            content_type = PATCH_CONTENT_TYPES["json"]
        else:
            body, content_type = source.get("data") or {}, PATCH_CONTENT_TYPES["strategic"]
        self.discovery.request(
            "PATCH",
            served.path(ref.name, ref.namespace),
            body=body,
            content_type=content_type,
            field_manager=FIELD_MANAGER,
            what=f"roll back {ref}",
        )
        return input.ref


def _template(ref: ManifestRef, source: Obj) -> Obj:
    """The pod template a ReplicaSet holds, or a ControllerRevision's patch carries."""
    if ref.kind == "Deployment":
        return dict((source.get("spec") or {}).get("template") or {})
    template = dict(((source.get("data") or {}).get("spec") or {}).get("template") or {})
    template.pop("$patch", None)
    return template
