"""Applying manifests with server-side apply, in Kubernetes order, after the tenancy checks.

1. Every manifest is parsed and its kind resolved through discovery (a custom resource whose CRD is
   in the same set is resolved from that CRD), so an unknown kind fails naming the kind, its
   apiVersion and the account before anything is written.
2. `ownership.authorize_objects` gets the whole list of objects; the account's namespaces bound
   namespaced objects and Namespace objects; no object Gennaker applied for another application is
   changed (`ownership.refuse_foreign`). Only then is anything written.
3. Objects are applied in Kubernetes order (`manifest_order.py`) with server-side apply
   (`application/apply-patch+yaml`, field manager `gennaker`); a CRD is waited for until it is
   `Established` before the objects after it.

`force` defaults to False, as `kubectl apply --server-side` (`--force-conflicts=false`) and
Spinnaker's `strategy.spinnaker.io/server-side-apply: "true"` do: a field another manager owns (an
operator, `kubectl edit`, another tool) is a conflict that fails the stage naming the fields and
managers, rather than silently taken. `force: true`, or the manifest annotation
`strategy.spinnaker.io/server-side-apply: force-conflicts` (Spinnaker's spelling), takes them. Fields
Gennaker itself last wrote by an update (a scale, patch or undo stage, or the create-or-replace of
earlier Gennaker versions on objects it annotated for this application) are not another manager's:
the deploy takes them back, as a newer deploy of the same manifest should.

Idempotent under activity retry: applying the same configuration again changes nothing (same
generation, no rollout). Jobs and Pods, being immutable, are recreated unless an earlier attempt of
the same stage made them.
"""

from __future__ import annotations

import copy
import json
import re
import time
from dataclasses import dataclass
from typing import Any

from kubernetes.client.exceptions import ApiException
from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.grants import AccountGrant
from activities.kubernetes.discovery import ServedKind
from activities.kubernetes.manifest_kinds import (
    APPLICATION_ANNOTATION,
    APPLY_PATCH,
    EXECUTION_ANNOTATION,
    FIELD_CONFLICT,
    FIELD_MANAGER,
    MANAGED_BY_LABEL,
    MANIFEST_INVALID,
    STAGE_ANNOTATION,
    ManifestObjects,
    ManifestRef,
    ManifestRefs,
    check_size,
    kind_of,
    verdict_of,
)
from activities.kubernetes.manifest_order import install_order
from activities.kubernetes.manifest_wait import StableInput, WaitForStable
from activities.kubernetes.ownership import ObjectToTouch, authorize_objects, refuse_foreign
from activities.kubernetes.waiting import heartbeat, wait_for_resource

SSA_STRATEGY_ANNOTATION = "strategy.spinnaker.io/server-side-apply"
# What earlier Gennaker versions' create-or-replace was recorded under (the client's User-Agent).
LEGACY_MANAGER = "OpenAPI-Generator"
CRD_ESTABLISHED_SECONDS = 60
# Fields a manifest copied from `kubectl get -o yaml` carries that an apply must not send.
_SERVER_SET_METADATA = ("managedFields", "resourceVersion", "uid", "creationTimestamp", "generation", "selfLink")

__all__ = ["ApplyManifestsInput", "ManifestApplyActivities", "StableInput"]


class ApplyManifestsInput(BaseModel):
    manifests: list[dict[str, Any]]
    namespaceOverride: str | None = None
    defaultNamespace: str = "default"
    executionId: str
    stage: str
    application: str
    force: bool = Field(default=False, description="Take fields other field managers own (--force-conflicts)")
    grant: AccountGrant | None = Field(default=None, description="Stamped by the workflow (AccountCalls)")


@dataclass
class _Planned:
    """One manifest, ready to apply: its reference, body, kind (None: a custom resource whose CRD is
    applied first in this same set) and whether it may take others' fields."""

    index: int
    ref: ManifestRef
    body: dict[str, Any]
    served: ServedKind | None
    force: bool


