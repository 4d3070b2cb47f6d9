"""Fixtures of the integration modules only (their helpers live in tests/support/)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from temporalio.client import Client

from core.store import PipelineStore
from tests.support.cli_rig import gateway_process
from tests.support.runner import module_task_queue
from tests.support.worker_policy import TEST_BAKE, TEST_EGRESS
from workers.config import WorkerConfig
from workers.devserver import TemporalDevServer
from workers.runner import pipeline_worker


@pytest.fixture(scope="session")
async def cli_gateway(
    temporal_server: TemporalDevServer,
    client: Client,
    store: PipelineStore,
    directory_worker: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[str]:
    """One `gennaker api` subprocess for the CLI modules (test_cli, test_cli_everyday), with a pipeline
    worker on a queue of its own: the gateway's interpreter takes seconds to start, so it starts once."""
    queue = module_task_queue("cli-gateway")
    log_path = tmp_path_factory.mktemp("cli-gateway") / "gateway.log"
    config = WorkerConfig(egress=TEST_EGRESS, bake=TEST_BAKE)
    async with (
        pipeline_worker(client, store, task_queue=queue, config=config),
        gateway_process(temporal_server.address, queue, store.database_url, log_path) as url,
    ):
        yield url


@pytest.fixture
async def cli_http(cli_gateway: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=cli_gateway, timeout=10) as http:
        yield http
