"""What every manifest stage shares: the account and how its activities are called (timeouts, retry,
failure messages, waiting for stability), `manifestName` parsing, and the target of a stage acting
on one existing object (`manifestName`, or `cluster` + `criteria`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, Literal, TypeVar

from pydantic import Field, field_validator, model_validator
from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows.account_calls import READ, WAIT, WRITE, AccountCalls, CallProfile
from workflows.context import StageContext
from workflows.stages.base import StageConfig, StageFailed

with workflow.unsafe.imports_passed_through():
    from activities.kubernetes.manifests import (
        MAX_MANIFEST_BYTES,
        NON_RETRYABLE_MANIFEST,
        KubernetesManifestActivities,
        ManifestRef,
        ResolveTargetInput,
        StableInput,
        kind_of,
    )

I = TypeVar("I")  # noqa: E741
R = TypeVar("R")

__all__ = ["READ", "WAIT", "WRITE"]  # the call kinds, for the manifest stage modules
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
        profile: CallProfile,
        *,
        summary: str,
        doing: str,
        left: str = "",
        wait: timedelta | None = None,
        non_retryable: Sequence[str] = NON_RETRYABLE_MANIFEST,
    ) -> R:
        """Run one of the account's activities on the worker that holds the account's credentials;
        a failure names what was being done, the account, why, and what `left` says is left behind.
        5xx and 429 are retried with backoff (Temporal shows each attempt); 401/403/404/422 are not."""
        calls = AccountCalls(ctx, "kubernetes", self.account_name, non_retryable)
        return await calls.call(method, arg, profile, summary=summary, doing=doing, left=left, wait=wait)

    async def wait_stable(self, ctx: StageContext, refs: list[ManifestRef]) -> dict[str, str]:
        names = ", ".join(str(r) for r in refs)
        ctx.set_details(f"waiting for {names} to be stable")
        result = await self.call(
            ctx,
            KubernetesManifestActivities.wait_for_manifests_stable,
            StableInput(refs=refs, timeoutSeconds=self.waitTimeoutSeconds),
            WAIT,
            summary=f"Wait for {names} to be stable",
            doing=f"waiting for {names} to be stable",
            left=f"The change to {names} stays applied.",
            wait=timedelta(seconds=self.waitTimeoutSeconds),
        )
        return result.states

    async def change_then_wait(
        self,
        ctx: StageContext,
        ref: ManifestRef,
        method: Callable[[Any, I], Any],
        arg: I,
        *,
        details: str,
        summary: str,
        doing: str,
        left: str = "Nothing was changed.",
        **outputs: Any,
    ) -> dict[str, Any]:
        """Change `ref` in place with one write, wait for it to be stable, and answer the stage's
        outputs: the object, `outputs`, and the stable states."""
        ctx.set_details(details)
        await self.call(ctx, method, arg, WRITE, summary=summary, doing=doing, left=left)
        states = await self.wait_stable(ctx, [ref])
        return {
            "account": self.account_name,
            "manifest": ref.label,
            "namespace": ref.namespace,
            **outputs,
            "stable": states,
        }


class TargetedStage(KubernetesStage):
    """A stage acting on one existing object: `manifestName`, or `cluster` + `criteria` (+ `kind`)."""

    location: str = Field(default="default", description="Namespace of the target")
    manifestName: str | None = Field(default=None, description="'<kind> <name>', e.g. 'deployment my-app'")
    mode: Literal["static", "dynamic", "label"] | None = Field(default=None, description="Spinnaker's; inferred")
    cluster: str | None = Field(
        default=None,
        description="Dynamic target: Spinnaker's '<kind> <name>' (e.g. 'replicaSet web'), or a name with `kind`; "
        "members are objects named <name>-vNNN",
    )
    criteria: Criteria | None = None
    kind: str | None = Field(default=None, description="Kind of a dynamic target; default replicaSet")
    app: str | None = Field(default=None, description="Spinnaker's moniker app (informational)")

    @field_validator("criteria", mode="before")
    @classmethod
    def _criteria_spelling(cls, value: object) -> object:
        # clouddriver's enum is second_newest; people also write second-newest.
        return value.replace("-", "_") if isinstance(value, str) else value

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
        if self.cluster is not None and "${{" not in self.cluster:
            self.cluster_target()
        return self

    def cluster_target(self) -> tuple[str, str]:
        """(kind, cluster name) of a dynamic target: `cluster: "replicaSet web"` (Spinnaker's form, as
        deck writes it) or `cluster: web` with `kind` (default replicaSet)."""
        text = str(self.cluster).strip()
        kind, _, name = text.replace("/", " ").partition(" ")
        if name.strip():
            if self.kind is not None and known_kind(self.kind) != known_kind(kind):
                raise ValueError(f"cluster {text!r} names a {kind} but kind is {self.kind}")
            return known_kind(kind), name.strip()
        return known_kind(self.kind or "replicaSet"), text

    def target_text(self) -> str:
        if self.manifestName:
            return self.manifestName
        kind, name = self.cluster_target()
        return f"{self.criteria} {kind} of cluster {name}"

    async def target(self, ctx: StageContext) -> ManifestRef:
        if self.manifestName is not None:
            try:
                kind, name = parse_manifest_name(self.manifestName)
            except ValueError as exc:
                raise StageFailed(f"{exc}. Nothing was changed.") from None
            return ManifestRef(kind=kind, name=name, namespace=self.location)
        try:
            kind, cluster = self.cluster_target()
        except ValueError as exc:
            raise StageFailed(f"{exc}. Nothing was changed.") from None
        ask = ResolveTargetInput(
            kind=kind, namespace=self.location, cluster=cluster, criteria=self.criteria or "newest"
        )
        return await self.call(
            ctx,
            KubernetesManifestActivities.resolve_manifest_target,
            ask,
            READ,
            summary=f"Find the {self.target_text()}",
            doing=f"finding the {self.target_text()}",
            left="Nothing was changed.",
        )
