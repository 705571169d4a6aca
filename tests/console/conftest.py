"""The console's fixtures: Debian's Chromium driven by Playwright, against a real gateway."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.access.test_keys_e2e import ADMIN, routes
from tests.conftest import ADMIN_TOKEN, admin_url
from tests.services import require_service

CHROMIUM = os.environ.get("GATEWAY_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    require_service("chromium", Path(CHROMIUM).exists(), f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.async_api import async_playwright, expect

    # expect() waits as long as an action does (30 s) rather than its own 5 s: a view whose API
    # call a loaded machine holds up is drawn late, not wrong
    expect.set_options(timeout=30_000)
    async with async_playwright() as p:
        launched = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"],
                                           timeout=120_000)  # not 30 s: a loaded machine starts it slowly
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
def console_clock() -> list[float]:
    """The gateway clock's offset from the real time in seconds, movable by a test (e.g. to make
    a key that expired long ago)."""
    return [0.0]


@pytest.fixture
async def console(start_gateway, upstream, browser, console_clock) -> AsyncIterator[tuple[Any, Any]]:
    def clock() -> float:
        return time.time() + console_clock[0]

    gw = await start_gateway(clock=clock, routes=routes(upstream[0]))
    await gw.accounts.create_tenant({"id": "acme", "name": "Acme Corp", "plan": "starter"}, ADMIN)
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    alerts: list[str] = []
    page.on("dialog", lambda d: (alerts.append(d.message), d.dismiss()))
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    missing: list[str] = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    await page.goto(admin_url(gw, "/admin/"))
    yield gw, page
    assert alerts == [], f"a script ran from rendered data: {alerts}"
    assert errors == [], errors
    assert missing == [], f"the page asked for something that is not there: {missing}"
    await page.close()


async def sign_in(page: Any, token: str = ADMIN_TOKEN) -> None:
    await page.get_by_label("Admin token").fill(token)
    await page.get_by_role("button", name="Sign in").click()


def shot(name: str) -> str:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return str(ARTIFACTS / f"{name}.png")
