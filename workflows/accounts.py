"""AccountDirectory: how the gateway learns which accounts exist and whether they work.

Credentials stay on the workers. Each worker checks its own accounts and reports the result with
signal-with-start to one long-lived workflow (id ACCOUNT_DIRECTORY_ID). A report replaces everything
that worker said before; a worker that stops reporting is shown stale by the gateway.

The directory keeps its view in its memo (ACCOUNTS_MEMO), which the gateway reads with `describe()`:
the server answers that from the mutable state without a worker, so submissions and `GET /accounts`
keep working while every worker is down (a query would need one).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, Field
from temporalio import workflow

from workflows.account_model import AccountHealth

ACCOUNT_DIRECTORY_ID = "gennaker-account-directory"
ACCOUNT_DIRECTORY_WORKFLOW = "AccountDirectory"
# Keep the history short: a report every 30 s from a handful of workers would pass 10k events a day.
REPORTS_BEFORE_CONTINUE_AS_NEW = 500
STALE_AFTER = timedelta(minutes=2)  # judged by the gateway's clock, not workflow time
ACCOUNTS_MEMO = "accounts"
MEMO_PATCH = "directory-memo"
# A worker gone this long is forgotten by the directory itself, so its history and memo stay small.
FORGET_AFTER = timedelta(days=7)


class WorkerReport(BaseModel):
    workerId: str
    accounts: list[AccountHealth]
    reportedAt: datetime


class AccountView(AccountHealth):
    workerId: str
    reportedAt: datetime
    stale: bool = Field(default=False, description="Set by the gateway when the report is old")


class DirectoryState(BaseModel):
    reports: dict[str, WorkerReport] = Field(default_factory=dict)


@workflow.defn(name=ACCOUNT_DIRECTORY_WORKFLOW)
class AccountDirectory:
    @workflow.init
    def __init__(self, state: DirectoryState | None = None) -> None:
        self._state = state or DirectoryState()
        self._received = 0

    @workflow.run
    async def run(self, state: DirectoryState | None = None) -> None:
        self._publish()
        await workflow.wait_condition(lambda: self._received >= REPORTS_BEFORE_CONTINUE_AS_NEW)
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(self._state)

    @workflow.signal(name="report")
    def report(self, report: WorkerReport) -> None:
        self._state.reports[report.workerId] = report
        forgotten = [w for w, r in self._state.reports.items() if workflow.now() - r.reportedAt > FORGET_AFTER]
        for worker_id in forgotten:
            del self._state.reports[worker_id]
        self._received += 1
        self._publish()

    def _publish(self) -> None:
        # Directories started before the memo existed replay without it (no memo command there).
        if workflow.patched(MEMO_PATCH):
            workflow.upsert_memo({ACCOUNTS_MEMO: [view.model_dump(mode="json") for view in self.accounts()]})

    @workflow.query(name="accounts")
    def accounts(self) -> list[AccountView]:
        views = [
            AccountView(**account.model_dump(), workerId=report.workerId, reportedAt=report.reportedAt)
            for report in self._state.reports.values()
            for account in report.accounts
        ]
        return sorted(views, key=lambda v: (v.kind, v.name, v.workerId))
