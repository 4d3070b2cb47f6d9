"""Load test: open-loop submissions of a small inline pipeline to a dev stack on loopback.

The stack is `gennaker dev` as a subprocess (its own Temporal dev server, worker and gateway, auth on)
on a free port offset with a temporary data dir; the admin token comes from `<data dir>/admin-token`.
Submissions (`POST /executions`, one `evaluateVariables` stage) are scheduled at fixed times —
request i at start + i/rps, whether or not earlier ones have answered (open loop) — for `seconds`,
so at most rps*seconds requests. Then it waits, bounded, until Temporal visibility counts every
accepted execution closed, and stops the stack it started (SIGINT to its own child, SIGKILL to that
child's process group only if it does not stop).

Figures: submitted, errors (anything but 202, timeouts included), p50/p95/p99 submission latency
(send → answer), achieved rps (answers / submission window), max scheduling lag (how late the client
itself sent; large values mean the generator, not the gateway, was the bottleneck), and how long until
all accepted executions had finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client

from bench import shutdown
from bench.processes import track
from stack.dev import BASE_API_PORT, BASE_TEMPORAL_PORT, BASE_UI_PORT
from workers.dev_accounts import BASE_REGISTRY_PORT

STACK_START_TIMEOUT = 90.0
REQUEST_TIMEOUT = 30.0
MAX_REQUESTS = 100_000
CLIENTS = 16
CONNECTIONS_PER_CLIENT = 32


@dataclass
class LoadResult:
    target_rps: float
    seconds: float
    submitted: int = 0
    errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)
    error_samples: dict[str, str] = field(default_factory=dict)  # kind -> the first answer of that kind
    latencies: list[float] = field(default_factory=list)  # seconds, accepted submissions only
    max_lag: float = 0.0
    window: float = 0.0  # first scheduled send → last answer
    all_finished: float | None = None  # first send → every accepted execution closed
    unfinished: int = 0

    def figures(self) -> dict[str, Any]:
        def pct(p: float) -> float:
            if not self.latencies:
                return float("nan")
            if len(self.latencies) == 1:
                return self.latencies[0] * 1000
            return statistics.quantiles(self.latencies, n=100, method="inclusive")[int(p) - 1] * 1000

        accepted = self.submitted - self.errors
        return {
            "target_rps": self.target_rps,
            "seconds": self.seconds,
            "submitted": self.submitted,
            "accepted": accepted,
            "errors": self.errors,
            "error_kinds": self.error_kinds,
            "error_samples": self.error_samples,
            "p50_ms": round(pct(50), 1),
            "p95_ms": round(pct(95), 1),
            "p99_ms": round(pct(99), 1),
            "max_ms": round(max(self.latencies, default=float("nan")) * 1000, 1),
            "achieved_rps": round(self.submitted / self.window, 2) if self.window else 0.0,
            "max_send_lag_ms": round(self.max_lag * 1000, 1),
            "all_finished_s": round(self.all_finished, 2) if self.all_finished is not None else None,
            "unfinished": self.unfinished,
        }


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_offset() -> int:
    """A `--port-offset` (≤ 1000, the CLI's limit) whose Temporal, UI, gateway and registry ports are free."""
    for offset in range(137, 1000, 17):
        ports = (BASE_TEMPORAL_PORT, BASE_UI_PORT, BASE_API_PORT, BASE_REGISTRY_PORT)
        if all(_port_free(base + offset) for base in ports):
            return offset
    raise RuntimeError("no free port offset for a dev stack between 137 and 1000")


@dataclass
class DevStack:
    process: subprocess.Popen[bytes]
    data_dir: Path
    api_url: str
    temporal_address: str
    token: str
    log_path: Path

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)  # `gennaker dev` stops everything it started
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            # It was started in its own session: its process group is ours alone.
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


