"""What a run's history says happened, for "this did not happen" assertions that need no sleep: once
the workflow has nothing in flight (its last workflow task completed and no new one is scheduled), an
event that is not in the history was never going to happen without new input."""

from __future__ import annotations

from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHandle

from tests.support.eventually import assert_eventually


async def settled_history(handle: WorkflowHandle[Any, Any], timeout: float = 15) -> list[HistoryEvent]:
    """The run's events once its last workflow task has completed and no new one is scheduled (the
    commands of a task are written after its WorkflowTaskCompleted event)."""
    history = await assert_eventually(
        handle.fetch_history,
        lambda h: settled(list(h.events)),
        what=f"{handle.id}: a settled history (no workflow task in flight)",
        timeout=timeout,
    )
    return list(history.events)


def settled(events: list[HistoryEvent]) -> bool:
    kinds = [event.event_type for event in events]
    if EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED not in kinds:
        return False
    last = len(kinds) - 1 - kinds[::-1].index(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
    return EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED not in kinds[last:]


def of_type(events: list[HistoryEvent], kind: EventType.ValueType) -> list[HistoryEvent]:
    return [event for event in events if event.event_type == kind]


def pending_timers(events: list[HistoryEvent]) -> list[int]:
    """Event ids of the timers started and neither fired nor canceled."""
    started = {e.event_id for e in of_type(events, EventType.EVENT_TYPE_TIMER_STARTED)}
    ended = {e.timer_fired_event_attributes.started_event_id for e in of_type(events, EventType.EVENT_TYPE_TIMER_FIRED)}
    ended |= {
        e.timer_canceled_event_attributes.started_event_id for e in of_type(events, EventType.EVENT_TYPE_TIMER_CANCELED)
    }
    return sorted(started - ended)
