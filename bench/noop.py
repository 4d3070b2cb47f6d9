"""The `noop` stage type and its activity, registered the way real stage types are."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from temporalio import activity, workflow

from workflows.context import StageContext
from workflows.stages.base import StageConfig
from workflows.stages.registry import register_stage

NOOP_TIMEOUT = timedelta(seconds=30)


@activity.defn(name="bench_noop")
async def noop_activity(step: int) -> int:
    return step


@register_stage
class NoopStage(StageConfig):
    """A stage whose single activity returns at once: what remains is Gennaker's own cost."""

    type: Literal["noop"] = "noop"

    async def run(self, ctx: StageContext) -> dict[str, Any]:
        result = await workflow.execute_activity(
            noop_activity, 1, start_to_close_timeout=NOOP_TIMEOUT, summary=f"noop {self.refId}"
        )
        return {"result": result}
