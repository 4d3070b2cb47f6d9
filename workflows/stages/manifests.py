"""Manifest stages (Spinnaker's Kubernetes V2 provider): Deploy, Delete, Scale, Patch, Undo Rollout.

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

import asyncio
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError

from workflows.context import StageContext
from workflows.stages.base import Expression, StageConfig, StageFailed, failure_reason
from workflows.stages.registry import register_stage

with workflow.unsafe.imports_passed_through():
    from activities.kubernetes.manifests import (
        MAX_MANIFEST_BYTES,
        NON_RETRYABLE_MANIFEST,
        ApplyManifestsInput,
        DeleteManifestsInput,
        KubernetesManifestActivities,
        ManifestRef,
        PatchManifestInput,
        ResolveTargetInput,
        StableInput,
        UndoRolloutPlanInput,
        kind_of,
    )

I = TypeVar("I")  # noqa: E741
R = TypeVar("R")

WRITE_TIMEOUT = timedelta(minutes=2)
HEARTBEAT_TIMEOUT = timedelta(seconds=30)
# 5xx and 429 are retried with backoff (Temporal shows each attempt); 401/403/404/422 are not.
KUBERNETES_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=500),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=10,
    non_retryable_error_types=NON_RETRYABLE_MANIFEST,
)
Criteria = Literal["newest", "second_newest", "oldest", "largest", "smallest"]


def known_kind(name: str) -> str:
    try:
        return kind_of(name).kind
    except ApplicationError as exc:
        raise ValueError(exc.message) from None


def parse_manifest_name(text: str) -> tuple[str, str]:
    """Spinnaker's `manifestName`, 'deployment my-app' (also 'deployment/my-app') → (Deployment, my-app)."""
    kind, _, name = text.strip().replace("/", " ").partition(" ")
    if not name.strip():
        raise ValueError(f"manifestName {text!r} must be '<kind> <name>', e.g. 'deployment my-app'")
    return known_kind(kind), name.strip()


def size_checked(what: str, payload: Any) -> None:
    size = len(json.dumps(payload, default=str))
    if size > MAX_MANIFEST_BYTES:
        raise StageFailed(
            f"{what} is {size // 1000} KB; the limit is {MAX_MANIFEST_BYTES // 1000} KB: split it, or "
            "keep large data out of the pipeline (pass a reference). Nothing was written."
        )


class KubernetesStage(StageConfig):
    """What every Kubernetes stage has: the account (Spinnaker also spells it `credentials`)."""

    account: str | None = Field(default=None, description="Kubernetes account (its worker holds the credentials)")
    credentials: str | None = Field(default=None, description="Spinnaker's alias of `account`")
    cloudProvider: Literal["kubernetes"] = "kubernetes"
    waitTimeoutSeconds: float = Field(default=600, gt=0, description="How long to wait for stability")

    @model_validator(mode="after")
    def _has_account(self) -> KubernetesStage:
        if not (self.account or self.credentials):
            raise ValueError("`account` is required (the Kubernetes account to act in)")
        return self

    @property
    def account_name(self) -> str:
        return str(self.account or self.credentials)

    async def call(
        self,
        ctx: StageContext,
        method: Callable[[Any, I], R],
        arg: I,
        *,
        summary: str,
        limit: timedelta = WRITE_TIMEOUT,
        retry: RetryPolicy = KUBERNETES_RETRY,
    ) -> R:
        """Run one of the account's activities on the worker that holds the account's credentials."""
        return await workflow.execute_activity_method(
            method,
            arg,
            task_queue=ctx.account_queue("kubernetes", self.account_name),
            summary=summary,
            start_to_close_timeout=limit,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=retry,
        )

    def failed(self, doing: str, exc: ActivityError, left: str) -> BaseException:
        """The stage's failure, naming what it was doing, the account, why, and what is left behind.
        An activity canceled because the stage was canceled stays a cancellation."""
        if isinstance(exc.cause, CancelledError):
            return asyncio.CancelledError()
        return StageFailed(f"{doing} in account {self.account_name} failed: {failure_reason(exc)}. {left}")

    async def wait_stable(self, ctx: StageContext, refs: list[ManifestRef]) -> dict[str, str]:
        names = ", ".join(str(r) for r in refs)
        ctx.set_details(f"waiting for {names} to be stable")
        try:
            result = await self.call(
                ctx,
                KubernetesManifestActivities.wait_for_manifests_stable,
                StableInput(refs=refs, timeoutSeconds=self.waitTimeoutSeconds),
                summary=f"Wait for {names} to be stable",
                limit=timedelta(seconds=self.waitTimeoutSeconds + 60),
            )
        except ActivityError as exc:
            raise self.failed("waiting for stability", exc, f"The change to {names} stays applied.") from None
        return result.states


