"""The key console in a real browser: Debian's Chromium driven by Playwright, against a real gateway."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.access.test_keys_e2e import ADMIN, call, routes
from tests.conftest import ADMIN_TOKEN, admin_url
from tests.services import require_service

CHROMIUM = os.environ.get("GATEWAY_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    require_service("chromium", Path(CHROMIUM).exists(), f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        launched = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def console(start_gateway, upstream, browser) -> AsyncIterator[tuple[Any, Any]]:
    gw = await start_gateway(routes=routes(upstream[0]))
    await gw.accounts.create_tenant({"id": "acme", "name": "Acme Corp", "plan": "starter"}, ADMIN)
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    alerts: list[str] = []
    page.on("dialog", lambda d: (alerts.append(d.message), d.dismiss()))
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(admin_url(gw, "/admin/"))
    yield gw, page
    assert alerts == [], f"a script ran from rendered data: {alerts}"
    assert errors == [], errors
    await page.close()


async def sign_in(page: Any, token: str = ADMIN_TOKEN) -> None:
    await page.fill("#token", token)
    await page.click("#sign-in button[type=submit]")


async def create_in_dialog(page: Any, name: str, **fields: str) -> str:
    await page.click("#create-key")
    await page.fill("#new-name", name)
    for field, value in fields.items():
        await page.select_option(f"#new-{field}", value) if field != "validity" else await page.fill("#new-validity", value)
    await page.click("#create-submit")
    secret = await page.text_content("#new-secret", timeout=5000)
    assert secret and secret.startswith("gw_")
    return secret


async def test_page_is_locked_down_and_sign_in_checks_the_token(console) -> None:
    gw, page = console
    async with aiohttp.ClientSession() as client, client.get(admin_url(gw, "/admin/")) as resp:
        csp = resp.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert resp.headers["X-Frame-Options"] == "DENY" and resp.headers["Referrer-Policy"] == "no-referrer"
    await sign_in(page, "wrong-token-wrong-token-wrong")
    await page.wait_for_selector("#sign-in-error:has-text('not valid')")
    assert await page.evaluate("sessionStorage.length") == 0
    await sign_in(page)
    await page.wait_for_selector("#keys")
    assert ADMIN_TOKEN not in page.url
    await page.click("#sign-out")
    await page.wait_for_selector("#sign-in-view:not([hidden])")
    assert await page.evaluate("sessionStorage.length") == 0


async def test_create_shows_the_secret_once_and_it_works_through_the_proxy(console, https) -> None:
    gw, page = console
    await sign_in(page)
    await page.wait_for_selector("#keys")
    await page.click("#create-key")
    await page.fill("#new-name", "bad/name")
    await page.click("#create-submit")
    await page.wait_for_selector("#new-name-error:not(:empty)")  # the API's 422 detail, beside the field
    await page.fill("#new-name", "checkout service")
    await page.click("#create-submit")
    secret = await page.text_content("#new-secret", timeout=5000)
    assert secret and secret.startswith("gw_live_")
    assert "will not see it again" in (await page.text_content("#dialog"))
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "console-create-once.png"))
    await page.click("#secret-done")
    assert await page.locator("#new-secret").count() == 0  # gone from the page with the dialog
    assert secret not in await page.content()
    status, _, _ = await call(https, gw, "/api/v1/visitors", **{"X-API-Key": secret})
    assert status == 200
    await page.wait_for_selector("tr:has-text('checkout service')")
    await page.screenshot(path=str(ARTIFACTS / "console-keys-1280.png"), full_page=True)
    await page.set_viewport_size({"width": 800, "height": 900})
    await page.screenshot(path=str(ARTIFACTS / "console-keys-800.png"), full_page=True)
    assert await page.is_visible("#create-key")


async def test_sort_by_expiry_warning_mark_revoke_and_rotate(console, https) -> None:
    gw, page = console
    soon, soon_secret = await gw.accounts.create_key({"tenant_id": "acme", "name": "soon", "scope": "read_write",
                                                      "validity_days": 10}, ADMIN)
    later, later_secret = await gw.accounts.create_key({"tenant_id": "acme", "name": "later", "scope": "read_write",
                                                        "validity_days": 200}, ADMIN)
    await sign_in(page)
    await page.wait_for_selector("#keys")
    await page.click("th button[data-sort=expires_at]")
    await page.wait_for_selector("th[aria-sort=ascending] button[data-sort=expires_at]")
    names = await page.locator("#keys tbody tr td:first-child").all_text_contents()
    assert names == ["soon", "later"]
    await page.click("th button[data-sort=expires_at]")
    await page.wait_for_selector("th[aria-sort=descending] button[data-sort=expires_at]")
    assert await page.locator("#keys tbody tr td:first-child").all_text_contents() == ["later", "soon"]
    warning = page.locator(f"tr[data-key-id={soon.id}] [data-warning=warn]")
    assert await warning.count() == 1
    assert "Expires soon" in (await warning.get_attribute("title"))
    assert await page.locator(f"tr[data-key-id={later.id}] [data-warning]").count() == 0

    await page.click(f"tr[data-key-id={soon.id}] button:has-text('Revoke')")
    assert "401" in await page.text_content("#dialog")  # the confirmation says what breaks
    await page.click("#confirm-revoke")
    await page.wait_for_selector(f"tr[data-key-id={soon.id}] td.status-revoked")
    status, body, _ = await call(https, gw, "/api/v1/visitors", **{"X-API-Key": soon_secret})
    assert (status, body["error"]["code"]) == (401, "REVOKED_CREDENTIALS")

    await page.click(f"tr[data-key-id={later.id}] button:has-text('Rotate')")
    await page.click("#confirm-rotate")
    new_secret = await page.text_content("#new-secret", timeout=5000)
    await page.click("#secret-done")
    assert (await call(https, gw, "/api/v1/visitors", **{"X-API-Key": later_secret}))[0] == 401
    assert (await call(https, gw, "/api/v1/visitors", **{"X-API-Key": new_secret}))[0] == 200


async def test_create_is_disabled_at_the_tenant_maximum(console) -> None:
    gw, page = console
    for i in range(gw.cfg.keys.max_per_tenant):
        await gw.accounts.create_key({"tenant_id": "acme", "name": f"k{i}", "scope": "read_only"}, ADMIN)
    await sign_in(page)
    await page.wait_for_selector("#keys")
    await page.select_option("#filter-tenant", "acme")
    await page.wait_for_selector("#create-key[disabled]")
    title = await page.get_attribute("#create-key", "title")
    assert title and "4 of 4 active keys" in title


async def test_tenant_names_render_as_text_and_records_views_list_newest_first(console, https) -> None:
    gw, page = console
    hostile = '<img src=x onerror=alert(1)><script>alert(2)</script>'
    await gw.accounts.create_tenant({"id": "evil", "name": hostile, "plan": "starter"}, ADMIN)
    _, secret = await gw.accounts.create_key({"tenant_id": "evil", "name": "probe", "scope": "read_write"}, ADMIN)
    await call(https, gw, "/api/v1/visitors", **{"X-API-Key": secret})
    await sign_in(page)
    await page.wait_for_selector("#keys")
    await page.click("#nav button[data-view=tenants]")
    cell = page.locator("tr[data-tenant-id=evil] td.tenant-name")
    assert await cell.text_content() == hostile
    assert await page.locator("#tenants img, #tenants script").count() == 0
    await page.click("#nav button[data-view=audit]")
    await page.wait_for_selector("td:has-text('key.created')")
    first_action = await page.locator("tbody tr:first-child td:nth-child(3)").text_content()
    assert first_action == "key.created"  # newest first: the key came after both tenants
    await page.click("#nav button[data-view=calls]")
    await page.wait_for_selector("td:has-text('/api/v1/visitors')")
    await page.fill("#f-status", "404")
    await page.click("button:has-text('Apply')")
    await page.wait_for_function("document.querySelectorAll('tbody tr').length === 0")
