"""Bake stage: build an image on the registry account's worker, tag it and push it (Spinnaker's rosco).

The workflow only decides names; the worker holding the registry account's credentials (task queue
`registry-<account>`) builds with its Docker engine and pushes. Outputs are references (image,
digest, tags), never build logs.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from typing import Any, Literal

from pydantic import Field
from temporalio import workflow

from workflows.account_calls import WAIT, AccountCalls
from workflows.context import StageContext
from workflows.stages.base import Expression, StageConfig, StageFailed
from workflows.stages.registry import register_stage

with workflow.unsafe.imports_passed_through():
    from activities import bake as bake_activities
    from activities import registry as registry_activities
    from activities.bake import BakeActivities, BakeRequest, BakeResult, BuildContext

TAG_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
REPOSITORY_PATTERN = r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$"
BAKE_NON_RETRYABLE = [*registry_activities.NON_RETRYABLE, *bake_activities.NON_RETRYABLE]
# The build streams a heartbeat at least every 5 s; a crashed worker's bake is retried after 20 s.
# The attempt's own limit is the stage's `timeoutMinutes`.
BAKE = replace(
    WAIT,
    start_to_close=timedelta(0),
    heartbeat=timedelta(seconds=20),
    initial_interval=timedelta(seconds=5),
    maximum_attempts=3,
)


def default_tag(execution_id: str) -> str:
    """A tag derived from the execution, stable across retries and replays."""
    tag = re.sub(r"[^A-Za-z0-9_.-]", "-", execution_id).lstrip(".-")
    return tag[:128] or "latest"


@register_stage
class BakeStage(StageConfig):
    """Build `context` with `dockerfile`, tag `<registry>/<repository>:<tag>` (+ `extraTags`), push."""

    type: Literal["bake"] = "bake"
    account: str = Field(min_length=1, description="Registry account (gennaker.yaml `registries:`) to push to")
    repository: str = Field(min_length=1, description="e.g. shop/frontend")
    tag: str | None = Field(default=None, description="Image tag; default derived from the execution id")
    extraTags: list[str] = Field(default_factory=list, description="Also push these tags (e.g. latest)")
    context: BuildContext = Field(description="Build context: {path} | {gitUrl, gitRef} | {tarballUrl}; + subdir")
    dockerfile: str = Field(default="Dockerfile", description="Path inside the context")
    buildArgs: dict[str, str] = Field(
        default_factory=dict, description="--build-arg values (recorded in history: never put secrets here)"
    )
    target: str | None = Field(default=None, description="Multi-stage build target")
    labels: dict[str, str] = Field(default_factory=dict)
    skipIfExists: bool | Expression = Field(
        default=False, description="If the tag is already in the registry, use it and build nothing"
    )
    pull: bool = Field(default=False, description="Always pull newer base images")
    timeoutMinutes: int = Field(default=30, gt=0, description="Limit for one build-and-push attempt")

    def summary(self) -> str:
        return f"Bake {self.repository}:{self.tag or '<execution>'}"

    def _request(self, ctx: StageContext) -> BakeRequest:
        tag = self.tag or default_tag(ctx.execution_id)
        bad = [t for t in (tag, *self.extraTags) if not TAG_PATTERN.match(t)]
        if bad:
            raise StageFailed(f"invalid image tag(s) {', '.join(map(repr, bad))}: use letters, digits, _ . - (≤128)")
        if not re.match(REPOSITORY_PATTERN, self.repository):
            raise StageFailed(f"invalid repository {self.repository!r}: lowercase path components like shop/frontend")
        return BakeRequest(
            repository=self.repository,
            tag=tag,
            extraTags=self.extraTags,
            context=self.context,
            dockerfile=self.dockerfile,
            buildArgs=self.buildArgs,
            target=self.target,
            labels=self.labels,
            skipIfExists=bool(self.skipIfExists),
            pull=self.pull,
        )

    async def run(self, ctx: StageContext) -> dict[str, Any]:
        request = self._request(ctx)
        ref = f"{request.repository}:{request.tag}"
        ctx.set_details(f"baking {ref} from {request.context.describe()} on registry account {self.account}")
        calls = AccountCalls(ctx, "registry", self.account, BAKE_NON_RETRYABLE)
        result: BakeResult = await calls.call(
            BakeActivities.bake_image,
            request,
            BAKE,
            wait=timedelta(minutes=self.timeoutMinutes),
            summary=f"Bake {ref}" + (f" (+{', '.join(request.extraTags)})" if request.extraTags else ""),
            doing=f"baking {ref}",
            details={"repository": request.repository, "tag": request.tag, "account": self.account},
        )
        return {
            "image": result.image,
            "digest": result.digest,
            "imageWithDigest": result.imageWithDigest,
            "tags": result.tags,
            "inputHash": result.inputHash,
            "reused": result.reused,
            "skipped": result.skipped,
            "account": self.account,
        }
