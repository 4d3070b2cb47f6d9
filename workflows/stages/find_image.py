"""Find Image stage: pick an image from a registry's tags (Spinnaker's Find Image from Tags).

The tag regex is matched against every tag of the repository on the registry account's worker;
`order: newest` picks the most recently created image (from the image config's `created`),
`order: semver` the highest semantic version. Later stages read `stages.<refId>.outputs.image`
and `.digest`. (Finding the image a cluster runs is `source: cluster`, with the Kubernetes stages.)
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from typing import Any, Literal

from pydantic import Field, field_validator
from temporalio import workflow

from workflows.account_calls import WAIT, AccountCalls
from workflows.context import StageContext
from workflows.stages.base import Expression, StageConfig, StageFailed
from workflows.stages.registry import register_stage

with workflow.unsafe.imports_passed_through():
    from activities import registry as registry_activities
    from activities.registry import FoundImage, ImageQuery, RegistryActivities

# Reading every tag's config heartbeats per tag; a registry that answers slowly needs the margin.
FIND = replace(WAIT, start_to_close=timedelta(0), heartbeat=timedelta(seconds=30), maximum_attempts=5)


@register_stage
class FindImageStage(StageConfig):
    """Resolve `repository` + `tagRegex` on registry `account` to one image and its digest."""

    type: Literal["findImage"] = "findImage"
    source: Literal["registry"] = Field(default="registry", description="Where to look (registry tags)")
    account: str = Field(min_length=1, description="Registry account (gennaker.yaml `registries:`)")
    repository: str = Field(min_length=1, description="e.g. shop/frontend")
    tagRegex: str = Field(default=".*", description="Python regex that must match the whole tag")
    order: Literal["newest", "semver"] | Expression = Field(
        default="newest", description="newest: latest image creation time; semver: highest version"
    )
    timeoutSeconds: int = Field(default=300, gt=0, description="Limit for one lookup attempt")

    @field_validator("tagRegex")
    @classmethod
    def _valid_regex(cls, value: str) -> str:
        if "${{" not in value:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
        return value

    def summary(self) -> str:
        return f"Find image {self.repository}:/{self.tagRegex}/ ({self.order})"

    async def run(self, ctx: StageContext) -> dict[str, Any]:
        order = str(self.order)
        if order not in ("newest", "semver"):
            raise StageFailed(f"order must be newest or semver; got {order!r}")
        ctx.set_details(f"looking for {self.repository} tags matching /{self.tagRegex}/ on {self.account}")
        calls = AccountCalls(ctx, "registry", self.account, registry_activities.NON_RETRYABLE)
        found: FoundImage = await calls.call(
            RegistryActivities.find_image,
            ImageQuery(repository=self.repository, tagRegex=self.tagRegex, order=order),
            FIND,
            wait=timedelta(seconds=self.timeoutSeconds),
            summary=f"Find image {self.repository} /{self.tagRegex}/ ({order})",
            doing=f"finding an image in {self.repository}",
        )
        return {
            "image": found.image,
            "digest": found.digest,
            "imageWithDigest": found.imageWithDigest,
            "registry": found.registry,
            "repository": found.repository,
            "tag": found.tag,
            "created": found.created.isoformat() if found.created else None,
            "candidates": found.candidates,
            "account": self.account,
        }
