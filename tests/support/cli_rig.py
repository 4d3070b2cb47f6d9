"""The `gennaker` console script run as people run it (real subprocesses), and a `gennaker api`
subprocess for it to talk to; the session shares one (tests/integration/conftest.py: `cli_gateway`)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.support.eventually import assert_eventually
from workers.devserver import free_port

GENNAKER = str(Path(sys.executable).parent / "gennaker")
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def flat_err(self) -> str:
        """stderr with line wrapping undone (rich wraps long lines)."""
        return " ".join(self.err.split())

    @property
    def flat_out(self) -> str:
        return " ".join(self.out.split())

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


def cli_env(api: str | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENNAKER_") or k == "GENNAKER_CODEC_KEYS_FILE"}
    env["COLUMNS"] = "250"  # rich wraps at 80 columns when not on a terminal
    env["USER"] = env.get("USER", "cli-tester")
    if api is not None:
        env["GENNAKER_API_URL"] = api
    env.update(extra)
    return env


async def gennaker(*args: str, api: str | None = None, timeout: float = 60, **env: str) -> Result:
    process = await asyncio.create_subprocess_exec(
        GENNAKER,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=cli_env(api, **env),
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"`gennaker {' '.join(args)}` did not finish in {timeout}s") from None
    assert process.returncode is not None
    return Result(process.returncode, out.decode(), err.decode())


def failed_cleanly(result: Result, code: int) -> None:
    assert result.code == code, str(result)
    assert "Traceback" not in result.err and "Traceback" not in result.out, str(result)


@asynccontextmanager
async def gateway_process(
    temporal_address: str, task_queue: str, database_url: str, log_path: Path
) -> AsyncIterator[str]:
    """`gennaker api` on a free loopback port, without auth (identities from --user); yields its URL
    once it answers /readyz, and stops it (SIGTERM, then SIGKILL) on the way out."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = cli_env(
        None,
        GENNAKER_TEMPORAL_ADDRESS=temporal_address,
        GENNAKER_TASK_QUEUE=task_queue,
        GENNAKER_DATABASE_URL=database_url,
        GENNAKER_AUTH_DISABLED="true",  # identities from --user here; token use is tested in test_auth.py
    )
    with open(log_path, "wb") as log:
        process = await asyncio.create_subprocess_exec(
            GENNAKER, "api", "--host", "127.0.0.1", "--port", str(port), env=env, stdout=log, stderr=log
        )
    try:
        async with httpx.AsyncClient(base_url=url, timeout=2) as http:

            async def ready() -> int:
                if process.returncode is not None:
                    raise RuntimeError(f"gateway exited {process.returncode}: {log_path.read_text()}")
                return (await http.get("/readyz")).status_code

            try:
                await assert_eventually(
                    ready,
                    lambda status: status == 200,
                    what="the gateway answers /readyz",
                    timeout=90,  # an interpreter importing the whole gateway on a busy 2-core machine
                    interval=0.1,
                    retry_on=(httpx.TransportError,),
                )
            except AssertionError as late:
                raise AssertionError(f"{late}\n{log_path.read_text()}") from None
        yield url
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()


async def state_of(http: httpx.AsyncClient, execution_id: str) -> dict[str, Any]:
    response = await http.get(f"/executions/{execution_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def stage_of(state: dict[str, Any], ref: str) -> dict[str, Any]:
    return next(s for s in state["stages"] if s["refId"] == ref)


async def until_waiting(http: httpx.AsyncClient, execution_id: str, ref: str) -> dict[str, Any]:
    result: dict[str, Any] = await assert_eventually(
        lambda: state_of(http, execution_id),
        lambda s: stage_of(s, ref)["waitingForJudgment"],
        what=f"{ref} waiting",
        timeout=20,
    )
    return result


async def until_final(http: httpx.AsyncClient, execution_id: str) -> dict[str, Any]:
    result: dict[str, Any] = await assert_eventually(
        lambda: state_of(http, execution_id),
        lambda s: s["status"] in ("SUCCEEDED", "TERMINAL", "CANCELED"),
        what="a final status",
        timeout=20,
    )
    return result


def started_id(result: Result) -> str:
    found = re.search(r"started (\S+)", result.out)
    assert found, str(result)
    return found.group(1)


def write_pipeline(directory: Path, *stages: dict[str, Any], app: str = "clitest", **extra: Any) -> Path:
    name = f"p-{uuid.uuid4().hex[:8]}"
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"application": app, "name": name, "stages": list(stages), **extra}))
    return path


def wait(ref: str, seconds: float = 0.1, *parents: str) -> dict[str, Any]:
    return {"refId": ref, "type": "wait", "waitTime": seconds, "requisiteStageRefIds": list(parents)}


def judgment(ref: str, *parents: str, **extra: Any) -> dict[str, Any]:
    return {"refId": ref, "type": "manualJudgment", "requisiteStageRefIds": list(parents), **extra}
