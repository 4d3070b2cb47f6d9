"""StageContext: what a stage's `run` may use from the execution it belongs to.

It keeps stage code free of the DAG runner's bookkeeping: a stage reads the expression context,
reports what it is doing, sleeps in a pause-aware and skippable way, and waits for judgments.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

from temporalio import workflow

from activities.grants import ApplicationGrants
from workflows.account_calls import AccountKind, account_queue, stage_summary
from workflows.artifacts import ArtifactBindings
from workflows.errors import StageFailed
from workflows.expressions import evaluate_value
from workflows.state import ExecutionState, JudgmentRecord, PipelineRunInput, StageState


class ExecutionControls(Protocol):
    """The part of PipelineWorkflow that stages see."""

    @property
    def state(self) -> ExecutionState: ...

    @property
    def paused(self) -> bool: ...

    def expression_context(self) -> dict[str, Any]: ...

    def skip_requested(self, ref_id: str) -> bool: ...

    def judgment_for(self, ref_id: str) -> JudgmentRecord | None: ...

    def take_judgment(self, ref_id: str) -> JudgmentRecord | None: ...

    @property
    def account_queues(self) -> dict[str, str]: ...

    @property
    def run_input(self) -> PipelineRunInput: ...

    def notify(self, event: str, ref_id: str, sequence: int = 0) -> None: ...

    def details_changed(self) -> None: ...

    def lease_granted(self, token: str) -> bool: ...


class StageContext:
    def __init__(self, controls: ExecutionControls, stage: StageState) -> None:
        self._controls = controls
        self.stage = stage

    @property
    def execution(self) -> ExecutionState:
        return self._controls.state

    @property
    def execution_id(self) -> str:
        return self._controls.state.id

    @property
    def artifacts(self) -> ArtifactBindings:
        """What the pipeline has bound so far: the trigger's expected artifacts and upstream stages' products."""
        return self._controls.state.artifacts

    def now(self) -> datetime:
        return workflow.now()

    def expression_context(self) -> dict[str, Any]:
        return self._controls.expression_context()

    def evaluate(self, value: Any, extra: Mapping[str, Any] | None = None) -> Any:
        context = self.expression_context()
        if extra:
            context.update(extra)
        return evaluate_value(value, context)

    def account_queue(self, kind: AccountKind, account: str) -> str:
        """The task queue of the worker holding `account`'s credentials."""
        return account_queue(kind, account, self._controls.account_queues)

    @property
    def run_input(self) -> PipelineRunInput:
        """The execution's input as submitted (submitter, grants, delegations)."""
        return self._controls.run_input

    @property
    def grants(self) -> ApplicationGrants:
        """What this execution's application may touch (recorded at submission; executions
        recorded before tenancy have none and run as they always did)."""
        recorded = self._controls.run_input.grants
        return recorded or ApplicationGrants.open(self.execution.application, rule="recorded before tenancy")

    def grants_for(self, application: str) -> ApplicationGrants:
        """The grants to act for `application` (a stage's `application:`): this execution's own, or
        a delegation recorded at submission; anything else fails the stage naming the rule."""
        run_input = self._controls.run_input
        if application == self.execution.application:
            return self.grants
        if application in run_input.delegations:
            return run_input.delegations[application]
        if run_input.grants is None:
            return ApplicationGrants.open(application, rule="recorded before tenancy")
        who = run_input.submitter.subject if run_input.submitter else "the submitter"
        raise StageFailed(
            f"policy: application {self.execution.application} may not act for application {application} "
            f"(rule: `application:` must be {self.execution.application} or one {who} may EXECUTE, "
            "named at submission)",
            details={"kind": "policy"},
        )

    def lease_granted(self, token: str) -> bool:
        """A cluster lease asked for with `token` was granted (workflows/cluster_lease.py)."""
        return self._controls.lease_granted(token)

    def notify(self, event: str, sequence: int = 0) -> None:
        """Send this stage's notifications for `event` (judgment.waiting, …) in the background."""
        self._controls.notify(event, self.stage.refId, sequence)

    def set_details(self, text: str) -> None:
        self.stage.details = text
        self._controls.details_changed()

    async def sleep(self, duration: timedelta, summary: str) -> bool:
        """Sleep for `duration` of un-paused time. Returns True if someone skipped the wait.

        Time spent paused does not count, as in Spinnaker: a 10 min wait paused for 5 min still waits
        10 min in all once resumed.
        """
        remaining = duration
        ref = self.stage.refId
        while remaining > timedelta(0):
            if self._controls.skip_requested(ref):
                return True
            if self._controls.paused:
                await workflow.wait_condition(lambda: not self._controls.paused or self._controls.skip_requested(ref))
                continue
            started = workflow.now()
            try:
                await workflow.wait_condition(
                    lambda: self._controls.paused or self._controls.skip_requested(ref),
                    timeout=remaining,
                    timeout_summary=stage_summary(summary),
                )
            except TimeoutError:
                return False
            remaining -= workflow.now() - started
        return self._controls.skip_requested(ref)

    async def wait_for_judgment(
        self, limit: timedelta | None, summary: str, consume: bool = False
    ) -> JudgmentRecord | None:
        """Wait until a judgment for this stage arrives; None when `limit` passes first.

        The stage's `judgment_gate()` says which judgments are accepted while it waits here. With
        `consume`, the judgment is taken, so the stage may wait for another one later (each step
        of a rolling deploy); otherwise later judgments of the stage are refused.
        """
        ref = self.stage.refId
        self.stage.waitingForJudgment = True
        self._controls.details_changed()
        try:
            await workflow.wait_condition(
                lambda: self._controls.judgment_for(ref) is not None,
                timeout=limit,
                timeout_summary=stage_summary(summary),
            )
        except TimeoutError:
            return None
        finally:
            self.stage.waitingForJudgment = False
        return self._controls.take_judgment(ref) if consume else self._controls.judgment_for(ref)
