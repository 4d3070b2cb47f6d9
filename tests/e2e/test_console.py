"""The Gennaker console in a real browser against the real stack: sign in, run a saved pipeline, click
Approve on its manual judgment, resize a deployed server group from the cluster view; a READ-only
user sees no buttons and a forged POST is refused; a POST without its CSRF token is refused; /docs
and /redoc load with no request leaving the gateway."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect
from temporalio.client import Client

import workflows.stages.deploy  # noqa: F401  (registers `deploy`)
from api.settings import GatewaySettings
from core.store import PipelineStore
from core.store.tokens import TOKEN_PREFIX, TokenStore
from tests.support.console_gateway import screenshot_path, serve
from tests.support.kube_rig import KubeRig, deploy_stage, kube_fixture  # noqa: F401
from tests.support.runner import Runner
from workers.devserver import TemporalDevServer
from workflows.state import StageStatus

APP = "console-e2e"
HIDDEN_APP = "console-hidden"
POLICY = f"""
admins: [root]
applications:
  {APP}:
    READ: [group:viewers]
    EXECUTE: [group:deployers]
  {HIDDEN_APP}:
    READ: [group:someone-else]
"""
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
WAIT = 30_000  # ms: what a page may take to show a change made by the workflow


@dataclass
class Stack:
    url: str
    deployer: str
    viewer: str


@pytest.fixture(scope="module")
async def stack(
    task_queue: str,
    temporal_server: TemporalDevServer,
    client: Client,
    store: PipelineStore,
    worker: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Stack]:
    policy = tmp_path_factory.mktemp("console") / "policy.yaml"
    policy.write_text(POLICY)
    settings = GatewaySettings(
        temporal_address=temporal_server.address,
        task_queue=task_queue,
        database_url=store.database_url,
        auth_policy_file=policy,
    )
    tokens = TokenStore(store.database_url)
    try:
        deployer = tokens.create("dan", ["deployers"], "console e2e")[0]
        viewer = tokens.create("vera", ["viewers"], "console e2e")[0]
    finally:
        tokens.close()
    store.save(APP, "release", release_pipeline(), author="alice")
    store.save(HIDDEN_APP, "private", {"application": HIDDEN_APP, "name": "private", "stages": [wait_stage("w")]})
    async for url in serve(settings, client, store):
        yield Stack(url=url, deployer=deployer, viewer=viewer)


def wait_stage(ref: str, *parents: str, seconds: float = 0.1) -> dict[str, Any]:
    return {"refId": ref, "type": "wait", "waitTime": seconds, "requisiteStageRefIds": list(parents)}


def release_pipeline() -> dict[str, Any]:
    return {
        "application": APP,
        "name": "release",
        "parameters": [{"name": "tag", "required": True}],
        "stages": [
            wait_stage("soak"),
            {
                "refId": "approve",
                "name": "Ship it?",
                "type": "manualJudgment",
                "requisiteStageRefIds": ["soak"],
                "instructions": "Check the canary, then ship or hold.",
                "judgmentInputs": ["ship", "hold"],
            },
            wait_stage("after-a", "approve"),
            wait_stage("after-b", "approve"),
            wait_stage("done", "after-a", "after-b"),
        ],
    }


@pytest.fixture
async def context(browser: Browser, stack: Stack) -> AsyncIterator[BrowserContext]:
    made = await browser.new_context(base_url=stack.url, viewport={"width": 1360, "height": 900})
    try:
        yield made
    finally:
        await made.close()


async def sign_in(context: BrowserContext, token: str) -> Page:
    page = await context.new_page()
    page.on("dialog", lambda dialog: pytest.fail(f"a page opened a dialog: {dialog.message}"))
    await page.goto("/console/")
    await expect(page).to_have_url(re.compile(r"/console/login\?next=/console/"))
    await page.get_by_label("API token").fill(token)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Applications")).to_be_visible()
    return page


async def csrf_of(page: Page) -> str:
    value = await page.locator("input[name=csrf]").first.get_attribute("value")
    assert value
    return value


async def shot(page: Page, name: str) -> Path:
    path = screenshot_path(name)
    await page.screenshot(path=str(path), full_page=True)
    return path


async def start_release(page: Page, tag: str) -> str:
    """Run the saved pipeline from the application page; returns the execution page's URL."""
    await page.get_by_role("link", name=APP, exact=True).click()
    await page.get_by_label("tag").fill(tag)
    await page.get_by_role("button", name="Run release").click()
    await expect(page).to_have_url(re.compile(r"/console/executions/"))
    await expect(page.locator("[data-action=approve]")).to_be_visible(timeout=WAIT)
    return page.url


