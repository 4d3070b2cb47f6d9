"""`python -m bench overhead|bake|kubernetes [--rounds N]`, `python -m bench load [--rps R --seconds S]` and
`python -m bench spinnaker DIR`: prints figures, then one JSON line last.

SIGTERM, SIGINT or SIGHUP stop every process the benchmark started, then it exits 128 + the signal
(bench/shutdown.py)."""

from __future__ import annotations

import argparse
import json
import os
import sys

from bench import shutdown


def report(figures: dict[str, float], last_line: dict[str, int]) -> None:
    """Every figure on its own line, then the chosen ones (rounded to N places) as the JSON last line."""
    for key, value in figures.items():
        print(f"{key:>22}: {value:.4f}")
    print(json.dumps({key: round(figures[key], places) for key, places in last_line.items()}))


def add_where_the_time_goes(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`submit`, `throughput`, `scale`, `deploy` (issue 16): every figure beside bare Temporal's."""
    submit = sub.add_parser("submit", help="POST /executions vs client.start_workflow, open loop, same stack")
    submit.add_argument("--rps", type=float, default=100, help="submissions per second, each side")
    submit.add_argument("--seconds", type=float, default=10, help="sending time per side and phase")
    submit.add_argument("--mode", choices=["all", "separate", "embedded"], default="all")
    submit.add_argument("--slot", type=float, default=1.0, help="seconds per turn before the other side sends")
    throughput = sub.add_parser("throughput", help="concurrent 5-stage pipelines/s vs bare 5-activity workflows/s")
    throughput.add_argument("--rounds", type=int, default=3)
    throughput.add_argument("--concurrent", type=int, default=100)
    scale = sub.add_parser("scale", help="per-stage cost by size and shape; executions waiting on judgments")
    scale.add_argument("--sizes", default="10,100,500", help="stage counts, comma-separated (at most MAX_STAGES)")
    scale.add_argument("--rounds", type=int, default=3, help="runs per size below 500")
    scale.add_argument("--waiting", type=int, default=1000, help="executions left waiting on a judgment")
    scale.add_argument("--judged", type=int, default=200, help="how many of them to judge (each side)")
    scale.add_argument("--judge-rps", type=float, default=20, help="judgments per second, each side")
    scale.add_argument("--run-limit", type=float, default=300, help="seconds before one run counts as failed")
    deploy = sub.add_parser("deploy", help="3-replica red/black deploy; last pod Ready to traffic switched")
    deploy.add_argument("--rounds", type=int, default=3)


def run_where_the_time_goes(args: argparse.Namespace) -> None:
    from bench.stack import emit

    if args.command == "submit":
        from bench.submit import MODES, submit

        modes = MODES if args.mode == "all" else (args.mode,)
        emit(shutdown.run(submit(args.rps, args.seconds, modes, args.slot)))
    if args.command == "throughput":
        from bench.throughput import throughput

        emit(shutdown.run(throughput(args.rounds, args.concurrent)))
    if args.command == "scale":
        from bench.scale import scale

        sizes = tuple(int(size) for size in args.sizes.split(","))
        emit(shutdown.run(scale(sizes, args.rounds, args.waiting, args.judged, args.judge_rps, args.run_limit)))
    if args.command == "deploy":
        from bench.deploy import deploy_benchmark

        emit(shutdown.run(deploy_benchmark(args.rounds)))


def main() -> None:
    try:
        run_benchmark()
    except shutdown.Interrupted as stopped:
        print(f"bench: {stopped}; every process it started has been stopped", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(stopped.exit_code)  # as below: no interpreter teardown with temporalio loaded
    sys.stdout.flush()
    os._exit(0)  # see tests/conftest.py: temporalio can abort during interpreter teardown


def run_benchmark() -> None:
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
    add_where_the_time_goes(sub)
    args = parser.parse_args()
    if args.command == "overhead":
        from bench.overhead import overhead

        figures = shutdown.run(overhead(args.rounds))
        report(figures, {"per_stage_ratio": 3, "pipelines_per_s": 2})
    if args.command == "bake":
        from bench.bake import bake_benchmark

        figures = shutdown.run(bake_benchmark(args.rounds))
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
    run_where_the_time_goes(args)


if __name__ == "__main__":
    main()