class TargetedStage(KubernetesStage):
    """A stage acting on one existing object: `manifestName`, or `cluster` + `criteria` (+ `kind`)."""

    location: str = Field(default="default", description="Namespace of the target")
    manifestName: str | None = Field(default=None, description="'<kind> <name>', e.g. 'deployment my-app'")
    mode: Literal["static", "dynamic", "label"] | None = Field(default=None, description="Spinnaker's; inferred")
    cluster: str | None = Field(default=None, description="Dynamic target: objects named <cluster>-vNNN")
    criteria: Criteria | None = None
    kind: str | None = Field(default=None, description="Kind of a dynamic target; default replicaSet")
    app: str | None = Field(default=None, description="Spinnaker's moniker app (informational)")

    @field_validator("manifestName")
    @classmethod
    def _manifest_name(cls, value: str | None) -> str | None:
        if value is not None and "${{" not in value:
            parse_manifest_name(value)
        return value

    @model_validator(mode="after")
    def _one_target(self) -> TargetedStage:
        if self.mode != "label" and (self.manifestName is None) == (self.cluster is None or self.criteria is None):
            raise ValueError("give `manifestName` ('<kind> <name>') or `cluster` + `criteria`, not both")
        if self.kind is not None:
            known_kind(self.kind)
        return self

    def target_text(self) -> str:
        return self.manifestName or f"{self.criteria} {self.kind or 'replicaSet'} of cluster {self.cluster}"

    async def target(self, ctx: StageContext) -> ManifestRef:
        if self.manifestName is not None:
            try:
                kind, name = parse_manifest_name(self.manifestName)
            except ValueError as exc:
                raise StageFailed(f"{exc}. Nothing was changed.") from None
            return ManifestRef(kind=kind, name=name, namespace=self.location)
        ask = ResolveTargetInput(
            kind=self.kind or "replicaSet",
            namespace=self.location,
            cluster=str(self.cluster),
            criteria=self.criteria or "newest",
        )
        try:
            return await self.call(
                ctx, KubernetesManifestActivities.resolve_manifest_target, ask, summary=f"Find the {self.target_text()}"
            )
        except ActivityError as exc:
            raise self.failed(f"finding the {self.target_text()}", exc, "Nothing was changed.") from None


class TrafficManagement(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)
    enabled: bool = False


@register_stage
class DeployManifestStage(KubernetesStage):
    """Create or replace the given manifests, then wait until each is stable."""

    type: Literal["deployManifest"] = "deployManifest"
    manifests: list[dict[str, Any]] = Field(min_length=1, description="Kubernetes objects; ${{ }} resolves inside")
    namespaceOverride: str | None = Field(default=None, description="Deploy every manifest to this namespace")
    moniker: dict[str, Any] = Field(default_factory=dict, description="Spinnaker's moniker, e.g. {app: shop}")
    skipExpressionEvaluation: bool = Field(default=False, description="Send manifests exactly as written")
    source: Literal["text"] = Field(default="text", description="Only inline manifests (no artifacts) for now")
    trafficManagement: TrafficManagement | None = None

    raw_fields = frozenset({"manifests"})

    @model_validator(mode="after")
    def _supported(self) -> DeployManifestStage:
        if self.trafficManagement is not None and self.trafficManagement.enabled:
            raise ValueError(
                "trafficManagement is not supported by deployManifest; use the `deploy` stage's "
                "strategies (redblack, highlander) for traffic-managed rollouts"
            )
        for index, manifest in enumerate(self.manifests):
            if not isinstance(manifest.get("metadata"), dict) or not manifest["metadata"].get("name"):
                raise ValueError(f"manifests[{index}] needs metadata.name")
            if "${{" not in str(manifest.get("kind", "")):
                try:
                    known_kind(str(manifest.get("kind")))
                except ValueError as exc:
                    raise ValueError(f"manifests[{index}]: {exc}") from None
        return self

    def summary(self) -> str:
        names = ", ".join(f"{m.get('kind')} {m.get('metadata', {}).get('name')}" for m in self.manifests[:3])
        return f"Deploy {names}" + (" …" if len(self.manifests) > 3 else "")

    async def run(self, ctx: StageContext) -> dict[str, Any]:
        manifests = self.manifests if self.skipExpressionEvaluation else ctx.evaluate(self.manifests)
        size_checked("the manifests", manifests)
        ctx.set_details(f"applying {len(manifests)} manifest(s)")
        application = str(self.moniker.get("app") or ctx.execution.application)
        request = ApplyManifestsInput(
            manifests=manifests,
            namespaceOverride=self.namespaceOverride,
            executionId=ctx.execution_id,
            stage=self.refId,
            application=application,
        )
        try:
            applied = await self.call(
                ctx, KubernetesManifestActivities.apply_manifests, request, summary=self.summary()
            )
        except ActivityError as exc:
            raise self.failed(
                "applying the manifests",
                exc,
                "Manifests before the failing one (in order) stay applied; the rest were not written.",
            ) from None
        states = await self.wait_stable(ctx, applied.refs)
        by_namespace: dict[str, list[str]] = {}
        for ref in applied.refs:
            by_namespace.setdefault(ref.namespace, []).append(ref.label)
        return {
            "account": self.account_name,
            "manifestNamesByNamespace": by_namespace,
            "deployedManifests": [r.model_dump() for r in applied.refs],
            "stable": states,
        }


