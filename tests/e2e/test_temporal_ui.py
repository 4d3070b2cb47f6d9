"""The Temporal Web UI of `gennaker dev`, in Debian's Chromium: a running, a waiting (judgment) and a
failed execution read like a pipeline — stage names in the timeline's summaries, the current details
saying what runs and what it waits for, and inputs decoded through the gateway's codec endpoint
(the dev stack configures it; nobody types a token). Screenshots in .data/screenshots/ (git-ignored).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page
from playwright.async_api import Error as PlaywrightError

from stack.dev import DevPorts
from tests.integration.test_dev_stack import DevStack, free_offset
from tests.support.cli_rig import GENNAKER, cli_env
from tests.support.console_gateway import screenshot_path
from tests.support.eventually import assert_eventually

TICKET = "CHG-4711"


@pytest.fixture
async def dev_stack(tmp_path: Path) -> AsyncIterator[DevStack]:
    offset = free_offset()
    data_dir, logs = tmp_path / "data", tmp_path / "logs"
    logs.mkdir()
    stdout, stderr = logs / "dev.out", logs / "dev.err"
    env = {**cli_env(None), "PYTHONUNBUFFERED": "1"}
    env.pop("GENNAKER_CODEC_KEYS_FILE", None)  # the dev stack makes and uses its own key
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        process = await asyncio.create_subprocess_exec(
            GENNAKER, "dev", "--data-dir", str(data_dir), "--port-offset", str(offset), stdout=out, stderr=err, env=env
        )
    stack = DevStack(data_dir, DevPorts.with_offset(offset), process, stdout, stderr)
    try:
        await stack.wait_until_up(90)
        yield stack
    finally:
        await stack.kill()


def spec(name: str, *stages: dict[str, Any]) -> dict[str, Any]:
    return {"application": "shop", "name": name, "parameters": [{"name": "ticket"}], "stages": list(stages)}


async def start(http: httpx.AsyncClient, pipeline: dict[str, Any]) -> str:
    response = await http.post("/executions", json={"pipeline": pipeline, "parameters": {"ticket": TICKET}})
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


async def state_of(http: httpx.AsyncClient, execution_id: str) -> dict[str, Any]:
    response = await http.get(f"/executions/{execution_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


async def until_state(http: httpx.AsyncClient, execution_id: str, check: Any, what: str, timeout: float = 60) -> None:
    await assert_eventually(
        lambda: state_of(http, execution_id), check, what=f"{execution_id}: {what}", timeout=timeout, interval=0.2
    )


async def page_text(page: Page) -> str:
    """The page's text, frames included: the UI renders current details (markdown) in an iframe."""
    texts = []
    for frame in page.frames:
        with contextlib.suppress(PlaywrightError):
            texts.append(await frame.inner_text("body"))
    return "\n".join(texts)


async def shows(page: Page, expect: list[str], name: str, timeout: float = 30) -> str:
    """Waits until every expected text shows (the UI loads, then decodes); a screenshot either way."""
    try:
        text = await assert_eventually(
            lambda: page_text(page),
            lambda seen: all(e in seen for e in expect),
            what=f"{name}: {expect} on the page",
            timeout=timeout,
            interval=0.25,
        )
    except AssertionError:
        await page.screenshot(path=str(screenshot_path(f"temporal-ui-{name}-missing")), full_page=True)
        raise
    await page.screenshot(path=str(screenshot_path(f"temporal-ui-{name}")), full_page=True)
    return text


async def open_execution(page: Page, ui: str, execution_id: str, timeline: list[str], name: str) -> tuple[str, str]:
    """The execution's page (decoded input, timeline), then its User Metadata tab (current details)."""
    await page.goto(f"{ui}/namespaces/default/workflows/{execution_id}", wait_until="domcontentloaded")
    # The input is encrypted in the history: seeing its JSON means the UI decoded it through the codec.
    history = await shows(page, ['"application": "shop"', *timeline], name)
    await page.get_by_text("User Metadata", exact=True).first.click()
    details = await shows(page, ["shop / ui-"], f"{name}-details")
    return history, details


async def test_the_temporal_ui_reads_like_a_pipeline(dev_stack: DevStack, browser: Browser) -> None:
    token = (dev_stack.data_dir / "admin-token").read_text().strip()
    ui = f"http://127.0.0.1:{dev_stack.ports.ui}"
    async with httpx.AsyncClient(
        base_url=dev_stack.api, timeout=15, headers={"Authorization": f"Bearer {token}"}
    ) as http:
        running = await start(
            http, spec("ui-running", {"refId": "soak", "name": "soak-test", "type": "wait", "waitTime": 600})
        )
        waiting = await start(
            http,
            spec(
                "ui-waiting",
                {
                    "refId": "approve-prod",
                    "type": "manualJudgment",
                    "instructions": "Compare the canary dashboard with production",
                    "judgmentInputs": ["ship", "hold"],
                },
            ),
        )
        failed = await start(
            http,
            spec(
                "ui-failed",
                {
                    "refId": "deploy-prod",
                    "type": "deploy",
                    "account": "local-sim",
                    "container": {"image": "shop/web:crashloop"},
                    "maxRestarts": 0,
                    "waitForHealthySec": 30,
                    "rollback": {"onFailure": False},
                },
            ),
        )
        await until_state(http, running, lambda s: s["stages"][0]["status"] == "RUNNING", "running its wait")
        await until_state(http, waiting, lambda s: s["stages"][0].get("waitingForJudgment"), "waiting for judgment")
        await until_state(http, failed, lambda s: s["status"] == "TERMINAL", "failed", timeout=90)

        context = await browser.new_context(viewport={"width": 1400, "height": 1600})
        page = await context.new_page()
        try:
            history, details = await open_execution(page, ui, running, ["soak-test · Wait 10m"], "running")
            assert "soak-test (wait)" in details and "RUNNING" in details
            assert "**" not in details  # markdown, rendered

            # A judgment without a timeout starts no timer: the current details are where it shows.
            history, details = await open_execution(page, ui, waiting, [], "waiting")
            assert "approve-prod (manualJudgment)" in details and "approve-prod waits for a judgment" in details
            assert "instructions: Compare the canary dashboard with production" in details
            assert "options: ship, hold" in details
            assert f"gennaker approve {waiting} approve-prod --option ship" in details
            assert f"/console/executions/{waiting}" in details

            history, details = await open_execution(page, ui, failed, ["deploy-prod · "], "failed")
            assert "TERMINAL" in details and "deploy-prod" in details
            assert "binary/encrypted" not in history
        finally:
            await context.close()
        # The endpoint the UI used answers only under this run's key.
        probe = await http.post("/codec/dev/not-the-key/decode", json={"payloads": []})
        assert probe.status_code == 404
