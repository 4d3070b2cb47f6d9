"""Reporting an account to the directory the way workers do, and waiting until the gateway sees it.

The directory publishes its view in its memo after it has processed a report (core/directory.py),
so a test that reports and then submits at once must wait for that, as people would not notice.
"""

from __future__ import annotations

from temporalio.client import Client

from activities.accounts import ProvidedAccount
from core.directory import read_directory
from tests.support.eventually import assert_eventually
from workers.reporting import report_once


async def report_and_wait(client: Client, worker_id: str, accounts: list[ProvidedAccount], queue: str) -> None:
    await report_once(client, worker_id, accounts, queue)
    names = {account.name for account in accounts}
    await assert_eventually(
        lambda: read_directory(client),
        lambda directory: names <= directory.known(),
        what=f"accounts {sorted(names)} in the directory's memo",
        timeout=20,
    )
