"""Reading executions for DORA from Temporal: visibility finds them, each one's `state` query and
(only when a deploy's account is not in its outputs) its first history event say the rest.

The work is bounded: at most `max_executions` newest executions, `concurrency` reads at a time, and
each read has its own deadline; an execution that cannot be read is counted, not fatal.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.service import RPCError

from core.observability.dora import ExecutionRecord
from workflows.observe.deploys import DEPLOY_STAGE_TYPES, ROLLBACK_STAGE_TYPES
from workflows.pipeline import PipelineWorkflow
from workflows.state import PIPELINE_WORKFLOW, PipelineRunInput

MAX_EXECUTIONS = 1000
READ_TIMEOUT = timedelta(seconds=10)
# Application names are validated by the gateway (NAME_PATTERN); checked again here because the
# value goes into a visibility query string.
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")


@dataclass
class Collected:
    records: list[ExecutionRecord]
    truncated: bool
    unreadable: int


def visibility_query(application: str, since: datetime) -> str:
    if not _SAFE_NAME.match(application):
        raise ValueError(f"application name {application[:40]!r} cannot be used in a visibility query")
    started = since.strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        f"WorkflowType = '{PIPELINE_WORKFLOW}' AND GennakerApplication = '{application}' AND StartTime >= '{started}'"
    )


async def collect_executions(
    client: Client,
    application: str,
    since: datetime,
    *,
    max_executions: int = MAX_EXECUTIONS,
    concurrency: int = 8,
) -> Collected:
    found: list[tuple[str, str]] = []
    truncated = False
    async for execution in client.list_workflows(visibility_query(application, since), page_size=200):
        if len(found) >= max_executions:
            truncated = True
            break
        found.append((execution.id, execution.run_id))
    gate = asyncio.Semaphore(concurrency)

    async def read(workflow_id: str, run_id: str) -> ExecutionRecord | None:
        async with gate:
            try:
                return await asyncio.wait_for(_read_one(client, workflow_id, run_id), READ_TIMEOUT.total_seconds())
            except (RPCError, TimeoutError, ValueError):
                return None

    results = await asyncio.gather(*(read(w, r) for w, r in found))
    records = [r for r in results if r is not None]
    return Collected(records=records, truncated=truncated, unreadable=len(results) - len(records))


async def _read_one(client: Client, workflow_id: str, run_id: str) -> ExecutionRecord:
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    state = await handle.query(PipelineWorkflow.get_state, rpc_timeout=READ_TIMEOUT)
    relevant = DEPLOY_STAGE_TYPES | ROLLBACK_STAGE_TYPES
    if all("account" in s.outputs for s in state.stages if s.type in relevant and s.endTime is not None):
        return ExecutionRecord(state)
    return ExecutionRecord(state, await _stage_accounts(client, handle.fetch_history_events(page_size=1)))


async def _stage_accounts(client: Client, events: AsyncIterator[HistoryEvent]) -> dict[str, str]:
    """refId → account from the execution's input (a failed deploy has no outputs to say it)."""
    async for event in events:
        started = event.workflow_execution_started_event_attributes
        (decoded,) = await client.data_converter.decode(list(started.input.payloads), [PipelineRunInput])
        if not isinstance(decoded, PipelineRunInput):
            return {}
        accounts: dict[str, str] = {}
        for stage in decoded.pipeline.stages:
            account = getattr(stage, "account", None)
            if isinstance(account, str) and "${{" not in account:
                accounts[stage.refId] = account
        return accounts
    return {}
