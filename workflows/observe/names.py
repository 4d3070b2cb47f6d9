"""Metric names, in one place for the code that records them, the docs and the Grafana dashboard.

Gateway metrics come from `prometheus_client` (core/observability/metrics.py). Worker metrics go
through the Temporal SDK's metric meter (workflow, activity and runtime meters), so they share the
worker's Prometheus endpoint with the SDK's own `temporal_*` series; the runtime is configured with
`counters_total_suffix=True` (workers/telemetry.py), so a counter named here is scraped as `<name>_total`.
"""

# Gateway (prometheus_client)
HTTP_REQUESTS = "gennaker_http_requests"  # counter {method, route, status}
HTTP_DURATION = "gennaker_http_request_duration_seconds"  # histogram {method, route}
EXECUTIONS_STARTED = "gennaker_executions_started"  # counter {application, pipeline, trigger}
DORA_DEPLOY_FREQUENCY = "gennaker_dora_deployments_per_day"  # gauge {application, account, window}
DORA_LEAD_TIME = "gennaker_dora_lead_time_seconds"  # gauge (median) {application, account, window}
DORA_CHANGE_FAILURE = "gennaker_dora_change_failure_ratio"  # gauge {application, account, window}
DORA_TIME_TO_RESTORE = "gennaker_dora_time_to_restore_seconds"  # gauge (median) {application, account, window}

# Workers (Temporal SDK metric meter)
EXECUTIONS_FINISHED = "gennaker_executions_finished"  # counter {application, pipeline, status}
STAGE_DURATION = "gennaker_stage_duration_seconds"  # histogram {stage_type, status}
JUDGMENT_WAIT = "gennaker_judgment_wait_seconds"  # histogram {outcome, via}
DEPLOYS = "gennaker_deploys"  # counter {stage_type, strategy, outcome, rollback_reason}
NOTIFICATIONS = "gennaker_notifications"  # counter {channel, event, outcome}
ACCOUNT_HEALTHY = "gennaker_account_healthy"  # gauge 1/0 {account, kind}

# Bucket boundaries (seconds) for the worker histograms; the SDK's defaults are for milliseconds.
STAGE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800, 3600)
JUDGMENT_BUCKETS = (1, 10, 30, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 24 * 3600, 72 * 3600)
HISTOGRAM_BUCKETS = {STAGE_DURATION: STAGE_BUCKETS, JUDGMENT_WAIT: JUDGMENT_BUCKETS}
