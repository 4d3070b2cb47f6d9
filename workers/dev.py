"""`gennaker dev`: the embedded stack in one process tree.

A Temporal dev server (SQLite under the data dir, Web UI), the pipeline worker and the gateway.
Ctrl-C stops all three; the next run on the same data dir finds its executions and pipelines again.
Kubernetes accounts, Docker and notification channels join the worker as their issues land.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from api.app import create_app
from api.codec import CodecKeys
from api.settings import GatewaySettings
from api.store import PipelineStore
from api.temporal import connect
from workers.devserver import TemporalDevServer
from workers.gateway_client import EXIT_UNAVAILABLE, CliError
from workers.runner import DEFAULT_TASK_QUEUE, pipeline_worker

BASE_TEMPORAL_PORT = 7233
BASE_UI_PORT = 8233
BASE_API_PORT = 8084


@dataclass(frozen=True)
class DevPorts:
    temporal: int
    ui: int
    api: int

    @classmethod
    def with_offset(cls, offset: int) -> DevPorts:
        return cls(BASE_TEMPORAL_PORT + offset, BASE_UI_PORT + offset, BASE_API_PORT + offset)

    def __iter__(self) -> Iterator[int]:
        return iter((self.temporal, self.ui, self.api))


def _port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


class _QuietServer(uvicorn.Server):
    """uvicorn re-raises the signal it caught after serving; the dev stack owns signals instead."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def run_dev_stack(
    data_dir: Path,
    port_offset: int = 0,
    host: str = "127.0.0.1",
    announce: Callable[[str], None] = functools.partial(print, flush=True),
    stop: asyncio.Event | None = None,
) -> None:
    ports = DevPorts.with_offset(port_offset)
    busy = [p for p in ports if _port_in_use(p)]
    if busy:
        raise CliError(
            f"port(s) {', '.join(map(str, busy))} already in use (another `gennaker dev`?); "
            "stop it or pass --port-offset N",
            EXIT_UNAVAILABLE,
        )
    data_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (once, before anything runs)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)

    server = TemporalDevServer(
        db_file=data_dir / "temporal.db", port=ports.temporal, ui_port=ports.ui, log_file=data_dir / "temporal.log"
    )
    keys_file = data_dir / "codec-keys.yaml"
    if not keys_file.exists():
        CodecKeys.write_new(keys_file)
    server.start()
    store = PipelineStore(f"sqlite:///{(data_dir / 'gennaker.db').resolve()}")
    try:
        client = await connect(server.address, codec_keys_file=keys_file)
        settings = GatewaySettings(
            temporal_address=server.address,
            task_queue=DEFAULT_TASK_QUEUE,
            database_url=store.database_url,
            api_host=host,
            api_port=ports.api,
            temporal_ui_url=f"http://{host}:{ports.ui}",
            codec_keys_file=keys_file,
        )
        worker = pipeline_worker(client, store, task_queue=DEFAULT_TASK_QUEUE)
        api = _QuietServer(
            uvicorn.Config(
                create_app(settings, client=client, store=store), host=host, port=ports.api, log_level="warning"
            )
        )
        worker_task = asyncio.create_task(worker.run())
        api_task = asyncio.create_task(api.serve())
        while not api.started and not api_task.done():  # noqa: ASYNC110 (uvicorn offers no event)
            await asyncio.sleep(0.05)
        announce(
            f"Gennaker dev stack is up (data in {data_dir}):\n"
            f"  gateway      http://{host}:{ports.api}   (OpenAPI docs at /docs)\n"
            f"  Temporal UI  http://{host}:{ports.ui}   (payloads are encrypted: in the UI's Data Encoder\n"
            f"               settings, set http://{host}:{ports.api}/codec to read them)\n"
            f"  Temporal     {server.address}  (temporal --address {server.address} workflow list)\n"
            f"Press Ctrl-C to stop."
        )
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait([worker_task, api_task, stopped], return_when=asyncio.FIRST_COMPLETED)
        announce("stopping…")
        api.should_exit = True
        if not worker_task.done():
            await worker.shutdown()
        await asyncio.gather(worker_task, api_task, return_exceptions=True)
        stopped.cancel()
    finally:
        store.close()
        server.stop()
