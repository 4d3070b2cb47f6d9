"""Bare Temporal workflows of no-op activities: the baselines the pipeline runner is compared to."""

from __future__ import annotations

import asyncio
from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from bench.noop import NOOP_TIMEOUT, noop_activity


@workflow.defn(name="BareNoopWorkflow")
class BareNoopWorkflow:
    """`steps` activities one after the other (a chain)."""

    @workflow.run
    async def run(self, steps: int) -> int:
        total = 0
        for step in range(steps):
            total += await workflow.execute_activity(noop_activity, step, start_to_close_timeout=NOOP_TIMEOUT)
        return total


@workflow.defn(name="BareFanOutWorkflow")
class BareFanOutWorkflow:
    """One activity, then the other `steps - 1` at once: the shape of a fan-out pipeline."""

    @workflow.run
    async def run(self, steps: int) -> int:
        first = await workflow.execute_activity(noop_activity, 0, start_to_close_timeout=NOOP_TIMEOUT)
        rest = await asyncio.gather(
            *(
                workflow.execute_activity(noop_activity, step, start_to_close_timeout=NOOP_TIMEOUT)
                for step in range(1, steps)
            )
        )
        return first + sum(rest)


@workflow.defn(name="BareJudgmentWorkflow")
class BareJudgmentWorkflow:
    """Waits for an update `judge` (as a manual judgment does), then runs one activity.

    Returns when it resumed (the workflow task that took the judgment), so the caller can compare
    that with when it sent the update, as it does with a pipeline's next-stage start time.
    """

    def __init__(self) -> None:
        self._judged = False

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self._judged)
        resumed = workflow.now()
        await workflow.execute_activity(noop_activity, 1, start_to_close_timeout=NOOP_TIMEOUT)
        return resumed.isoformat()

    @workflow.update(name="judge")
    def judge(self, choice: str) -> str:
        self._judged = True
        return choice

    @workflow.query(name="waiting")
    def waiting(self) -> bool:
        return not self._judged


def resumed_at(value: str) -> datetime:
    return datetime.fromisoformat(value)
