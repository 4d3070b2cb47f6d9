"""The shipped Grafana dashboard queries only series Gennaker or the Temporal SDK exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from workflows.observe import names

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json"
HISTOGRAMS = {names.HTTP_DURATION, names.STAGE_DURATION, names.JUDGMENT_WAIT}
COUNTERS = {
    names.HTTP_REQUESTS,
    names.EXECUTIONS_STARTED,
    names.EXECUTIONS_FINISHED,
    names.DEPLOYS,
    names.NOTIFICATIONS,
}
GAUGES = {
    names.ACCOUNT_HEALTHY,
    names.DORA_DEPLOY_FREQUENCY,
    names.DORA_LEAD_TIME,
    names.DORA_CHANGE_FAILURE,
    names.DORA_TIME_TO_RESTORE,
}


def exported() -> set[str]:
    series = {f"{c}_total" for c in COUNTERS} | GAUGES
    for histogram in HISTOGRAMS:
        series |= {f"{histogram}_bucket", f"{histogram}_count", f"{histogram}_sum"}
    return series


def test_every_gennaker_series_in_the_dashboard_is_exported() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {m for e in expressions for m in re.findall(r"\b(gennaker_[a-z_]+)", e)}
    assert used, "the dashboard queries no gennaker series"
    assert used <= exported(), sorted(used - exported())
    # Every one of our series is on some panel.
    bases = {re.sub(r"_(bucket|count|sum|total)$", "", m) for m in used}
    assert bases >= COUNTERS | GAUGES | HISTOGRAMS, sorted((COUNTERS | GAUGES | HISTOGRAMS) - bases)
