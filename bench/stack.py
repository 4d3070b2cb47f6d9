"""What the benchmarks share: a Temporal dev server of their own, benchmark workers in their own
processes, noop pipelines, percentiles and RSS."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle

import bench.noop  # noqa: F401  (registers the `noop` stage type the pipelines below use)
from bench.processes import track
from workers.devserver import TemporalDevServer, free_port
from workflows.model import parse_pipeline
from workflows.search import initial_attributes
from workflows.state import PIPELINE_WORKFLOW, ExecutionResult, PipelineRunInput

REPO = Path(__file__).resolve().parents[1]
GENNAKER = [sys.executable, "-c", "from stack.cli import main; main()"]
READY_TIMEOUT = 60.0


def spawn_gennaker(args: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """`gennaker <args>` (the CLI as installed) in its own session, output to `log`."""
    with log.open("wb") as out:
        return track(subprocess.Popen(
            [*GENNAKER, *args], stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env={**os.environ, **(env or {})},
            start_new_session=True,  # its own process group: ours alone to kill if it hangs
        ))  # fmt: skip


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (inclusive method); NaN for no values."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return float(values[0])
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1]


def rss_mb(pid: int) -> float:
    """Resident set size of a process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


@contextlib.contextmanager
def dev_server(directory: Path) -> Iterator[TemporalDevServer]:
    """A Temporal dev server of the benchmark's own (its own session, tracked), stopped on the way out."""
    server = TemporalDevServer(db_file=directory / "temporal.db", port=free_port(), ui_port=None)
    track(server.launch())
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def _spawn_worker(address: str, queue: str, kind: str, directory: Path) -> subprocess.Popen[str]:
    store = f"sqlite:///{directory / f'store-{queue}.db'}"
    command = [sys.executable, "-m", "bench.worker_process", "--address", address, "--queue", queue]
    with (directory / f"worker-{queue}.log").open("w") as log:
        return track(
            subprocess.Popen(
                [*command, "--kind", kind, "--store", store],
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                cwd=REPO,
                start_new_session=True,  # stopped by us, by PID, whichever way the benchmark ends
            )
        )


@dataclass
class BenchWorker:
    """A `python -m bench.worker_process` child; ours alone to stop."""

    process: subprocess.Popen[str]
    queue: str
    directory: Path

    @classmethod
    async def start(cls, address: str, queue: str, kind: str, directory: Path) -> BenchWorker:
        process = await asyncio.to_thread(_spawn_worker, address, queue, kind, directory)
        worker = cls(process, queue, directory)
        assert process.stdout is not None  # stdout=PIPE
        try:
            line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), READY_TIMEOUT)
        except BaseException:  # timed out, or the benchmark was cancelled: nobody else holds this worker yet
            worker.stop()
            raise
        if line.strip() != "ready":
            worker.stop()
            raise RuntimeError(f"bench worker {kind} did not start; see {directory}/worker-{queue}.log")
        return worker

    def log_text(self) -> str:
        log = self.directory / f"worker-{self.queue}.log"
        return log.read_text(errors="replace") if log.exists() else ""

    @property
    def rss_mb(self) -> float:
        return rss_mb(self.process.pid)

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


@contextlib.asynccontextmanager
async def bench_workers(address: str, directory: Path) -> AsyncIterator[tuple[BenchWorker, BenchWorker]]:
    """A pipeline worker and a bare worker, each in its own process on its own task queue."""
    suffix = uuid.uuid4().hex[:6]
    pipeline = await BenchWorker.start(address, f"bench-pipeline-{suffix}", "pipeline", directory)
    try:
        bare = await BenchWorker.start(address, f"bench-bare-{suffix}", "bare", directory)
        try:
            yield pipeline, bare
        finally:
            await asyncio.to_thread(bare.stop)
    finally:
        await asyncio.to_thread(pipeline.stop)


def noop_pipeline(stages: int, shape: str, name: str) -> PipelineRunInput:
    """`chain`: each stage waits for the one before; `fanout`: one root stage, then all the others at once."""
    specs = []
    for i in range(stages):
        before = f"s{i - 1}" if shape == "chain" else "s0"
        parents = [before] if i else []
        specs.append({"refId": f"s{i}", "type": "noop", "requisiteStageRefIds": parents})
    return PipelineRunInput(pipeline=parse_pipeline({"application": "bench", "name": name, "stages": specs}))


async def start_pipeline(
    client: Client, run_input: PipelineRunInput, queue: str, limit: timedelta | None = None
) -> WorkflowHandle[Any, Any]:
    return await client.start_workflow(
        PIPELINE_WORKFLOW,
        run_input,
        id=f"bench-{uuid.uuid4().hex}",
        task_queue=queue,
        result_type=ExecutionResult,
        search_attributes=initial_attributes("bench", run_input.pipeline.name, "bench"),
        execution_timeout=limit,
    )


async def run_pipeline(client: Client, run_input: PipelineRunInput, queue: str) -> ExecutionResult:
    result: ExecutionResult = await (await start_pipeline(client, run_input, queue)).result()
    return result


async def timed(awaitable: Any) -> float:
    started = time.perf_counter()
    await awaitable
    return time.perf_counter() - started


def _flat(figures: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in figures.items():
        if isinstance(value, dict):
            rows += _flat(value, f"{prefix}{key}.")
        else:
            rows.append((f"{prefix}{key}", value))
    return rows


def _rounded(value: Any, places: int) -> Any:
    if isinstance(value, dict):
        return {k: _rounded(v, places) for k, v in value.items()}
    if isinstance(value, float):
        return None if value != value else round(value, places)  # NaN is not JSON
    return value


def emit(figures: dict[str, Any], places: int = 3) -> None:
    """Every figure on its own line (nested ones as a.b.c), then all of them as the JSON last line."""
    import json

    for key, value in _flat(figures):
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        print(f"{key:>40}: {shown}")
    print(json.dumps(_rounded(figures, places)), flush=True)
