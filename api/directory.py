"""The account directory as the gateway sees it (workers report into it; see workflows/accounts.py)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from workflows.accounts import ACCOUNT_DIRECTORY_ID, STALE_AFTER, AccountView


async def reported_accounts(client: Client) -> list[AccountView]:
    """Every account any worker reported; `stale` when its worker has not reported for a while."""
    try:
        views: list[AccountView] = await client.get_workflow_handle(ACCOUNT_DIRECTORY_ID).query(
            "accounts", result_type=list[AccountView]
        )
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return []  # no worker with accounts has reported yet
        raise
    now = datetime.now(UTC)
    for view in views:
        view.stale = now - view.reportedAt > STALE_AFTER
        if view.stale:
            view.healthy = False
            view.lastError = view.lastError or f"worker {view.workerId} has not reported since {view.reportedAt}"
    return views


# Every submission needs the account-to-queue map; asking the directory workflow each time would
# put a query per POST on a worker that may be busy. A few seconds of staleness only matters for
# accounts whose queue is not the default name, and only right after they first report.
QUEUES_TTL_SECONDS = 5.0
_queues_cache: dict[int, tuple[float, dict[str, str]]] = {}


async def account_queues(client: Client) -> dict[str, str]:
    now = time.monotonic()
    cached = _queues_cache.get(id(client))
    if cached is not None and now - cached[0] < QUEUES_TTL_SECONDS:
        return dict(cached[1])
    queues = {f"{v.kind}/{v.name}": v.taskQueue for v in await reported_accounts(client) if not v.stale}
    _queues_cache[id(client)] = (now, queues)
    return dict(queues)
