"""`gennaker dev`: the embedded stack in one process tree.

A Temporal dev server (SQLite under the data dir, Web UI), the pipeline worker and the gateway.
Ctrl-C stops all three; the next run on the same data dir finds its executions and pipelines again.
With `--config gennaker.yaml` (the file `gennaker worker` takes) its accounts, registries, Jenkins
masters, notification channels and script settings join the embedded worker, and its gateway keys
(trigger secrets, OIDC, policy) the embedded gateway; see docs/dev-stack.md.

The Temporal UI is started with the gateway's codec endpoint under a per-run random key
(`/codec/dev/<key>`), so it shows decrypted inputs and results with nothing to type; see
docs/temporal-ui.md for what that key protects and what it does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import secrets
import signal
import socket
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import uvicorn
import yaml
from pydantic import ValidationError

from activities.bake import BakeSettings
from activities.egress import EgressPolicy
from api.app import create_app
from api.settings import GatewaySettings
from core.codec import CodecKeys
from core.settings import ConfigError
from core.store import PipelineStore
from core.store.tokens import TokenStore
from core.temporal import connect
from workers.config import WorkerConfig
from workers.dev_accounts import DevAccounts, start_dev_accounts
from workers.devserver import TemporalDevServer
from workers.gateway_client import EXIT_UNAVAILABLE, CliError
from workers.main import run_worker
from workers.runner import DEFAULT_TASK_QUEUE
from workers.telemetry import install_worker_telemetry, observe_worker_client

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
    config: Path | None = None,
) -> None:
    try:  # before anything starts: a bad file is exit 2 with the file's problem
        file_worker, file_gateway = read_dev_config(config) if config is not None else (None, None)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
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

    # A fresh key per run: the UI's codec endpoint. It stops working when the stack stops.
    codec_key = secrets.token_urlsafe(24)
    codec_endpoint = f"http://{host}:{ports.api}/codec/dev/{codec_key}"
    server = TemporalDevServer(
        db_file=data_dir / "temporal.db",
        port=ports.temporal,
        ui_port=ports.ui,
        log_file=data_dir / "temporal.log",
        ui_codec_endpoint=codec_endpoint,
    )
    store_url = f"sqlite:///{(data_dir / 'gennaker.db').resolve()}"
    # Opening the store migrates its schema (core/store/migrate.py): blocking work, so on a thread.
    policy_file = await asyncio.to_thread(_dev_access, data_dir, store_url)
    keys_file = data_dir / "codec-keys.yaml"
    if not keys_file.exists():
        CodecKeys.write_new(keys_file)
    store = await asyncio.to_thread(PipelineStore, store_url)
    accounts = DevAccounts()
    server.launch()
    died = asyncio.create_task(_exited(server))
    guard = _Guard(stop, died)
    try:
        await guard.run(asyncio.to_thread(server.wait_ready))
        await guard.run(
            asyncio.to_thread(start_dev_accounts, data_dir, port_offset, ports.api, kubeconfig, kube_context, accounts)
        )
        telemetry = install_worker_telemetry(logging=False)  # GENNAKER_METRICS_ADDRESS: before the connection
        client = await guard.run(connect(server.address, codec_keys_file=keys_file))
        settings = dev_gateway_settings(
            file_gateway,
            temporal_address=server.address,
            task_queue=DEFAULT_TASK_QUEUE,
            database_url=store.database_url,
            api_host=host,
            api_port=ports.api,
            temporal_ui_url=f"http://{host}:{ports.ui}",
            codec_keys_file=keys_file,
            auth_policy_file=policy_file,
        )
        worker_config = dev_worker_config(
            file_worker,
            accounts,
            task_queue=DEFAULT_TASK_QUEUE,
            database_url=store.database_url,
            temporal_ui_url=settings.temporal_ui_url,
            gateway_url=f"http://{host}:{ports.api}",
            auth_policy_file=settings.auth_policy_file,  # pipeline triggers act under the gateway's policy
        )
        app = create_app(settings, client=client, store=store)
        app.state.codec_path_key = codec_key  # enables /codec/dev/<key> (api/routers/codec.py)
        api = _QuietServer(uvicorn.Config(app, host=host, port=ports.api, log_level="warning"))
        # The pipeline worker plus one worker per account, reporting account health to the gateway.
        worker_client = observe_worker_client(client, telemetry.tracer_provider)
        worker_task = asyncio.create_task(run_worker(worker_config, stop=stop, store=store, client=worker_client))
        api_task = asyncio.create_task(api.serve())
        try:
            await guard.run(_started(api, api_task))
            announce(
                f"Gennaker dev stack is up (data in {data_dir}):\n"
                f"  gateway      http://{host}:{ports.api}   (OpenAPI docs at /docs)\n"
                f"  Temporal UI  http://{host}:{ports.ui}   (decrypts through the gateway's codec endpoint\n"
                f"               for this run; summaries and current details are stored in clear)\n"
                f"  Temporal     {server.address}  (temporal --address {server.address} workflow list)\n"
                f"  admin token  export GENNAKER_TOKEN=$(cat {data_dir / 'admin-token'})   (policy: {policy_file})\n"
                + (f"  config       {config}\n" if config is not None else "")
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


def read_dev_config(path: Path) -> tuple[WorkerConfig, GatewaySettings]:
    """One file for the embedded worker and gateway: each takes its own keys (`gennaker worker`
    refuses gateway keys, so a worker's file is read as it is); a key neither knows is an error."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must be a YAML mapping")
    data = {str(key).replace("-", "_"): value for key, value in data.items()}
    worker_keys, gateway_keys = set(WorkerConfig.model_fields), set(GatewaySettings.model_fields)
    unknown = sorted(set(data) - worker_keys - gateway_keys)
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(unknown)}")
    try:
        worker = WorkerConfig(**{k: v for k, v in data.items() if k in worker_keys})
        gateway = GatewaySettings(**{k: v for k, v in data.items() if k in gateway_keys})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{path}: {problems}") from None
    return worker, gateway


