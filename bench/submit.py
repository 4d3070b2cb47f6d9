"""Submission latency: the gateway's `POST /executions` vs a bare `client.start_workflow` of the same
workflow, on the same stack, open loop, interleaved.

Stacks, each started here on loopback and stopped at the end:
- `separate` (as deployed): a Temporal dev server, `gennaker api` and `gennaker worker` as separate
  processes. The worker has one registry account (at a closed port: reported unhealthy, which is
  fine) so the account directory exists as it does in any real deployment. Measured with the worker
  up, then again after the worker was stopped (SIGTERM): submissions should not need a worker, and
  any that fail are counted in `errors` by kind.
- `embedded`: `gennaker dev` (gateway, worker and kubesim in one Python process).

Within a phase the two sides take turns in `slot`-second slots (gateway, bare, gateway, …), each
sending open loop at `rps` (request i at its slot start + i/rps, whether or not earlier ones have
answered) until each has sent rps * seconds. Latency is send → answer of accepted submissions;
p50_ratio / p99_ratio = gateway / bare. Both sides start the same one-stage pipeline workflow on the
stack's task queue with the same encryption; the bare side skips HTTP, auth, validation and the
gateway's own Temporal calls, which is exactly what the ratio is about.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml
from temporalio.client import Client

from bench.load import pipeline, start_stack
from bench.processes import descendants, stop_leftovers
from bench.stack import GENNAKER, REPO, dev_server, percentile, spawn_gennaker, stop_process
from core.codec import CodecKeys
from core.temporal import connect
from workers.devserver import free_port
from workflows.model import parse_pipeline
from workflows.search import initial_attributes
from workflows.state import PIPELINE_WORKFLOW, ExecutionResult, PipelineRunInput, TriggerInfo

REQUEST_TIMEOUT = 10.0
GENERATOR_LAG_LIMIT = 0.1
START_TIMEOUT = 90.0
CLIENTS = 16
CONNECTIONS_PER_CLIENT = 32
ADMIN = "bench-admin"
TASK_QUEUE = "gennaker"


@dataclass
class Side:
    latencies: list[float] = field(default_factory=list)  # ms, accepted only
    errors: dict[str, int] = field(default_factory=dict)
    samples: dict[str, str] = field(default_factory=dict)
    sent: int = 0
    max_lag: float = 0.0

    def record(self, started: float, kind: str | None, detail: str, now: float) -> None:
        if kind is None:
            self.latencies.append((now - started) * 1000)
        else:
            self.errors[kind] = self.errors.get(kind, 0) + 1
            self.samples.setdefault(kind, detail[:300])


@dataclass
class Target:
    """One running stack: how to submit through its gateway, and its Temporal for the bare side."""

    api_url: str
    token: str
    temporal: Client
    stop_worker: Callable[[], None] | None = None
    gateway_pid: int | None = None  # embedded: the whole `gennaker dev` process (worker and kubesim too)
    temporal_pids: list[int] = field(default_factory=list)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far (Linux /proc; 0 for one that is gone)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / os.sysconf("SC_CLK_TCK")


async def interleaved(
    gateway: Callable[[int], Awaitable[tuple[str | None, str]]],
    bare: Callable[[int], Awaitable[tuple[str | None, str]]],
    rps: float,
    seconds: float,
    slot: float,
) -> tuple[Side, Side]:
    total = int(rps * seconds)
    per_slot = max(1, int(rps * slot))
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.2
    sides = (Side(), Side())
    schedule = sorted(
        (start + (2 * (j // per_slot) + which) * slot + (j % per_slot) / rps, which, j)
        for which in (0, 1)
        for j in range(total)
    )

    async def one(when: float, which: int, j: int) -> None:
        await asyncio.sleep(max(0.0, when - loop.time()))
        side = sides[which]
        sent = loop.time()
        side.max_lag = max(side.max_lag, sent - when)
        side.sent += 1
        try:
            kind, detail = await (gateway if which == 0 else bare)(j)
        except Exception as exc:  # a failed submission is a figure, not a crash
            kind, detail = type(exc).__name__, str(exc)
        side.record(sent, kind, detail, loop.time())

    tasks = []
    for when, which, j in schedule:  # created as their send time nears
        lead = when - loop.time()
        if lead > 0.5:
            await asyncio.sleep(lead - 0.25)
        tasks.append(asyncio.create_task(one(when, which, j)))
    await asyncio.gather(*tasks)
    return sides


async def phase(target: Target, rps: float, seconds: float, slot: float) -> dict[str, Any]:
    name = f"submit-{uuid.uuid4().hex[:8]}"
    body = json.dumps({"pipeline": pipeline(name), "parameters": {}}).encode()  # encoded once: the generator is lean
    trigger = TriggerInfo(type="manual", user=ADMIN)
    run_input = PipelineRunInput(pipeline=parse_pipeline(pipeline(name)), trigger=trigger)
    clients = [
        httpx.AsyncClient(
            base_url=target.api_url,
            headers={"Authorization": f"Bearer {target.token}", "Content-Type": "application/json"},
            limits=httpx.Limits(max_connections=CONNECTIONS_PER_CLIENT),
            timeout=REQUEST_TIMEOUT,
        )
        for _ in range(CLIENTS)
    ]

    async def through_gateway(i: int) -> tuple[str | None, str]:
        try:
            answer = await clients[i % CLIENTS].post("/executions", content=body)
        except httpx.TimeoutException as exc:
            return type(exc).__name__, f"no answer within {REQUEST_TIMEOUT} s"
        except httpx.HTTPError as exc:
            return type(exc).__name__, str(exc)
        return (None if answer.status_code == 202 else f"HTTP {answer.status_code}"), answer.text

    async def bare(i: int) -> tuple[str | None, str]:
        await target.temporal.start_workflow(
            PIPELINE_WORKFLOW,
            run_input,
            id=f"bench.{name}.{uuid.uuid4().hex[:20]}",
            task_queue=TASK_QUEUE,
            result_type=ExecutionResult,
            search_attributes=initial_attributes("load", name, "manual"),
            static_summary=f"load/{name}",
            rpc_timeout=timedelta(seconds=REQUEST_TIMEOUT),
        )
        return None, ""

    gateway_pids = [target.gateway_pid] if target.gateway_pid else []
    try:
        # One of each first, so connection setup is not in the figures.
        await through_gateway(0)
        await bare(0)
        cpu_before = cpu_seconds(gateway_pids), cpu_seconds(target.temporal_pids)
        gateway_side, bare_side = await interleaved(through_gateway, bare, rps, seconds, slot)
        cpu_after = cpu_seconds(gateway_pids), cpu_seconds(target.temporal_pids)
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    g50, g99 = percentile(gateway_side.latencies, 50), percentile(gateway_side.latencies, 99)
    b50, b99 = percentile(bare_side.latencies, 50), percentile(bare_side.latencies, 99)
    return {
        "p50_ratio": g50 / b50,
        "p99_ratio": g99 / b99,
        "gateway_p50_ms": g50,
        "gateway_p99_ms": g99,
        "bare_p50_ms": b50,
        "bare_p99_ms": b99,
        "submitted": gateway_side.sent,
        "errors": sum(gateway_side.errors.values()),
        "error_kinds": gateway_side.errors,
        "error_samples": gateway_side.samples,
        "bare_submitted": bare_side.sent,
        "bare_errors": sum(bare_side.errors.values()),
        "max_send_lag_ms": max(gateway_side.max_lag, bare_side.max_lag) * 1000,
        # The client could not send on time: the box, not the gateway, set the pace; figures not comparable.
        "generator_lagged": max(gateway_side.max_lag, bare_side.max_lag) > GENERATOR_LAG_LIMIT,
        # Where the CPU went during the phase, per gateway submission: the gateway's process (in
        # `embedded`, with its worker and kubesim), and the Temporal server (both sides' starts).
        "gateway_cpu_ms_per_submission": (cpu_after[0] - cpu_before[0]) * 1000 / max(1, gateway_side.sent),
        "temporal_cpu_ms_per_submission": (cpu_after[1] - cpu_before[1]) * 1000 / max(1, gateway_side.sent),
    }


# ---- the stacks -------------------------------------------------------------------------------------


async def _until(check: Callable[[], Awaitable[bool]], what: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not await check():
        if process.poll() is not None or time.monotonic() > deadline:
            tail = (await asyncio.to_thread(log.read_text, errors="replace"))[-2000:]
            raise RuntimeError(f"{what} not ready (exit {process.poll()}):\n{tail}")
        await asyncio.sleep(0.2)


def _create_token(store: str) -> str:
    """An admin token through the CLI (`gennaker token create`), as an operator makes one."""
    created = subprocess.run(
        [*GENNAKER, "token", "create", "--subject", ADMIN, "--name", "bench", "--database-url", store],
        capture_output=True, text=True, check=True, cwd=REPO, timeout=60,
    )  # fmt: skip
    return created.stdout.strip()


@contextlib.asynccontextmanager
async def separate_stack(directory: Path) -> AsyncIterator[Target]:
    """Temporal dev server + `gennaker api` + `gennaker worker`, three processes, as deployed."""
    keys = directory / "codec-keys.yaml"
    CodecKeys.write_new(keys)
    policy = directory / "policy.yaml"
    policy.write_text(yaml.safe_dump({"admins": [ADMIN], "applications": {}}))
    store = f"sqlite:///{directory / 'gennaker.db'}"
    token = await asyncio.to_thread(_create_token, store)
    with dev_server(directory) as server:
        port = free_port()
        env = {
            "GENNAKER_TEMPORAL_ADDRESS": server.address,
            "GENNAKER_DATABASE_URL": store,
            "GENNAKER_AUTH_POLICY_FILE": str(policy),
            "GENNAKER_CODEC_KEYS_FILE": str(keys),
            "GENNAKER_TASK_QUEUE": TASK_QUEUE,
        }
        config = directory / "gennaker.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "temporal_address": server.address,
                    "database_url": store,
                    "codec_keys_file": str(keys),
                    "task_queue": TASK_QUEUE,
                    "health_interval_seconds": 5,
                    "registries": [{"name": "bench", "address": f"127.0.0.1:{free_port()}", "insecure": True}],
                }
            )
        )
        api_log, worker_log = directory / "api.log", directory / "worker.log"
        gateway = spawn_gennaker(["api", "--host", "127.0.0.1", "--port", str(port)], api_log, env)
        worker = spawn_gennaker(
            ["worker", "--config", str(config)], worker_log, {"GENNAKER_CODEC_KEYS_FILE": str(keys)}
        )
        try:
            api_url = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(base_url=api_url, timeout=5) as http:

                async def ready() -> bool:
                    with contextlib.suppress(httpx.HTTPError):
                        return (await http.get("/readyz")).status_code == 200
                    return False

                async def account_reported() -> bool:  # the worker is up and the directory exists
                    with contextlib.suppress(httpx.HTTPError):
                        found = await http.get("/accounts", headers={"Authorization": f"Bearer {token}"})
                        return found.status_code == 200 and bool(found.json())
                    return False

                await _until(ready, "gennaker api", gateway, api_log)
                await _until(account_reported, "gennaker worker", worker, worker_log)
            temporal = await connect(server.address, codec_keys_file=keys)
            yield Target(
                api_url,
                token,
                temporal,
                stop_worker=lambda: stop_process(worker),
                gateway_pid=gateway.pid,
                temporal_pids=[server.process.pid] if server.process else [],
            )
        finally:
            await asyncio.to_thread(stop_process, worker)
            await asyncio.to_thread(stop_process, gateway)


@contextlib.asynccontextmanager
async def embedded_stack(directory: Path) -> AsyncIterator[Target]:
    """`gennaker dev`: gateway, worker and kubesim in one process (bench/load.py starts it)."""
    data_dir = directory / "data"
    stack = await start_stack(data_dir)
    children = descendants(stack.process.pid)  # its Temporal dev server runs in a session of its own
    try:
        temporal = await connect(stack.temporal_address, codec_keys_file=data_dir / "codec-keys.yaml")
        yield Target(stack.api_url, stack.token, temporal, gateway_pid=stack.process.pid, temporal_pids=children)
    finally:
        await asyncio.to_thread(stack.stop)
        await asyncio.to_thread(stop_leftovers, children)


MODES = ("separate", "embedded")


async def submit(
    rps: float = 100, seconds: float = 10, modes: tuple[str, ...] = MODES, slot: float = 1.0
) -> dict[str, Any]:
    if rps <= 0 or seconds <= 0 or slot <= 0:
        raise ValueError("--rps, --seconds and --slot must be positive")
    figures: dict[str, Any] = {"rps": rps, "seconds_per_side": seconds}
    for mode in modes:
        with tempfile.TemporaryDirectory(prefix=f"gennaker-submit-{mode}-") as tmp:
            stack = separate_stack if mode == "separate" else embedded_stack
            async with stack(Path(tmp)) as target:
                figures[f"{mode}_worker_up"] = await phase(target, rps, seconds, slot)
                if target.stop_worker is not None:
                    await asyncio.to_thread(target.stop_worker)
                    figures[f"{mode}_worker_down"] = await phase(target, rps, seconds, slot)
    headline = figures.get("separate_worker_up") or figures[f"{modes[0]}_worker_up"]
    figures["headline_mode"] = "separate_worker_up" if "separate_worker_up" in figures else f"{modes[0]}_worker_up"
    for key in ("p50_ratio", "p99_ratio", "gateway_p99_ms", "bare_p99_ms", "errors"):
        figures[key] = headline[key]
    return figures
