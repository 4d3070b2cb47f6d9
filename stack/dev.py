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
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import uvicorn

from activities.bake import BakeSettings
from activities.egress import EgressPolicy
from api.app import create_app
from api.settings import GatewaySettings
from core.codec import CodecKeys
from core.store import PipelineStore
from core.store.tokens import TokenStore
from core.temporal import connect
from workers.config import WorkerConfig
from workers.dev_accounts import DevAccounts, start_dev_accounts
from workers.devserver import TemporalDevServer
from workers.gateway_client import EXIT_UNAVAILABLE, CliError
from workers.main import run_worker
from workers.runner import DEFAULT_TASK_QUEUE

T = TypeVar("T")

# What stages of the dev stack may reach besides global addresses: nothing. Its demo (kubesim, the
# local registry, bake through the Docker engine) needs no outbound request from a stage: Kubernetes
# and registry calls use the worker's account clients, not tenant URLs. The Temporal frontend and
# UI, the gateway, kubesim (with its admin API) and the registry API all listen on loopback, so the
# default policy refuses every one of them (issue 11: a webhook stage to the UI's HTTP API could
# judge and terminate another application's executions).
DEV_EGRESS = EgressPolicy()
# The demo bakes `examples/frontend` (examples/release-demo.yaml): bake `path` contexts may come from
# the checkout's examples directory and nowhere else on this machine.
DEV_BAKE = BakeSettings(allowed_context_dirs=[Path(__file__).resolve().parents[1] / "examples"])

BASE_TEMPORAL_PORT = 7233
BASE_UI_PORT = 8233
BASE_API_PORT = 8084
DEV_ADMIN = "dev-admin"


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


def _dev_access(data_dir: Path, database_url: str) -> Path:
    """The dev stack is closed like any other: a policy naming one admin, and that admin's token
    (kept in the data dir, reused on the next run while it is valid)."""
    policy_file = data_dir / "auth-policy.yaml"
    if not policy_file.exists():
        policy_file.write_text(f"# Who may do what: see api/policy.py\nadmins: [{DEV_ADMIN}]\napplications: {{}}\n")
    token_file = data_dir / "admin-token"
    tokens = TokenStore(database_url)
    try:
        token = token_file.read_text().strip() if token_file.exists() else ""
        if not token or tokens.lookup(token) is None:
            token, _ = tokens.create(DEV_ADMIN, [], "gennaker dev admin", created_by="gennaker dev")
            token_file.write_text(token + "\n")
            token_file.chmod(0o600)
    finally:
        tokens.close()
    return policy_file


