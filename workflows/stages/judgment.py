"""Manual Judgment: waits for a person's decision (Update `judge` or signal `judgment`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from workflows.context import StageContext
from workflows.stages.base import JudgmentGate, StageConfig, StageFailed
from workflows.stages.registry import register_stage
from workflows.state import JudgmentRecord


class JudgmentInput(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    value: str = Field(min_length=1)


@register_stage
class ManualJudgmentStage(StageConfig):
    """Spinnaker's Manual Judgment: `judgmentStatus` continue/stop plus an optional chosen input.

    `stop` fails the stage (and, by the usual flags, the pipeline). With `timeoutMs`, the stage
    decides `timeoutOutcome` by itself when nobody answers in time.
    """

    type: Literal["manualJudgment"] = "manualJudgment"
    instructions: str | None = Field(default=None, description="Shown to the approver")
    judgmentInputs: list[JudgmentInput] = Field(default_factory=list, description="Options to choose from")
    timeoutMs: int | None = Field(default=None, gt=0, description="Decide timeoutOutcome after this long")
    timeoutOutcome: Literal["continue", "stop"] = "stop"
    approvers: list[str] = Field(default_factory=list, description="Roles or users allowed to judge")
    notifyEveryMs: int | None = Field(
        default=None, ge=1000, description="Repeat judgment.waiting notifications this often while waiting"
    )

    @field_validator("judgmentInputs", mode="before")
    @classmethod
    def _accept_plain_strings(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"value": v} if isinstance(v, str) else v for v in value]
        return value

    def options(self) -> list[str]:
        return [i.value for i in self.judgmentInputs]

    def judgment_gate(self) -> JudgmentGate:
        return JudgmentGate(options=self.options(), approvers=self.approvers, instructions=self.instructions)

    def summary(self) -> str:
        return f"Manual judgment: {self.instructions or self.display_name}"

    async def _wait(self, ctx: StageContext) -> JudgmentRecord | None:
        """Wait for a judgment, re-sending judgment.waiting every notifyEveryMs; None on timeout."""
        deadline = ctx.now() + timedelta(milliseconds=self.timeoutMs) if self.timeoutMs else None
        every = timedelta(milliseconds=self.notifyEveryMs) if self.notifyEveryMs else None
        sequence = 0
        while True:
            ctx.notify("judgment.waiting", sequence)
            remaining = deadline - ctx.now() if deadline else None
            limit = min(x for x in (remaining, every) if x is not None) if (remaining or every) else None
            record = await ctx.wait_for_judgment(limit, summary=self.summary())
            if record is not None or every is None or (deadline is not None and ctx.now() >= deadline):
                return record
            sequence += 1

    async def run(self, ctx: StageContext) -> dict[str, Any]:
        options = self.options()
        ctx.set_details("waiting for judgment" + (f" (options: {', '.join(options)})" if options else ""))
        record = await self._wait(ctx)
        if record is None:
            record = JudgmentRecord(
                judgmentStatus=self.timeoutOutcome,
                comment=f"no judgment within {timedelta(milliseconds=self.timeoutMs or 0)}; "
                f"decided {self.timeoutOutcome} by timeout",
                judgedAt=ctx.now(),
                via="timeout",
            )
        ctx.stage.judgment = record
        ctx.notify("judgment.approved" if record.judgmentStatus == "continue" else "judgment.rejected")
        outputs = {
            "judgmentStatus": record.judgmentStatus,
            "judgmentInput": record.input,
            "comment": record.comment,
            "judgedBy": record.judged_by,
            "judgedAt": record.judgedAt.isoformat(),
            "via": record.via,
            "verified": record.verified,
        }
        if record.judgmentStatus == "stop":
            ctx.stage.outputs = outputs
            who = record.judged_by or ("timeout" if record.via == "timeout" else "unknown user")
            raise StageFailed(f"judged stop by {who}" + (f": {record.comment}" if record.comment else ""))
        return outputs
