"""`gennaker worker`: runs pipeline workflows and their activities until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from api.store import PipelineStore
from api.temporal import connect
from workers.config import WorkerConfig
from workers.runner import pipeline_worker

log = logging.getLogger("gennaker.worker")


async def run_worker(config: WorkerConfig, stop: asyncio.Event | None = None) -> None:
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
            loop.add_signal_handler(sig, stop.set)
    client = await connect(config.temporal_address, config.temporal_namespace)
    store = PipelineStore(config.database_url)
    worker = pipeline_worker(client, store, task_queue=config.task_queue, activity_threads=config.activity_threads)
    log.info("worker polling %s on %s", config.task_queue, config.temporal_address)
    task = asyncio.create_task(worker.run())
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait([task, stopped], return_when=asyncio.FIRST_COMPLETED)
    # Graceful: finish in-flight activity attempts (up to graceful_shutdown_timeout), then leave.
    if not task.done():
        await worker.shutdown()
    await asyncio.gather(task, return_exceptions=True)
    store.close()
    log.info("worker stopped")


def main() -> None:
    """Entry for `python -m workers.main`: configuration from $GENNAKER_CONFIG / GENNAKER_* env."""
    from workers.config import load_worker_config

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(run_worker(load_worker_config()))


if __name__ == "__main__":
    main()
