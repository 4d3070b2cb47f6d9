"""A Gennaker worker as its own OS process (`python -m workers.main`), for tests that crash workers."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

PROJECT_ROOT = Path(__file__).resolve().parents[2]
WORKFLOW_QUEUE = TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW
ACTIVITY_QUEUE = TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY


class WorkerSubprocess:
    """`python -m workers.main` configured by a gennaker.yaml ($GENNAKER_CONFIG), like a deployment:
    pipeline queue plus one queue per account. `kill()` is SIGKILL, as a crash would be."""

    def __init__(
        self, config: dict[str, Any], directory: Path, name: str, sticky_timeout_seconds: float | None = 1
    ) -> None:
        self.name = name
        self.config_path = directory / f"{name}.yaml"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        env = {k: v for k, v in os.environ.items() if not k.startswith("GENNAKER_")}
        env["GENNAKER_CONFIG"] = str(self.config_path)
        if os.environ.get("GENNAKER_CODEC_KEYS_FILE"):  # payload encryption, as the session runs
            env["GENNAKER_CODEC_KEYS_FILE"] = os.environ["GENNAKER_CODEC_KEYS_FILE"]
        if sticky_timeout_seconds is not None:  # how soon a crashed worker's workflows move on
            env["GENNAKER_STICKY_TIMEOUT_SECONDS"] = str(sticky_timeout_seconds)
        env["PYTHONPATH"] = str(PROJECT_ROOT)
        self.log_file = directory / f"{name}.log"
        self._log = self.log_file.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "workers.main"],
            cwd=directory,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")[-4000:]

    async def wait_polling(
        self, client: Client, queues: dict[str, TaskQueueType.ValueType], timeout: float = 45
    ) -> None:
        """Until the server lists this process (SDK identity `<pid>@<host>`) as a poller of every queue."""
        deadline = asyncio.get_running_loop().time() + timeout
        missing = dict(queues)
        while missing:
            if self.process.poll() is not None:
                raise AssertionError(f"worker {self.name} exited with {self.process.returncode}:\n{self.log()}")
            for queue, kind in list(missing.items()):
                request = DescribeTaskQueueRequest(
                    namespace=client.namespace, task_queue=TaskQueue(name=queue), task_queue_type=kind
                )
                try:
                    response = await client.workflow_service.describe_task_queue(request, timeout=timedelta(seconds=10))
                except RPCError as exc:
                    # A loaded dev server can cancel or time out one describe; ask again until the deadline.
                    if exc.status not in (
                        RPCStatusCode.CANCELLED,
                        RPCStatusCode.DEADLINE_EXCEEDED,
                        RPCStatusCode.UNAVAILABLE,
                    ):
                        raise
                    continue
                if any(p.identity.startswith(f"{self.pid}@") for p in response.pollers):
                    del missing[queue]
            if missing and asyncio.get_running_loop().time() > deadline:
                raise AssertionError(
                    f"worker {self.name} not polling {', '.join(missing)} after {timeout:g}s:\n{self.log()}"
                )
            await asyncio.sleep(0.1)

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self._log.close()
