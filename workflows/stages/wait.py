"""Wait: a durable timer, skippable by people and frozen while the execution is paused."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from workflows.context import StageContext
from workflows.stages.base import Expression, StageConfig
from workflows.stages.registry import register_stage


def human_duration(seconds: float) -> str:
    whole = int(seconds)
    if whole != seconds or whole < 60:
        return f"{seconds:g}s"
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return "".join(f"{v}{u}" for v, u in ((hours, "h"), (minutes, "m"), (secs, "s")) if v) or "0s"


@register_stage
class WaitStage(StageConfig):
    """Waits `waitTime` seconds (as Spinnaker's Wait stage); `skipWait` ends it early."""

    type: Literal["wait"] = "wait"
    waitTime: Annotated[float, Field(ge=0)] | Expression = Field(description="Seconds to wait (fractions allowed)")
    skipWaitText: str | None = Field(default=None, description="Shown to people who may skip the wait")
    skippable: ClassVar[bool] = True

    def summary(self) -> str:
        seconds = self.waitTime if isinstance(self.waitTime, float | int) else None
        return f"Wait {human_duration(seconds)}" if seconds is not None else f"Wait ({self.waitTime})"

    async def run(self, ctx: StageContext) -> dict[str, Any]:
        seconds = float(self.waitTime)
        ctx.set_details(f"waiting {human_duration(seconds)}")
        skipped = await ctx.sleep(timedelta(seconds=seconds), summary=self.summary())
        waited = (ctx.now() - ctx.stage.startTime).total_seconds() if ctx.stage.startTime else seconds
        return {"waitTime": seconds, "skipped": skipped, "waitedSeconds": round(waited, 3)}
