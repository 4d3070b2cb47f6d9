"""The gateway's own metrics (prometheus_client): HTTP requests, executions started, DORA gauges.

One registry per process (`REGISTRY`), not prometheus_client's global one, so a test or an embedded
stack that builds several apps never registers a metric twice.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from core.observability.dora import DoraReport
from core.observability.settings import TelemetrySettings
from workflows.observe import names
from workflows.observe.labels import LabelBudget

REGISTRY = CollectorRegistry(auto_describe=True)
_budget = LabelBudget()  # its limit comes from settings in set_label_limit (read once the app is built)

http_requests = Counter(
    names.HTTP_REQUESTS,
    "Gateway HTTP requests by route template and status",
    ["method", "route", "status"],
    registry=REGISTRY,
)
http_duration = Histogram(
    names.HTTP_DURATION,
    "Gateway HTTP request latency by route template",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
executions_started = Counter(
    names.EXECUTIONS_STARTED,
    "Executions started through the gateway",
    ["application", "pipeline", "trigger"],
    registry=REGISTRY,
)
_dora_labels = ["application", "account", "window"]
dora_deploy_frequency = Gauge(
    names.DORA_DEPLOY_FREQUENCY,
    "DORA deployment frequency (successful deploys per day)",
    _dora_labels,
    registry=REGISTRY,
)
dora_lead_time = Gauge(
    names.DORA_LEAD_TIME,
    "DORA lead time for changes, median (trigger time to deploy done)",
    _dora_labels,
    registry=REGISTRY,
)
dora_change_failure = Gauge(
    names.DORA_CHANGE_FAILURE, "DORA change failure rate (0..1)", _dora_labels, registry=REGISTRY
)
dora_time_to_restore = Gauge(
    names.DORA_TIME_TO_RESTORE, "DORA time to restore service, median", _dora_labels, registry=REGISTRY
)

# Trigger types are ours (manual, cron, docker, git, webhook, pipeline, ...), not tenant text, but a
# bound costs nothing and keeps a future free-text trigger from becoming a label explosion.
_TRIGGER_MAX_LEN = 32


def record_execution_started(application: str, pipeline: str, trigger: str) -> None:
    """Call once per execution the gateway (or a trigger it dispatches) started."""
    app, pipe = _budget.admit(application, pipeline)
    executions_started.labels(app, pipe, trigger[:_TRIGGER_MAX_LEN]).inc()


def set_label_limit(settings: TelemetrySettings) -> None:
    _budget.limit = settings.max_label_values


def publish_dora(report: DoraReport) -> None:
    """Expose a computed report as gauges (each GET /applications/{app}/dora refreshes its series)."""
    for figures in [report.overall, *report.accounts]:
        application, account, window = _budget.admit(report.application, figures.account, report.since)
        labels = (application, account, window)
        dora_deploy_frequency.labels(*labels).set(figures.deploymentsPerDay)
        dora_change_failure.labels(*labels).set(figures.changeFailureRate or 0.0)
        if figures.leadTimeSeconds is not None:
            dora_lead_time.labels(*labels).set(figures.leadTimeSeconds)
        if figures.timeToRestoreSeconds is not None:
            dora_time_to_restore.labels(*labels).set(figures.timeToRestoreSeconds)
