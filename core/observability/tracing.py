"""Traces through the Temporal SDK's `TracingInterceptor` (temporalio.contrib.opentelemetry).

With the interceptor on the gateway's client and on the workers, a submission's span (the gateway's
HTTP span, api/metrics_middleware.py) is the parent of `StartWorkflow:PipelineWorkflow`, which the
worker continues as `RunWorkflow:PipelineWorkflow`; each activity becomes `StartActivity:*` and
`RunActivity:*`, and each stage a completed `Stage:<type>` span (workflows/telemetry.py). Context
crosses Temporal in headers, so it survives worker restarts. Off unless `GENNAKER_OTLP_ENDPOINT` is
set; then spans are batched to that OTLP/HTTP endpoint.
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Tracer
from temporalio.client import Client, Interceptor
from temporalio.contrib.opentelemetry import TracingInterceptor

from core.observability.settings import TelemetrySettings, load_telemetry_settings

TRACER_NAME = "gennaker"


def tracer_provider(settings: TelemetrySettings) -> TracerProvider | None:
    """A provider exporting to the configured OTLP endpoint, or None when tracing is off."""
    if not settings.otlp_endpoint:
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    provider = TracerProvider(resource=Resource.create({"service.name": settings.service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_endpoint)))
    return provider


_installed: list[TracerProvider | None] = []


def install_tracing(settings: TelemetrySettings | None = None) -> TracerProvider | None:
    """The process's provider from settings, also made the global one (libraries that trace find it).

    Once per process: OpenTelemetry allows one global provider, and every app a process builds
    (tests, the dev stack) shares it.
    """
    if not _installed:
        provider = tracer_provider(settings or load_telemetry_settings())
        if provider is not None:
            trace.set_tracer_provider(provider)
        _installed.append(provider)
    return _installed[0]


def tracer_of(provider: TracerProvider | None) -> Tracer | None:
    return provider.get_tracer(TRACER_NAME) if provider is not None else None


def with_interceptors(client: Client, *extra: Interceptor) -> Client:
    """The same connection with more interceptors (a Client is cheap; the service client is shared).

    Interceptors that are also worker interceptors (TracingInterceptor is) apply to every Worker
    built from the returned client, so wiring this once covers client and worker alike.
    """
    if not extra:
        return client
    config = client.config()
    config["interceptors"] = [*config["interceptors"], *extra]
    return Client(**config)


def traced_client(client: Client, provider: TracerProvider | None) -> Client:
    """`client` with the SDK's tracing interceptor when tracing is on, else `client` itself."""
    tracer = tracer_of(provider)
    return with_interceptors(client, TracingInterceptor(tracer)) if tracer is not None else client