class SelectorRule(BaseModel):
    """Spinnaker's label selector entry: {kind: EQUALS, key: app, values: [shop]}."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["ANY", "EQUALS", "NOT_EQUALS", "CONTAINS", "NOT_CONTAINS", "EXISTS", "NOT_EXISTS"]
    key: str = Field(min_length=1)
    values: list[str] = Field(default_factory=list)

    def text(self) -> str:
        joined = ",".join(self.values)
        return {
            "EQUALS": f"{self.key}={joined}",
            "NOT_EQUALS": f"{self.key}!={joined}",
            "CONTAINS": f"{self.key} in ({joined})",
            "NOT_CONTAINS": f"{self.key} notin ({joined})",
            "EXISTS": self.key,
            "ANY": self.key,
            "NOT_EXISTS": f"!{self.key}",
        }[self.kind]


class LabelSelectors(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    selectors: list[SelectorRule] = Field(min_length=1)


class DeleteOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    cascading: bool = Field(default=True, description="Also delete dependents (ReplicaSets, pods); waits for them")
    gracePeriodSeconds: int | None = Field(default=None, ge=0)
    orphanDependants: bool | None = Field(default=None, description="Spinnaker's older spelling of not cascading")


@register_stage
class DeleteManifestStage(TargetedStage):
    """Delete one object, the chosen one of a cluster, or everything of `kinds` matching `labelSelectors`."""

    type: Literal["deleteManifest"] = "deleteManifest"
    options: DeleteOptions = Field(default_factory=DeleteOptions)
    kinds: list[str] = Field(default_factory=list, description="Label mode: kinds to delete")
    labelSelectors: LabelSelectors | None = None

    @model_validator(mode="after")
    def _label_mode(self) -> DeleteManifestStage:
        if self.mode == "label" and (self.labelSelectors is None or not self.kinds):
            raise ValueError("label mode needs `labelSelectors` and `kinds`")
        for kind in self.kinds:
            known_kind(kind)
        return self

    def summary(self) -> str:
        if self.mode == "label" and self.labelSelectors:
            selector = ",".join(s.text() for s in self.labelSelectors.selectors)
            return f"Delete {', '.join(self.kinds)} matching {selector}"
        return f"Delete {self.target_text()}"

    async def run(self, ctx: StageContext) -> dict[str, Any]:
        cascading = self.options.cascading and not self.options.orphanDependants
        request = DeleteManifestsInput(
            namespace=self.location,
            cascading=cascading,
            timeoutSeconds=self.waitTimeoutSeconds,
            gracePeriodSeconds=self.options.gracePeriodSeconds,
        )
        if self.mode == "label" and self.labelSelectors is not None:
            request.kinds = [known_kind(k) for k in self.kinds]
            request.labelSelector = ",".join(s.text() for s in self.labelSelectors.selectors)
        else:
            request.refs = [await self.target(ctx)]
        ctx.set_details(self.summary().lower())
        try:
            result = await self.call(
                ctx,
                KubernetesManifestActivities.delete_manifests,
                request,
                summary=self.summary(),
                limit=timedelta(seconds=self.waitTimeoutSeconds + 60),
            )
        except ActivityError as exc:
            raise self.failed(
                "deleting",
                exc,
                "Objects deleted before the failure stay deleted; any being deleted finish in the background.",
            ) from None
        return {
            "account": self.account_name,
            "cascading": cascading,
            "deletedManifests": [str(r) for r in result.refs],
            "alreadyGone": [str(r) for r in result.alreadyGone],
        }


@register_stage
class ScaleManifestStage(TargetedStage):
    """Set a Deployment's or ReplicaSet's replicas, then wait for the rollout/ReplicaSet to settle."""

    type: Literal["scaleManifest"] = "scaleManifest"
    replicas: Annotated[int, Field(ge=0)] | Expression

    def summary(self) -> str:
        return f"Scale {self.target_text()} to {self.replicas}"

    async def run(self, ctx: StageContext) -> dict[str, Any]:
        ref = await self.target(ctx)
        if ref.kind not in ("Deployment", "ReplicaSet"):
            raise StageFailed(f"cannot scale {ref}: only Deployments and ReplicaSets scale. Nothing was changed.")
        replicas = int(self.replicas)
        ctx.set_details(f"scaling {ref} to {replicas}")
        patch = PatchManifestInput(ref=ref, patchBody={"spec": {"replicas": replicas}}, mergeStrategy="merge")
        try:
            await self.call(ctx, KubernetesManifestActivities.patch_manifest, patch, summary=self.summary())
        except ActivityError as exc:
            raise self.failed(f"scaling {ref}", exc, "Nothing was changed.") from None
        states = await self.wait_stable(ctx, [ref])
        return {
            "account": self.account_name,
            "manifest": ref.label,
            "namespace": ref.namespace,
            "replicas": replicas,
            "stable": states,
        }


class PatchOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    mergeStrategy: Literal["strategic", "merge", "json"] = "strategic"
    record: bool = Field(default=True, description="Spinnaker's change-cause flag; accepted, not recorded")


@register_stage
class PatchManifestStage(TargetedStage):
    """Patch an object in place: strategic merge (default), JSON merge (RFC 7386) or JSON patch (RFC 6902)."""

    type: Literal["patchManifest"] = "patchManifest"
    patchBody: dict[str, Any] | list[dict[str, Any]]
    options: PatchOptions = Field(default_factory=PatchOptions)
    source: Literal["text"] = "text"

    def summary(self) -> str:
        return f"Patch {self.target_text()} ({self.options.mergeStrategy})"

    async def run(self, ctx: StageContext) -> dict[str, Any]:
        body: Any = self.patchBody
        if self.options.mergeStrategy != "json" and isinstance(body, list) and len(body) == 1:
            body = body[0]  # deck stores a one-document YAML patch as a list
        size_checked("the patch body", body)
        ref = await self.target(ctx)
        ctx.set_details(f"patching {ref}")
        patch = PatchManifestInput(ref=ref, patchBody=body, mergeStrategy=self.options.mergeStrategy)
        try:
            await self.call(ctx, KubernetesManifestActivities.patch_manifest, patch, summary=self.summary())
        except ActivityError as exc:
            raise self.failed(f"patching {ref}", exc, "Nothing was changed.") from None
        states = await self.wait_stable(ctx, [ref])
        return {
            "account": self.account_name,
            "manifest": ref.label,
            "namespace": ref.namespace,
            "mergeStrategy": self.options.mergeStrategy,
            "stable": states,
        }


@register_stage
class UndoRolloutManifestStage(TargetedStage):
    """`kubectl rollout undo` for a Deployment: bring back the pod template of `numRevisionsBack`
    revisions ago (default the previous one) or of exactly `revision`, then wait for the rollout."""

    type: Literal["undoRolloutManifest"] = "undoRolloutManifest"
    numRevisionsBack: Annotated[int, Field(ge=1)] | Expression = 1
    revision: Annotated[int, Field(ge=1)] | Expression | None = Field(default=None, description="Like --to-revision")

    def summary(self) -> str:
        back = f"revision {self.revision}" if self.revision is not None else f"{self.numRevisionsBack} revision(s) back"
        return f"Undo rollout of {self.target_text()} to {back}"

    async def run(self, ctx: StageContext) -> dict[str, Any]:
        ref = await self.target(ctx)
        ask = UndoRolloutPlanInput(
            ref=ref,
            numRevisionsBack=int(self.numRevisionsBack),
            revision=None if self.revision is None else int(self.revision),
        )
        try:
            plan = await self.call(
                ctx,
                KubernetesManifestActivities.plan_undo_rollout,
                ask,
                summary=f"Find the revision to restore for {ref}",
            )
            ctx.set_details(f"rolling {ref} back from revision {plan.fromRevision} to {plan.toRevision}")
            await self.call(
                ctx,
                KubernetesManifestActivities.undo_rollout,
                plan,
                summary=f"Roll {ref} back to revision {plan.toRevision} ({', '.join(plan.images)})",
            )
        except ActivityError as exc:
            raise self.failed(f"rolling back {ref}", exc, "The Deployment was not changed.") from None
        states = await self.wait_stable(ctx, [ref])
        return {
            "account": self.account_name,
            "manifest": ref.label,
            "namespace": ref.namespace,
            "fromRevision": plan.fromRevision,
            "toRevision": plan.toRevision,
            "replicaSet": plan.replicaSet,
            "images": plan.images,
            "stable": states,
        }
