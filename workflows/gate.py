"""PipelineGate: at most one running execution per pipeline when `limitConcurrent` is set.

One gate workflow per pipeline (id `gate.<application>.<pipeline>`) serialises every request, so two
triggers at once can never both run: executions ask with signal-with-start (`acquire`), wait for the
gate's `gateOpen` signal, and `release` when they end (in a `finally`, so failure and cancel release
too). With `keepWaitingPipelines: false` (Spinnaker's default) a newer request supersedes the one
already waiting, which then ends CANCELED; with `true` they queue in arrival order.
"""

from __future__ import annotations

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.exceptions import FailureError

GATE_WORKFLOW = "PipelineGate"
GATE_OPEN_SIGNAL = "gateOpen"
SUPERSEDED_SIGNAL = "superseded"


def gate_id(application: str, pipeline: str) -> str:
    return f"gate.{application}.{pipeline}"


class GateRequest(BaseModel):
    gateId: str
    executionId: str
    keepWaiting: bool = False


class GateState(BaseModel):
    holder: str | None = None
    waiting: list[GateRequest] = Field(default_factory=list)


@workflow.defn(name=GATE_WORKFLOW)
class PipelineGate:
    @workflow.init
    def __init__(self, state: GateState | None = None) -> None:
        self._state = state or GateState()
        self._outbox: list[tuple[str, str, str]] = []  # (execution id, signal, argument)

    @workflow.run
    async def run(self, state: GateState | None = None) -> None:
        while True:
            await workflow.wait_condition(lambda: bool(self._outbox) or self._idle())
            while self._outbox:
                target, signal, argument = self._outbox.pop(0)
                try:
                    await workflow.get_external_workflow_handle(target).signal(signal, argument)
                except FailureError:
                    # The execution already ended (canceled, terminated): it will never release.
                    self._release(target)
            if self._idle():
                await workflow.wait_condition(workflow.all_handlers_finished)
                if self._idle() and not self._outbox:
                    return  # the next request starts a fresh gate

    def _idle(self) -> bool:
        return self._state.holder is None and not self._state.waiting

    def _grant_next(self) -> None:
        if self._state.holder is None and self._state.waiting:
            nxt = self._state.waiting.pop(0)
            self._state.holder = nxt.executionId
            self._outbox.append((nxt.executionId, GATE_OPEN_SIGNAL, self._state.holder))

    def _release(self, execution_id: str) -> None:
        if self._state.holder == execution_id:
            self._state.holder = None
        self._state.waiting = [w for w in self._state.waiting if w.executionId != execution_id]
        self._grant_next()

    @workflow.signal(name="acquire")
    def acquire(self, request: GateRequest) -> None:
        if request.executionId == self._state.holder or any(
            w.executionId == request.executionId for w in self._state.waiting
        ):
            return  # a retried request
        if not request.keepWaiting:
            for older in self._state.waiting:
                self._outbox.append((older.executionId, SUPERSEDED_SIGNAL, request.executionId))
            self._state.waiting = []
        self._state.waiting.append(request)
        self._grant_next()

    @workflow.signal(name="release")
    def release(self, execution_id: str) -> None:
        self._release(execution_id)

    @workflow.query(name="gate")
    def gate(self) -> GateState:
        return self._state
