"""Throughput: 100 concurrent 5-stage noop pipelines vs 100 concurrent bare 5-activity workflows.

Each side has a worker in its own process (bench/worker_process.py) on its own task queue, against
one Temporal dev server. Batches alternate (pipelines, then bare, `rounds` times) so both see the
same machine state; each batch's rate is 100 / time from the first start to the last result.
throughput_ratio = median pipeline rate / median bare rate (target ≥ 0.9).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import uuid
from pathlib import Path

from temporalio.client import Client

from bench.bare_workflow import BareNoopWorkflow
from bench.stack import bench_workers, dev_server, noop_pipeline, run_pipeline, timed
from core.temporal import connect

STAGES = 5


async def bare_batch(client: Client, queue: str, concurrent: int) -> None:
    await asyncio.gather(
        *(
            client.execute_workflow(BareNoopWorkflow.run, STAGES, id=f"bare-{uuid.uuid4().hex}", task_queue=queue)
            for _ in range(concurrent)
        )
    )


async def throughput(rounds: int = 3, concurrent: int = 100) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="gennaker-bench-") as tmp, dev_server(Path(tmp)) as server:
        client = await connect(server.address)
        async with bench_workers(server.address, Path(tmp)) as (pipeline, bare):
            five = noop_pipeline(STAGES, "chain", "five-noops")

            async def pipeline_batch(count: int) -> None:
                await asyncio.gather(*(run_pipeline(client, five, pipeline.queue) for _ in range(count)))

            await pipeline_batch(min(concurrent, 10))  # warm up: imports, caches, connections
            await bare_batch(client, bare.queue, min(concurrent, 10))
            gennaker_rates, bare_rates = [], []
            for _ in range(rounds):
                gennaker_rates.append(concurrent / await timed(pipeline_batch(concurrent)))
                bare_rates.append(concurrent / await timed(bare_batch(client, bare.queue, concurrent)))
    return {
        "concurrent": concurrent,
        "pipelines_per_s": statistics.median(gennaker_rates),
        "bare_workflows_per_s": statistics.median(bare_rates),
        "throughput_ratio": statistics.median(gennaker_rates) / statistics.median(bare_rates),
    }
