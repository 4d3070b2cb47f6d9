"""Sending an execution's notifications (pipeline, stage and judgment events) without letting a
failing channel touch the pipeline: each send is a background activity whose failure is recorded in
the execution state (`notificationFailures`), and every send finishes before the workflow ends."""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ActivityError

from workflows.account_calls import failure_reason
from workflows.model import PipelineSpec
from workflows.notification_model import NOTIFY_RETRY, NOTIFY_TIMEOUT, NotificationRequest, notifications_for
from workflows.stages.base import StageConfig
from workflows.state import ExecutionState, NotificationFailure, StageState

with workflow.unsafe.imports_passed_through():
    from activities.notify.channels import NotifyActivities


class Notifier:
    def __init__(self, spec: PipelineSpec, state: ExecutionState) -> None:
        self._spec = spec
        self._state = state
        self._tasks: list[asyncio.Task[None]] = []
        self._any = bool(spec.notifications) or any(s.sendNotifications and s.notifications for s in spec.stages)

    def emit(
        self, event: str, stage: StageConfig | None = None, stage_state: StageState | None = None, sequence: int = 0
    ) -> None:
        if not self._any:
            return
        gate = stage.judgment_gate() if stage is not None else None
        requests = notifications_for(
            event,
            self._spec.notifications,
            stage.notifications if stage is not None and stage.sendNotifications else [],
            execution=self._state,
            stage=stage_state,
            instructions=gate.instructions if gate else None,
            options=gate.options if gate else (),
            sequence=sequence,
        )
        # Executions recorded before notifications existed must replay without these activities.
        if requests and workflow.patched("notifications"):
            self._tasks += [asyncio.create_task(self._send(request)) for request in requests]

    async def _send(self, request: NotificationRequest) -> None:
        try:
            await workflow.execute_activity_method(
                NotifyActivities.send_notification,
                request,
                start_to_close_timeout=NOTIFY_TIMEOUT,
                retry_policy=NOTIFY_RETRY,
                summary=request.summary(),
            )
        except ActivityError as exc:
            failure = NotificationFailure(
                event=request.event,
                channel=request.channel,
                address=request.address,
                stage=request.stage,
                reason=failure_reason(exc),
                at=workflow.now(),
            )
            self._state.notificationFailures.append(failure)
            workflow.logger.warning("notification %s to %s failed: %s", request.event, request.address, failure.reason)

    async def drain(self) -> None:
        pending, self._tasks = self._tasks, []
        await asyncio.gather(*pending, return_exceptions=True)
