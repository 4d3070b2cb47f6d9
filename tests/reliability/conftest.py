"""Fault-injection rig for the reliability tests (issue #7): worker processes that can be SIGKILLed,
a fault-injecting proxy in front of the registry, a Slack that answers slowly, and the report.

Only processes started here are ever signalled, by the PID this module got from Popen. Every wait is
bounded and says what it waited for. Random choices come from `reliability.rng(name)`, derived from
one seed per session (printed, and written into docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle

from core.store import PipelineStore
from tests.reliability.report import (  # noqa: F401  (hooks pytest finds in this conftest)
    ReliabilityReport,
    pytest_collection_finish,
    pytest_deselected,
    pytest_runtest_logreport,
    pytest_sessionfinish,
    pytest_terminal_summary,
    report_of,
)
from tests.support.docker_rig import SCRATCH_DOCKERFILE, docker_rig_fixture  # noqa: F401  (session `docker_rig`)
from tests.support.kube_rig import KubeRig, serve_rig, start_rig
from tests.support.worker_policy import TEST_BAKE, TEST_EGRESS
from tests.support.worker_process import ACTIVITY_QUEUE, WORKFLOW_QUEUE, WorkerSubprocess  # noqa: F401
from workers.devserver import TemporalDevServer, free_port
from workflows.model import parse_pipeline
from workflows.search import initial_attributes
from workflows.state import PIPELINE_WORKFLOW, ExecutionResult, ExecutionState, PipelineRunInput

# A bake context: the rig's FROM-scratch busybox image plus a file that makes each bake's content unique.
SCRATCH_BAKE = SCRATCH_DOCKERFILE + "COPY trial.txt /trial.txt\n"


@pytest.fixture(scope="session")
def reliability(request: pytest.FixtureRequest) -> ReliabilityReport:
    return report_of(request.config)


# ---- Temporal helpers -------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def own_temporal(directory: Path, name: str) -> AsyncIterator[TemporalDevServer]:
    """A dev server of this test alone (own SQLite file and ports): it may be killed, and workers that
    die with a half-reported account directory never touch the session server."""
    server = TemporalDevServer(
        db_file=directory / f"{name}.db", port=free_port(), ui_port=None, log_file=directory / f"{name}.log"
    )
    await asyncio.to_thread(server.start)
    try:
        yield server
    finally:
        await asyncio.to_thread(server.stop)


@contextlib.asynccontextmanager
async def served_kube(client: Client, ready_delay: float) -> AsyncIterator[KubeRig]:
    """A kubesim account (pods ready after `ready_delay` s) served by an in-process account worker."""
    rig = await asyncio.to_thread(start_rig, ready_delay)
    if rig.sim is None:
        pytest.skip("needs kubesim (fault injection, ready delay)")
    # The reliability suite runs its own workers, not the session's directory worker.
    async for served in serve_rig(client, rig, directory_served=False):
        yield served


async def start_pipeline(
    client: Client,
    queue: str,
    spec: dict[str, Any],
    *,
    prefix: str = "rel",
    account_queues: dict[str, str] | None = None,
) -> WorkflowHandle[Any, ExecutionResult]:
    parsed = parse_pipeline(spec)
    return await client.start_workflow(
        PIPELINE_WORKFLOW,
        PipelineRunInput(pipeline=parsed, parameters={}, accountQueues=account_queues or {}),
        id=f"{prefix}-{parsed.name}-{uuid.uuid4().hex[:8]}",
        task_queue=queue,
        result_type=ExecutionResult,
        search_attributes=initial_attributes(parsed.application, parsed.name, "manual"),
    )


async def state_of(handle: WorkflowHandle[Any, Any]) -> ExecutionState:
    state: ExecutionState = await handle.query("state", result_type=ExecutionState)
    return state


async def query_until(
    handle: WorkflowHandle[Any, Any], predicate: Callable[[ExecutionState], bool], timeout: float, what: str
) -> ExecutionState:
    deadline = asyncio.get_running_loop().time() + timeout
    state: ExecutionState | None = None
    while True:
        with contextlib.suppress(Exception):  # a query may fail while a worker takes over
            state = await asyncio.wait_for(state_of(handle), 10)
            if predicate(state):
                return state
        if asyncio.get_running_loop().time() > deadline:
            shown = state.model_dump_json(indent=1) if state else "(no answer to the state query)"
            raise AssertionError(f"{handle.id}: {what} not reached within {timeout:g}s; last state: {shown}")
        await asyncio.sleep(0.1)


async def finish(handle: WorkflowHandle[Any, Any], timeout: float, what: str = "the run") -> ExecutionState:
    """Wait for the workflow to close (any outcome) and return its final state."""
    try:
        await asyncio.wait_for(handle.result(), timeout)
    except TimeoutError:
        state = None
        with contextlib.suppress(Exception):
            state = await asyncio.wait_for(state_of(handle), 5)
        shown = state.model_dump_json(indent=1) if state else "(no answer)"
        raise AssertionError(f"{handle.id}: {what} did not finish within {timeout:g}s; state: {shown}") from None
    except Exception:
        pass  # TERMINAL / CANCELED runs raise; the state says what happened
    return await state_of(handle)


@dataclass(frozen=True)
class Attempt:
    activity: str
    attempt: int
    last_failure: str


async def activity_attempts(handle: WorkflowHandle[Any, Any]) -> list[Attempt]:
    """Every ActivityTaskStarted of the run with its attempt number (the server writes one Started event
    per activity, carrying the attempt that finished it and the failure of the one before)."""
    history = await handle.fetch_history()
    scheduled: dict[int, str] = {}
    found: list[Attempt] = []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled[event.event_id] = event.activity_task_scheduled_event_attributes.activity_type.name
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attrs = event.activity_task_started_event_attributes
            found.append(
                Attempt(scheduled.get(attrs.scheduled_event_id, "?"), attrs.attempt, attrs.last_failure.message)
            )
    return found


async def running_at(handle: WorkflowHandle[Any, Any], at: datetime) -> list[str] | None:
    """What the run was doing at wall-clock time `at`, from its history: the activities scheduled before
    and closed after it (`timer` for a timer); [] for a running workflow with nothing in flight, None if
    the run had already closed."""
    history = await handle.fetch_history()
    opened: dict[int, tuple[str, datetime]] = {}
    closed: dict[int, datetime] = {}
    ended: datetime | None = None
    for event in history.events:
        when = event.event_time.ToDatetime(tzinfo=UTC)
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            opened[event.event_id] = (event.activity_task_scheduled_event_attributes.activity_type.name, when)
        elif kind == EventType.EVENT_TYPE_TIMER_STARTED:
            opened[event.event_id] = ("timer", when)
        elif kind in ACTIVITY_CLOSED:
            closed[getattr(event, ACTIVITY_CLOSED[kind]).scheduled_event_id] = when
        elif kind == EventType.EVENT_TYPE_TIMER_FIRED:
            closed[event.timer_fired_event_attributes.started_event_id] = when
        elif kind == EventType.EVENT_TYPE_TIMER_CANCELED:
            closed[event.timer_canceled_event_attributes.started_event_id] = when
        elif kind in WORKFLOW_CLOSED:
            ended = when
    if ended is not None and ended <= at:
        return None
    return sorted(name for key, (name, since) in opened.items() if since <= at and closed.get(key, at) >= at)


ACTIVITY_CLOSED = {
    EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: "activity_task_completed_event_attributes",
    EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED: "activity_task_failed_event_attributes",
    EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: "activity_task_timed_out_event_attributes",
    EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED: "activity_task_canceled_event_attributes",
}
WORKFLOW_CLOSED = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT,
}


# ---- worker processes -------------------------------------------------------------------------------


def worker_config(
    address: str,
    queue: str,
    directory: Path,
    *,
    kubernetes: list[dict[str, Any]] = (),  # type: ignore[assignment]
    registries: list[dict[str, Any]] = (),  # type: ignore[assignment]
) -> dict[str, Any]:
    database_url = f"sqlite:///{directory / 'store.db'}"
    PipelineStore(database_url).close()  # the schema exists before any worker reads it
    return {
        "temporal_address": address,
        "task_queue": queue,
        "database_url": database_url,
        "activity_threads": 16,
        "health_interval_seconds": 3600,
        "serve_pipelines": True,
        "kubernetes": list(kubernetes),
        "registries": list(registries),
        # The suite's fake services and build contexts are on loopback and in temp dirs.
        "egress": TEST_EGRESS.model_dump(mode="json"),
        "bake": TEST_BAKE.model_dump(mode="json"),
    }


# ---- a registry proxy that can fail ------------------------------------------------------------------

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


@dataclass
class FailRule:
    matches: Callable[[str, str], bool]  # (method, path)
    count: int
    status: int = 503


@dataclass
class Seen:
    method: str
    path: str
    status: int


@dataclass
class RegistryProxy:
    """An HTTP proxy on loopback in front of docker-registry. It forwards everything unchanged (the
    Host header too, so the registry's upload URLs point back at the proxy), records each request,
    and answers the registry's own 503 error for the next N requests that match a rule."""

    upstream: str
    seen: list[Seen] = field(default_factory=list)
    rules: list[FailRule] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        proxy = self
        http = httpx.Client(base_url=f"http://{self.upstream}", timeout=60, follow_redirects=False)
        self._http = http

        class Handler(BaseHTTPRequestHandler):
            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _serve(self) -> None:
                body = self._body()
                path = self.path.split("?", 1)[0]
                injected = proxy._injected(self.command, path)
                if injected is not None:
                    payload = json.dumps(
                        {"errors": [{"code": "UNAVAILABLE", "message": "injected fault: service unavailable"}]}
                    ).encode()
                    self._reply(injected, {"Content-Type": "application/json"}, payload)
                    proxy._record(self.command, path, injected)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP | {"content-length"}}
                request = http.build_request(self.command, self.path, headers=headers, content=body)
                try:
                    response = http.send(request, stream=True)
                except httpx.TransportError as exc:
                    self._reply(502, {"Content-Type": "text/plain"}, f"proxy: upstream failed: {exc}".encode())
                    proxy._record(self.command, path, 502)
                    return
                try:
                    raw = b"".join(response.iter_raw())
                finally:
                    response.close()
                out = {k: v for k, v in response.headers.items() if k.lower() not in HOP_BY_HOP}
                if self.command != "HEAD":
                    out["content-length"] = str(len(raw))
                self._reply(response.status_code, out, raw)
                proxy._record(self.command, path, response.status_code)

            def _reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                if "content-length" not in {k.lower() for k in headers}:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD" and body:
                    with contextlib.suppress(OSError):
                        self.wfile.write(body)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, name="registry-proxy", daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{host!s}:{port}"

    def fail(self, matches: Callable[[str, str], bool], count: int, status: int = 503) -> FailRule:
        rule = FailRule(matches, count, status)
        with self.lock:
            self.rules.append(rule)
        return rule

    def _injected(self, method: str, path: str) -> int | None:
        with self.lock:
            for rule in self.rules:
                if rule.count > 0 and rule.matches(method, path):
                    rule.count -= 1
                    return rule.status
        return None

    def _record(self, method: str, path: str, status: int) -> None:
        with self.lock:
            self.seen.append(Seen(method, path, status))

    def requests(self, method: str | None = None, prefix: str = "") -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if (method is None or s.method == method) and s.path.startswith(prefix)]

    def manifest_puts(self, repository: str, tag: str) -> list[Seen]:
        """Successful pushes of `repository:tag` (a second one would be a duplicate bake)."""
        return [
            s
            for s in self.requests("PUT", f"/v2/{repository}/manifests/{tag}")
            if s.path == f"/v2/{repository}/manifests/{tag}" and s.status in (200, 201)
        ]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._http.close()


# ---- a Slack incoming webhook that answers slowly ------------------------------------------------------


@dataclass
class SlackPost:
    path: str
    text: str
    answered: bool = False


class SlowSlack:
    """Records each POST the moment its body has arrived (Slack has posted the message by then), then
    takes `delay` seconds to answer 200 "ok" — a window in which a worker crash loses the answer."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.posts: list[SlackPost] = []
        self.lock = threading.Lock()
        slack = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    text = str(json.loads(body).get("text", ""))
                except ValueError:
                    text = ""
                post = SlackPost(self.path, text)
                with slack.lock:
                    slack.posts.append(post)
                time.sleep(slack.delay)
                with contextlib.suppress(OSError):
                    self.send_response(200)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                    post.answered = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, name="slow-slack", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def received(self, path: str) -> list[SlackPost]:
        with self.lock:
            return [p for p in self.posts if p.path == path]

    def in_flight(self) -> int:
        with self.lock:
            return sum(1 for p in self.posts if not p.answered)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
