"""The worker side of the account directory: check each account, report with signal-with-start."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError

from activities.accounts import AccountHealth, ProvidedAccount
from workers.telemetry import record_account_health
from workflows.accounts import ACCOUNT_DIRECTORY_ID, ACCOUNT_DIRECTORY_WORKFLOW, DirectoryState, WorkerReport

log = logging.getLogger("gennaker.accounts")


def check(account: ProvidedAccount) -> AccountHealth:
    try:
        return account.check_health()
    except Exception as exc:  # a health check reports failures; it never takes the worker down
        return AccountHealth(
            name=account.name,
            kind=account.kind,
            taskQueue=account.queue,
            healthy=False,
            reachable=False,
            authenticated=False,
            lastError=f"health check failed: {exc}",
            checkedAt=datetime.now(UTC),
        )


async def report_once(client: Client, worker_id: str, accounts: list[ProvidedAccount], directory_queue: str) -> None:
    health = [await asyncio.to_thread(check, account) for account in accounts]
    record_account_health(health)
    for item in health:
        if not item.healthy:
            log.warning("account %s (%s): %s", item.name, item.kind, item.lastError)
    await client.start_workflow(
        ACCOUNT_DIRECTORY_WORKFLOW,
        DirectoryState(),
        id=ACCOUNT_DIRECTORY_ID,
        task_queue=directory_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        start_signal="report",
        start_signal_args=[WorkerReport(workerId=worker_id, accounts=health, reportedAt=datetime.now(UTC))],
        static_summary="Gennaker account directory (health reported by workers)",
    )


async def report_forever(
    client: Client,
    worker_id: str,
    accounts: list[ProvidedAccount],
    directory_queue: str,
    interval: float,
    stop: asyncio.Event,
) -> None:
    while not stop.is_set():
        try:
            await report_once(client, worker_id, accounts, directory_queue)
        except RPCError as exc:
            log.warning("could not report account health: %s", exc.message)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
