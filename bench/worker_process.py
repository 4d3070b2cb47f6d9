"""A benchmark worker in its own process, so its RSS and CPU are its own.

`python -m bench.worker_process --address HOST:PORT --queue Q --kind pipeline|bare --store URL`:
- `pipeline`: Gennaker's pipeline worker (as `gennaker worker` builds it) plus the `noop` stage;
- `bare`: a plain Temporal worker with the bare baselines (bench/bare_workflow.py) and the same activity.
Both import the same modules, so their idle RSS is comparable. Prints `ready` once polling, runs until
SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys

from temporalio.worker import Worker

from bench.bare_workflow import BareFanOutWorkflow, BareJudgmentWorkflow, BareNoopWorkflow
from bench.noop import noop_activity
from core.store import PipelineStore
from core.temporal import connect
from workers.runner import pipeline_worker


async def serve(address: str, queue: str, kind: str, store_url: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    client = await connect(address)
    store = PipelineStore(store_url)
    if kind == "pipeline":
        worker = pipeline_worker(client, store, task_queue=queue, extra_activities=[noop_activity])
    else:
        worker = Worker(
            client,
            task_queue=queue,
            workflows=[BareNoopWorkflow, BareFanOutWorkflow, BareJudgmentWorkflow],
            activities=[noop_activity],
        )
    async with worker:
        print("ready", flush=True)
        await stop.wait()
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.worker_process")
    parser.add_argument("--address", required=True)
    parser.add_argument("--queue", required=True)
    parser.add_argument("--kind", choices=["pipeline", "bare"], required=True)
    parser.add_argument("--store", required=True, help="SQLAlchemy URL of the (empty) pipeline store")
    args = parser.parse_args()
    asyncio.run(serve(args.address, args.queue, args.kind, args.store))
    sys.stdout.flush()
    os._exit(0)  # temporalio can abort during interpreter teardown; the work is done


if __name__ == "__main__":
    main()
