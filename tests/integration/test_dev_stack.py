"""`gennaker dev`: the embedded stack (Temporal dev server + UI, worker, gateway) as a subprocess.

Each stack gets a port offset whose three ports are free. Every process a test starts is tracked,
including the Temporal server the stack starts in its own session, and killed by PID in teardown.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from stack.dev import DevPorts
from tests.support.cli_rig import EXAMPLES, GENNAKER, cli_env, gennaker, started_id
from tests.support.eventually import assert_eventually

UP_LINE = "is up"


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def bindable(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_offset() -> int:
    for offset in random.sample(range(150, 1000), 200):
        if all(bindable(p) and not listening(p) for p in DevPorts.with_offset(offset)):
            return offset
    raise RuntimeError("no free port offset for a dev stack")


def child_pids(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/children") as f:
                found += [int(p) for p in f.read().split()]
    return found


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@dataclass
class DevStack:
    data_dir: Path
    ports: DevPorts
    process: asyncio.subprocess.Process
    stdout: Path
    stderr: Path
    temporal_pids: list[int] = field(default_factory=list)

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.ports.api}"

    def output(self) -> str:
        return f"--- stdout\n{self.stdout.read_text()}\n--- stderr\n{self.stderr.read_text()}"

    async def wait_until_up(self, timeout: float = 45) -> None:
        def banner_or_exit() -> bool:
            if self.process.returncode is not None:
                raise RuntimeError(f"`gennaker dev` exited {self.process.returncode}\n{self.output()}")
            return UP_LINE in self.stdout.read_text()

        try:
            await assert_eventually(banner_or_exit, what=f"the {UP_LINE!r} line", timeout=timeout, interval=0.1)
        except AssertionError as missing:
            raise AssertionError(f"{missing}\n{self.output()}") from None
        self.remember_temporal()

    def remember_temporal(self) -> None:
        for pid in child_pids(self.process.pid):
            if "temporal" in cmdline(pid) and pid not in self.temporal_pids:
                self.temporal_pids.append(pid)

    async def interrupt(self, timeout: float = 15) -> int:
        self.remember_temporal()
        self.process.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            raise AssertionError(f"`gennaker dev` still running {timeout}s after SIGINT\n{self.output()}") from None
        assert self.process.returncode is not None
        return self.process.returncode

    async def kill(self) -> None:
        self.remember_temporal()
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(self.process.wait(), 15)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                await self.process.wait()
        for pid in self.temporal_pids:
            # Only the server this stack started: same PID and still serving this stack's data dir.
            if alive(pid) and str(self.data_dir) in cmdline(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


@pytest.fixture
async def stacks() -> AsyncIterator[list[DevStack]]:
    started: list[DevStack] = []
    yield started
    for stack in started:
        await stack.kill()


async def start_stack(
    stacks: list[DevStack],
    data_dir: Path,
    offset: int,
    logs: Path,
    *,
    unbuffered: bool = True,
    extra_env: dict[str, str] | None = None,
) -> DevStack:
    env = {**cli_env(None), **(extra_env or {})}
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"
    else:
        env.pop("PYTHONUNBUFFERED", None)
    logs.mkdir(parents=True, exist_ok=True)
    n = len(stacks)
    stdout, stderr = logs / f"dev{n}.out", logs / f"dev{n}.err"
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        process = await asyncio.create_subprocess_exec(
            GENNAKER, "dev", "--data-dir", str(data_dir), "--port-offset", str(offset), stdout=out, stderr=err, env=env
        )
    stack = DevStack(data_dir, DevPorts.with_offset(offset), process, stdout, stderr)
    stacks.append(stack)
    return stack


async def test_dev_stack_lifecycle(stacks: list[DevStack], tmp_path: Path) -> None:
    offset = free_offset()
    data_dir = tmp_path / "data"
    stack = await start_stack(stacks, data_dir, offset, tmp_path / "logs")
    await stack.wait_until_up()
    ports = stack.ports
    banner = stack.stdout.read_text()
    assert f"http://127.0.0.1:{ports.api}" in banner and f"http://127.0.0.1:{ports.ui}" in banner
    assert f"127.0.0.1:{ports.temporal}" in banner
    assert stack.temporal_pids, f"no temporal child of {stack.process.pid}"
    assert f"--port {ports.temporal}" in cmdline(stack.temporal_pids[0])

    token = (data_dir / "admin-token").read_text().strip()
    async with httpx.AsyncClient(base_url=stack.api, timeout=10, headers={"Authorization": f"Bearer {token}"}) as http:
        ready = await http.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"temporal": "ok", "store": "ok"}
        # Closed like any deployment: no token, no access.
        async with httpx.AsyncClient(base_url=stack.api, timeout=10) as anonymous:
            assert (await anonymous.get("/executions")).status_code == 401

        # With no kubeconfig the stack brings kubesim up as account local-sim, labelled a simulation.
        async def sim_account_healthy() -> bool:
            accounts = (await http.get("/accounts")).json()
            return any(a["name"] == "local-sim" and a["healthy"] and "simulation" in a["details"] for a in accounts)

        await assert_eventually(
            sim_account_healthy, what="account local-sim reported healthy", timeout=20, interval=0.1
        )
        assert "SIMULATED" in banner

        async def ui_answers() -> bool:
            try:
                async with httpx.AsyncClient(timeout=3) as ui:
                    return (await ui.get(f"http://127.0.0.1:{ports.ui}/")).status_code < 500
            except httpx.TransportError:
                return False

        await assert_eventually(ui_answers, what="the Temporal UI answers HTTP", timeout=15, interval=0.1)

        # A pipeline through the CLI, pointed at the stack by GENNAKER_API_URL.
        saved = await gennaker("save", str(EXAMPLES / "smoke-test.yaml"), api=stack.api, GENNAKER_TOKEN=token)
        assert saved.code == 0, str(saved)
        result = await gennaker(
            "run", str(EXAMPLES / "smoke-test.yaml"), "-p", "tag=v1", "--follow", api=stack.api, GENNAKER_TOKEN=token
        )
        assert result.code == 0, f"{result}\n{stack.output()}"
        execution = started_id(result)
        assert f"http://127.0.0.1:{ports.ui}/namespaces/default/workflows/{execution}/" in result.out
        state = (await http.get(f"/executions/{execution}")).json()
        assert state["status"] == "SUCCEEDED"

    # Ctrl-C stops everything: the process exits 0 and the Temporal server it started is gone.
    code = await stack.interrupt()
    assert code == 0, stack.output()
    assert "Traceback" not in stack.stderr.read_text(), stack.output()
    await assert_eventually(lambda: not listening(ports.temporal), what="Temporal port closed", timeout=5, interval=0.1)
    assert not listening(ports.api) and not listening(ports.ui)
    assert not any(alive(pid) for pid in stack.temporal_pids)

    # Again on the same data dir: the earlier execution and the saved pipeline are still there.
    again = await start_stack(stacks, data_dir, offset, tmp_path / "logs")
    await again.wait_until_up()
    # The same admin token still works after the restart (it is kept in the data dir).
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=again.api, timeout=10, headers=headers) as http:
        response = await http.get(f"/executions/{execution}")
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "SUCCEEDED" and response.json()["id"] == execution
        kept = await http.get("/applications/shop/pipelines/smoke-test")
        assert kept.status_code == 200 and kept.json()["revision"] == saved_revision(saved.out)

    # A second stack on the same ports refuses to start.
    clash = await start_stack(stacks, tmp_path / "other", offset, tmp_path / "logs")
    try:
        code = await asyncio.wait_for(clash.process.wait(), 20)
    except TimeoutError:
        raise AssertionError(f"second stack did not exit\n{clash.output()}") from None
    assert code == 3, clash.output()
    err = " ".join(clash.stderr.read_text().split())
    assert "already in use" in err and str(ports.api) in err, clash.output()
    assert "Traceback" not in err
    assert not (tmp_path / "other").exists()

    assert await again.interrupt() == 0, again.output()
    await assert_eventually(lambda: not listening(ports.temporal), what="Temporal port closed", timeout=5, interval=0.1)


def saved_revision(out: str) -> int:
    return int(out.split("revision")[-1].split()[0])


def environ(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/environ", "rb") as f:
        items = [item.decode(errors="replace") for item in f.read().split(b"\0") if item]
    return dict(item.partition("=")[::2] for item in items)


async def test_temporal_child_keeps_no_secrets_and_its_death_stops_the_stack(
    stacks: list[DevStack], tmp_path: Path
) -> None:
    secret = "trigger-secret-" + os.urandom(6).hex()
    stack = await start_stack(
        stacks,
        tmp_path / "data",
        free_offset(),
        tmp_path / "logs",
        unbuffered=False,
        extra_env={"GENNAKER_TRIGGER_SECRET_DEPLOYS": secret, "GENNAKER_TOKEN": "gnk_not-for-temporal"},
    )
    # Started without PYTHONUNBUFFERED, as a service manager would: the up banner still reaches the
    # log file while the stack runs (wait_until_up reads it there), not only when the process exits.
    await stack.wait_until_up()
    assert stack.temporal_pids, stack.output()
    server = stack.temporal_pids[0]
    inherited = environ(server)
    assert not [name for name in inherited if name.startswith("GENNAKER_")], sorted(inherited)
    assert secret not in repr(inherited)

    os.kill(server, signal.SIGKILL)  # the server crashes (OOM killer, a stray kill)
    try:
        await asyncio.wait_for(stack.process.wait(), 10)
    except TimeoutError:
        raise AssertionError(f"`gennaker dev` kept running without its Temporal server\n{stack.output()}") from None
    assert stack.process.returncode == 3, stack.output()
    err = stack.stderr.read_text()
    assert "Temporal dev server exited" in err and "Traceback" not in err, stack.output()
    assert not listening(stack.ports.api), "the gateway outlived the stack"


async def test_ctrl_c_while_starting_stops_everything_within_ten_seconds(
    stacks: list[DevStack], tmp_path: Path
) -> None:
    stack = await start_stack(stacks, tmp_path / "data", free_offset(), tmp_path / "logs")
    # Interrupt as soon as the Temporal server process exists, before the stack says it is up.
    await assert_eventually(
        lambda: (stack.remember_temporal(), bool(stack.temporal_pids))[1],
        what="the temporal child",
        timeout=30,
        interval=0.1,
    )
    assert UP_LINE not in stack.stdout.read_text()
    code = await stack.interrupt(timeout=10)
    assert code == 0, stack.output()
    assert "Traceback" not in stack.stderr.read_text(), stack.output()
    assert not any(alive(pid) for pid in stack.temporal_pids)
    assert not any(listening(port) for port in stack.ports), stack.output()