def spawn_dev(data_dir: Path, offset: int, log_path: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-c", "from stack.cli import main; main()", "dev", "--data-dir", str(data_dir)]
    with log_path.open("wb") as log:
        return track(
            subprocess.Popen(
                [*command, "--port-offset", str(offset)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so a stuck stack can be killed as a whole
                cwd=Path(__file__).resolve().parents[1],
            )
        )


async def start_stack(data_dir: Path) -> DevStack:
    offset = free_offset()
    log_path = data_dir.parent / "dev-stack.log"
    process = await asyncio.to_thread(spawn_dev, data_dir, offset, log_path)
    stack = DevStack(
        process=process,
        data_dir=data_dir,
        api_url=f"http://127.0.0.1:{BASE_API_PORT + offset}",
        temporal_address=f"127.0.0.1:{BASE_TEMPORAL_PORT + offset}",
        token="",
        log_path=log_path,
    )
    try:
        await _until_ready(stack)
    except BaseException:  # not ready in time, or the benchmark was cancelled: the caller never got it
        await asyncio.to_thread(stack.stop)
        raise
    return stack


async def _until_ready(stack: DevStack) -> None:
    deadline = time.monotonic() + STACK_START_TIMEOUT
    async with httpx.AsyncClient(timeout=2) as http:
        while True:
            if stack.process.poll() is not None:
                raise RuntimeError(f"gennaker dev exited with {stack.process.returncode}:\n{_tail(stack.log_path)}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"gennaker dev not ready after {STACK_START_TIMEOUT}s:\n{_tail(stack.log_path)}")
            with contextlib.suppress(httpx.TransportError):
                token_file = stack.data_dir / "admin-token"
                ready = await http.get(f"{stack.api_url}/readyz")
                if ready.status_code == 200 and token_file.exists():
                    stack.token = token_file.read_text().strip()
                    return
            await asyncio.sleep(0.2)


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:] if path.exists() else "(no log)"


def pipeline(name: str) -> dict[str, Any]:
    return {
        "application": "load",
        "name": name,
        "stages": [
            {"refId": "vars", "type": "evaluateVariables", "variables": [{"key": "greeting", "value": "hello"}]}
        ],
    }


async def submit_open_loop(stack: DevStack, rps: float, seconds: float, name: str, result: LoadResult) -> None:
    total = min(int(rps * seconds), MAX_REQUESTS)
    body = {"pipeline": pipeline(name), "parameters": {}}
    headers = {"Authorization": f"Bearer {stack.token}"}
    # Several small pools rather than one big one: httpcore's pool bookkeeping is linear in the
    # requests waiting on it, and one pool with hundreds in flight makes the generator the bottleneck.
    clients = [
        httpx.AsyncClient(
            base_url=stack.api_url,
            headers=headers,
            limits=httpx.Limits(max_connections=CONNECTIONS_PER_CLIENT),
            timeout=REQUEST_TIMEOUT,
        )
        for _ in range(CLIENTS)
    ]
    try:
        loop = asyncio.get_running_loop()
        start = loop.time() + 0.1

        async def one(i: int) -> None:
            scheduled = start + i / rps
            await asyncio.sleep(max(0.0, scheduled - loop.time()))
            sent = loop.time()
            result.max_lag = max(result.max_lag, sent - scheduled)
            try:
                answer = await clients[i % CLIENTS].post("/executions", json=body)
                kind = None if answer.status_code == 202 else f"HTTP {answer.status_code}"
                detail = answer.text[:300]
            except httpx.HTTPError as exc:
                kind, detail = type(exc).__name__, str(exc)[:300]
            if kind is not None:
                result.error_samples.setdefault(kind, detail)
            if kind is None:
                result.latencies.append(loop.time() - sent)
            else:
                result.errors += 1
                result.error_kinds[kind] = result.error_kinds.get(kind, 0) + 1

        # Created as their send time nears, so thousands of sleeping tasks do not sit in the loop.
        tasks: list[asyncio.Task[None]] = []
        for i in range(total):
            lead = start + i / rps - loop.time()
            if lead > 0.5:
                await asyncio.sleep(lead - 0.25)
            tasks.append(asyncio.create_task(one(i)))
        result.submitted = total
        await asyncio.gather(*tasks)
        result.window = loop.time() - start
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))


async def wait_until_finished(stack: DevStack, name: str, accepted: int, limit_s: float) -> int:
    """Poll Temporal visibility until `accepted` executions of pipeline `name` are closed; the rest."""
    client = await Client.connect(stack.temporal_address)
    base = f"WorkflowType = 'PipelineWorkflow' AND GennakerPipeline = '{name}'"
    deadline = time.monotonic() + limit_s
    while True:
        closed = (await client.count_workflows(f"{base} AND ExecutionStatus != 'Running'")).count
        if closed >= accepted or time.monotonic() > deadline:
            return max(0, accepted - closed)
        await asyncio.sleep(0.25)


async def run_load(rps: float = 100, seconds: float = 60, drain_timeout: float = 300) -> LoadResult:
    if rps <= 0 or seconds <= 0:
        raise ValueError("--rps and --seconds must be positive")
    result = LoadResult(target_rps=rps, seconds=seconds)
    name = f"load-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="gennaker-load-") as tmp:
        data_dir = Path(tmp) / "data"
        stack = await start_stack(data_dir)
        try:
            started = time.monotonic()
            await submit_open_loop(stack, rps, seconds, name, result)
            accepted = result.submitted - result.errors
            result.unfinished = await wait_until_finished(stack, name, accepted, drain_timeout)
            if result.unfinished == 0:
                result.all_finished = time.monotonic() - started
        finally:
            await asyncio.to_thread(stack.stop)
    return result


def main(rps: float, seconds: float, drain_timeout: float) -> dict[str, Any]:
    result = shutdown.run(run_load(rps, seconds, drain_timeout))
    return result.figures()
