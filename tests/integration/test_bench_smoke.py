"""Each `python -m bench` benchmark of issue 16 runs end to end at a tiny size and ends with a JSON
line holding its figures. No timing assertions: only that the benchmark works and says what it must."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

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