async def test_sign_in_run_and_approve_a_judgment(context: BrowserContext, stack: Stack) -> None:
    page = await sign_in(context, stack.deployer)
    await expect(page.get_by_role("link", name=HIDDEN_APP)).to_have_count(0)
    await start_release(page, HOSTILE)
    judgment = page.locator("section.judgment")
    await expect(judgment).to_contain_text("Check the canary, then ship or hold.")
    await expect(judgment.get_by_label("ship")).to_be_visible()
    # The hostile parameter is shown as text, never run (the dialog handler fails the test).
    await page.get_by_text("Parameters").click()
    await expect(page.locator("pre").first).to_contain_text('<script>alert(\\"x\\")</script>')
    await shot(page, "execution-waiting-for-judgment")

    # Approving needs an option: the browser's own validation keeps the form from posting.
    await page.locator("[data-action=approve]").click()
    await expect(page.locator("[data-action=approve]")).to_be_visible()
    await judgment.get_by_label("ship").check()
    await judgment.get_by_label("Comment").fill("canary is green")
    await page.locator("[data-action=approve]").click()

    await expect(page.locator("#execution-status")).to_have_text("SUCCEEDED", timeout=WAIT)
    row = page.locator("tr[data-ref=approve]")
    await expect(row.locator("[data-stage-status]")).to_have_text("SUCCEEDED")
    await expect(row).to_contain_text("Judged continue (ship) by dan")
    await expect(page.locator("svg.dag g[data-ref=done]")).to_have_attribute("data-status", "SUCCEEDED")
    await expect(page.locator("[data-action=approve]")).to_have_count(0)
    await shot(page, "execution-succeeded")


async def test_resize_from_the_cluster_view(
    context: BrowserContext, stack: Stack, runner: Runner, kube: KubeRig
) -> None:
    s = "r" + uuid.uuid4().hex[:5]
    deployed = await runner.run(
        {"application": APP, "name": "deploy", "stages": [deploy_stage(kube, stack=s)]}, timeout=60
    )
    assert deployed.stages[0].status is StageStatus.SUCCEEDED, deployed.stages[0].error
    group = str(deployed.stages[0].outputs["serverGroup"])
    assert kube.replicas(group) == 2

    page = await sign_in(context, stack.deployer)
    await page.goto(f"/console/applications/{APP}/clusters")
    row = page.locator(f"tr[data-server-group='{group}']")
    await expect(row.locator("[data-desired]")).to_have_text("2", timeout=WAIT)
    await expect(row).to_contain_text("enabled")
    await shot(page, "clusters-before-resize")
    await row.get_by_label("desired count").fill("3")
    await row.locator("[data-action=resize]").click()

    await expect(page).to_have_url(re.compile(rf"/console/executions/{APP}\.console-resize\."))
    await expect(page.locator("#execution-status")).to_have_text("SUCCEEDED", timeout=WAIT)
    await expect(page.locator("tr[data-ref=resize]")).to_contain_text(f"Resize {group} to 3")
    await page.goto(f"/console/applications/{APP}/clusters")
    await expect(row.locator("[data-desired]")).to_have_text("3")
    assert kube.replicas(group) == 3
    await shot(page, "clusters-after-resize")


