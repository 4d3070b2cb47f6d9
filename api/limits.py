"""Bounds on what a request may bring into the gateway, each refused with a 4xx that names the limit.

- Body size: `BodyLimit`, an ASGI middleware, refuses with 413 from the Content-Length header, and
  while the body streams in (chunked uploads, lying headers) as soon as the running total passes the
  limit, so no endpoint ever holds more than the limit in memory (the middleware reads the bounded
  body and hands it on). One mechanism for every route;
  routes that need more or less (the Spinnaker import, the codec endpoints) get their own limit by
  path prefix. Temporal refuses gRPC messages over 4 MB anyway (a 10 MB body was a 502).
- JSON nesting depth: the same middleware reads JSON bodies (already bounded in size) and refuses
  those nested deeper than MAX_JSON_DEPTH with 422 before any route parses them; Python's parser
  recurses, so a deep document was a RecursionError (a 500). `load_json()` does the same for routes
  that parse bodies themselves.
- YAML: `workflows.model.load_pipeline_text` bounds aliases, nodes and depth (the model owns its
  loader); this module turns its error into the 422.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from core.errors import ServiceError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_JSON_DEPTH = 64


class BodyTooLarge(ServiceError):
    def __init__(self, limit: int, path: str, setting: str) -> None:
        super().__init__(
            413, "body_too_large", f"request body is larger than the {limit} byte limit for {path} ({setting})", "body"
        )


async def _refuse(send: Send, exc: ServiceError) -> None:
    body = json.dumps({"error": {"code": exc.code, "message": exc.message, "field": exc.field}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers.append((b"connection", b"close"))  # an unread body is not worth draining
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """ASGI middleware: request bodies larger than the limit for their path never reach a route.

    `limits` maps a path prefix to its (byte limit, what sets it), longest prefix first; other paths
    get `default_limit` (the `max_body_bytes` setting)."""

    def __init__(self, app: ASGIApp, default_limit: int, limits: dict[str, tuple[int, str]] | None = None) -> None:
        self.app = app
        self.default = (default_limit, "max_body_bytes")
        self.limits = sorted((limits or {}).items(), key=lambda item: -len(item[0]))

    def limit_for(self, path: str) -> tuple[int, str]:
        return next((limit for prefix, limit in self.limits if path.startswith(prefix)), self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        limit, setting = self.limit_for(path)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _refuse(send, BodyTooLarge(limit, path, setting))
            return
        # Read the body here, bounded, before any route sees it: a refusal is then always this
        # middleware's 413 (FastAPI turns errors raised while it reads a body into a vague 400).
        chunks: list[bytes] = []
        received = 0
        try:
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    break
                chunk = message.get("body", b"")
                received += len(chunk)
                if received > limit:
                    raise BodyTooLarge(limit, path, setting)
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
            raw = b"".join(chunks)
            content_type = dict(scope.get("headers") or []).get(b"content-type", b"")
            if b"json" in content_type and raw.strip():
                check_json_depth(raw)
        except ServiceError as exc:
            await _refuse(send, exc)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class JsonTooDeep(ServiceError):
    def __init__(self, what: str, limit: int = MAX_JSON_DEPTH) -> None:
        super().__init__(422, "too_deep", f"{what} is nested deeper than the limit of {limit} levels", what)


def nesting_depth(value: Any, limit: int) -> int:
    """Depth of nested lists/objects, counting at most up to limit + 1 (iterative: no recursion)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            if depth > limit:
                return depth
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


def check_json_depth(raw: bytes, what: str = "body", limit: int = MAX_JSON_DEPTH) -> None:
    """422 naming the limit when `raw` is JSON nested deeper than `limit`; malformed JSON is left to
    the route (its own 422 says what is wrong)."""
    try:
        data = json.loads(raw)
    except RecursionError:
        raise JsonTooDeep(what, limit) from None
    except ValueError:
        return
    if nesting_depth(data, limit) > limit:
        raise JsonTooDeep(what, limit)


def load_json(raw: bytes, what: str = "body", limit: int = MAX_JSON_DEPTH) -> Any:
    """Parse JSON, refusing (422 naming the limit) documents nested deeper than `limit`."""
    try:
        data = json.loads(raw or b"null")
    except RecursionError:
        raise JsonTooDeep(what, limit) from None
    except ValueError as exc:
        raise ServiceError(422, "invalid_body", f"{what} is not JSON: {exc}", what) from None
    if nesting_depth(data, limit) > limit:
        raise JsonTooDeep(what, limit)
    return data
