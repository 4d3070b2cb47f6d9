"""Start a kubesim for tests: in a background thread, on a free loopback port, with a kubeconfig.

    sim = start_kubesim(ready_delay=0.1)
    client = kubernetes.config.new_client_from_config(config_file=str(sim.kubeconfig_path))
    ...
    sim.inject(error_burst={"count": 2, "code": 503})
    sim.inject(refuse_create=[{"resource": "horizontalpodautoscalers", "code": 403}])
    sim.stop()
"""

from __future__ import annotations

import asyncio
import json
import socket
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

from kubesim.kubeconfig import write_kubeconfig
from kubesim.server import ADMIN_PREFIX, Kubesim, Settings, create_app


@dataclass
class RunningKubesim:
    url: str
    kubeconfig_path: Path
    token: str | None
    sim: Kubesim
    _server: uvicorn.Server
    _thread: threading.Thread
    _loop: list[asyncio.AbstractEventLoop] = field(default_factory=list)

    @property
    def admin_url(self) -> str:
        return self.url + ADMIN_PREFIX

    def _admin(self, action: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = json.dumps(body or {}).encode() if body is not None else None
        request = urllib.request.Request(f"{self.admin_url}/{action}", data=data, method="POST" if data else "GET")
        with urllib.request.urlopen(request, timeout=10) as response:
            result: dict[str, Any] = json.loads(response.read())
            return result

    def inject(self, **faults: Any) -> dict[str, Any]:
        """Switch faults on: latency_ms=, error_burst={"count", "code"}, revoke_token=, forbid=[{verb, resource}],
        refuse_create=[{resource, namespace?, name?, code? (422, 403 or 400), message?, field?}]."""
        return self._admin("faults", faults)

    def faults(self) -> dict[str, Any]:
        return self._admin("faults")

    def reset_faults(self) -> dict[str, Any]:
        return self._admin("faults/reset", {})

    def drop_watches(self) -> int:
        return int(self._admin("watches/drop", {})["dropped"])

    def compact(self) -> str:
        """Forget watch history: watching from any earlier resourceVersion now gets 410 Gone."""
        return str(self._admin("compact", {})["resourceVersion"])

    def open_watches(self) -> int:
        return int(self._admin("state")["watches"])

    def new_client(self) -> Any:
        """An official `kubernetes.client.ApiClient` loaded from this kubesim's kubeconfig."""
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.kubeconfig_path))  # type: ignore[no-untyped-call]

    def stop(self) -> None:
        if self._loop:
            # End open watches first so the server need not wait for their clients.
            self._loop[0].call_soon_threadsafe(self.sim.store.drop_watches)
        self._server.should_exit = True
        self._thread.join(timeout=15)


def start_kubesim(
    ready_delay: float = 0.2,
    token: str | None = None,
    state_file: Path | None = None,
    *,
    seed: int | None = None,
    history_limit: int = 10_000,
    directory: Path | None = None,
) -> RunningKubesim:
    """Start a kubesim on a free loopback port and wait until it answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    settings = Settings(ready_delay=ready_delay, token=token, state_file=state_file, seed=seed,
                        history_limit=history_limit)
    sim = Kubesim(settings)
    sim.address = f"127.0.0.1:{port}"
    app = create_app(sim)
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    loops: list[asyncio.AbstractEventLoop] = []

    def run() -> None:
        async def serve() -> None:
            loops.append(asyncio.get_running_loop())
            await server.serve(sockets=[sock])

        asyncio.run(serve())

    thread = threading.Thread(target=run, name=f"kubesim-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("kubesim did not start")
        time.sleep(0.01)
    base = directory or Path(tempfile.mkdtemp(prefix="kubesim-"))
    kubeconfig_path = write_kubeconfig(base / "kubeconfig", url, token)
    return RunningKubesim(url, kubeconfig_path, token, sim, server, thread, loops)


def wait_until(check: Any, timeout: float = 10.0, interval: float = 0.02, what: str = "condition") -> Any:
    """Poll `check()` until it returns something truthy (and return that), or fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")