class ManifestApplyActivities(WaitForStable, ManifestObjects):
    """Apply manifests and wait for them to be stable (activities of `KubernetesManifestActivities`)."""

    @activity.defn
    def apply_manifests(self, input: ApplyManifestsInput) -> ManifestRefs:
        """Server-side apply each manifest in Kubernetes order, annotated with the execution that wrote
        it; the refs come back in the order the manifests were given."""
        check_size("the manifests", input.manifests)
        planned = [self._plan(index, manifest, input) for index, manifest in enumerate(input.manifests)]
        for item in planned:
            self.check_scope(item.ref)
            if item.served is not None:
                self.require_verb(item.ref, item.served, "patch")
        authorize_objects(
            self.client.account,
            input.application,
            [ObjectToTouch(str(p.ref.apiVersion), p.ref.kind, p.ref.namespace, p.ref.name) for p in planned],
            input.grant,
        )
        live = {p.index: self.read(p.ref, p.served) if p.served else None for p in planned}
        for item in planned:
            refuse_foreign(live[item.index], input.application, str(item.ref), self.client.account.name)
        order = install_order([p.ref.kind for p in planned])
        for step, position in enumerate(order):
            item = planned[position]
            heartbeat(f"applying {item.ref} ({step + 1}/{len(planned)})")
            served = item.served or self._served_after_crd(item.ref)
            self._apply_one(item, served, live[item.index], input.application)
        return ManifestRefs(refs=[p.ref for p in planned])

    def _plan(self, index: int, manifest: dict[str, Any], input: ApplyManifestsInput) -> _Planned:
        where = f"manifests[{index}] ({manifest.get('kind')})"
        meta = manifest.get("metadata")
        if not isinstance(meta, dict) or not meta.get("name"):
            raise ApplicationError(f"{where} has no metadata.name", type=MANIFEST_INVALID, non_retryable=True)
        if not isinstance(manifest.get("kind"), str) or not manifest["kind"]:
            raise ApplicationError(f"manifests[{index}] has no kind", type=MANIFEST_INVALID, non_retryable=True)
        kind = kind_of(manifest["kind"])
        api_version = manifest.get("apiVersion") or kind.api_version
        if not isinstance(api_version, str):
            raise ApplicationError(f"{where} has no apiVersion", type=MANIFEST_INVALID, non_retryable=True)
        body = copy.deepcopy(manifest)
        body["apiVersion"] = api_version
        if kind.api_version:  # a kind Gennaker knows by other spellings (`deploy`): its real name
            body["kind"] = kind.kind
        served = self.discovery.find(api_version, body["kind"])
        namespaced = served.namespaced if served else _namespaced_by_crd_in(input.manifests, api_version, body["kind"])
        if namespaced is None:
            raise self.discovery.unknown(api_version, body["kind"])
        meta = body["metadata"] = {k: v for k, v in body["metadata"].items() if k not in _SERVER_SET_METADATA}
        namespace = (input.namespaceOverride or meta.get("namespace") or input.defaultNamespace) if namespaced else ""
        if namespace:
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        meta.setdefault("labels", {}).setdefault(MANAGED_BY_LABEL, "gennaker")
        annotations = meta.setdefault("annotations", {})
        force = input.force or annotations.get(SSA_STRATEGY_ANNOTATION) == "force-conflicts"
        annotations.update(
            {
                EXECUTION_ANNOTATION: input.executionId,
                STAGE_ANNOTATION: input.stage,
                APPLICATION_ANNOTATION: input.application,
            }
        )
        ref = ManifestRef(kind=body["kind"], name=meta["name"], namespace=namespace, apiVersion=api_version)
        return _Planned(index, ref, body, served, force)

    def _served_after_crd(self, ref: ManifestRef) -> ServedKind:
        """A custom resource's kind, once the CRD applied before it is served (the API server
        publishes it in discovery right after `Established`, kubesim at once)."""
        for _ in range(20):
            found = self.discovery.find(ref.apiVersion, ref.kind)
            if found is not None:
                return found
            heartbeat(f"waiting for {ref.kind} ({ref.apiVersion}) to appear in API discovery")
            time.sleep(0.5)
        raise self.discovery.unknown(ref.apiVersion, ref.kind)

    def _apply_one(self, item: _Planned, served: ServedKind, live: dict[str, Any] | None, application: str) -> None:
        ref = item.ref
        immutable = ref.kind in ("Job", "Pod") and ref.apiVersion in ("batch/v1", "v1")
        if live is not None and immutable and not self._recreate(item, served, live):
            return
        conflicts = self._server_side_apply(ref, served, item.body, item.force)
        if conflicts:
            theirs = [c for c in conflicts if not _ours(c.manager, live, application)]
            if theirs:
                raise ApplicationError(
                    f"account {self.client.account.name}: applying {ref} conflicts with fields other "
                    f"field managers own: {_describe(theirs)}. Remove those fields from the manifest, or "
                    f"deploy with force (annotation {SSA_STRATEGY_ANNOTATION}: force-conflicts) to take them.",
                    type=FIELD_CONFLICT,
                    non_retryable=True,
                )
            self._server_side_apply(ref, served, item.body, True)
        if ref.kind == "CustomResourceDefinition" and ref.apiVersion == "apiextensions.k8s.io/v1":
            wait_for_resource(self.discovery, served, "", ref.name, verdict_of, CRD_ESTABLISHED_SECONDS)

    def _server_side_apply(
        self, ref: ManifestRef, served: ServedKind, body: dict[str, Any], force: bool
    ) -> list[_Conflict]:
        """Apply `body` as Gennaker; the field conflicts the server answered with (409), if any."""
        found: list[_Conflict] = []

        def send() -> None:
            try:
                self.discovery.dynamic.request(
                    "PATCH",
                    served.path(ref.name, ref.namespace),
                    body=body,
                    content_type=APPLY_PATCH,
                    field_manager=FIELD_MANAGER,
                    force_conflicts=force,
                    serialize=False,
                )
            except ApiException as exc:
                if exc.status != 409:
                    raise
                found.extend(_conflicts_in(exc))
                if not found:
                    raise

        self.client.call(send, what=f"apply {ref}")
        return found

    def _recreate(self, item: _Planned, served: ServedKind, live: dict[str, Any]) -> bool:
        """Jobs and Pods are immutable: an earlier attempt's object is kept (False), another one is
        deleted so that it can be applied anew (True)."""
        annotations = (live.get("metadata") or {}).get("annotations") or {}
        ours = item.body["metadata"]["annotations"]
        if all(annotations.get(k) == ours[k] for k in (EXECUTION_ANNOTATION, STAGE_ANNOTATION)):
            return False
        self.discovery.request(
            "DELETE",
            served.path(item.ref.name, item.ref.namespace),
            propagation_policy="Background",
            what=f"delete {item.ref} to recreate it",
        )
        self.wait_gone(item.ref, 60)
        return True


