"""Gateway HTTP metrics: route templates (never raw paths), a bounded label budget, /metrics auth."""

from __future__ import annotations

import uuid

import httpx
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from api.errors import install_error_handlers
from api.metrics_middleware import UNMATCHED, install_http_metrics
from core.observability.settings import TelemetrySettings
from workflows.observe.deploys import deploy_outcome
from workflows.observe.labels import OTHER, LabelBudget


def requests_by_route(text: str) -> dict[tuple[str, str], float]:
    found: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        if family.name == "gennaker_http_requests":
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    key = (sample.labels["route"], sample.labels["status"])
                    found[key] = found.get(key, 0) + sample.value
    return found


def app_with_metrics(token: str | None = None) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    install_http_metrics(app, TelemetrySettings(metrics_token=token))

    @app.get("/things/{thing_id}")
    async def thing(thing_id: str) -> dict[str, str]:
        return {"id": thing_id}

    return app


async def test_routes_are_labelled_by_template_and_probes_share_one_label() -> None:
    transport = httpx.ASGITransport(app=app_with_metrics())
    async with httpx.AsyncClient(transport=transport, base_url="http://gennaker.test") as http:
        before = requests_by_route((await http.get("/metrics")).text)
        ids = [uuid.uuid4().hex for _ in range(5)]
        for thing in ids:
            assert (await http.get(f"/things/{thing}")).status_code == 200
            assert (await http.get(f"/.env-{thing}")).status_code == 404
        text = (await http.get("/metrics")).text
    after = requests_by_route(text)
    assert after[("/things/{thing_id}", "200")] - before.get(("/things/{thing_id}", "200"), 0) == 5
    assert after[(UNMATCHED, "404")] - before.get((UNMATCHED, "404"), 0) == 5
    assert not any(thing in text for thing in ids)


async def test_metrics_token_when_configured() -> None:
    transport = httpx.ASGITransport(app=app_with_metrics(token="scrape-me"))
    async with httpx.AsyncClient(transport=transport, base_url="http://gennaker.test") as http:
        denied = await http.get("/metrics", headers={"Authorization": "Bearer wrong"})
        assert denied.status_code == 401 and denied.json()["error"]["code"] == "unauthenticated"
        assert (await http.get("/metrics")).status_code == 401
        allowed = await http.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
        assert allowed.status_code == 200 and "gennaker_http_requests_total" in allowed.text


def test_label_budget_keeps_seen_names_and_folds_the_rest() -> None:
    budget = LabelBudget(limit=2)
    assert budget.admit("a", "p") == ("a", "p")
    assert budget.admit("b", "p") == ("b", "p")
    assert budget.admit("hostile-1", "x") == (OTHER, OTHER)
    assert budget.admit("a", "p") == ("a", "p")


def test_deploy_outcome_labels() -> None:
    assert deploy_outcome("SUCCEEDED", None) == ("succeeded", "none")
    unhealthy = {"message": "shop-v001 never became healthy: crashloop; rolled back", "details": {"rolledBack": True}}
    assert deploy_outcome("TERMINAL", unhealthy) == ("failed", "unhealthy")
    traffic = {"message": "switching traffic to shop-v001 failed: x", "details": {"rolledBack": True}}
    assert deploy_outcome("TERMINAL", traffic) == ("failed", "traffic")
    timeout = {"message": "timed out", "kind": "timeout", "details": {"rolledBack": True}}
    assert deploy_outcome("TERMINAL", timeout) == ("failed", "timeout")
    assert deploy_outcome("TERMINAL", {"message": "no such account"}) == ("failed", "none")
    assert deploy_outcome("CANCELED", {"message": "canceled (stage cleanup: rolled back)"}) == ("canceled", "canceled")