def dev_gateway_settings(from_file: GatewaySettings | None, **stack: object) -> GatewaySettings:
    """The embedded gateway: the dev stack's own addresses and store over what the file says
    (trigger secrets, OIDC, CORS); the file's `auth_policy_file` wins over the dev policy."""
    if from_file is None:
        return GatewaySettings(**stack)  # type: ignore[arg-type]
    if from_file.auth_policy_file is not None:
        stack["auth_policy_file"] = from_file.auth_policy_file
    return from_file.model_copy(update=stack)


def dev_worker_config(
    from_file: WorkerConfig | None, accounts: DevAccounts, gateway_url: str, **stack: object
) -> WorkerConfig:
    """The embedded worker: the file's accounts, registries, Jenkins, notifications and scripts
    beside the dev stack's own accounts (kubesim or --kubeconfig, the local registry)."""
    base = from_file or WorkerConfig()
    taken = {a.name for a in accounts.kubernetes} & {a.name for a in base.kubernetes}
    taken |= {a.name for a in accounts.registries} & {a.name for a in base.registries}
    if taken:
        raise CliError(
            f"account name(s) {', '.join(sorted(taken))} in the config file are the dev stack's own; rename them"
        )
    update: dict[str, object] = {
        **stack,
        "kubernetes": [*accounts.kubernetes, *base.kubernetes],
        "registries": [*accounts.registries, *base.registries],
        "health_interval_seconds": 15,
    }
    if base.gateway_url is None:
        update["gateway_url"] = gateway_url
    # The dev stack's own outbound and bake policy, unless the file sets one (docs/security.md).
    if "egress" not in base.model_fields_set:
        update["egress"] = DEV_EGRESS
    if "bake" not in base.model_fields_set:
        update["bake"] = DEV_BAKE
    return base.model_copy(update=update)


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
