"""Starting pipelines in tests and reading their state, on the test module's own task queue."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable
from typing import Any

from temporalio.client import Client, WorkflowHandle

from tests.support.eventually import assert_eventually
from workflows.model import parse_pipeline
from workflows.search import initial_attributes
from workflows.state import PIPELINE_WORKFLOW, ExecutionResult, ExecutionState, PipelineRunInput

# The session worker's queue. It runs the account directory (one workflow id for the whole server,
# bound to the queue it was first started on), so every module reports accounts here, while its
# pipelines run on the module's own queue (`module_task_queue`).
DIRECTORY_QUEUE = "gennaker-test-directory"


def module_task_queue(module_name: str) -> str:
    """A queue of one test module: readable in the Web UI, unique per run (a rerun never meets a
    stuck workflow of the previous one)."""
    short = re.sub(r"[^A-Za-z0-9_-]+", "-", module_name.removeprefix("tests."))
    return f"test-{short}-{uuid.uuid4().hex[:6]}"


class Runner:
    """Starts pipelines on a worker's queue (the test module's) and reads their state."""

    def __init__(self, client: Client, task_queue: str) -> None:
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

    @staticmethod
    async def wait_until(
        handle: WorkflowHandle[Any, Any], predicate: Callable[[ExecutionState], Any], timeout: float = 15
    ) -> ExecutionState:
        """The run's state once `predicate` holds (the state query answers from the worker)."""
        return await assert_eventually(
            lambda: Runner.state(handle), predicate, what=f"{handle.id}: the awaited state", timeout=timeout
        )


def pipeline(*stages: dict[str, Any], name: str = "test", **extra: Any) -> dict[str, Any]:
    return {"application": "shop", "name": name, "stages": list(stages), **extra}
