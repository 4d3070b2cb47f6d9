"""The DAG runner's decisions, as a plain class: which stages may start, what a stage failure does
to the pipeline (Spinnaker's flags), and how the execution ends. No Temporal in here, so the rules
are unit-tested without a server (tests/unit/test_dag.py); PipelineWorkflow carries them out.

- A stage starts when every parent is SUCCEEDED, FAILED_CONTINUE or SKIPPED; siblings run at once.
- A failing stage is FAILED_CONTINUE with `continuePipeline`; TERMINAL and fails the pipeline at
  the end with `completeOtherBranchesThenFail`; TERMINAL and fails the pipeline at once (the other
  running stages are canceled) with `failPipeline` (the default); STOPPED when both are false (its
  branch halts, the pipeline may still succeed).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from workflows.stages.base import StageConfig, StageFailed
from workflows.state import PARENT_DONE_OK, ExecutionStatus, StageState, StageStatus

# A stage's outputs are in every state query and in the expression context of every later stage;
# 500 stages at this size still fit a query answer well under Temporal's 4 MB gRPC limit... only if
# most are small, so outputs are for references (names, digests, URLs), never logs or manifests.
MAX_STAGE_OUTPUT_BYTES = 65_536


def check_output_size(outputs: Mapping[str, Any]) -> None:
    """Fail the stage (naming the limit) when its outputs are over MAX_STAGE_OUTPUT_BYTES of JSON."""
    size = len(json.dumps(outputs, separators=(",", ":"), default=str))
    if size > MAX_STAGE_OUTPUT_BYTES:
        raise StageFailed(
            f"the stage's outputs are {size:,} bytes of JSON; the limit is {MAX_STAGE_OUTPUT_BYTES:,} "
            "(MAX_STAGE_OUTPUT_BYTES): keep references in outputs, not contents",
            details={"kind": "limit"},
        )


@dataclass(frozen=True)
class FailureDecision:
    status: StageStatus
    cancel_others: bool
    message: str = ""


class DagScheduler:
    def __init__(self, stages: Sequence[StageConfig], states: Mapping[str, StageState]) -> None:
        self._stages = stages
        self._states = states
        self.halted = False  # a failPipeline failure: start nothing more, cancel what runs
        self.fail_at_end = False  # a completeOtherBranchesThenFail failure
        self.failure: str | None = None  # the first failure that fails the pipeline, naming its stage

    def ready(self, started: Collection[str]) -> list[StageConfig]:
        """Stages not yet started whose parents all finished in a way that lets children run."""
        if self.halted:
            return []
        return [
            stage
            for stage in self._stages
            if self._states[stage.refId].status is StageStatus.NOT_STARTED
            and stage.refId not in started
            and all(self._states[p].status in PARENT_DONE_OK for p in stage.requisiteStageRefIds)
        ]

    def finished(self, running: bool, started: Collection[str]) -> bool:
        """Nothing runs and nothing more can start."""
        return not running and (self.halted or not self.ready(started))

    def stage_failed(self, stage: StageConfig, reason: str) -> FailureDecision:
        """Apply the stage's failure flags; the caller sets the status and cancels if told to."""
        message = f"stage {stage.display_name!r} ({stage.refId}, type {stage.type}) failed: {reason}"
        if stage.continuePipeline:
            return FailureDecision(StageStatus.FAILED_CONTINUE, cancel_others=False, message=message)
        if stage.completeOtherBranchesThenFail:
            self.fail_at_end = True
            self.failure = self.failure or message
            return FailureDecision(StageStatus.TERMINAL, cancel_others=False, message=message)
        if stage.failPipeline:
            self.halted = True
            self.failure = self.failure or message
            return FailureDecision(StageStatus.TERMINAL, cancel_others=True, message=message)
        return FailureDecision(StageStatus.STOPPED, cancel_others=False, message=message)

    @property
    def failed(self) -> bool:
        return self.halted or self.fail_at_end

    def final_status(self) -> ExecutionStatus:
        return ExecutionStatus.TERMINAL if self.failed else ExecutionStatus.SUCCEEDED
