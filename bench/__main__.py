"""`python -m bench overhead|bake|kubernetes [--rounds N]`, `python -m bench load [--rps R --seconds S]` and
`python -m bench spinnaker DIR`: prints figures, then one JSON line last."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys


def report(figures: dict[str, float], last_line: dict[str, int]) -> None:
    """Every figure on its own line, then the chosen ones (rounded to N places) as the JSON last line."""
    for key, value in figures.items():
        print(f"{key:>22}: {value:.4f}")
    print(json.dumps({key: round(figures[key], places) for key, places in last_line.items()}))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    sub = parser.add_subparsers(dest="command", required=True)
    over = sub.add_parser("overhead", help="per-stage overhead vs bare Temporal, and pipelines/s")
    over.add_argument("--rounds", type=int, default=15)
    bake = sub.add_parser("bake", help="bake through Gennaker vs docker build && docker push, same engine")
    bake.add_argument("--rounds", type=int, default=5)
    k8s = sub.add_parser("kubernetes", help="deploy readiness detection latency and resize stage overhead")
    k8s.add_argument("--rounds", type=int, default=5)
    load = sub.add_parser("load", help="open-loop POST /executions against a dev stack it starts itself")
    load.add_argument("--rps", type=float, default=100, help="target submissions per second")
    load.add_argument("--seconds", type=float, default=60, help="how long to submit")
    load.add_argument("--drain-timeout", type=float, default=300, help="max wait for executions to finish")
    spin = sub.add_parser("spinnaker", help="import a Spinnaker export directory: imported / validated counts")
    spin.add_argument("directory", help="Spinnaker pipeline JSON file or export directory")
    spin.add_argument("--application", default=None, help="application for pipelines that do not name one")
    args = parser.parse_args()
    if args.command == "overhead":
        from bench.overhead import overhead

        figures = asyncio.run(overhead(args.rounds))
        report(figures, {"per_stage_ratio": 3, "pipelines_per_s": 2})
    if args.command == "bake":
        from bench.bake import bake_benchmark

        figures = asyncio.run(bake_benchmark(args.rounds))
        report(figures, {"bake_ratio": 3, "gennaker_bake_s": 3, "docker_build_push_s": 3})
    if args.command == "kubernetes":
        from bench.kubernetes import main as kubernetes_main

        kubernetes_main(args.rounds)
    if args.command == "load":
        from bench.load import main as load_main

        figures = load_main(args.rps, args.seconds, args.drain_timeout)
        for key, value in figures.items():
            print(f"{key:>22}: {value}")
        print(json.dumps(figures))
    if args.command == "spinnaker":
        from pathlib import Path

        from bench.spinnaker import spinnaker_benchmark

        spinnaker_benchmark(Path(args.directory), args.application)
    sys.stdout.flush()
    os._exit(0)  # see tests/conftest.py: temporalio can abort during interpreter teardown


if __name__ == "__main__":
    main()
