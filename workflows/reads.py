"""ClusterReadWorkflow: the gateway reads clusters through the account workers (it holds no credentials).

A short workflow on the pipeline task queue fans out one `listApplicationClusters` activity per
account, each on that account's task queue, and returns what came back; an account that fails or
does not answer in time is reported in `errors` instead of failing the whole read.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import TemporalError

from workflows.account_calls import failure_reason

with workflow.unsafe.imports_passed_through():
    from activities.kubernetes.client import NON_RETRYABLE
    from activities.kubernetes.clusters import ApplicationClusters, ApplicationQuery, ClusterActivities

CLUSTER_READ_WORKFLOW = "ClusterRead"
READ_TIMEOUT = timedelta(seconds=5)
# An account whose worker is down must not hold the page for long: it is reported in `errors`.
READ_DEADLINE = timedelta(seconds=8)
READ_RETRY = RetryPolicy(
    maximum_attempts=3, initial_interval=timedelta(milliseconds=200), non_retryable_error_types=NON_RETRYABLE
)


class ClusterReadInput(BaseModel):
    application: str
    accounts: dict[str, str] = Field(description="Kubernetes account name -> its task queue")
    namespace: str | None = None


class AccountReadError(BaseModel):
    account: str
    message: str


class ClusterReadResult(BaseModel):
    accounts: list[ApplicationClusters] = Field(default_factory=list)
    errors: list[AccountReadError] = Field(default_factory=list)


@workflow.defn(name=CLUSTER_READ_WORKFLOW)
class ClusterReadWorkflow:
    @workflow.run
    async def run(self, input: ClusterReadInput) -> ClusterReadResult:
        query = ApplicationQuery(
            application=input.application, namespaces=[input.namespace] if input.namespace else None
        )
        names = sorted(input.accounts)
        calls = [
            workflow.execute_activity_method(
                ClusterActivities.list_application_clusters,
                query,
                task_queue=input.accounts[name],
                summary=f"List clusters of {input.application} in {name}",
                start_to_close_timeout=READ_TIMEOUT,
                schedule_to_close_timeout=READ_DEADLINE,
                retry_policy=READ_RETRY,
            )
            for name in names
        ]
        results = await asyncio.gather(*calls, return_exceptions=True)
        out = ClusterReadResult()
        for name, result in zip(names, results, strict=True):
            if isinstance(result, ApplicationClusters):
                out.accounts.append(result)
            elif isinstance(result, TemporalError):
                out.errors.append(AccountReadError(account=name, message=failure_reason(result)))
            elif isinstance(result, BaseException):
                raise result
        return out
