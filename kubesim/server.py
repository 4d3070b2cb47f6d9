"""The HTTP face of kubesim: discovery, auth, faults, admin endpoints, and the app's lifecycle.

Unknown paths answer the generic 404 `Status` ("the server could not find the requested resource"),
and anything unexpected a 500 `Status` with reason InternalError, so no client ever sees a bare error
page (kubernetes/kubernetes `staging/src/k8s.io/apiserver/pkg/endpoints/handlers/responsewriters/errors.go`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from kubesim import discovery, openapi, rest
from kubesim.api import Api
from kubesim.controllers import Context, ControllerManager, Kubelet
from kubesim.controllers.crd import register_established
from kubesim.controllers.kubelet import HOST_IP, NODE_NAME
from kubesim.errors import ApiError, failure_status, forbidden, unauthorized
from kubesim.faults import Faults, injected_error_reason
from kubesim.resources import NAMESPACE, NODE, SERVICE, Registry
from kubesim.store import Store

log = logging.getLogger("kubesim")

ADMIN_PREFIX = "/kubesim/admin"
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


@dataclass
class Settings:
    ready_delay: float = 0.2
    token: str | None = None
    state_file: Path | None = None
    history_limit: int = 10_000
    seed: int | None = None
    save_interval: float = 0.2


class Kubesim:
    """One simulated cluster: store, API, controllers and faults. Lives on one event loop."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.store = Store(self.settings.history_limit)
        state = self.settings.state_file
        if state is not None and state.exists() and state.stat().st_size:
            self.store.load(json.loads(state.read_text()))
        self.registry = Registry()
        register_established(self.store, self.registry)
        self.api = Api(self.store, self.registry)
        self.faults = Faults()
        self.ctx = Context(self.store, self.api, ready_delay=self.settings.ready_delay,
                           rng=random.Random(self.settings.seed))
        self.manager: ControllerManager | None = None
        self.address = "127.0.0.1:0"
        self._saver: asyncio.Task[None] | None = None
        self._bootstrap()

    def _bootstrap(self) -> None:
        for name in SYSTEM_NAMESPACES:
            if self.store.get(NAMESPACE.key, "", name) is None:
                self.api.create(NAMESPACE, "", {"metadata": {"name": name}})
        if self.store.get(NODE.key, "", NODE_NAME) is None:
            self.api.create(NODE, "", _node(NODE_NAME))
        if self.store.get(SERVICE.key, "default", "kubernetes") is None:
            self.api.create(SERVICE, "default", {
                "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
                "spec": {"clusterIP": "10.96.0.1",
                         "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]},
            })

    @property
    def kubelet(self) -> Kubelet:
        assert self.manager is not None
        return self.manager.kubelet

    async def startup(self) -> None:
        self.manager = ControllerManager(self.ctx)
        self.manager.start()
        if self.settings.state_file is not None:
            self._saver = asyncio.get_running_loop().create_task(self._save_loop(self.settings.state_file))

    async def shutdown(self) -> None:
        self.store.drop_watches()
        if self.manager is not None:
            await self.manager.stop()
        if self._saver is not None:
            self._saver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._saver
        if self.settings.state_file is not None:
            self.store.save(self.settings.state_file)

    async def _save_loop(self, path: Path) -> None:
        while True:
            await asyncio.sleep(self.settings.save_interval)
            if self.store.dirty:
                self.store.save(path)

    # -- request handling ----------------------------------------------------------------------------

    async def dispatch(self, request: Request) -> Response:
        path = request.url.path
        if path.startswith(ADMIN_PREFIX):
            return await self._admin(request, path[len(ADMIN_PREFIX):].strip("/"))
        if path in ("/healthz", "/livez", "/readyz"):
            return PlainTextResponse("ok")
        try:
            await self._guard(request)
            return await self._serve(request, path)
        except ApiError as exc:
            return JSONResponse(exc.status(), status_code=exc.code)
        except Exception as exc:
            log.exception("kubesim failed on %s %s", request.method, path)
            return JSONResponse(failure_status(500, "InternalError", f"kubesim internal error: {exc}"), 500)

    async def _guard(self, request: Request) -> None:
        """Faults and authentication, in the order a client would meet them."""
        if self.faults.latency_ms > 0:
            await asyncio.sleep(self.faults.latency_ms / 1000)
        token = self.settings.token
        header = request.headers.get("authorization", "")
        if self.faults.token_revoked or (token is not None and header != f"Bearer {token}"):
            raise unauthorized()
        code = self.faults.take_error()
        if code is not None:
            reason, message = injected_error_reason(code)
            raise ApiError(code, reason, message)

    async def _serve(self, request: Request, path: str) -> Response:
        stripped = path.rstrip("/") or "/"
        if request.method == "GET":
            doc = self._discovery(stripped)
            if doc is not None:
                return JSONResponse(doc)
            if openapi.wants_v2_protobuf(stripped, request.headers.get("accept", "")):
                return Response(openapi.v2_protobuf(), media_type=openapi.V2_PROTOBUF)
            if stripped.startswith("/openapi/"):
                return JSONResponse(openapi.document(self.registry, stripped))
        target = rest.parse_path(self.registry, stripped)
        if target is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        verb = rest.verb_of(request.method, target, rest._flag(request.query_params.get("watch")))
        namespace = target.namespace or ""
        if self.faults.forbidden(verb, target.rt.plural, namespace):
            user = "kubesim-admin" if self.settings.token else "system:anonymous"
            raise forbidden(verb, target.rt.plural, target.rt.group, namespace, user)
        if verb == "create" and target.name is None and self.faults.refuse_create:
            await self._refuse_create(request, target, namespace)
        return await rest.handle(self, request, target)

    async def _refuse_create(self, request: Request, target: rest.Target, namespace: str) -> None:
        """Raise the injected refusal for this create, if a rule matches (Starlette keeps the body read)."""
        body = await rest._body(request)
        meta = body.get("metadata") if isinstance(body, dict) else None
        name = str((meta.get("name") or meta.get("generateName") or "") if isinstance(meta, dict) else "")
        rule = self.faults.refusal(target.rt.plural, namespace, name)
        if rule is not None:
            raise rule.error(target.rt.plural, target.rt.group, target.rt.kind, name)

    def _discovery(self, path: str) -> dict[str, Any] | None:
        if path == "/version":
            return discovery.version_info()
        if path == "/api":
            return discovery.core_versions(self.address)
        if path == "/apis":
            return discovery.group_list(self.registry)
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) == 2:
            return discovery.resource_list(self.registry, "", parts[1]) or _missing()
        if parts[0] == "apis" and len(parts) == 2:
            return discovery.group(self.registry, parts[1]) or _missing()
        if parts[0] == "apis" and len(parts) == 3:
            return discovery.resource_list(self.registry, parts[1], parts[2]) or _missing()
        return None

    async def _admin(self, request: Request, action: str) -> Response:
        """Test controls; not part of the Kubernetes API and never subject to faults or auth."""
        body: dict[str, Any] = {}
        if request.method == "POST":
            raw = await request.body()
            body = json.loads(raw) if raw else {}
        if action == "faults" and request.method == "GET":
            return JSONResponse(self.faults.describe())
        if action == "faults" and request.method == "POST":
            try:
                self.faults.update(body)
            except ValueError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            return JSONResponse(self.faults.describe())
        if action == "faults/reset" and request.method == "POST":
            self.faults.reset()
            return JSONResponse(self.faults.describe())
        if action == "watches/drop" and request.method == "POST":
            return JSONResponse({"dropped": self.store.drop_watches()})
        if action == "compact" and request.method == "POST":
            self.store.compact()
            return JSONResponse({"resourceVersion": str(self.store.rv)})
        if action == "state" and request.method == "GET":
            return JSONResponse({"resourceVersion": str(self.store.rv), "watches": self.store.watch_count()})
        return JSONResponse({"error": f"unknown admin action {request.method} {action!r}"}, status_code=404)


def _node(name: str) -> dict[str, Any]:
    """The one simulated node: schedulable, Ready, with the capacity a small kind node reports."""
    capacity = {"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"}
    return {
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                                              "kubernetes.io/arch": "amd64", "type": "kubesim"}},
        "spec": {},
        "status": {
            "capacity": capacity,
            "allocatable": capacity,
            "addresses": [{"type": "InternalIP", "address": HOST_IP}, {"type": "Hostname", "address": name}],
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "message": "kubelet is posting ready status (simulated)"}],
            "nodeInfo": {"kubeletVersion": "v1.31.0-kubesim", "operatingSystem": "linux", "architecture": "amd64",
                         "containerRuntimeVersion": "kubesim://0"},
        },
    }


def _missing() -> dict[str, Any]:
    raise ApiError(404, "NotFound", "the server could not find the requested resource")


def create_app(sim: Kubesim) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await sim.startup()
        try:
            yield
        finally:
            await sim.shutdown()

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    return Starlette(routes=[Route("/{path:path}", sim.dispatch, methods=methods)], lifespan=lifespan)
