"""Manifest operations (Spinnaker's clouddriver manifest ops): apply, wait for stable, delete, patch
(scale is a merge patch), undo rollout, and resolving a cluster + criteria target to one object.

Idempotent under activity retry: apply replaces toward the declared object, deletes treat NotFound as
done, patches and undo write absolute states (undo's target is planned once, read-only). Waits watch.
Stability per kind follows `kubectl rollout status`: a Deployment is stable when its controller has
observed the latest generation and every desired replica is updated and available with no old ones
left; a ReplicaSet when all its replicas are ready; other kinds as soon as they are written.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.kubernetes.client import CONFLICT, NON_RETRYABLE, NOT_FOUND, KubernetesAccountClient
from activities.kubernetes.waiting import WAIT_FAILED, WAIT_TIMEOUT, Verdict, heartbeat, wait_for_object

EXECUTION_ANNOTATION = "gennaker.io/execution-id"
STAGE_ANNOTATION = "gennaker.io/stage"
APPLICATION_ANNOTATION = "gennaker.io/application"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
# Small payloads by design (Temporal warns at 256 KB); a manifest is fine, a bundle of charts is not.
MAX_MANIFEST_BYTES = 200_000

UNSUPPORTED_KIND = "UnsupportedKind"
MANIFEST_INVALID = "ManifestInvalid"
MANIFEST_TOO_LARGE = "ManifestTooLarge"
TARGET_NOT_FOUND = "ManifestTargetNotFound"
NON_RETRYABLE_MANIFEST = [
    *NON_RETRYABLE,
    WAIT_FAILED,
    WAIT_TIMEOUT,
    UNSUPPORTED_KIND,
    MANIFEST_INVALID,
    MANIFEST_TOO_LARGE,
    TARGET_NOT_FOUND,
]


@dataclass(frozen=True)
class Kind:
    kind: str
    api_version: str
    api: str  # attribute of KubernetesAccountClient
    suffix: str  # the official client's method suffix: create_<suffix>, read_<suffix>, …
    aliases: tuple[str, ...] = ()


KINDS = (
    Kind("Deployment", "apps/v1", "apps", "namespaced_deployment", ("deploy",)),
    Kind("ReplicaSet", "apps/v1", "apps", "namespaced_replica_set", ("rs",)),
    Kind("Service", "v1", "core", "namespaced_service", ("svc",)),
    Kind("ConfigMap", "v1", "core", "namespaced_config_map", ("cm",)),
    Kind("Secret", "v1", "core", "namespaced_secret"),
    Kind("NetworkPolicy", "networking.k8s.io/v1", "networking", "namespaced_network_policy", ("netpol",)),
    Kind("HorizontalPodAutoscaler", "autoscaling/v2", "autoscaling", "namespaced_horizontal_pod_autoscaler", ("hpa",)),
    Kind("Job", "batch/v1", "batch", "namespaced_job"),
    Kind("Pod", "v1", "core", "namespaced_pod", ("po",)),
)
_BY_NAME = {n: k for k in KINDS for n in (k.kind.lower(), k.kind.lower() + "s", *k.aliases)}


def kind_of(name: object) -> Kind:
    found = _BY_NAME.get(str(name).lower())
    if found is None:
        raise ApplicationError(
            f"kind {name!r} is not supported; supported kinds: {', '.join(k.kind for k in KINDS)}",
            type=UNSUPPORTED_KIND,
            non_retryable=True,
        )
    return found


class ManifestRef(BaseModel):
    """One namespaced object; `label` is Spinnaker's manifestName form, e.g. 'deployment my-app'."""

    kind: str
    name: str
    namespace: str

    @property
    def label(self) -> str:
        k = kind_of(self.kind).kind
        return f"{k[0].lower()}{k[1:]} {self.name}"

    def __str__(self) -> str:
        return f"{kind_of(self.kind).kind} {self.namespace}/{self.name}"


class ApplyManifestsInput(BaseModel):
    manifests: list[dict[str, Any]]
    namespaceOverride: str | None = None
    defaultNamespace: str = "default"
    executionId: str
    stage: str
    application: str


class ManifestRefs(BaseModel):
    """Objects an operation touched; `states` is the last progress seen, `alreadyGone` what a delete found gone."""

    refs: list[ManifestRef] = Field(default_factory=list)
    states: dict[str, str] = Field(default_factory=dict)
    alreadyGone: list[ManifestRef] = Field(default_factory=list)


class StableInput(BaseModel):
    refs: list[ManifestRef]
    timeoutSeconds: float = 600


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


PATCH_CONTENT_TYPES = {
    "strategic": "application/strategic-merge-patch+json",
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
}


def check_size(what: str, payload: Any) -> None:
    size = len(json.dumps(payload, default=str))
    if size > MAX_MANIFEST_BYTES:
        raise ApplicationError(
            f"{what} is {size // 1000} KB; the limit is {MAX_MANIFEST_BYTES // 1000} KB — split "
            "it, or keep large data out of the pipeline",
            type=MANIFEST_TOO_LARGE,
            non_retryable=True,
        )


class KubernetesManifestActivities:
    """Manifest activities bound to one account's client (built once by the account's worker)."""

    def __init__(self, client: KubernetesAccountClient) -> None:
        self.client = client

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

    def _op(self, kind: Kind, verb: str) -> Callable[..., Any]:
        fn: Callable[..., Any] = getattr(getattr(self.client, kind.api), f"{verb}_{kind.suffix}")
        return fn

    def _read(self, ref: ManifestRef, required: bool = False) -> Any:
        try:
            return self.client.call(self._op(kind_of(ref.kind), "read"), ref.name, ref.namespace, what=f"read {ref}")
        except ApplicationError as exc:
            if exc.type != NOT_FOUND:
                raise
            if required:
                raise ApplicationError(
                    f"account {self.client.account.name}: {ref} does not exist",
                    type=TARGET_NOT_FOUND,
                    non_retryable=True,
                ) from None
            return None

    def wait_gone(self, ref: ManifestRef, timeout: float) -> None:
        """Watch until the object is gone (Foreground deletion keeps it until its dependents are)."""
        try:
            wait_for_object(
                self.client,
                self._op(kind_of(ref.kind), "list"),
                ref.namespace,
                ref.name,
                lambda _: Verdict(done=False, progress=f"{ref} is being deleted"),
                timeout,
                ref.kind,
            )
        except ApplicationError as exc:
            if exc.type != NOT_FOUND:
                raise

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
