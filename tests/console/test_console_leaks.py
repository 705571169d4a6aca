"""The key table's marks for leaked and canary keys, and the create dialog's canary switch,
in the real console through Chromium (the portal mounts the same table)."""

from __future__ import annotations

from tests.access.test_keys_e2e import ADMIN, call
from tests.console.conftest import shot, sign_in


async def test_exposed_and_canary_keys_are_marked_and_a_canary_can_be_made(console, https) -> None:
    gw, page = console
    leaked, _ = await gw.accounts.create_key({"tenant_id": "acme", "name": "leaked", "scope": "read_only"}, ADMIN)
    await gw.accounts.mark_exposed(leaked.id, "secret_scanning", url="https://github.com/acme/app/blob/main/.env")
    plain, _ = await gw.accounts.create_key({"tenant_id": "acme", "name": "plain", "scope": "read_only"}, ADMIN)
    await sign_in(page)
    await page.get_by_role("table", name="API keys").wait_for()
    mark = page.locator(f"tr[data-key-id={leaked.id}] [data-exposed=secret_scanning]")
    assert await mark.count() == 1
    title = await mark.get_attribute("title") or ""
    assert "secret scanner" in title and "github.com/acme/app" in title
    assert await page.locator(f"tr[data-key-id={plain.id}] [data-exposed], tr[data-key-id={plain.id}] [data-canary]").count() == 0

    await page.get_by_role("button", name="New key").click()
    dialog = page.get_by_role("dialog", name="New API key")
    await dialog.get_by_label("Name").fill("in the old wiki")
    await dialog.get_by_label("Canary key").check()
    await dialog.get_by_role("button", name="Create", exact=True).click()
    secret = await page.text_content("#new-secret", timeout=5000)
    assert secret and secret.startswith("gw_live_")
    await page.get_by_role("button", name="Done").click()
    row = page.locator("tr:has-text('in the old wiki')")
    await row.locator("[data-canary]").wait_for()
    await page.screenshot(path=shot("keys-leaks"))
    status, body, _ = await call(https, gw, "/api/v1/visitors", **{"X-API-Key": secret})
    assert status == 401 and body["error"]["code"] == "INVALID_CREDENTIALS"
