"""A Kubernetes account worker as its own process (for kill -9 tests): the server-group activities on the
account's task queue, until SIGTERM.

    python -m tests.support.k8s_worker_proc --address 127.0.0.1:7233 --account '<KubernetesAccount JSON>'

Stands in for `python -m workers.main` with `serve_pipelines: false` until account_activities lists
these activities; then the test can run workers.main with a gennaker.yaml instead.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal

from activities.accounts import KubernetesAccount
from core.temporal import connect
from tests.support.kube_rig import account_worker


async def serve(address: str, account: KubernetesAccount) -> None:
    client = await connect(address)
    worker, kube = account_worker(client, account)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    task = asyncio.create_task(worker.run())
    print(f"polling {account.queue}", flush=True)
    await asyncio.wait([task, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
    with contextlib.suppress(Exception):
        await worker.shutdown()
    kube.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", required=True)
    parser.add_argument("--account", required=True, help="KubernetesAccount as JSON")
    args = parser.parse_args()
    asyncio.run(serve(args.address, KubernetesAccount.model_validate_json(args.account)))
    os._exit(0)  # temporalio can abort during interpreter teardown


if __name__ == "__main__":
    main()
