"""Small real HTTP servers on loopback that answer the way the real services document, and record
every request they get. Each runs a ThreadingHTTPServer in a daemon thread; use them as context
managers. Formats followed:

- Slack incoming webhooks: 200 with the plain-text body `ok`; 400 `invalid_payload` / `no_text`,
  403 `action_prohibited`, 404 `channel_not_found`, 410 `channel_is_archived`, 500 `rollup_error`
  (https://api.slack.com/changelog/2016-05-17-changes-to-errors-for-incoming-webhooks).
- Twilio Messages: POST /2010-04-01/Accounts/{AccountSid}/Messages.json, HTTP basic auth
  AccountSid:AuthToken, form fields To/From/Body; 201 Created with the Message resource (`sid`
  "SM…", `status` "queued", `direction` "outbound-api", `api_version` "2010-04-01", `uri`…); errors
  are JSON `{code, message, more_info, status}` (https://www.twilio.com/docs/messaging/api/message-resource,
  https://www.twilio.com/docs/errors/20003).
- Jenkins remote access API (https://wiki.jenkins.io/display/jenkins/remote+access+api): GET
  /crumbIssuer/api/json -> `{_class: hudson.security.csrf.DefaultCrumbIssuer, crumb,
  crumbRequestField: Jenkins-Crumb}` bound to the session cookie; POST /job/<name>/build or
  /buildWithParameters -> 201 with `Location: <root>/queue/item/<id>/` (Jenkins 1.519+, JENKINS-23235);
  GET /queue/item/<id>/api/json -> `why` while waiting, then `executable: {number, url}`; GET
  /job/<name>/<n>/api/json -> `building`, `result` (null while building), `duration`, `artifacts:
  [{displayPath, fileName, relativePath}]`; /job/<name>/<n>/artifact/<path>; POST …/<n>/stop.
"""

from __future__ import annotations

import base64
import itertools
import json
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}

    def basic_auth(self) -> tuple[str, str] | None:
        value = self.headers.get("authorization", "")
        if not value.startswith("Basic "):
            return None
        user, _, password = base64.b64decode(value[6:]).decode().partition(":")
        return user, password


@dataclass
class Reply:
    status: int = 200
    body: Any = b""
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> tuple[bytes, str]:
        if isinstance(self.body, bytes):
            return self.body, "application/octet-stream"
        if isinstance(self.body, str):
            return self.body.encode(), "text/plain; charset=utf-8"
        return json.dumps(self.body).encode(), "application/json"


