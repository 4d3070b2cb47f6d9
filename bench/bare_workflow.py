"""A bare Temporal workflow of no-op activities: the baseline the pipeline runner is compared to."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from bench.noop import NOOP_TIMEOUT, noop_activity


@workflow.defn(name="BareNoopWorkflow")
class BareNoopWorkflow:
    @workflow.run
    async def run(self, steps: int) -> int:
        total = 0
        for step in range(steps):
            total += await workflow.execute_activity(noop_activity, step, start_to_close_timeout=NOOP_TIMEOUT)
        return total
