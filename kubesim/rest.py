"""REST routing for resource paths: `/api/v1/...` and `/apis/<group>/<version>/...`.

URL layout per https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-uris :
collections at `[namespaces/<ns>/]<plural>`, objects below them by name, then subresources
(`status`, `scale`, `log`). Watches are chunked newline-delimited JSON `{"type", "object"}` events
(`WatchEvent` in apimachinery `pkg/apis/meta/v1/watch.go`); an expired resourceVersion is answered with
HTTP 200 and a single ERROR event carrying a 410 `Status`, which is what the official python client's
`watch.Watch().stream` expects (kubernetes-client/python `kubernetes/base/watch/watch.py`).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import yaml
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

from kubesim import scale
from kubesim.api import APPLY_PATCH
from kubesim.errors import ApiError, Cause, bad_request, invalid, method_not_allowed, not_found
from kubesim.resources import POD, Registry, ResourceType
from kubesim.selectors import parse_field_selector, parse_label_selector
from kubesim.store import Event

if TYPE_CHECKING:
    from kubesim.server import Kubesim

Obj = dict[str, Any]

DEFAULT_WATCH_SECONDS = 1800.0  # a real server closes watches after a randomised 30-60 min


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


class Target:
    """A parsed resource URL."""

    def __init__(self, rt: ResourceType, namespace: str | None, name: str | None, sub: str | None) -> None:
        self.rt, self.namespace, self.name, self.sub = rt, namespace, name, sub


def parse_path(registry: Registry, path: str) -> Target | None:
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    if len(rest) >= 3 and rest[0] == "namespaces":
        rt = registry.lookup(group, version, rest[2])
        if rt is not None and rt.namespaced and len(rest) <= 5:
            return Target(rt, rest[1], rest[3] if len(rest) > 3 else None, rest[4] if len(rest) > 4 else None)
    if 1 <= len(rest) <= 3:
        rt = registry.lookup(group, version, rest[0])
        if rt is None:
            return None
        return Target(rt, None, rest[1] if len(rest) > 1 else None, rest[2] if len(rest) > 2 else None)
    return None


def verb_of(method: str, target: Target, watch: bool) -> str:
    if method == "GET":
        if target.name is None:
            return "watch" if watch else "list"
        return "get"
    if method == "DELETE" and target.name is None:
        return "deletecollection"
    return {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(method, method.lower())


def _flag(value: str | None) -> bool:
    return value is not None and value.lower() in ("true", "1", "yes")


async def _body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return None
    content_type = request.headers.get("content-type", "application/json")
    try:
        if "yaml" in content_type:
            return yaml.safe_load(raw)
        return json.loads(raw)
    except (ValueError, yaml.YAMLError) as exc:
        raise bad_request(f"the body of the request was in an unknown format: {exc}") from exc


def _options_invalid(kind: str, field: str, reason: str, message: str) -> ApiError:
    return invalid(kind, "meta.k8s.io", "", [Cause(reason, message, field)])


def field_manager(request: Request) -> str:
    """The request's field manager: `fieldManager`, else the User-Agent's product (as the apiserver does)."""
    given = request.query_params.get("fieldManager")
    if given is not None and (len(given) > 128 or not given.isprintable()):
        options = "PatchOptions" if request.method == "PATCH" else "UpdateOptions"
        raise _options_invalid(options, "fieldManager", "FieldValueInvalid",
                               f"Invalid value: {given[:140]!r}: must be at most 128 printable characters")
    if given:
        return given
    agent = request.headers.get("user-agent", "")
    return agent.split("/", 1)[0][:128] or "unknown"


def _patch_options(request: Request) -> tuple[str, bool]:
    """Field manager and force for a PATCH; apply requires an explicit manager, only apply takes force."""
    q = request.query_params
    apply = request.headers.get("content-type", "").split(";")[0].strip().lower() == APPLY_PATCH
    if apply and not q.get("fieldManager"):
        raise _options_invalid("PatchOptions", "fieldManager", "FieldValueRequired",
                               "Required value: is required for apply patch")
    if not apply and q.get("force") is not None:
        raise _options_invalid("PatchOptions", "force", "FieldValueForbidden",
                               "Forbidden: may not be specified for non-apply patch")
    return field_manager(request), _flag(q.get("force"))


async def handle(sim: Kubesim, request: Request, target: Target) -> Response:
    api, rt, q = sim.api, target.rt, request.query_params
    method = request.method
    dry_run = q.get("dryRun") == "All"
    manager = field_manager(request) if method in ("POST", "PUT") else None
    if target.namespace is None and rt.namespaced and target.name is not None:
        raise not_found(rt.plural, rt.group, target.name)  # a namespaced object needs its namespace
    ns = target.namespace if rt.namespaced else ""
    name = target.name
    if name is None:
        if method == "GET":
            if _flag(q.get("watch")):
                return watch_response(sim, rt, target.namespace, q)
            limit = int(q["limit"]) if q.get("limit") else None
            return JSONResponse(api.list(rt, target.namespace, q.get("labelSelector"), q.get("fieldSelector"),
                                         limit, q.get("continue")))
        if method == "POST":
            if ns is None:
                raise method_not_allowed()
            return JSONResponse(api.create(rt, ns, await _body(request), dry_run, manager), status_code=201)
        if method == "DELETE":
            opts = await _body(request) or {}
            policy = q.get("propagationPolicy") or opts.get("propagationPolicy")
            return JSONResponse(api.delete_collection(rt, target.namespace, q.get("labelSelector"),
                                                      q.get("fieldSelector"), policy, dry_run))
        raise method_not_allowed()
    assert ns is not None
    sub = target.sub
    if sub is None:
        if method == "GET":
            if _flag(q.get("watch")):
                field = f"metadata.name={name}"
                merged = dict(q)
                merged["fieldSelector"] = ",".join(filter(None, [q.get("fieldSelector"), field]))
                return watch_response(sim, rt, target.namespace, merged)
            return JSONResponse(api.get(rt, ns, name))
        if method == "PUT":
            return JSONResponse(api.update(rt, ns, name, await _body(request), dry_run, manager=manager))
        if method == "PATCH":
            patcher, force = _patch_options(request)
            existed = api.store.get(rt.key, ns, name) is not None
            result = api.patch(rt, ns, name, await request.body(), request.headers.get("content-type", ""),
                               dry_run, manager=patcher, force=force)
            return JSONResponse(result, status_code=200 if existed else 201)
        if method == "DELETE":
            opts = await _body(request) or {}
            policy = q.get("propagationPolicy") or opts.get("propagationPolicy")
            if policy is None and opts.get("orphanDependents") is not None:
                policy = "Orphan" if opts["orphanDependents"] else "Background"
            return JSONResponse(api.delete(rt, ns, name, policy, dry_run or opts.get("dryRun") == ["All"],
                                           opts.get("preconditions")))
        raise method_not_allowed()
    if sub not in rt.subresources:
        raise not_found(f"{rt.plural}/{sub}", rt.group, name)
    if sub == "status":
        if method == "GET":
            return JSONResponse(api.get(rt, ns, name))
        if method == "PUT":
            return JSONResponse(api.update(rt, ns, name, await _body(request), dry_run, True, manager))
        if method == "PATCH":
            patcher, force = _patch_options(request)
            return JSONResponse(api.patch(rt, ns, name, await request.body(), request.headers.get("content-type", ""),
                                          dry_run, status=True, manager=patcher, force=force))
    if sub == "scale":
        if method == "GET":
            return JSONResponse(scale.get_scale(api, rt, ns, name))
        if method == "PUT":
            return JSONResponse(scale.set_scale(api, rt, ns, name, await _body(request), None, dry_run, manager))
        if method == "PATCH":
            patcher, _ = _patch_options(request)
            return JSONResponse(scale.set_scale(api, rt, ns, name, await _body(request),
                                              request.headers.get("content-type", ""), dry_run, patcher))
    if sub == "log" and method == "GET":
        return pod_logs(sim, ns, name, q)
    raise method_not_allowed()


# -- watch -------------------------------------------------------------------------------------------


def _event_line(type_: str, obj: Obj) -> bytes:
    return dumps({"type": type_, "object": obj}) + b"\n"


def watch_response(sim: Kubesim, rt: ResourceType, namespace: str | None, q: Any) -> Response:
    labels_ok = parse_label_selector(q.get("labelSelector"))
    fields_ok = parse_field_selector(q.get("fieldSelector"))

    def matches(obj: Obj | None) -> bool:
        return obj is not None and labels_ok(obj["metadata"].get("labels") or {}) and fields_ok(obj)

    rv = q.get("resourceVersion")
    store = sim.store
    initial: list[bytes] = []
    try:
        if rv in (None, "", "0"):
            # No resourceVersion (or "0", "any"): start with synthetic ADDED events for what exists now.
            since = store.rv
            for obj in store.list(rt.key, namespace):
                if matches(obj):
                    initial.append(_event_line("ADDED", obj))
        else:
            try:
                since = int(rv)
            except ValueError as exc:
                raise bad_request(f"invalid resource version: {rv}") from exc
        watcher = store.watch(rt.key, namespace, since)
    except ApiError as exc:
        if exc.code != 410:
            raise
        return StreamingResponse(_once(_event_line("ERROR", exc.status())), media_type="application/json")
    timeout = float(q.get("timeoutSeconds") or DEFAULT_WATCH_SECONDS)

    async def stream() -> AsyncIterator[bytes]:
        try:
            for line in initial:
                yield line
            deadline = time.monotonic() + timeout
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                try:
                    event = await asyncio.wait_for(watcher.queue.get(), remaining)
                except TimeoutError:
                    return
                if event is None:
                    return
                translated = _translate(event, matches)
                if translated is not None:
                    yield translated
        finally:
            store.unwatch(watcher)

    return StreamingResponse(stream(), media_type="application/json")


async def _once(line: bytes) -> AsyncIterator[bytes]:
    yield line


def _translate(event: Event, matches: Any) -> bytes | None:
    """Filtered watches see objects enter and leave the selection as ADDED and DELETED (watch cache rules)."""
    now, before = matches(event.obj), matches(event.prev)
    if event.type == "DELETED":
        return _event_line("DELETED", event.obj) if before or now else None
    if event.type == "ADDED":
        return _event_line("ADDED", event.obj) if now else None
    if now and before:
        return _event_line("MODIFIED", event.obj)
    if now:
        return _event_line("ADDED", event.obj)
    if before:
        return _event_line("DELETED", event.obj)
    return None


# -- pod logs ----------------------------------------------------------------------------------------


def _stamp(start: float, offset: float) -> str:
    moment = datetime.fromtimestamp(start + offset, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}000Z"


def pod_logs(sim: Kubesim, namespace: str, name: str, q: Any) -> Response:
    pod = sim.api.get(POD, namespace, name)
    runtime, program, _ = sim.kubelet.log_lines(pod, q.get("container"))
    timestamps = _flag(q.get("timestamps"))
    tail = int(q["tailLines"]) if q.get("tailLines") else None

    def render(items: list[tuple[float, str]]) -> str:
        return "".join(f"{_stamp(runtime.started_at, t)} {text}\n" if timestamps else f"{text}\n" for t, text in items)

    def visible() -> list[tuple[float, str]]:
        if runtime.finished:
            return list(program.lines)
        elapsed = time.time() - runtime.started_at
        return [(t, text) for t, text in program.lines if t <= elapsed]

    if not _flag(q.get("follow")):
        items = visible()
        if tail is not None:
            items = items[-tail:] if tail > 0 else []
        return PlainTextResponse(render(items))
    uid = pod["metadata"]["uid"]

    async def follow() -> AsyncIterator[bytes]:
        sent = 0
        first = visible()
        if tail is not None:
            sent = max(len(first) - tail, 0)
        while True:
            items = visible()
            if len(items) > sent:
                yield render(items[sent:]).encode()
                sent = len(items)
            alive = sim.kubelet.runtimes.get(uid) is runtime
            if (runtime.finished and sent >= len(program.lines)) or not alive:
                return
            await asyncio.sleep(0.05)

    return StreamingResponse(follow(), media_type="text/plain")
