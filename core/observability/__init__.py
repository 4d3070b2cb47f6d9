"""Observability shared by the gateway and the workers: metrics, traces, JSON logs and DORA figures.

See docs/observability.md for the metric catalogue, the settings and the Grafana dashboard.
"""