@dataclass(frozen=True)
class _Conflict:
    manager: str
    field: str


_MANAGER = re.compile(r'conflict with "((?:[^"\\]|\\.)*)"')


def _conflicts_in(exc: ApiException) -> list[_Conflict]:
    """The `FieldManagerConflict` causes of a 409 answer to an apply (empty for other 409s)."""
    try:
        status = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        return []
    causes = ((status.get("details") or {}).get("causes") or []) if isinstance(status, dict) else []
    found = []
    for cause in causes:
        if isinstance(cause, dict) and cause.get("reason") == "FieldManagerConflict":
            match = _MANAGER.search(str(cause.get("message", "")))
            found.append(_Conflict(json.loads(f'"{match.group(1)}"') if match else "?", str(cause.get("field", ""))))
    return found


def _ours(manager: str, live: dict[str, Any] | None, application: str) -> bool:
    """Whether a conflicting manager is Gennaker itself: its own updates, or the create-or-replace
    of earlier versions on an object it annotated for this application."""
    if manager == FIELD_MANAGER:
        return True
    annotations = ((live or {}).get("metadata") or {}).get("annotations") or {}
    return manager == LEGACY_MANAGER and annotations.get(APPLICATION_ANNOTATION) == application


def _describe(conflicts: list[_Conflict]) -> str:
    by_manager: dict[str, list[str]] = {}
    for conflict in conflicts:
        by_manager.setdefault(conflict.manager, []).append(conflict.field)
    return "; ".join(f"{manager!r} owns {', '.join(fields)}" for manager, fields in sorted(by_manager.items()))


def _namespaced_by_crd_in(manifests: list[dict[str, Any]], api_version: str, kind: str) -> bool | None:
    """Whether `kind` in `api_version` is namespaced, per a CustomResourceDefinition among `manifests`
    (None when none of them defines it)."""
    group, _, version = api_version.rpartition("/")
    for manifest in manifests:
        if manifest.get("kind") != "CustomResourceDefinition" or not isinstance(manifest.get("spec"), dict):
            continue
        spec = manifest["spec"]
        versions = {v.get("name") for v in spec.get("versions") or [] if isinstance(v, dict)}
        if spec.get("group") == group and version in versions and (spec.get("names") or {}).get("kind") == kind:
            return bool(spec.get("scope", "Namespaced") == "Namespaced")
    return None
