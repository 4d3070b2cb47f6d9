"""What a running execution offers besides its run: the view stages get (ExecutionControls), and
the query, signals and updates people and the gateway use. PipelineWorkflow inherits these."""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows.model import PipelineSpec
from workflows.notifications import Notifier
from workflows.search import STATUS
from workflows.stages.base import StageConfig
from workflows.state import (
    ControlAck,
    ControlRequest,
    ExecutionState,
    ExecutionStatus,
    JudgmentRecord,
    JudgmentRequest,
    PipelineRunInput,
    SkipWaitRequest,
    StageState,
    StageStatus,
)


class ExecutionHandlers:
    _input: PipelineRunInput
    _spec: PipelineSpec
    _state: ExecutionState
    _by_ref: dict[str, StageState]
    _config_of: dict[str, StageConfig]  # refId -> the stage as declared (what the engine asks it)
    _judgments: dict[str, JudgmentRecord]
    _skips: set[str]
    _tick: int

    _notifier: Notifier
    _stage_configs: dict[str, StageConfig]

    def notify(self, event: str, ref_id: str, sequence: int = 0) -> None:
        """For stages: send `event` (e.g. judgment.waiting) about stage `ref_id`."""
        self._notifier.emit(event, self._stage_configs.get(ref_id), self._by_ref[ref_id], sequence)

    def _publish_status(self) -> None:
        workflow.upsert_search_attributes([STATUS.value_set(self._state.status.value)])

    # ---- what stages see (ExecutionControls) ----------------------------------------------------

    @property
    def state(self) -> ExecutionState:
        return self._state

    @property
    def paused(self) -> bool:
        return self._state.paused

    @property
    def account_queues(self) -> dict[str, str]:
        return self._input.accountQueues

    @property
    def run_input(self) -> PipelineRunInput:
        return self._input

    def skip_requested(self, ref_id: str) -> bool:
        return ref_id in self._skips

    def judgment_for(self, ref_id: str) -> JudgmentRecord | None:
        return self._judgments.get(ref_id)

    def take_judgment(self, ref_id: str) -> JudgmentRecord | None:
        """Consume the judgment of `ref_id`, so the stage can wait for another (a deploy's steps)."""
        return self._judgments.pop(ref_id, None)

    def expression_context(self) -> dict[str, Any]:
        stages: dict[str, Any] = {}
        judgments: dict[str, Any] = {}
        variables: dict[str, Any] = {}
        for s in self._state.stages:
            stages[s.refId] = {"name": s.name, "type": s.type, "status": s.status.value, "outputs": s.outputs}
            if s.judgment is not None:
                choice = s.judgment.input or s.judgment.judgmentStatus
                judgments[s.refId] = choice
                judgments.setdefault(s.name, choice)
            if s.status is StageStatus.SUCCEEDED:
                variables.update(self._config_of[s.refId].exported_variables(s.outputs))
        return {
            "parameters": dict(self._input.parameters),
            "trigger": self._input.trigger.model_dump(mode="json"),
            "execution": {
                "id": self._state.id,
                "application": self._state.application,
                "pipeline": self._state.pipeline,
                "revision": self._state.revision,
                "startTime": self._state.startTime.isoformat(),
            },
            "stages": stages,
            "judgments": judgments,
            "variables": variables,
        }

    # ---- queries, signals, updates -------------------------------------------------------------

    @workflow.query(name="state")
    def get_state(self) -> ExecutionState:
        return self._state

    def _judgment_problem(self, req: JudgmentRequest, verified: bool) -> ApplicationError | None:
        state = self._by_ref.get(req.refId)
        if state is None:
            return ApplicationError(f"no stage with refId {req.refId!r}", type="UnknownStage")
        # As resolved for its run (its expressions evaluated), else as declared.
        gate = self._stage_configs.get(req.refId, self._config_of[req.refId]).judgment_gate()
        if gate is None:
            return ApplicationError(f"stage {req.refId!r} ({state.type}) takes no judgments", type="NotJudgment")
        if not state.waitingForJudgment or req.refId in self._judgments:
            return ApplicationError(
                f"stage {req.refId!r} is not waiting for a judgment (status {state.status.value})", type="NotWaiting"
            )
        approvers = set(gate.approvers)
        if approvers:
            if not verified:
                return ApplicationError(
                    f"stage {req.refId!r} may only be judged by {', '.join(sorted(approvers))}, and a signal's "
                    "name cannot be verified: use the gateway (POST …/judgment, `gennaker approve`)",
                    type="Forbidden",
                )
            judge = {req.user or "", *(f"group:{g}" for g in req.groups)}
            if not req.admin and not judge & approvers:
                return ApplicationError(
                    f"{req.user or 'this caller'} may not judge stage {req.refId!r}; "
                    f"approvers: {', '.join(sorted(approvers))}",
                    type="Forbidden",
                )
        options = gate.options
        if req.input is not None and options and req.input not in options:
            return ApplicationError(
                f"{req.input!r} is not an option of stage {req.refId!r}; options: {', '.join(options)}",
                type="UnknownOption",
            )
        if req.input is None and options and req.judgmentStatus == "continue":
            return ApplicationError(
                f"stage {req.refId!r} needs one of its options to continue: {', '.join(options)}",
                type="OptionRequired",
            )
        return None

    def _record_judgment(self, req: JudgmentRequest, via: str, verified: bool) -> JudgmentRecord:
        record = JudgmentRecord(
            judgmentStatus=req.judgmentStatus,
            input=req.input,
            comment=req.comment,
            user=req.user,
            judgedAt=workflow.now(),
            via=via,
            verified=verified,
        )
        self._judgments[req.refId] = record
        return record

    @workflow.signal(name="judgment")
    def judgment_signal(self, req: JudgmentRequest) -> None:
        """Anyone who reaches Temporal can send this: trust none of its identity fields."""
        claim = req.model_copy(update={"groups": [], "admin": False})
        problem = self._judgment_problem(claim, verified=False)
        if problem is not None:
            workflow.logger.warning("judgment signal ignored: %s", problem.message)
            return
        self._record_judgment(claim, via="signal", verified=False)

    @workflow.update(name="judge")
    def judge(self, req: JudgmentRequest) -> ControlAck:
        """The gateway's judgment: `user`, `groups` and `admin` come from its authentication."""
        record = self._record_judgment(req, via="update", verified=True)
        what = f"{record.judgmentStatus}" + (f" ({record.input})" if record.input else "")
        return self._ack(f"stage {req.refId!r} judged {what} by {record.user or 'unknown'}", judgment=record)

    @judge.validator
    def validate_judge(self, req: JudgmentRequest) -> None:
        problem = self._judgment_problem(req, verified=True)
        if problem is not None:
            raise problem

    def _ack(self, message: str, judgment: JudgmentRecord | None = None) -> ControlAck:
        return ControlAck(status=self._state.status, message=message, judgment=judgment)

    def _skip_problem(self, req: SkipWaitRequest) -> ApplicationError | None:
        state = self._by_ref.get(req.refId)
        if state is None:
            return ApplicationError(f"no stage with refId {req.refId!r}", type="UnknownStage")
        if not self._config_of[req.refId].skippable:
            return ApplicationError(f"stage {req.refId!r} ({state.type}) cannot be skipped", type="NotSkippable")
        if state.status is not StageStatus.RUNNING:
            return ApplicationError(
                f"stage {req.refId!r} is not running (status {state.status.value})", type="NotWaiting"
            )
        return None

    @workflow.signal(name="skipWait")
    def skip_wait_signal(self, req: SkipWaitRequest) -> None:
        if self._skip_problem(req) is None:
            self._skips.add(req.refId)

    @workflow.update(name="skipWait")
    def skip_wait(self, req: SkipWaitRequest) -> ControlAck:
        self._skips.add(req.refId)
        return self._ack(f"stage {req.refId!r} skipped" + (f" by {req.user}" if req.user else ""))

    @skip_wait.validator
    def validate_skip_wait(self, req: SkipWaitRequest) -> None:
        problem = self._skip_problem(req)
        if problem is not None:
            raise problem

    def _require_running(self, action: str) -> None:
        if self._state.status not in (ExecutionStatus.RUNNING, ExecutionStatus.PAUSED):
            raise ApplicationError(f"cannot {action}: execution is {self._state.status.value}", type="NotRunning")

    def _set_paused(self, paused: bool) -> None:
        if self._state.paused == paused or self._state.endTime is not None:
            return
        self._state.paused = paused
        self._state.status = ExecutionStatus.PAUSED if paused else ExecutionStatus.RUNNING
        self._publish_status()
        self._tick += 1

    @workflow.signal(name="pause")
    def pause_signal(self, req: ControlRequest) -> None:
        self._set_paused(True)

    @workflow.signal(name="resume")
    def resume_signal(self, req: ControlRequest) -> None:
        self._set_paused(False)

    @workflow.update(name="pause")
    def pause(self, req: ControlRequest) -> ControlAck:
        self._set_paused(True)
        return self._ack("paused: no new stages start and waits are frozen")

    @pause.validator
    def validate_pause(self, req: ControlRequest) -> None:
        self._require_running("pause")

    @workflow.update(name="resume")
    def resume(self, req: ControlRequest) -> ControlAck:
        self._set_paused(False)
        return self._ack("resumed")

    @resume.validator
    def validate_resume(self, req: ControlRequest) -> None:
        self._require_running("resume")

    @workflow.update(name="cancel")
    def record_cancel(self, req: ControlRequest) -> ControlAck:
        """Records who canceled and why; the caller then requests Temporal cancellation."""
        self._state.canceledBy = req.user
        self._state.cancelReason = req.reason
        return self._ack("cancel recorded; request cancellation of the workflow to stop it")

    @record_cancel.validator
    def validate_cancel(self, req: ControlRequest) -> None:
        self._require_running("cancel")
