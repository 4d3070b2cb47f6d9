"""Applying manifests and waiting for them to be stable.

Idempotent under activity retry: apply replaces toward the declared object (Jobs and Pods, being
immutable, are recreated unless an earlier attempt of the same stage made them). Waits watch.
Stability per kind follows `kubectl rollout status`: a Deployment is stable when its controller has
observed the latest generation and every desired replica is updated and available with no old ones
left; a ReplicaSet when all its replicas are ready; other kinds as soon as they are written.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.kubernetes.client import CONFLICT
from activities.kubernetes.manifest_kinds import (
    APPLICATION_ANNOTATION,
    EXECUTION_ANNOTATION,
    MANAGED_BY_LABEL,
    MANIFEST_INVALID,
    STAGE_ANNOTATION,
    ManifestObjects,
    ManifestRef,
    ManifestRefs,
    check_size,
    kind_of,
)
from activities.kubernetes.waiting import Verdict, heartbeat, wait_for_object


class ApplyManifestsInput(BaseModel):
    manifests: list[dict[str, Any]]
    namespaceOverride: str | None = None
    defaultNamespace: str = "default"
    executionId: str
    stage: str
    application: str


class StableInput(BaseModel):
    refs: list[ManifestRef]
    timeoutSeconds: float = 600


class ManifestApplyActivities(ManifestObjects):
    """Apply manifests and wait for their rollouts (activities of `KubernetesManifestActivities`)."""

    @activity.defn
    def apply_manifests(self, input: ApplyManifestsInput) -> ManifestRefs:
        """Create or replace each manifest (in order), annotated with the execution that wrote it."""
        check_size("the manifests", input.manifests)
        applied = []
        for index, manifest in enumerate(input.manifests):
            if not isinstance(manifest.get("metadata"), dict) or not manifest["metadata"].get("name"):
                raise ApplicationError(
                    f"manifests[{index}] ({manifest.get('kind')}) has no metadata.name",
                    type=MANIFEST_INVALID,
                    non_retryable=True,
                )
            namespace = input.namespaceOverride or manifest["metadata"].get("namespace") or input.defaultNamespace
            self.client.check_namespace(namespace)
            kind, body = kind_of(manifest.get("kind")), copy.deepcopy(manifest)
            ref = ManifestRef(kind=kind.kind, name=body["metadata"]["name"], namespace=namespace)
            body.setdefault("apiVersion", kind.api_version)
            meta = body["metadata"] | {"namespace": namespace}
            body["metadata"] = meta
            meta.setdefault("labels", {}).setdefault(MANAGED_BY_LABEL, "gennaker")
            meta.setdefault("annotations", {}).update(
                {
                    EXECUTION_ANNOTATION: input.executionId,
                    STAGE_ANNOTATION: input.stage,
                    APPLICATION_ANNOTATION: input.application,
                }
            )
            heartbeat(f"applying {ref} ({index + 1}/{len(input.manifests)})")
            self._apply_one(ref, body)
            applied.append(ref)
        return ManifestRefs(refs=applied)

    def _apply_one(self, ref: ManifestRef, body: dict[str, Any]) -> None:
        kind = kind_of(ref.kind)
        for _ in range(5):  # 409s: someone wrote between our read and our write; read again
            existing = self._read(ref)
            try:
                if existing is None:
                    self.client.call(self._op(kind, "create"), ref.namespace, body, what=f"create {ref}")
                elif kind.kind in ("Job", "Pod"):
                    self._recreate(ref, existing, body)
                else:
                    body["metadata"]["resourceVersion"] = existing.metadata.resource_version
                    if kind.kind == "Service" and existing.spec is not None:
                        # clusterIP is allocated once and immutable: keep it unless the manifest names one.
                        body.setdefault("spec", {}).setdefault("clusterIP", existing.spec.cluster_ip)
                    self.client.call(self._op(kind, "replace"), ref.name, ref.namespace, body, what=f"replace {ref}")
                return
            except ApplicationError as exc:
                if exc.type != CONFLICT:
                    raise
        raise ApplicationError(f"{ref} kept changing under us (409 Conflict five times)", type=CONFLICT)

    def _recreate(self, ref: ManifestRef, existing: Any, body: dict[str, Any]) -> None:
        """Jobs and Pods are immutable: an earlier attempt's object is kept, another one is replaced."""
        annotations, ours = existing.metadata.annotations or {}, body["metadata"]["annotations"]
        if all(annotations.get(k) == ours[k] for k in (EXECUTION_ANNOTATION, STAGE_ANNOTATION)):
            return
        self.client.call(
            self._op(kind_of(ref.kind), "delete"),
            ref.name,
            ref.namespace,
            propagation_policy="Background",
            what=f"delete {ref} to recreate it",
        )
        self.wait_gone(ref, 60)
        self.client.call(self._op(kind_of(ref.kind), "create"), ref.namespace, body, what=f"create {ref}")

    @activity.defn
    def wait_for_manifests_stable(self, input: StableInput) -> ManifestRefs:
        states: dict[str, str] = {}
        for ref in input.refs:
            kind = kind_of(ref.kind)
            judge = {"Deployment": deployment_verdict, "ReplicaSet": replica_set_verdict}.get(kind.kind)
            if judge is None:
                states[str(ref)] = "written (no rollout to wait for)"
                continue
            obj = wait_for_object(
                self.client, self._op(kind, "list"), ref.namespace, ref.name, judge, input.timeoutSeconds, kind.kind
            )
            states[str(ref)] = judge(obj).progress
        return ManifestRefs(refs=input.refs, states=states)


def deployment_verdict(d: Any) -> Verdict:
    """`kubectl rollout status` for a Deployment."""
    status, spec = d.status, d.spec
    want = spec.replicas if spec.replicas is not None else 1
    if spec.paused:
        return Verdict(done=True, progress="paused: no rollout to wait for")
    if status is None or (status.observed_generation or 0) < (d.metadata.generation or 0):
        return Verdict(done=False, progress="waiting for the controller to observe the new spec")
    for condition in status.conditions or []:
        if condition.type == "Progressing" and condition.reason == "ProgressDeadlineExceeded":
            return Verdict(done=False, progress="", failed=f"rollout stalled: {condition.message}")
    updated, total = status.updated_replicas or 0, status.replicas or 0
    available = status.available_replicas or 0
    if updated < want:
        return Verdict(done=False, progress=f"{updated} of {want} replicas updated")
    if total > updated:
        return Verdict(done=False, progress=f"{total - updated} old replicas pending termination")
    if available < updated:
        return Verdict(done=False, progress=f"{available} of {updated} updated replicas available")
    return Verdict(done=True, progress=f"rolled out: {available}/{want} available")


def replica_set_verdict(rs: Any) -> Verdict:
    status = rs.status
    want = rs.spec.replicas if rs.spec.replicas is not None else 1
    if status is None or (status.observed_generation or 0) < (rs.metadata.generation or 0):
        return Verdict(done=False, progress="waiting for the controller to observe the new spec")
    ready, total = status.ready_replicas or 0, status.replicas or 0
    if ready < want or total != want:
        return Verdict(done=False, progress=f"{ready} of {want} replicas ready ({total} exist)")
    return Verdict(done=True, progress=f"{ready}/{want} replicas ready")
