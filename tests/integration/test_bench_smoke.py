"""Each `python -m bench` benchmark of issue 16 runs end to end at a tiny size and ends with a JSON
line holding its figures. No timing assertions: only that the benchmark works and says what it must.
And a benchmark stopped by SIGTERM leaves none of the processes it started running."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.eventually import assert_eventually

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def bench(*args: str, limit: float) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "bench", *args], capture_output=True, text=True, cwd=REPO, timeout=limit
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    last: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return last


PHASE_KEYS = {"p50_ratio", "p99_ratio", "gateway_p99_ms", "bare_p99_ms", "errors", "error_kinds", "submitted"}


@pytest.mark.timeout(600)
def test_submit_reports_each_mode_beside_bare_temporal() -> None:
    # Four submissions a side, all in one quarter-second slot: each phase sends for 0.5 s, not 2 s.
    figures = bench("submit", "--rps", "16", "--seconds", "0.25", "--slot", "0.25", limit=580)
    assert {"p50_ratio", "p99_ratio", "gateway_p99_ms", "bare_p99_ms", "errors"} <= figures.keys()
    for phase in ("separate_worker_up", "separate_worker_down", "embedded_worker_up"):
        assert figures[phase].keys() >= PHASE_KEYS, phase
        assert figures[phase]["submitted"] == figures[phase]["bare_submitted"] == 4
    assert figures["separate_worker_up"]["errors"] == 0, figures["separate_worker_up"]["error_samples"]


@pytest.mark.timeout(300)
def test_throughput_reports_the_ratio() -> None:
    figures = bench("throughput", "--rounds", "1", "--concurrent", "3", limit=280)
    assert {"throughput_ratio", "pipelines_per_s", "bare_workflows_per_s"} <= figures.keys()
    assert figures["throughput_ratio"] > 0


@pytest.mark.timeout(300)
def test_scale_reports_cost_per_stage_by_shape_and_size_and_waiting_costs() -> None:
    args = ("--sizes", "2,3", "--rounds", "1", "--waiting", "2", "--judged", "2", "--judge-rps", "20")
    figures = bench("scale", *args, limit=280)
    for key in ("ms_per_stage", "bare_ms_per_stage", "per_stage_ratio"):
        assert set(figures[key]) == {"chain", "fanout"}
        assert all(set(by_size) == {"2", "3"} for by_size in figures[key].values()), figures[key]
    assert {
        "waiting_rss_mb",
        "bare_waiting_rss_mb",
        "judge_resume_p99_ms",
        "bare_judge_resume_p99_ms",
    } <= figures.keys()
    assert figures["judged"] == 2
    assert figures["failures"] == [], figures["failures"]


@pytest.mark.timeout(300)
def test_deploy_reports_ready_to_traffic() -> None:
    figures = bench("deploy", "--rounds", "1", limit=280)
    assert {"ready_to_traffic_ms", "ready_to_new_serving_ms", "deploy_s", "cluster"} <= figures.keys()
    assert figures["ready_to_traffic_ms"] >= 0


@dataclass(frozen=True)
class Seen:
    """A process seen under the benchmark, with its start time (field 22 of /proc/<pid>/stat), so a
    later process that happens to get the same PID is not taken for it."""

    pid: int
    started: str
    command: str


def _stat_fields(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_tree(root: int) -> list[Seen]:
    """Every process below `root` now (Linux /proc: each thread's `children`)."""
    found: list[Seen] = []
    for children in Path(f"/proc/{root}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            for pid in map(int, children.read_text().split()):
                fields = _stat_fields(pid)
                with contextlib.suppress(OSError):
                    command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                    if fields is not None:
                        found.append(Seen(pid, fields[19], command))
                found += process_tree(pid)
    return found


def running(seen: Seen) -> bool:
    """Still the same process, and not a zombie (a zombie has exited; only its parent's wait is left)."""
    fields = _stat_fields(seen.pid)
    return fields is not None and fields[19] == seen.started and fields[0] not in ("Z", "X")


TEMPORAL = "server start-dev"
BENCH_WORKER = "bench.worker_process"


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("args", "started"),
    [
        # The cheapest benchmark: its Temporal dev server, the worker in the benchmark's own process.
        (("overhead", "--rounds", "1"), {TEMPORAL: 1}),
        # Its Temporal dev server and two worker processes (signalled while they may still be starting).
        (("throughput", "--rounds", "1", "--concurrent", "1"), {TEMPORAL: 1, BENCH_WORKER: 2}),
    ],
    ids=["overhead", "throughput"],
)
async def test_sigterm_stops_every_process_the_benchmark_started(
    args: tuple[str, ...], started: dict[str, int], tmp_path: Path
) -> None:
    output = (tmp_path / "bench.out").open("wb")
    bench = subprocess.Popen(
        [sys.executable, "-m", "bench", *args], stdout=output, stderr=subprocess.STDOUT, cwd=REPO,
        start_new_session=True,  # a signal meant for the test run does not reach it
    )  # fmt: skip
    seen: list[Seen] = []
    try:

        def tree_once_started() -> list[Seen]:
            tree = process_tree(bench.pid)
            assert bench.poll() is None, f"the benchmark exited with {bench.returncode} before starting"
            for marker, count in started.items():
                assert sum(marker in p.command for p in tree) >= count, [p.command[:80] for p in tree]
            return tree

        seen = await assert_eventually(tree_once_started, what=f"bench {args[0]} starts {started}", timeout=120)
        bench.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(bench.wait, 90)
        log = (tmp_path / "bench.out").read_text(errors="replace")[-3000:]
        left = [p for p in seen if running(p)]
        assert not left, f"still running after the benchmark exited: {left}\n{log}"
        assert code == 128 + signal.SIGTERM, log
    finally:
        output.close()
        for process in [*seen]:  # whatever a failing run left behind: only what this test saw, by PID
            if running(process):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGKILL)
        if bench.poll() is None:
            bench.kill()
            bench.wait(10)
