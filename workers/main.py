"""`gennaker worker`: pipeline workflows plus one task queue per configured account, until SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from activities.accounts import ProvidedAccount
from core.observability.logs import configure_logging
from core.store import PipelineStore
from core.temporal import connect_with
from workers.config import WorkerConfig
from workers.providers import provide_accounts
from workers.reporting import report_forever
from workers.runner import pipeline_worker
from workers.telemetry import install_worker_telemetry, observe_worker_client

log = logging.getLogger("gennaker.worker")


def account_worker(client: Client, account: ProvidedAccount, threads: int) -> Worker:
    return Worker(
        client,
        task_queue=account.queue,
        activities=list(account.activities),
        activity_executor=ThreadPoolExecutor(max_workers=threads, thread_name_prefix=f"{account.kind}-{account.name}"),
        graceful_shutdown_timeout=timedelta(seconds=10),
    )


async def run_worker(
    config: WorkerConfig,
    stop: asyncio.Event | None = None,
    store: PipelineStore | None = None,
    client: Client | None = None,
) -> None:
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
            loop.add_signal_handler(sig, stop.set)
    if client is None:
        # Before the connection: the SDK's metrics come from the runtime a client is created on.
        telemetry = install_worker_telemetry(logging=False)
        client = observe_worker_client(await connect_with(config), telemetry.tracer_provider)
    own_store = store is None and config.serve_pipelines
    if own_store:
        # Opening migrates the schema first (core/store/migrate.py): a blocking call, so on a thread.
        store = await asyncio.to_thread(PipelineStore, config.database_url)
    accounts = provide_accounts(config)
    workers: list[Worker] = []
    if config.serve_pipelines and store is not None:
        workers.append(
            pipeline_worker(
                client, store, task_queue=config.task_queue, config=config, activity_threads=config.activity_threads
            )
        )
    workers += [account_worker(client, account, config.activity_threads) for account in accounts]
    if not workers:
        log.error("nothing to do: serve_pipelines is false and no accounts are configured")
        return
    for worker in workers:
        log.info("polling task queue %s", worker.task_queue)
    worker_id = f"{socket.gethostname()}:{os.getpid()}"
    tasks = [asyncio.create_task(w.run()) for w in workers]
    if accounts:
        tasks.append(
            asyncio.create_task(
                report_forever(client, worker_id, accounts, config.task_queue, config.health_interval_seconds, stop)
            )
        )
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait([*tasks, stopped], return_when=asyncio.FIRST_COMPLETED)
    stop.set()
    # Graceful: in-flight activity attempts get graceful_shutdown_timeout to finish.
    await asyncio.gather(*(w.shutdown() for w in workers), return_exceptions=True)
    await asyncio.gather(*tasks, return_exceptions=True)
    for account in accounts:
        account.close()
    if own_store and store is not None:
        store.close()
    log.info("worker stopped")


def main() -> None:
    """Entry for `python -m workers.main`: configuration from $GENNAKER_CONFIG / GENNAKER_* env."""
    from workers.config import load_worker_config

    configure_logging()
    asyncio.run(run_worker(load_worker_config()))
    os._exit(0)  # temporalio can abort during interpreter teardown; the work is done


if __name__ == "__main__":
    main()
