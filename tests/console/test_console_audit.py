"""The console's audit trail shows each entry's `details` (what else the action names: a canary
key's user agent, method and path), as text: a hostile user agent is shown, never run or parsed."""

from __future__ import annotations

from playwright.async_api import expect

from tests.access.test_keys_e2e import ADMIN, call
from tests.console.conftest import shot, sign_in

HOSTILE = '<img src=x onerror=alert(1)><script>alert(2)</script>'


async def test_the_audit_view_shows_each_entrys_details_as_text(console, https) -> None:
    gw, page = console
    canary, secret = await gw.accounts.create_key(
        {"tenant_id": "acme", "name": "trap", "scope": "read_only", "canary": True}, ADMIN)
    status, _, _ = await call(https, gw, "/api/v1/visitors", **{"X-API-Key": secret, "User-Agent": HOSTILE})
    assert status == 401
    await gw.canary_alarm.settled()
    assert await gw.recorder.audit_buffer.flush()

    await sign_in(page)
    await page.get_by_role("link", name="Audit", exact=True).click()
    used = page.locator("#audit tbody tr", has_text="key.canary_used")
    agent = used.locator("[data-detail=user_agent] dd")
    await expect(agent).to_have_text(HOSTILE)
    await expect(agent.locator("span")).to_have_attribute("title", HOSTILE)  # the whole value, however it is cut
    await expect(used.locator("[data-detail=method] dd")).to_have_text("GET")
    await expect(used.locator("[data-detail=path] dd")).to_have_text("/api/v1/visitors")
    await expect(used.locator("[data-detail] dt")).to_have_text(["user_agent", "method", "path"])
    assert await page.locator("#audit img, #audit script").count() == 0
    # an entry without details has nothing in its cell
    await expect(page.locator("#audit tbody tr", has_text="tenant.created").locator("td[data-label=Details]")).to_have_text("")
    assert await page.locator("#audit th", has_text="Details").count() == 1
    await page.screenshot(path=shot("audit-details"))
    assert canary.canary
