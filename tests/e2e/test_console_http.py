"""The console over HTTP without a browser (httpx against the app, real worker and Temporal): hostile
strings from a pipeline come out escaped, the polled fragment answers 204 while nothing changed,
judgments with options need one, cluster actions are validated before anything starts, and with
authentication disabled (local trials) forms still need their CSRF token."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from api.settings import GatewaySettings
from core.store import PipelineStore
from tests.support.console_gateway import console_app
from tests.support.eventually import assert_eventually
from workers.devserver import TemporalDevServer

APP = "console-http"
HOSTILE = '"><script>alert(1)</script><img src=x onerror=alert(2)>'
CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


@pytest.fixture(scope="module")
async def console(
    task_queue: str, temporal_server: TemporalDevServer, client: Client, store: PipelineStore, worker: None
) -> AsyncIterator[httpx.AsyncClient]:
    settings = GatewaySettings(
        temporal_address=temporal_server.address,
        task_queue=task_queue,
        database_url=store.database_url,
        auth_disabled=True,
    )
    store.save(APP, "hostile", hostile_pipeline())
    app = console_app(settings, client, store)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
        yield http


def hostile_pipeline() -> dict[str, Any]:
    return {
        "application": APP,
        "name": "hostile",
        "description": HOSTILE,
        "stages": [
            {
                "refId": "gate",
                "name": HOSTILE,
                "type": "manualJudgment",
                "instructions": HOSTILE,
                "judgmentInputs": [HOSTILE, "plain"],
            }
        ],
    }


def csrf_in(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found, page.text[:500]
    return found.group(1)


def assert_escaped(page: httpx.Response) -> None:
    assert "<script>alert(1)" not in page.text and "<img src=x" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]


async def start_hostile(console: httpx.AsyncClient) -> tuple[str, str]:
    page = await console.get(f"/console/applications/{APP}")
    assert page.status_code == 200, page.text
    assert_escaped(page)
    csrf = csrf_in(page)
    started = await console.post(f"/console/applications/{APP}/pipelines/hostile/run", data={"csrf": csrf})
    assert started.status_code == 303, started.text
    return started.headers["location"], csrf


async def test_hostile_strings_are_escaped_and_judgment_options_are_required(console: httpx.AsyncClient) -> None:
    execution, csrf = await start_hostile(console)
    page = await assert_eventually(
        lambda: console.get(execution), lambda r: 'data-action="approve"' in r.text, what="judgment waiting", timeout=20
    )
    assert_escaped(page)
    assert page.text.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 3  # graph label, panel, stage row, option

    judgment = f"{execution}/stages/gate/judgment"
    refused = await console.post(judgment, data={"judgmentStatus": "continue", "input": "plain"})
    assert refused.status_code == 403 and "CSRF" in refused.text
    no_option = await console.post(judgment, data={"csrf": csrf, "judgmentStatus": "continue"})
    assert no_option.status_code == 422 and "choose one of" in no_option.text
    unknown = await console.post(judgment, data={"csrf": csrf, "judgmentStatus": "continue", "input": "nope"})
    assert unknown.status_code == 422 and "not an option" in unknown.text
    approved = await console.post(judgment, data={"csrf": csrf, "judgmentStatus": "continue", "input": HOSTILE})
    assert approved.status_code == 303, approved.text
    done = await assert_eventually(
        lambda: console.get(execution),
        lambda r: 'id="execution-status">SUCCEEDED' in r.text,
        what="succeeded",
        timeout=20,
    )
    assert_escaped(done)
    assert "hx-trigger" not in done.text  # a finished execution is not polled any more


async def test_the_polled_fragment_answers_204_while_nothing_changes(console: httpx.AsyncClient) -> None:
    execution, _ = await start_hostile(console)
    page = await assert_eventually(
        lambda: console.get(execution), lambda r: 'data-action="approve"' in r.text, what="judgment waiting", timeout=20
    )
    live = re.search(r'hx-get="([^"]+/live\?since=[0-9a-f]+)"', page.text)
    assert live, "a running execution's page polls its fragment"
    unchanged = await console.get(live.group(1))
    assert unchanged.status_code == 204
    fresh = await console.get(live.group(1).split("?")[0])
    assert fresh.status_code == 200 and fresh.text.lstrip().startswith('<div id="live"')


async def test_cluster_actions_are_validated_before_anything_starts(console: httpx.AsyncClient) -> None:
    page = await console.get(f"/console/applications/{APP}")
    csrf = csrf_in(page)
    target = {"csrf": csrf, "account": "k8s", "namespace": "default", "serverGroup": f"{APP}-v001"}
    unknown = await console.post(f"/console/applications/{APP}/clusters/explode", data=target)
    assert unknown.status_code == 404
    unconfirmed = await console.post(f"/console/applications/{APP}/clusters/destroy", data=target)
    assert unconfirmed.status_code == 422 and "to confirm" in unconfirmed.text
    foreign = await console.post(
        f"/console/applications/{APP}/clusters/disable", data={**target, "serverGroup": "billing-v003"}
    )
    assert foreign.status_code == 422 and "is not in application" in foreign.text
    bad_name = await console.post(
        f"/console/applications/{APP}/clusters/resize", data={**target, "serverGroup": "<b>", "desired": "2"}
    )
    assert bad_name.status_code == 422
    too_many = await console.post(f"/console/applications/{APP}/clusters/resize", data={**target, "desired": "100000"})
    assert too_many.status_code == 422 and "desired" in too_many.text
    rollback_to_itself = await console.post(
        f"/console/applications/{APP}/clusters/rollback", data={**target, "restoreServerGroup": f"{APP}-v001"}
    )
    assert rollback_to_itself.status_code == 422


async def test_static_files_and_redirects_stay_inside_the_console(console: httpx.AsyncClient) -> None:
    htmx = await console.get("/console/static/htmx.min.js")
    assert htmx.status_code == 200 and htmx.headers["content-type"].startswith("text/javascript")
    assert (await console.get("/console/static/..%2Fservices.py")).status_code == 404
    assert (await console.get("/console/static/services.py")).status_code == 404
    # With authentication disabled the login page only redirects, and never off-site.
    for target in ("https://evil.example/", "//evil.example/console/", "/console/\\evil"):
        response = await console.get("/console/login", params={"next": target})
        assert response.status_code == 303 and response.headers["location"] == "/console/"
