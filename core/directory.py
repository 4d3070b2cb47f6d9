"""The account directory as gateway and launcher see it (workers report into it; see workflows/accounts.py).

Read from the directory workflow's memo with `describe()`, which the Temporal server answers on its
own: starting an execution or listing accounts needs no live worker.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from workflows.accounts import ACCOUNT_DIRECTORY_ID, ACCOUNTS_MEMO, STALE_AFTER, AccountView

# Reports of a worker gone longer than this are left out of listings (the account may be gone too).
DEFAULT_FORGET_AFTER = timedelta(hours=1)


class AccountDirectoryView:
    """What the directory knew when it was read: one row per account, from its freshest report."""

    def __init__(self, views: list[AccountView], exists: bool) -> None:
        self.views = views
        self.exists = exists  # False until a worker with accounts has reported once

    def known(self) -> set[str]:
        return {view.name for view in self.views}

    def queues(self) -> dict[str, str]:
        return {f"{view.kind}/{view.name}": view.taskQueue for view in self.views}


async def read_directory(client: Client, forget_after: timedelta = DEFAULT_FORGET_AFTER) -> AccountDirectoryView:
    try:
        description = await client.get_workflow_handle(ACCOUNT_DIRECTORY_ID).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return AccountDirectoryView([], exists=False)
        raise
    reported: list[AccountView] | None = await description.memo_value(ACCOUNTS_MEMO, None, type_hint=list[AccountView])
    if reported is None:
        return AccountDirectoryView([], exists=False)  # a directory from before the memo; not yet reported
    return AccountDirectoryView(_one_row_per_account(reported, datetime.now(UTC), forget_after), exists=True)


def _one_row_per_account(views: list[AccountView], now: datetime, forget_after: timedelta) -> list[AccountView]:
    """The freshest report of each account; stale when its worker has not reported for a while,
    dropped when it has been gone longer than `forget_after`."""
    freshest: dict[tuple[str, str], AccountView] = {}
    for view in views:
        age = now - view.reportedAt
        if age > forget_after:
            continue
        key = (view.kind, view.name)
        if key not in freshest or view.reportedAt > freshest[key].reportedAt:
            freshest[key] = view
    rows = sorted(freshest.values(), key=lambda v: (v.kind, v.name))
    for view in rows:
        view.stale = now - view.reportedAt > STALE_AFTER
        if view.stale:
            view.healthy = False
            view.lastError = view.lastError or f"worker {view.workerId} has not reported since {view.reportedAt}"
    return rows


async def reported_accounts(client: Client, forget_after: timedelta = DEFAULT_FORGET_AFTER) -> list[AccountView]:
    """Every account a worker reported within `forget_after`, one row each."""
    return (await read_directory(client, forget_after)).views


async def account_queues(client: Client) -> dict[str, str]:
    return (await read_directory(client)).queues()
