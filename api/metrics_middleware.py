"""Gateway HTTP metrics and spans per route template, and the `/metrics` endpoint.

Labels use the route *template* (`/executions/{execution_id}`), never the path, and requests that
match no route share one `<unmatched>` label: a scanner probing random paths cannot create series.
When tracing is on (core/observability/tracing.py) each request is a SERVER span, the parent of the
`StartWorkflow` span the Temporal client's TracingInterceptor makes for a submission.
"""

from __future__ import annotations

import hmac
import time
from typing import Annotated

from fastapi import APIRouter, FastAPI, Header, Response
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind, Tracer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import ApiError
from core.observability.metrics import REGISTRY, http_duration, http_requests, set_label_limit
from core.observability.settings import TelemetrySettings, load_telemetry_settings
from core.observability.tracing import TRACER_NAME

UNMATCHED = "<unmatched>"


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return str(path) if path else UNMATCHED


class HttpMetricsMiddleware:
    """Pure ASGI (not BaseHTTPMiddleware), so streaming responses and background tasks are untouched."""

    def __init__(self, app: ASGIApp, tracer: Tracer | None = None) -> None:
        self.app = app
        self.tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = str(scope.get("method", "GET"))
        status = 500  # if the app raises before answering, the server answers 500

        async def remember_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        tracer = self.tracer or _app_tracer(scope) or trace.get_tracer(TRACER_NAME)
        started = time.perf_counter()
        with tracer.start_as_current_span(f"{method} request", kind=SpanKind.SERVER) as span:
            try:
                await self.app(scope, receive, remember_status)
            finally:
                route = route_template(scope)
                span.update_name(f"{method} {route}")
                span.set_attribute("http.request.method", method)
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                http_requests.labels(method, route, str(status)).inc()
                http_duration.labels(method, route).observe(time.perf_counter() - started)


def _app_tracer(scope: Scope) -> Tracer | None:
    """The provider create_app put on `app.state.tracer_provider` (None when tracing is off)."""
    state = getattr(scope.get("app"), "state", None)
    provider: TracerProvider | None = getattr(state, "tracer_provider", None)
    return provider.get_tracer(TRACER_NAME) if provider is not None else None


def metrics_router(settings: TelemetrySettings) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/metrics")
    def metrics(authorization: Annotated[str | None, Header()] = None) -> Response:
        if settings.metrics_token:
            given = (authorization or "").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(given.encode(), settings.metrics_token.encode()):
                raise ApiError(401, "unauthenticated", "GET /metrics needs `Authorization: Bearer <metrics token>`")
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return router


def install_http_metrics(app: FastAPI, settings: TelemetrySettings | None = None, tracer: Tracer | None = None) -> None:
    """Add the middleware and GET /metrics (call in create_app, before the app starts)."""
    settings = settings or load_telemetry_settings()
    set_label_limit(settings)
    app.add_middleware(HttpMetricsMiddleware, tracer=tracer)
    app.include_router(metrics_router(settings))
