"""A real gateway on a loopback port (uvicorn, in the test's event loop) and Debian's Chromium driven
by Playwright; the Temporal dev server, the pipeline worker and the store are the session's
(tests/conftest.py). The gateway and screenshot helpers are in tests/support/console_gateway.py."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, async_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: run scripts/setup-system.sh (Debian's chromium package)")
    async with async_playwright() as playwright:
        # Debian's Chromium, never a browser Playwright would download.
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()