async def test_roll_back_then_destroy_from_the_cluster_view(
    context: BrowserContext, stack: Stack, runner: Runner, kube: KubeRig
) -> None:
    s = "b" + uuid.uuid4().hex[:5]
    lb = f"{APP}-{s}"
    kube.service(lb)
    first = deploy_stage(kube, "v0", stack=s, loadBalancers=[lb])
    second = deploy_stage(
        kube,
        "v1",
        stack=s,
        loadBalancers=[lb],
        strategy="redblack",
        container=kube.container("2.0"),
        requisiteStageRefIds=["v0"],
    )
    deployed = await runner.run({"application": APP, "name": "deploy", "stages": [first, second]}, timeout=90)
    assert all(st.status is StageStatus.SUCCEEDED for st in deployed.stages), [st.error for st in deployed.stages]
    old, new = (str(st.outputs["serverGroup"]) for st in deployed.stages)

    page = await sign_in(context, stack.deployer)
    await page.goto(f"/console/applications/{APP}/clusters")
    old_row, new_row = (page.locator(f"tr[data-server-group='{g}']") for g in (old, new))
    await expect(new_row).to_contain_text("enabled")
    await expect(old_row).to_contain_text("disabled")
    await expect(old_row.locator("[data-action=rollback]")).to_have_count(0)  # nothing older to restore
    await new_row.get_by_label("roll back to").select_option(old)
    await new_row.locator("[data-action=rollback]").click()
    await expect(page).to_have_url(re.compile(rf"/console/executions/{APP}\.console-rollback\."))
    await expect(page.locator("#execution-status")).to_have_text("SUCCEEDED", timeout=WAIT)
    await expect(page.locator("svg.dag g[data-ref=disable]")).to_have_attribute("data-status", "SUCCEEDED")

    await page.goto(f"/console/applications/{APP}/clusters")
    await expect(old_row).to_contain_text("enabled")
    await expect(new_row).to_contain_text("disabled")
    assert kube.serving(lb) == kube.pods(old)
    await shot(page, "clusters-after-rollback")

    await new_row.get_by_label("confirm destroy").fill(new)
    await new_row.locator("[data-action=destroy]").click()
    await expect(page.locator("#execution-status")).to_have_text("SUCCEEDED", timeout=WAIT)
    await page.goto(f"/console/applications/{APP}/clusters")
    await expect(old_row).to_contain_text("enabled")
    await expect(new_row).to_have_count(0)
    assert new not in kube.server_groups(f"{APP}-{s}")


async def test_read_only_user_sees_no_buttons_and_forged_posts_are_refused(
    browser: Browser, context: BrowserContext, stack: Stack, kube: KubeRig
) -> None:
    deployer_context = await browser.new_context(base_url=stack.url)
    try:
        deployer = await sign_in(deployer_context, stack.deployer)
        execution_url = await start_release(deployer, "v1")
    finally:
        await deployer_context.close()

    viewer = await sign_in(context, stack.viewer)
    await expect(viewer.get_by_role("link", name=HIDDEN_APP)).to_have_count(0)
    await viewer.get_by_role("link", name=APP, exact=True).click()
    await expect(viewer.get_by_role("heading", name="release")).to_be_visible()
    await expect(viewer.get_by_role("button", name="Run release")).to_have_count(0)

    await viewer.goto(execution_url)
    await expect(viewer.locator("section.judgment")).to_contain_text("You may not judge this stage")
    await expect(viewer.locator("button[data-action]")).to_have_count(0)
    await shot(viewer, "execution-read-only")

    await viewer.goto(f"/console/applications/{APP}/clusters")
    await expect(viewer.get_by_role("heading", name=f"Clusters of {APP}")).to_be_visible()
    await expect(viewer.locator("button[data-action]")).to_have_count(0)

    # The buttons are absent, and the server refuses what they would have posted.
    csrf = await csrf_of(viewer)  # the sign-out form's: a valid token for this session
    execution_path = execution_url.removeprefix(stack.url)
    judged = await viewer.request.post(
        f"{execution_path}/stages/approve/judgment",
        form={"csrf": csrf, "judgmentStatus": "continue", "input": "ship"},
    )
    assert judged.status == 403, await judged.text()
    assert "lacks EXECUTE on application" in await judged.text()
    stopped = await viewer.request.post(f"{execution_path}/cancel", form={"csrf": csrf})
    assert stopped.status == 403
    resized = await viewer.request.post(
        f"/console/applications/{APP}/clusters/resize",
        form={
            "csrf": csrf,
            "account": kube.account.name,
            "namespace": kube.namespace,
            "serverGroup": f"{APP}-v000",
            "desired": "9",
        },
    )
    assert resized.status == 403
    run = await viewer.request.post(
        f"/console/applications/{APP}/pipelines/release/run", form={"csrf": csrf, "param.tag": "x"}
    )
    assert run.status == 403
    hidden = await viewer.request.get(f"/console/applications/{HIDDEN_APP}")
    assert hidden.status == 403

    await viewer.goto(execution_url)
    await expect(viewer.locator("tr[data-ref=approve] [data-stage-status]")).to_have_text("RUNNING")


