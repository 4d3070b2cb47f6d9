"""AccountDirectory: how the gateway learns which accounts exist and whether they work.

Credentials stay on the workers. Each worker checks its own accounts and reports the result with
signal-with-start to one long-lived workflow (id ACCOUNT_DIRECTORY_ID); the gateway only queries it.
A report replaces everything that worker said before; a worker that stops reporting is shown stale.
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
        await workflow.wait_condition(lambda: self._received >= REPORTS_BEFORE_CONTINUE_AS_NEW)
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(self._state)

    @workflow.signal(name="report")
    def report(self, report: WorkerReport) -> None:
        self._state.reports[report.workerId] = report
        self._received += 1

    @workflow.query(name="accounts")
    def accounts(self) -> list[AccountView]:
        views = [
            AccountView(**account.model_dump(), workerId=report.workerId, reportedAt=report.reportedAt)
            for report in self._state.reports.values()
            for account in report.accounts
        ]
        return sorted(views, key=lambda v: (v.kind, v.name, v.workerId))
