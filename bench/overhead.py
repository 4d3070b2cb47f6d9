"""Per-stage overhead of Gennaker against a bare Temporal workflow, and pipeline throughput.

Both sides run in one process against one dev server, interleaved, with the same no-op activity:
- bare: a workflow that calls the activity 10 times in sequence;
- gennaker: a 10-stage chain of `noop` stages (registered like any stage type), each calling it once.
per_stage_ratio = median gennaker time / median bare time. pipelines_per_s = 100 concurrent 5-stage
pipelines / wall time until all have finished.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from temporalio.client import Client

from bench.bare_workflow import BareNoopWorkflow
from bench.noop import noop_activity
from bench.stack import dev_server
from core.store import PipelineStore
from core.temporal import connect
from workers.runner import pipeline_worker
from workflows.model import parse_pipeline
from workflows.search import initial_attributes
from workflows.state import PIPELINE_WORKFLOW, ExecutionResult, PipelineRunInput

QUEUE = "gennaker-bench"


def chain(stages: int, name: str) -> PipelineRunInput:
    spec = parse_pipeline(
        {
            "application": "bench",
            "name": name,
            "stages": [
                {"refId": f"s{i}", "type": "noop", "requisiteStageRefIds": [f"s{i - 1}"] if i else []}
                for i in range(stages)
            ],
        }
    )
    return PipelineRunInput(pipeline=spec)


async def run_pipeline(client: Client, run_input: PipelineRunInput) -> None:
    await client.execute_workflow(
        PIPELINE_WORKFLOW,
        run_input,
        id=f"bench-{uuid.uuid4().hex}",
        task_queue=QUEUE,
        result_type=ExecutionResult,
        search_attributes=initial_attributes("bench", run_input.pipeline.name, "bench"),
    )


async def run_bare(client: Client, steps: int) -> None:
    await client.execute_workflow(BareNoopWorkflow.run, steps, id=f"bare-{uuid.uuid4().hex}", task_queue=QUEUE)


async def measure(client: Client, rounds: int) -> dict[str, float]:
    ten = chain(10, "ten-noops")
    for _ in range(3):  # warm up both paths (imports, sandbox, caches)
        await run_pipeline(client, ten)
        await run_bare(client, 10)
    gennaker, bare = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        await run_pipeline(client, ten)
        gennaker.append(time.perf_counter() - started)
        started = time.perf_counter()
        await run_bare(client, 10)
        bare.append(time.perf_counter() - started)
    five = chain(5, "five-noops")
    started = time.perf_counter()
    await asyncio.gather(*(run_pipeline(client, five) for _ in range(100)))
    elapsed = time.perf_counter() - started
    return {
        "gennaker_10_stage_s": statistics.median(gennaker),
        "bare_10_activity_s": statistics.median(bare),
        "per_stage_ratio": statistics.median(gennaker) / statistics.median(bare),
        "pipelines_per_s": 100 / elapsed,
    }


async def overhead(rounds: int = 15) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="gennaker-bench-") as tmp, dev_server(Path(tmp)) as server:
        store = PipelineStore(f"sqlite:///{tmp}/store.db")
        try:
            client = await connect(server.address)
            worker = pipeline_worker(
                client, store, task_queue=QUEUE, extra_activities=[noop_activity], extra_workflows=[BareNoopWorkflow]
            )
            async with worker:
                return await measure(client, rounds)
        finally:
            store.close()
