"""The gateway answers without workers, and says how a run really ended (issue 11 item 9, issue 15 item 4).

Each test that needs "no worker at all" runs its own Temporal dev server, so nothing the session's
worker does can answer for the missing one.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy

from activities.accounts import AccountHealth
from api.app import create_app
from api.settings import GatewaySettings
from core.directory import read_directory
from core.store import PipelineStore
from core.temporal import connect
from tests.support.builders import judgment, wait
from tests.support.eventually import assert_eventually
from workers.devserver import TemporalDevServer, free_port
from workers.runner import pipeline_worker
from workflows.accounts import ACCOUNT_DIRECTORY_ID, ACCOUNT_DIRECTORY_WORKFLOW, DirectoryState, WorkerReport
from workflows.state import ExecutionResult, ExecutionStatus


@pytest.fixture
async def own_server(tmp_path: Path) -> AsyncIterator[tuple[TemporalDevServer, Client]]:
    server = TemporalDevServer(db_file=tmp_path / "temporal.db", port=free_port(), ui_port=None)
    server.start()
    try:
        yield server, await connect(server.address)
    finally:
        server.stop()


@asynccontextmanager
async def gateway(settings: GatewaySettings, client: Client, store: PipelineStore) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, client=client, store=store)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://gennaker.test") as http,
    ):
        yield http


def health(name: str, kind: str = "kubernetes") -> AccountHealth:
    prefix = "k8s" if kind == "kubernetes" else "registry"
    return AccountHealth(
        name=name,
        kind=kind,
        taskQueue=f"{prefix}-{name}",
        healthy=True,
        reachable=True,
        authenticated=True,
        checkedAt=datetime.now(UTC),
    )


async def report(client: Client, worker_id: str, accounts: list[AccountHealth], queue: str, ago: float = 0) -> None:
    """What workers/reporting.py sends, with a report time of our choosing."""
    sent = WorkerReport(workerId=worker_id, accounts=accounts, reportedAt=datetime.now(UTC) - timedelta(seconds=ago))
    await client.start_workflow(
        ACCOUNT_DIRECTORY_WORKFLOW,
        DirectoryState(),
        id=ACCOUNT_DIRECTORY_ID,
        task_queue=queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        start_signal="report",
        start_signal_args=[sent],
    )


def pipeline(*stages: dict[str, Any]) -> dict[str, Any]:
    return {"application": "avail", "name": f"p-{uuid.uuid4().hex[:8]}", "stages": list(stages)}


async def test_submission_needs_no_worker_and_runs_once_one_starts(
    own_server: tuple[TemporalDevServer, Client], tmp_path: Path
) -> None:
    server, client = own_server
    store = PipelineStore(f"sqlite:///{tmp_path / 'store.db'}")
    queue = "avail-" + uuid.uuid4().hex[:6]
    settings = GatewaySettings(
        task_queue=queue, temporal_address=server.address, database_url=store.database_url, auth_disabled=True
    )
    try:
        # A worker reports its account once, then every worker goes away.
        async with pipeline_worker(client, store, task_queue=queue):
            await report(client, "w1", [health("prod")], queue)
            await assert_eventually(
                lambda: read_directory(client), lambda d: d.known() == {"prod"}, what="memo", timeout=20
            )

        async with gateway(settings, client, store) as http:
            # A misspelt account is refused at once, naming the field and the accounts that exist.
            typo = {"refId": "off", "type": "disableServerGroup", "account": "prdo", "cluster": "shop-web"}
            refused = await http.post("/executions", json={"pipeline": pipeline(typo)})
            assert refused.status_code == 422, refused.text
            error = refused.json()["error"]
            assert error["field"] == "stages[0].account" and "prod" in error["message"], error

            # The accounts page reads without a worker too (the directory's memo, not a query).
            accounts = await http.get("/accounts")
            assert accounts.status_code == 200 and [a["name"] for a in accounts.json()] == ["prod"], accounts.text

            started = await http.post("/executions", json={"pipeline": pipeline(wait("w", 0.1))})
            assert started.status_code == 202, started.text
            execution = started.json()["id"]
            handle = client.get_workflow_handle(execution, result_type=ExecutionResult)
            assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING

            async with pipeline_worker(client, store, task_queue=queue):
                result = await handle.result()
            assert result.status == ExecutionStatus.SUCCEEDED
    finally:
        store.close()


async def test_accounts_are_one_row_each_and_long_gone_workers_are_dropped(
    own_server: tuple[TemporalDevServer, Client], tmp_path: Path
) -> None:
    server, client = own_server
    store = PipelineStore(f"sqlite:///{tmp_path / 'store.db'}")
    queue = "accounts-" + uuid.uuid4().hex[:6]
    settings = GatewaySettings(
        task_queue=queue,
        temporal_address=server.address,
        database_url=store.database_url,
        auth_disabled=True,
        account_forget_after_seconds=600,
    )
    try:
        async with pipeline_worker(client, store, task_queue=queue):
            # The same account from a restarted worker (old id, stale) and its successor: one row, the
            # fresh one. A worker gone for an hour is left out altogether.
            await report(client, "old-pid", [health("prod")], queue, ago=300)
            await report(client, "new-pid", [health("prod"), health("local", "registry")], queue)
            await report(client, "gone", [health("legacy")], queue, ago=3600)
            await assert_eventually(
                lambda: read_directory(client, timedelta(days=1)),
                lambda d: len(d.views) == 3,
                what="the awaited value",
                timeout=20,
            )
            async with gateway(settings, client, store) as http:
                rows = (await http.get("/accounts")).json()
        assert [(r["kind"], r["name"], r["workerId"], r["stale"]) for r in rows] == [
            ("kubernetes", "prod", "new-pid", False),
            ("registry", "local", "new-pid", False),
        ], rows
    finally:
        store.close()


@pytest.fixture(scope="module")
async def api(
    temporal_server: TemporalDevServer, client: Client, store: PipelineStore, task_queue: str, worker: None
) -> AsyncIterator[httpx.AsyncClient]:
    settings = GatewaySettings(
        task_queue=task_queue,
        temporal_address=temporal_server.address,
        database_url=store.database_url,
        auth_disabled=True,
    )
    async with gateway(settings, client, store) as http:
        yield http


async def test_a_run_terminated_in_temporal_reads_terminated_everywhere(api: httpx.AsyncClient, client: Client) -> None:
    spec = pipeline(judgment("approve"))
    execution = (await api.post("/executions", json={"pipeline": spec})).json()["id"]
    await assert_eventually(
        lambda: api.get(f"/executions/{execution}"),
        lambda r: r.json()["stages"][0]["status"] == "RUNNING",
        what="the judgment waiting",
        timeout=20,
    )
    # As `temporal workflow terminate` or the UI's Terminate button would.
    handle = client.get_workflow_handle(execution)
    await handle.terminate(reason="operator pulled the plug")
    assert (await handle.describe()).status == WorkflowExecutionStatus.TERMINATED

    state = (await api.get(f"/executions/{execution}")).json()
    assert state["status"] == "TERMINATED" and state["endTime"], state
    assert "terminated in Temporal" in state["failure"]

    def listed(response: httpx.Response) -> list[dict[str, Any]]:
        return [e for e in response.json()["executions"] if e["id"] == execution]

    rows = await assert_eventually(
        lambda: api.get("/executions", params={"application": "avail", "status": "TERMINATED"}),
        lambda r: len(listed(r)) == 1,
        what="the run in the TERMINATED listing",
        timeout=20,
    )
    assert listed(rows)[0]["status"] == "TERMINATED" and listed(rows)[0]["temporalStatus"] == "TERMINATED"
    running = await api.get("/executions", params={"application": "avail", "status": "RUNNING"})
    assert not listed(running), running.json()
