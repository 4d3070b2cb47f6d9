"""A worker's telemetry: the SDK runtime's Prometheus endpoint, tracing, notification and account metrics.

Call `install_worker_telemetry()` once per process before the first Temporal client is made: it sets
the default `Runtime` to one whose `TelemetryConfig(metrics=PrometheusConfig(...))` serves
`/metrics` on `GENNAKER_METRICS_ADDRESS` (off when unset). That endpoint carries the SDK's own
series (`temporal_workflow_task_schedule_to_start_latency`, `temporal_worker_task_slots_available`,
`temporal_sticky_cache_size`, poll results…) and ours, recorded through the workflow, activity and
runtime meters. Then `observe_worker_client(client, telemetry)` adds the interceptors; every Worker
built from that client inherits them (the SDK takes worker interceptors from the client's config).
"""

from __future__ import annotations

import logging as python_logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import temporalio.client
from opentelemetry.sdk.trace import TracerProvider
from temporalio import activity, workflow
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.converter import PayloadConverter
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
    StartActivityInput,
    StartLocalActivityInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)

from activities.accounts import AccountHealth
from activities.notify import NotificationRequest
from core.observability.logs import configure_logging
from core.observability.settings import TelemetrySettings, load_telemetry_settings
from core.observability.tracing import tracer_of, tracer_provider, with_interceptors
from workflows.observe import names
from workflows.observe.context import STAGE_REF
from workflows.telemetry import label_budget

STAGE_HEADER = "gennaker-stage"


@dataclass
class WorkerTelemetry:
    settings: TelemetrySettings
    runtime: Runtime
    tracer_provider: TracerProvider | None


# The SDK core (Rust) writes its own log lines straight to stderr unless they are forwarded; forwarded,
# they reach the root handler of `configure_logging`, whose formatter redacts them like every other
# line (a failing task's message may quote what a tenant put in a URL or header).
CORE_LOGGER = "temporalio.core"


def core_logging() -> LoggingConfig:
    return LoggingConfig(
        filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),  # the SDK's default levels
        forwarding=LogForwardingConfig(logger=python_logging.getLogger(CORE_LOGGER)),
    )


def worker_runtime(metrics_address: str | None) -> Runtime:
    """A runtime exporting metrics to Prometheus on `metrics_address` (host:port), or a plain one;
    either forwards the core's log lines to Python logging."""
    if not metrics_address:
        return Runtime(telemetry=TelemetryConfig(logging=core_logging()))
    prometheus = PrometheusConfig(
        bind_address=metrics_address,
        # OpenMetrics names (`…_total`) and seconds, like the gateway's prometheus_client metrics.
        counters_total_suffix=True,
        durations_as_seconds=True,
        histogram_bucket_overrides={name: list(b) for name, b in names.HISTOGRAM_BUCKETS.items()},
    )
    return Runtime(telemetry=TelemetryConfig(logging=core_logging(), metrics=prometheus))


def install_worker_telemetry(settings: TelemetrySettings | None = None, *, logging: bool = True) -> WorkerTelemetry:
    """Logging format, default runtime (metrics) and tracer provider for this worker process."""
    settings = settings or load_telemetry_settings()
    label_budget().limit = settings.max_label_values
    if logging:
        configure_logging(settings)
    runtime = worker_runtime(settings.metrics_address)
    # Clients made afterwards (core.temporal.connect) use it; ones made before keep the old runtime.
    Runtime.set_default(runtime, error_if_already_set=False)
    return WorkerTelemetry(settings, runtime, tracer_provider(settings))


def worker_interceptors(
    provider: TracerProvider | None,
) -> list[TracingInterceptor | NotificationMetricsInterceptor | StageLogContextInterceptor]:
    tracer = tracer_of(provider)
    tracing = [TracingInterceptor(tracer)] if tracer is not None else []
    return [*tracing, NotificationMetricsInterceptor(), StageLogContextInterceptor()]


def observe_worker_client(client: Client, tracer_provider: TracerProvider | None) -> Client:
    """`client` with the tracing (when on), notification-metrics and stage-log-context interceptors."""
    return with_interceptors(client, *worker_interceptors(tracer_provider))


class NotificationMetricsInterceptor(temporalio.client.Interceptor, Interceptor):
    """Counts notification delivery attempts by channel, event and outcome (delivered | failed).

    An interceptor rather than code in the notify activity, so the channels stay about delivery.
    Recorded with `activity.metric_meter()`, which labels by activity type and task queue. Also a
    (pass-through) client interceptor, so it can ride on the client that workers are built from.
    """

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _NotificationMetrics(next)


class _NotificationMetrics(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        request = next((a for a in input.args if isinstance(a, NotificationRequest)), None)
        if request is None:
            return await super().execute_activity(input)
        counter = activity.metric_meter().create_counter(names.NOTIFICATIONS, "Notification delivery attempts")
        labels = {"channel": str(request.channel), "event": request.event}
        try:
            result = await super().execute_activity(input)
        except BaseException:
            counter.add(1, {**labels, "outcome": "failed"})
            raise
        counter.add(1, {**labels, "outcome": "delivered"})
        return result


class StageLogContextInterceptor(temporalio.client.Interceptor, Interceptor):
    """Carries the stage refId from the workflow to its activities, for their log lines.

    The runner tags each stage's task (workflows/telemetry.py `stage_started`); activities started
    from it get a `gennaker-stage` header, and the activity side sets the same context variable, which
    the SDK copies into the thread a sync activity runs on. Headers skip the payload codec: a refId
    is not secret, so it shows in history as the header's plain value.
    """

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        return _StageHeaderInbound

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _StageFromHeader(next)


def _with_stage(headers: Mapping[str, Payload]) -> Mapping[str, Payload]:
    ref = STAGE_REF.get()
    return {**headers, STAGE_HEADER: PayloadConverter.default.to_payload(ref)} if ref else headers


class _StageHeaderInbound(WorkflowInboundInterceptor):
    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        super().init(_StageHeaderOutbound(outbound))


class _StageHeaderOutbound(WorkflowOutboundInterceptor):
    def start_activity(self, input: StartActivityInput) -> workflow.ActivityHandle[Any]:
        input.headers = _with_stage(input.headers)
        return super().start_activity(input)

    def start_local_activity(self, input: StartLocalActivityInput) -> workflow.ActivityHandle[Any]:
        input.headers = _with_stage(input.headers)
        return super().start_local_activity(input)


class _StageFromHeader(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        payload = input.headers.get(STAGE_HEADER)
        if payload is None:
            return await super().execute_activity(input)
        token = STAGE_REF.set(PayloadConverter.default.from_payload(payload, str))
        try:
            return await super().execute_activity(input)
        finally:
            STAGE_REF.reset(token)


def record_account_health(health: Iterable[AccountHealth], runtime: Runtime | None = None) -> None:
    """Set `gennaker_account_healthy{account, kind}` to 1 or 0 after each health check."""
    meter = (runtime or Runtime.default()).metric_meter
    gauge = meter.create_gauge(names.ACCOUNT_HEALTHY, "1 when the account answered its health check, else 0")
    for item in health:
        gauge.set(1 if item.healthy else 0, {"account": item.name, "kind": item.kind})