class _QuietServer(uvicorn.Server):
    """uvicorn re-raises the signal it caught after serving; the dev stack owns signals instead."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def run_dev_stack(
    data_dir: Path,
    port_offset: int = 0,
    kubeconfig: Path | None = None,
    kube_context: str | None = None,
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
    store_url = f"sqlite:///{(data_dir / 'gennaker.db').resolve()}"
    policy_file = _dev_access(data_dir, store_url)
    keys_file = data_dir / "codec-keys.yaml"
    if not keys_file.exists():
        CodecKeys.write_new(keys_file)
    store = PipelineStore(store_url)
    accounts = DevAccounts()
    server.launch()
    died = asyncio.create_task(_exited(server))
    guard = _Guard(stop, died)
    try:
        await guard.run(asyncio.to_thread(server.wait_ready))
        await guard.run(
            asyncio.to_thread(start_dev_accounts, data_dir, port_offset, ports.api, kubeconfig, kube_context, accounts)
        )
        client = await guard.run(connect(server.address, codec_keys_file=keys_file))
        settings = GatewaySettings(
            temporal_address=server.address,
            task_queue=DEFAULT_TASK_QUEUE,
            database_url=store.database_url,
            api_host=host,
            api_port=ports.api,
            temporal_ui_url=f"http://{host}:{ports.ui}",
            codec_keys_file=keys_file,
            auth_policy_file=policy_file,
        )
        worker_config = WorkerConfig(
            task_queue=DEFAULT_TASK_QUEUE,
            database_url=store.database_url,
            kubernetes=accounts.kubernetes,
            registries=accounts.registries,
            temporal_ui_url=settings.temporal_ui_url,
            health_interval_seconds=15,
            egress=DEV_EGRESS,
            bake=DEV_BAKE,
        )
        api = _QuietServer(
            uvicorn.Config(
                create_app(settings, client=client, store=store), host=host, port=ports.api, log_level="warning"
            )
        )
        # The pipeline worker plus one worker per account, reporting account health to the gateway.
        worker_task = asyncio.create_task(run_worker(worker_config, stop=stop, store=store, client=client))
        api_task = asyncio.create_task(api.serve())
        try:
            await guard.run(_started(api, api_task))
            announce(
                f"Gennaker dev stack is up (data in {data_dir}):\n"
                f"  gateway      http://{host}:{ports.api}   (OpenAPI docs at /docs)\n"
                f"  Temporal UI  http://{host}:{ports.ui}   (payloads are encrypted: in the UI's Data Encoder\n"
                f"               settings, set http://{host}:{ports.api}/codec to read them)\n"
                f"  Temporal     {server.address}  (temporal --address {server.address} workflow list)\n"
                f"  admin token  export GENNAKER_TOKEN=$(cat {data_dir / 'admin-token'})   (policy: {policy_file})\n"
                + "".join(f"  {note}\n" for note in accounts.notes)
                + "Press Ctrl-C to stop."
            )
            await guard.run(asyncio.wait([worker_task, api_task], return_when=asyncio.FIRST_COMPLETED))
        finally:
            announce("stopping…")
            api.should_exit = True
            stop.set()  # the workers end gracefully on the same event
            _, late = await asyncio.wait([worker_task, api_task], timeout=SHUTDOWN_SECONDS)
            for task in late:  # in-flight activities get what is left of the budget, not more
                task.cancel()
    except _Stopped:
        pass
    finally:
        accounts.cancelled = True
        died.cancel()
        await asyncio.to_thread(accounts.stop)
        store.close()
        server.stop(timeout=3)
    if died.done() and not died.cancelled() and died.exception() is not None:
        raise died.exception()  # type: ignore[misc]


# Ctrl-C must end the stack within 10 s in every state: the workers' and gateway's share of that.
SHUTDOWN_SECONDS = 5.0


class _Stopped(Exception):
    """Ctrl-C (or the Temporal server's death) interrupted the stack."""


class _Guard:
    """Runs each step of the stack until it ends, Ctrl-C is pressed, or the Temporal server dies."""

    def __init__(self, stop: asyncio.Event, died: asyncio.Task[None]) -> None:
        self._stop = stop
        self._died = died

    async def run(self, step: Awaitable[T]) -> T:
        task = asyncio.ensure_future(step)
        stopped = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait([task, stopped, self._died], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
        if self._died.done():  # first: a step may have failed only because the server is gone
            task.cancel()
            self._died.result()  # raises CliError
        if task.done():
            return task.result()
        task.cancel()
        raise _Stopped


async def _exited(server: TemporalDevServer) -> None:
    """Returns never while the server runs; raises CliError once it has exited."""
    process = server.process
    assert process is not None, "launch() first"
    # The thread ends when the process does, which `server.stop()` guarantees on every way out.
    code = await asyncio.to_thread(process.wait)
    raise CliError(
        f"the Temporal dev server exited (code {code}); see {server.log_file}. Stopping the stack.", EXIT_UNAVAILABLE
    )


async def _started(api: uvicorn.Server, task: asyncio.Task[None]) -> None:
    while not api.started and not task.done():  # noqa: ASYNC110 (uvicorn offers no event)
        await asyncio.sleep(0.05)
