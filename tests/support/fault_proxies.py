"""Fault-injecting services for the reliability tests: a proxy in front of the registry that fails
the requests a test names, and a Slack incoming webhook that answers slowly."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

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
from tests.support.worker_process import ACTIVITY_QUEUE, WORKFLOW_QUEUE, WorkerSubprocess  # noqa: F401

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