async def test_posts_without_a_valid_csrf_token_or_from_another_origin_are_refused(
    context: BrowserContext, stack: Stack
) -> None:
    page = await sign_in(context, stack.deployer)
    execution_url = await start_release(page, "v2")
    path = execution_url.removeprefix(stack.url)
    judgment = f"{path}/stages/approve/judgment"
    body = {"judgmentStatus": "continue", "input": "ship"}

    missing = await page.request.post(judgment, form=body)
    assert missing.status == 403 and "CSRF" in await missing.text()
    wrong = await page.request.post(judgment, form={**body, "csrf": "0" * 64})
    assert wrong.status == 403
    csrf = await csrf_of(page)
    foreign = await page.request.post(judgment, form={**body, "csrf": csrf}, headers={"Origin": "https://evil.example"})
    assert foreign.status == 403 and "origin" in await foreign.text()

    await page.reload()
    await expect(page.locator("tr[data-ref=approve] [data-stage-status]")).to_have_text("RUNNING")
    # The same request with the page's token goes through: the refusals above were the token's doing.
    accepted = await page.request.post(judgment, form={**body, "csrf": csrf}, max_redirects=0)
    assert accepted.status == 303
    await page.reload()
    await expect(page.locator("#execution-status")).to_have_text("SUCCEEDED", timeout=WAIT)


async def test_signed_out_browsers_go_to_sign_in_and_bad_tokens_are_refused(context: BrowserContext) -> None:
    page = await context.new_page()
    await page.goto("/console/accounts")
    await expect(page).to_have_url(re.compile(r"/console/login\?next=/console/accounts"))
    await page.get_by_label("API token").fill(TOKEN_PREFIX + "not-a-real-token")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_contain_text("unknown or revoked API token")
    cookies = {c["name"] for c in await context.cookies()}
    assert "gennaker_console" not in cookies


async def test_session_cookie_is_http_only_and_same_site_strict(context: BrowserContext, stack: Stack) -> None:
    await sign_in(context, stack.deployer)
    (cookie,) = [c for c in await context.cookies() if c["name"] == "gennaker_console"]
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/console"


async def test_accounts_page_shows_health(context: BrowserContext, stack: Stack, kube: KubeRig) -> None:
    page = await sign_in(context, stack.viewer)
    await page.get_by_role("link", name="Accounts").click()
    row = page.locator(f"tr[data-account='{kube.account.name}']")
    await expect(row).to_contain_text("healthy")
    await expect(row).to_contain_text(kube.account.queue)
    await shot(page, "accounts")


@pytest.mark.parametrize(("path", "ready"), [("/docs", ".swagger-ui .info .title"), ("/redoc", ".api-content h1")])
async def test_api_docs_load_with_bundled_assets_only(
    context: BrowserContext, stack: Stack, path: str, ready: str
) -> None:
    page = await context.new_page()
    fetched: list[str] = []
    # ReDoc's footer asks for its logo from a CDN: the page's CSP blocks it, so it never finishes.
    page.on("requestfinished", lambda request: fetched.append(request.url))
    response = await page.goto(path)
    assert response is not None and "img-src 'self' data:" in response.headers["content-security-policy"]
    await expect(page.locator(ready).first).to_contain_text("Gennaker", timeout=WAIT)
    own = (stack.url, f"blob:{stack.url}", "data:")
    outside = [url for url in fetched if not url.startswith(own)]
    assert outside == [], outside
    await shot(page, "api" + path.replace("/", "-"))
