"""Acting on objects that already exist, of any kind the cluster serves: delete, patch, scale (through
the `scale` subresource, as `kubectl scale`), and resolving a cluster + criteria target to one object.
Undo rollout is in `manifest_undo.py`.

Every write first passes `ownership.authorize_objects` with all the objects it is about to touch
and, when the stage names its application, refuses objects Gennaker applied for another one.
Writes are recorded under the `gennaker` field manager, so a later deploy knows them as its own.

Idempotent under activity retry: deletes treat NotFound as done, patches and scales write absolute
states.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Literal

from kubernetes.client.exceptions import ApiException
from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.grants import AccountGrant
from activities.kubernetes.client import NOT_FOUND
from activities.kubernetes.discovery import ServedKind
from activities.kubernetes.manifest_kinds import (
    FIELD_MANAGER,
    MANIFEST_INVALID,
    PATCH_CONTENT_TYPES,
    TARGET_NOT_FOUND,
    UNSUPPORTED_KIND,
    ManifestObjects,
    ManifestRef,
    ManifestRefs,
    check_size,
    kind_of,
)
from activities.kubernetes.ownership import ObjectToTouch, authorize_objects, refuse_foreign
from activities.kubernetes.waiting import heartbeat


class DeleteManifestsInput(BaseModel):
    refs: list[ManifestRef] = Field(default_factory=list)
    namespace: str = "default"
    kinds: list[str] = Field(default_factory=list, description="With labelSelector: the kinds to delete")
    labelSelector: str | None = None
    cascading: bool = True
    gracePeriodSeconds: int | None = None
    timeoutSeconds: float = 600
    application: str | None = Field(default=None, description="Refuse objects Gennaker applied for another one")
    grant: AccountGrant | None = Field(default=None, description="Stamped by the workflow (AccountCalls)")


class PatchManifestInput(BaseModel):
    ref: ManifestRef
    patchBody: dict[str, Any] | list[dict[str, Any]]
    mergeStrategy: Literal["strategic", "merge", "json"] = "strategic"
    application: str | None = Field(default=None, description="Refuse objects Gennaker applied for another one")
    grant: AccountGrant | None = Field(default=None, description="Stamped by the workflow (AccountCalls)")


class ScaleManifestInput(BaseModel):
    ref: ManifestRef
    replicas: int = Field(ge=0)
    application: str | None = Field(default=None, description="Refuse objects Gennaker applied for another one")
    grant: AccountGrant | None = Field(default=None, description="Stamped by the workflow (AccountCalls)")


class ResolveTargetInput(BaseModel):
    kind: str
    namespace: str
    cluster: str
    criteria: Literal["newest", "second_newest", "oldest", "largest", "smallest"]


class ManifestChangeActivities(ManifestObjects):
    """Delete, patch, scale and resolve objects (activities of `KubernetesManifestActivities`)."""

    def authorized(
        self, refs: list[ManifestRef], application: str | None, grant: AccountGrant | None = None
    ) -> list[tuple[ManifestRef, ServedKind]]:
        """Resolve `refs`, check the account's namespaces and `authorize_objects`; nothing is written yet."""
        resolved = [self.resolved(ref) for ref in refs]
        for ref, _ in resolved:
            self.check_scope(ref)
        authorize_objects(
            self.client.account,
            application or "",
            [ObjectToTouch(str(r.apiVersion), r.kind, r.namespace, r.name) for r, _ in resolved],
            grant,
        )
        return resolved

    def refuse_foreign(self, ref: ManifestRef, live: dict[str, Any] | None, application: str | None) -> None:
        refuse_foreign(live, application or "", str(ref), self.client.account.name)

    @activity.defn
    def delete_manifests(self, input: DeleteManifestsInput) -> ManifestRefs:
        """Delete by name or by label selector; NotFound counts as done. Cascading uses Foreground
        propagation so that 'deleted' means the dependents (ReplicaSets, pods) are gone too."""
        refs = list(input.refs)
        if input.labelSelector is not None:
            self.client.check_namespace(input.namespace)
            for kind_name in input.kinds:
                served = self.discovery.kind(None, kind_of(kind_name).kind)
                namespace = input.namespace if served.namespaced else ""
                listing = self.discovery.request(
                    "GET",
                    served.path(namespace=namespace or None),
                    label_selector=input.labelSelector,
                    what=f"list {served.kind} matching {input.labelSelector}",
                )
                refs += [
                    ManifestRef(
                        kind=served.kind, name=o["metadata"]["name"], namespace=namespace, apiVersion=served.api_version
                    )
                    for o in listing.get("items") or []
                ]
        targets = self.authorized(refs, input.application, input.grant)
        live = [(ref, served, self.read(ref, served)) for ref, served in targets]
        for ref, served, obj in live:  # all checked before the first delete
            self.require_verb(ref, served, "delete")
            self.refuse_foreign(ref, obj, input.application)
        result = ManifestRefs()
        policy = "Foreground" if input.cascading else "Orphan"
        for ref, served, obj in live:
            heartbeat(f"deleting {ref}")
            try:
                if obj is None:
                    raise ApplicationError("gone", type=NOT_FOUND)
                self.discovery.request(
                    "DELETE",
                    served.path(ref.name, ref.namespace),
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
        """Patch one object. A merge patch of nothing but `spec.replicas` is a scale and goes through
        the `scale` subresource when the kind has one (so autoscalers and quotas see a scale)."""
        check_size("the patch body", input.patchBody)
        if (input.mergeStrategy == "json") != isinstance(input.patchBody, list):
            raise ApplicationError(
                "mergeStrategy json takes a list of RFC 6902 operations; strategic and merge take an object",
                type=MANIFEST_INVALID,
                non_retryable=True,
            )
        replicas = _only_replicas(input.patchBody) if input.mergeStrategy == "merge" else None
        if replicas is not None:
            self.scale(
                ScaleManifestInput(ref=input.ref, replicas=replicas, application=input.application, grant=input.grant)
            )
            return input.ref
        [(ref, served)] = self.authorized([input.ref], input.application, input.grant)
        self.require_verb(ref, served, "patch")
        self.refuse_foreign(ref, self.read(ref, served, required=True), input.application)

        def send() -> None:
            try:
                self.discovery.dynamic.request(
                    "PATCH",
                    served.path(ref.name, ref.namespace),
                    body=input.patchBody,
                    content_type=PATCH_CONTENT_TYPES[input.mergeStrategy],
                    field_manager=FIELD_MANAGER,
                    serialize=False,
                )
            except ApiException as exc:
                if exc.status != 415:
                    raise
                # A real API server takes no strategic merge patch for custom resources.
                raise ApplicationError(
                    f"account {self.client.account.name}: {ref} does not take a {input.mergeStrategy} patch "
                    "(custom resources take mergeStrategy merge or json)",
                    type=MANIFEST_INVALID,
                    non_retryable=True,
                ) from None

        self.client.call(send, what=f"{input.mergeStrategy} patch of {ref}")
        return input.ref

    @activity.defn
    def scale_manifest(self, input: ScaleManifestInput) -> ManifestRef:
        """Set the replicas of any kind with a `scale` subresource (Deployment, ReplicaSet,
        StatefulSet, custom resources that declare one), as `kubectl scale` does."""
        self.scale(input)
        return input.ref

    def scale(self, input: ScaleManifestInput) -> None:
        [(ref, served)] = self.authorized([input.ref], input.application, input.grant)
        self.refuse_foreign(ref, self.read(ref, served, required=True), input.application)
        if "scale" not in served.subresources:
            raise ApplicationError(
                f"cannot scale {ref}: its kind has no scale subresource", type=UNSUPPORTED_KIND, non_retryable=True
            )
        self.discovery.request(
            "PATCH",
            served.path(ref.name, ref.namespace, "scale"),
            body={"spec": {"replicas": input.replicas}},
            content_type=PATCH_CONTENT_TYPES["merge"],
            field_manager=FIELD_MANAGER,
            what=f"scale {ref} to {input.replicas}",
        )

    @activity.defn
    def resolve_manifest_target(self, input: ResolveTargetInput) -> ManifestRef:
        """Spinnaker's dynamic target: in `cluster`, the newest/oldest/… object of `kind`. Members are
        `<cluster>-v<NNN>` server groups or objects annotated moniker.spinnaker.io/cluster=<cluster>."""
        served = self.discovery.kind(None, kind_of(input.kind).kind)
        namespace = input.namespace if served.namespaced else ""
        if namespace:
            self.client.check_namespace(namespace)
        listing = self.discovery.request("GET", served.path(namespace=namespace or None), what=f"list {served.kind}")
        member = re.compile(rf"^{re.escape(input.cluster)}-v\d{{3,}}$")
        found = [
            o
            for o in listing.get("items") or []
            if member.match(o["metadata"]["name"])
            or (o["metadata"].get("annotations") or {}).get("moniker.spinnaker.io/cluster") == input.cluster
        ]
        if len(found) < (2 if input.criteria == "second_newest" else 1):
            raise ApplicationError(
                f"account {self.client.account.name}: no {input.criteria} {served.kind} in cluster "
                f"{input.cluster!r} (namespace {input.namespace}; found {len(found)})",
                type=TARGET_NOT_FOUND,
                non_retryable=True,
            )

        def size(o: dict[str, Any]) -> int:
            replicas = (o.get("spec") or {}).get("replicas")
            return replicas if isinstance(replicas, int) else 1

        by_age = sorted(found, key=lambda o: (o["metadata"].get("creationTimestamp", ""), o["metadata"]["name"]))
        by_size = sorted(found, key=lambda o: (size(o), o["metadata"]["name"]))
        # Pick lazily: with one member, indexing [-2] for every criterion would raise.
        pickers: dict[str, Callable[[], dict[str, Any]]] = {
            "newest": lambda: by_age[-1],
            "second_newest": lambda: by_age[-2],
            "oldest": lambda: by_age[0],
            "largest": lambda: by_size[-1],
            "smallest": lambda: by_size[0],
        }
        chosen = pickers[input.criteria]()
        return ManifestRef(
            kind=served.kind, name=chosen["metadata"]["name"], namespace=namespace, apiVersion=served.api_version
        )


def _only_replicas(body: Any) -> int | None:
    if isinstance(body, dict) and list(body) == ["spec"] and isinstance(body["spec"], dict):
        replicas = body["spec"].get("replicas")
        if list(body["spec"]) == ["replicas"] and isinstance(replicas, int) and replicas >= 0:
            return replicas
    return None
