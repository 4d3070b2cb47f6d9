"""Run one deploy pipeline and count how often its server-group create was attempted (from history):
the refused-create tests assert a refusal is final (one attempt), not retried."""

from __future__ import annotations

from typing import Any

from temporalio.api.enums.v1 import EventType

from tests.support.runner import Runner, pipeline
from workflows.state import ExecutionState


async def deploy(runner: Runner, stage: dict[str, Any]) -> tuple[ExecutionState, int]:
    """The state, and how many times the create activity was attempted."""
    handle = await runner.start(pipeline(stage))
    state = await runner.finish(handle, 60)
    history = await handle.fetch_history()
    creates = {
        e.event_id
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name == "createServerGroup"
    }
    attempts = [
        e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        and e.activity_task_started_event_attributes.scheduled_event_id in creates
    ]
    return state, max(attempts)
