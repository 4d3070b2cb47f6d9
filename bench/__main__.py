"""`python -m bench overhead|bake|kubernetes [--rounds N]`: prints figures, then one JSON line last."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    sub = parser.add_subparsers(dest="command", required=True)
    over = sub.add_parser("overhead", help="per-stage overhead vs bare Temporal, and pipelines/s")
    over.add_argument("--rounds", type=int, default=15)
    bake = sub.add_parser("bake", help="bake through Gennaker vs docker build && docker push, same engine")
    bake.add_argument("--rounds", type=int, default=5)
    k8s = sub.add_parser("kubernetes", help="deploy readiness detection latency and resize stage overhead")
    k8s.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if args.command == "overhead":
        from bench.overhead import overhead

        figures = asyncio.run(overhead(args.rounds))
        for key, value in figures.items():
            print(f"{key:>22}: {value:.4f}")
        print(
            json.dumps(
                {
                    "per_stage_ratio": round(figures["per_stage_ratio"], 3),
                    "pipelines_per_s": round(figures["pipelines_per_s"], 2),
                }
            )
        )
    if args.command == "bake":
        from bench.bake import bake_benchmark

        figures = asyncio.run(bake_benchmark(args.rounds))
        for key, value in figures.items():
            print(f"{key:>22}: {value:.4f}")
        print(
            json.dumps(
                {
                    "bake_ratio": round(figures["bake_ratio"], 3),
                    "gennaker_bake_s": round(figures["gennaker_bake_s"], 3),
                    "docker_build_push_s": round(figures["docker_build_push_s"], 3),
                }
            )
        )
    if args.command == "kubernetes":
        from bench.kubernetes import main as kubernetes_main

        kubernetes_main(args.rounds)
    sys.stdout.flush()
    os._exit(0)  # see tests/conftest.py: temporalio can abort during interpreter teardown


if __name__ == "__main__":
    main()
