"""Scale: cost per stage as pipelines grow, and what many executions waiting on judgments cost.

Each side has a worker in its own process (bench/worker_process.py), one Temporal dev server.
- ms_per_stage: wall time of one noop pipeline / its stage count, for chains (each stage after the
  previous) and fan-outs (one root, then all the others at once) of 10, 100 and 500 stages (500 is
  MAX_STAGES: no larger pipeline is accepted); the bare counterpart runs the same activity in the
  same shape (BareNoopWorkflow, BareFanOutWorkflow), interleaved. Flat = the per-stage cost does not grow with size.
- waiting: `waiting` pipelines [manualJudgment → noop] and as many bare workflows waiting on an
  update, all started; each worker's RSS idle and with everything waiting (`waiting_rss_mb`,
  `bare_waiting_rss_mb`). Then `judged` of each are judged through the Update `judge` (what the
  gateway uses), alternating, open loop at `judge_rps` each; judge → next stage is the next stage's
  start time (workflow time of the task that took the judgment) minus the send time; for the bare
  workflow, the time it resumed. p50/p99 of both.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.service import RPCError

from bench.bare_workflow import BareFanOutWorkflow, BareJudgmentWorkflow, BareNoopWorkflow, resumed_at
from bench.stack import BenchWorker, bench_workers, dev_server, noop_pipeline, percentile, run_pipeline, start_pipeline
from core.temporal import connect
from workflows.model import parse_pipeline
from workflows.state import ExecutionState, JudgmentRequest, PipelineRunInput

SIZES = (10, 100, 500)  # 500: the largest pipeline parse_pipeline accepts (MAX_STAGES)
SHAPES = ("chain", "fanout")
START_CONCURRENCY = 50
JUDGED_RUN_LIMIT = 120.0


async def bounded_run(handle: WorkflowHandle[Any, Any], limit: float) -> float | None:
    """Seconds until `handle` finished, or None (and the workflow terminated) after `limit`."""
    started = time.perf_counter()
    try:
        await asyncio.wait_for(handle.result(), limit)
    except (TimeoutError, WorkflowFailureError):
        with contextlib.suppress(RPCError):
            await handle.terminate(reason=f"benchmark run limit of {limit:g} s")
        return None
    return time.perf_counter() - started


async def per_stage(
    client: Client, pipeline: BenchWorker, bare: BenchWorker, sizes: tuple[int, ...], rounds: int, limit: float
) -> dict[str, Any]:
    gennaker: dict[str, dict[str, float | None]] = {shape: {} for shape in SHAPES}
    baseline: dict[str, dict[str, float | None]] = {shape: {} for shape in SHAPES}
    ratio: dict[str, dict[str, float | None]] = {shape: {} for shape in SHAPES}
    failures: list[str] = []
    for size in sizes:
        for shape in SHAPES:
            run_input = noop_pipeline(size, shape, f"{shape}-{size}")
            bare_run = BareNoopWorkflow.run if shape == "chain" else BareFanOutWorkflow.run
            g_times, b_times = [], []
            for _ in range(rounds if size < 500 else 1):  # a 500-stage run is long enough alone
                handle = await start_pipeline(client, run_input, pipeline.queue, timedelta(seconds=limit))
                g_times.append(await bounded_run(handle, limit))
                bare_handle = await client.start_workflow(
                    bare_run,
                    size,
                    id=f"bare-{uuid.uuid4().hex}",
                    task_queue=bare.queue,
                    execution_timeout=timedelta(seconds=limit),
                )
                b_times.append(await bounded_run(bare_handle, limit))
            for side, times, worker, figures in (
                ("pipeline", g_times, pipeline, gennaker),
                ("bare", b_times, bare, baseline),
            ):
                done = [t for t in times if t is not None]
                figures[shape][str(size)] = statistics.median(done) / size * 1000 if len(done) == len(times) else None
                if len(done) < len(times):
                    failures.append(f"{shape} of {size} ({side}): {why_unfinished(worker, limit)}")
            g, b = gennaker[shape][str(size)], baseline[shape][str(size)]
            ratio[shape][str(size)] = g / b if g is not None and b is not None else None
    return {"ms_per_stage": gennaker, "bare_ms_per_stage": baseline, "per_stage_ratio": ratio, "failures": failures}


def why_unfinished(worker: BenchWorker, limit: float) -> str:
    reason = f"not finished within {limit:g} s"
    if "TMPRL1101" in worker.log_text():
        reason += (
            "; the worker logged TMPRL1101 (a workflow activation ran over the SDK's 2 s deadlock limit, "
            "so its workflow task fails and is retried)"
        )
    return reason


def judgment_pipeline() -> PipelineRunInput:
    return PipelineRunInput(
        pipeline=parse_pipeline(
            {
                "application": "bench",
                "name": "waiting",
                "stages": [
                    {"refId": "approve", "type": "manualJudgment"},
                    {"refId": "next", "type": "noop", "requisiteStageRefIds": ["approve"]},
                ],
            }
        )
    )


async def eventually(check: Callable[[], Awaitable[bool]], limit_s: float) -> None:
    """Until `check()` holds: a workflow answers queries only once its first task has run."""
    deadline = time.monotonic() + limit_s
    while True:
        try:
            if await check():
                return
        except RPCError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"not waiting after {limit_s}s")
        await asyncio.sleep(0.2)


async def bounded(count: int, make: Callable[[int], Awaitable[Any]]) -> list[Any]:
    gate = asyncio.Semaphore(START_CONCURRENCY)

    async def one(i: int) -> Any:
        async with gate:
            return await make(i)

    return await asyncio.gather(*(one(i) for i in range(count)))


async def waiting(
    client: Client, pipeline: BenchWorker, bare: BenchWorker, count: int, judged: int, judge_rps: float
) -> dict[str, float]:
    idle_pipeline, idle_bare = pipeline.rss_mb, bare.rss_mb
    run_input = judgment_pipeline()

    async def start_waiting_pipeline(_: int) -> WorkflowHandle[Any, Any]:
        handle = await start_pipeline(client, run_input, pipeline.queue)

        async def is_waiting() -> bool:
            state: ExecutionState = await handle.query("state", result_type=ExecutionState)
            stage = state.stage("approve")
            return stage is not None and stage.waitingForJudgment

        await eventually(is_waiting, 300)
        return handle

    async def start_waiting_bare(_: int) -> WorkflowHandle[Any, Any]:
        handle = await client.start_workflow(
            BareJudgmentWorkflow.run, id=f"bare-wait-{uuid.uuid4().hex}", task_queue=bare.queue
        )

        async def is_waiting() -> bool:
            return bool(await handle.query(BareJudgmentWorkflow.waiting))

        await eventually(is_waiting, 300)
        return handle

    began = time.perf_counter()
    pipelines = await bounded(count, start_waiting_pipeline)
    pipelines_waiting_s = time.perf_counter() - began
    began = time.perf_counter()
    bares = await bounded(count, start_waiting_bare)
    bare_waiting_s = time.perf_counter() - began
    loaded_pipeline, loaded_bare = pipeline.rss_mb, bare.rss_mb

    async def judge_pipeline(handle: WorkflowHandle[Any, Any]) -> float:
        sent = time.time()
        await handle.execute_update("judge", JudgmentRequest(refId="approve", user="bench"))
        await asyncio.wait_for(handle.result(), JUDGED_RUN_LIMIT)
        state: ExecutionState = await handle.query("state", result_type=ExecutionState)
        following = state.stage("next")
        assert following is not None and following.startTime is not None, "the next stage never started"
        return following.startTime.timestamp() - sent

    async def judge_bare(handle: WorkflowHandle[Any, Any]) -> float:
        sent = time.time()
        await handle.execute_update(BareJudgmentWorkflow.judge, "continue")
        return resumed_at(await asyncio.wait_for(handle.result(), JUDGED_RUN_LIMIT)).timestamp() - sent

    loop = asyncio.get_running_loop()
    start = loop.time() + 0.1
    judged = min(judged, count)

    async def at(when: float, work: Awaitable[float]) -> float:
        await asyncio.sleep(max(0.0, when - loop.time()))
        return await work

    pipeline_tasks, bare_tasks = [], []
    for i in range(judged):  # alternating, each side at judge_rps
        pipeline_tasks.append(asyncio.create_task(at(start + i / judge_rps, judge_pipeline(pipelines[i]))))
        bare_tasks.append(asyncio.create_task(at(start + (i + 0.5) / judge_rps, judge_bare(bares[i]))))
    pipeline_results = await asyncio.gather(*pipeline_tasks, return_exceptions=True)
    bare_results = await asyncio.gather(*bare_tasks, return_exceptions=True)
    pipeline_latency = [s * 1000 for s in pipeline_results if isinstance(s, float)]
    bare_latency = [s * 1000 for s in bare_results if isinstance(s, float)]
    return {
        "waiting": count,
        "waiting_rss_mb": loaded_pipeline,
        "waiting_idle_rss_mb": idle_pipeline,
        "bare_waiting_rss_mb": loaded_bare,
        "bare_waiting_idle_rss_mb": idle_bare,
        "waiting_kb_per_execution": (loaded_pipeline - idle_pipeline) * 1024 / count,
        "bare_waiting_kb_per_execution": (loaded_bare - idle_bare) * 1024 / count,
        "all_waiting_s": pipelines_waiting_s,
        "bare_all_waiting_s": bare_waiting_s,
        "judged": judged,
        "judge_resume_p50_ms": percentile(pipeline_latency, 50),
        "judge_resume_p99_ms": percentile(pipeline_latency, 99),
        "bare_judge_resume_p50_ms": percentile(bare_latency, 50),
        "bare_judge_resume_p99_ms": percentile(bare_latency, 99),
        "judge_resume_p99_ratio": percentile(pipeline_latency, 99) / percentile(bare_latency, 99),
        "judge_failures": len(pipeline_results) - len(pipeline_latency),
        "bare_judge_failures": len(bare_results) - len(bare_latency),
    }


async def scale(
    sizes: tuple[int, ...] = SIZES,
    rounds: int = 3,
    waiting_count: int = 1000,
    judged: int = 200,
    judge_rps: float = 20,
    run_limit: float = 300,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="gennaker-bench-") as tmp, dev_server(Path(tmp)) as server:
        client = await connect(server.address)
        async with bench_workers(server.address, Path(tmp)) as (pipeline, bare):
            await warm_up(client, pipeline, bare)
            figures: dict[str, Any] = await per_stage(client, pipeline, bare, sizes, rounds, run_limit)
        # Fresh workers, so the memory the big pipelines left in the heap does not hide what waiting costs.
        async with bench_workers(server.address, Path(tmp)) as (pipeline, bare):
            await warm_up(client, pipeline, bare)
            figures.update(await waiting(client, pipeline, bare, waiting_count, judged, judge_rps))
    return figures


async def warm_up(client: Client, pipeline: BenchWorker, bare: BenchWorker) -> None:
    for _ in range(2):
        await run_pipeline(client, noop_pipeline(5, "chain", "warm-up"), pipeline.queue)
        await client.execute_workflow(BareNoopWorkflow.run, 5, id=f"bare-{uuid.uuid4().hex}", task_queue=bare.queue)