class FakeService:
    """Base: subclasses implement `handle`; `requests` lists what came in, in order."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.lock = threading.Lock()
        service = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                req = Recorded(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length) if length else b"",
                )
                with service.lock:
                    service.requests.append(req)
                    reply = service.handle(req)
                body, content_type = reply.encoded()
                self.send_response(reply.status)
                headers = {"Content-Type": content_type, **reply.headers, "Content-Length": str(len(body))}
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def handle(self, req: Recorded) -> Reply:
        raise NotImplementedError

    def received(self, method: str | None = None, path_prefix: str = "") -> list[Recorded]:
        with self.lock:
            return [
                r for r in self.requests if (method is None or r.method == method) and r.path.startswith(path_prefix)
            ]

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class FakeHttp(FakeService):
    """A generic endpoint: `route(method, path, *replies)` answers in order, repeating the last;
    a reply may be a callable of the request. Unrouted requests get 404."""

    def __init__(self) -> None:
        super().__init__()
        self._routes: dict[tuple[str, str], list[Reply | Callable[[Recorded], Reply]]] = {}

    def route(self, method: str, path: str, *replies: Reply | Callable[[Recorded], Reply]) -> str:
        with self.lock:
            self._routes[(method, path)] = list(replies)
        return self.url + path

    def handle(self, req: Recorded) -> Reply:
        queue = self._routes.get((req.method, req.path))
        if not queue:
            return Reply(404, {"error": f"no route {req.method} {req.path}"})
        reply = queue.pop(0) if len(queue) > 1 else queue[0]
        return reply(req) if callable(reply) else reply


class FakeSlack(FakeService):
    """An incoming webhook at /services/T0001/B0001/<token>; set `fail` to answer an error once."""

    path = "/services/T0001/B0001/Xy12"

    def __init__(self) -> None:
        super().__init__()
        self.fail: list[Reply] = []

    @property
    def webhook_url(self) -> str:
        return self.url + self.path

    def handle(self, req: Recorded) -> Reply:
        if req.method != "POST" or req.path != self.path:
            return Reply(404, "no_service")
        if self.fail:
            return self.fail.pop(0)
        try:
            payload = req.json()
        except ValueError:
            return Reply(400, "invalid_payload")
        if not payload.get("text") and not payload.get("blocks"):
            return Reply(400, "no_text")
        return Reply(200, "ok")


class FakeTwilio(FakeService):
    def __init__(self, account_sid: str = "AC" + "0" * 32, auth_token: str = "twilio-token") -> None:
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token
        self._ids = itertools.count(1)

    def _error(self, status: int, code: int, message: str) -> Reply:
        more = f"https://www.twilio.com/docs/errors/{code}"
        return Reply(status, {"code": code, "message": message, "more_info": more, "status": status})

    def handle(self, req: Recorded) -> Reply:
        expected = f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        if req.path != expected:
            return self._error(404, 20404, "The requested resource was not found")
        if req.basic_auth() != (self.account_sid, self.auth_token):
            return self._error(401, 20003, "Authenticate")
        form = req.form()
        if not form.get("To"):
            return self._error(400, 21604, "A 'To' phone number is required.")
        if not form.get("Body"):
            return self._error(400, 21602, "Message body is required.")
        sid = f"SM{next(self._ids):032x}"
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json"
        return Reply(
            201,
            {
                "sid": sid,
                "account_sid": self.account_sid,
                "to": form["To"],
                "from": form.get("From"),
                "body": form["Body"],
                "status": "queued",
                "num_segments": "1",
                "direction": "outbound-api",
                "api_version": "2010-04-01",
                "price": None,
                "error_code": None,
                "error_message": None,
                "uri": uri,
                "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
            },
        )


@dataclass
class JenkinsJob:
    result: str = "SUCCESS"
    queue_polls: int = 1  # queue item polls answered "waiting" before the build starts
    build_polls: int = 2  # build polls answered building=true
    files: dict[str, str] = field(default_factory=dict)  # archived artifacts: relativePath -> content


@dataclass
class _Build:
    job: str
    number: int
    parameters: dict[str, str]
    polls: int = 0
    aborted: bool = False


class FakeJenkins(FakeService):
    def __init__(self, username: str = "ci", api_token: str = "jenkins-token") -> None:
        super().__init__()
        self.username, self.api_token = username, api_token
        self.jobs: dict[str, JenkinsJob] = {}
        self.errors: dict[str, int] = {}  # path prefix -> how many 500s to answer first
        self._crumbs: dict[str, str] = {}  # session cookie -> crumb
        self._queue: dict[int, tuple[_Build, int]] = {}  # id -> build, polls so far
        self._cancelled: set[int] = set()
        self._ids = itertools.count(100)
        self._numbers: dict[str, itertools.count[int]] = {}

    def triggered(self) -> list[Recorded]:
        return [r for r in self.received("POST") if r.path.endswith(("/build", "/buildWithParameters"))]

    def handle(self, req: Recorded) -> Reply:
        if req.basic_auth() != (self.username, self.api_token):
            return Reply(401, "Unauthorized", {"WWW-Authenticate": 'Basic realm="Jenkins"'})
        for prefix, count in self.errors.items():
            if count and req.path.startswith(prefix):
                self.errors[prefix] = count - 1
                return Reply(500, "Jetty: Server Error")
        if req.path == "/crumbIssuer/api/json":
            session, crumb = secrets.token_hex(8), secrets.token_hex(16)
            self._crumbs[session] = crumb
            body = {
                "_class": "hudson.security.csrf.DefaultCrumbIssuer",
                "crumb": crumb,
                "crumbRequestField": "Jenkins-Crumb",
            }
            return Reply(200, body, {"Set-Cookie": f"JSESSIONID.fake={session}; Path=/; HttpOnly"})
        if req.method == "POST" and not self._crumb_ok(req):
            return Reply(403, "No valid crumb was included in the request")
        parts = [p for p in req.path.strip("/").split("/") if p]
        if parts[:2] == ["queue", "item"]:
            return self._queue_item(int(parts[2]))
        if parts == ["queue", "cancelItem"]:
            self._cancelled.add(int(req.query["id"][0]))
            return Reply(302, b"", {"Location": f"{self.url}/queue/"})
        return self._job(req, parts)

    def _crumb_ok(self, req: Recorded) -> bool:
        cookies = dict(c.strip().split("=", 1) for c in req.headers.get("cookie", "").split(";") if "=" in c)
        crumb = self._crumbs.get(cookies.get("JSESSIONID.fake", ""))
        return crumb is not None and req.headers.get("jenkins-crumb") == crumb

    def _job(self, req: Recorded, parts: list[str]) -> Reply:
        names = []
        while len(parts) >= 2 and parts[0] == "job":
            names.append(parts[1])
            parts = parts[2:]
        name = "/".join(names)
        job = self.jobs.get(name)
        if job is None:
            return Reply(404, "Not Found")
        if req.method == "POST" and parts and parts[0] in ("build", "buildWithParameters"):
            number = next(self._numbers.setdefault(name, itertools.count(1)))
            item = next(self._ids)
            self._queue[item] = (_Build(name, number, req.form() if req.body else {}), 0)
            return Reply(201, b"", {"Location": f"{self.url}/queue/item/{item}/"})
        build = next(
            (b for b, _ in self._queue.values() if b.job == name and parts and str(b.number) == parts[0]), None
        )
        if build is None:
            return Reply(404, "Not Found")
        build_url = f"{self.url}/{'/'.join(f'job/{n}' for n in names)}/{build.number}/"
        if req.method == "POST" and parts[1:] == ["stop"]:
            build.aborted = True
            return Reply(302, b"", {"Location": build_url})
        if parts[1:2] == ["artifact"]:
            path = "/".join(parts[2:])
            return Reply(200, job.files[path]) if path in job.files else Reply(404, "Not Found")
        build.polls += 1
        building = build.polls <= job.build_polls and not build.aborted
        result = None if building else ("ABORTED" if build.aborted else job.result)
        artifacts = (
            []
            if building
            else [
                {"displayPath": p.rsplit("/", 1)[-1], "fileName": p.rsplit("/", 1)[-1], "relativePath": p}
                for p in job.files
            ]
        )
        return Reply(
            200,
            {
                "_class": "hudson.model.FreeStyleBuild",
                "number": build.number,
                "url": build_url,
                "building": building,
                "result": result,
                "duration": 0 if building else 1234,
                "actions": [
                    {
                        "_class": "hudson.model.ParametersAction",
                        "parameters": [{"name": k, "value": v} for k, v in build.parameters.items()],
                    }
                ],
                "artifacts": artifacts,
            },
        )

    def _queue_item(self, item: int) -> Reply:
        if item not in self._queue:
            return Reply(404, "Not Found")
        build, polls = self._queue[item]
        self._queue[item] = (build, polls + 1)
        base = {"id": item, "url": f"queue/item/{item}/", "task": {"name": build.job}}
        if item in self._cancelled:
            return Reply(200, {**base, "_class": "hudson.model.Queue$LeftItem", "cancelled": True, "executable": None})
        if polls < self.jobs[build.job].queue_polls:
            return Reply(200, {**base, "_class": "hudson.model.Queue$WaitingItem", "why": "In the quiet period."})
        executable = {
            "_class": "hudson.model.FreeStyleBuild",
            "number": build.number,
            "url": f"{self.url}/{'/'.join(f'job/{n}' for n in build.job.split('/'))}/{build.number}/",
        }
        return Reply(
            200,
            {
                **base,
                "_class": "hudson.model.Queue$LeftItem",
                "cancelled": False,
                "why": None,
                "executable": executable,
            },
        )
