"""The console's Webhooks view in Chromium: register an endpoint (its secret shown once), watch its
delivery log, retry a delivery, send a test event, disable, enable and delete it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from tests.access.test_keys_e2e import ADMIN, routes
from tests.conftest import admin_url
from tests.console.conftest import sign_in
from tests.console.test_console_layout import check_page
from tests.events.receiver import Receiver, start_receiver

WEBHOOKS = {"allowed_networks": ["127.0.0.0/8"], "allow_http": True, "timeout": 30,  # a loaded machine's receiver is slow
            "backoff_base": 600}
SCRIPTED = '<img src=x onerror="alert(1)">'


@pytest.fixture
async def hooks_console(start_gateway: Any, upstream: Any, browser: Any) -> AsyncIterator[tuple[Any, Any]]:
    gw = await start_gateway(routes=routes(upstream[0]), webhooks=WEBHOOKS)
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


async def settled(gw: Any, hook_id: str, done: Any) -> None:
    """Until the delivery log satisfies `done`: outcomes are recorded after the receiver answers."""
    async def until() -> None:
        while not done(await gw.store.list_deliveries(hook_id, after=None, limit=100)):
            await asyncio.sleep(0.02)  # polling the recorded state, not standing in for an event

    await asyncio.wait_for(until(), 20)


async def test_register_watch_retry_test_disable_and_delete(hooks_console: Any, aiohttp_server: Any) -> None:
    gw, page = hooks_console
    receiver = await start_receiver(aiohttp_server, Receiver(answers=[503]))  # down for the first attempt
    await sign_in(page)
    await page.get_by_role("link", name="Webhooks", exact=True).click()
    await page.get_by_role("heading", name="Webhooks").wait_for()
    await page.get_by_text("No webhooks yet").wait_for()

    await page.get_by_role("button", name="New webhook").click()
    # the dialog opens once the tenants it offers are loaded: wait for the focus to move into it
    await page.wait_for_function("document.activeElement && document.activeElement.id === 'hook-url'")
    await page.get_by_label("URL").fill("http://10.0.0.1/hooks")  # inside the network: refused
    await page.get_by_role("button", name="Register").click()
    await page.wait_for_selector("#hook-url-error:has-text('address refused')")
    await page.get_by_label("URL").fill(receiver.url)
    await page.get_by_label("All events, including those added later").uncheck()
    await page.get_by_label("tenant.created").check()
    await page.get_by_label("Description (optional)").fill(SCRIPTED)
    await page.get_by_role("button", name="Register").click()
    secret = await page.locator("#hook-secret").text_content()
    assert secret is not None and secret.startswith("whsec_")
    receiver.secret = secret
    await page.get_by_role("button", name="Done").click()
    assert await page.locator("#hook-secret").count() == 0  # the secret left the page with its dialog
    row = page.locator("#webhooks tbody tr").first
    await row.get_by_text(SCRIPTED).wait_for()  # shown as text
    assert "tenant.created" in await row.text_content()
    (hook,), _ = await gw.store.list_endpoints(page=1, per_page=10)

    await gw.accounts.create_tenant({"id": "globex", "name": "Globex", "plan": "starter"}, ADMIN)
    await settled(gw, hook.id, lambda log: [(d.status, d.response_status) for d in log] == [("pending", 503)])
    await page.get_by_role("link", name=f"Deliveries to {receiver.url}").click()
    await page.get_by_role("heading", name="Deliveries").wait_for()
    delivery = page.locator("#deliveries tbody tr").first
    for text in ("tenant.created", "pending", "503", "HTTP 503"):
        await delivery.get_by_text(text, exact=False).first.wait_for()
    await delivery.get_by_role("button", name="Retry").click()
    await page.wait_for_selector("#deliveries-status:has-text('will be sent again now')")
    await receiver.wait_for(lambda r: len(r.delivered()) == 1)
    await settled(gw, hook.id, lambda log: [d.status for d in log] == ["delivered"])
    await page.get_by_role("button", name="Reload").click()
    await page.locator("#deliveries tbody tr").first.get_by_text("delivered").wait_for()
    assert [(r.status, r.verified) for r in receiver.got] == [(503, True), (200, True)]
    assert receiver.got[0].id == receiver.got[1].id
    await check_page(page, "webhook-deliveries", 1280)

    await page.get_by_role("link", name="All webhooks").click()
    await page.get_by_role("button", name=f"Send a test event to {receiver.url}").click()
    await page.wait_for_selector("#webhooks-status:has-text('Test event')")
    await receiver.wait_count(3)
    assert receiver.got[-1].payload["type"] == "webhook.test" and receiver.got[-1].verified
    await check_page(page, "webhooks", 1280)

    await page.get_by_role("button", name=f"Disable {receiver.url}").click()
    await page.locator("#webhooks tbody tr").first.get_by_text("disabled").wait_for()
    assert (await gw.store.get_endpoint(hook.id)).disabled  # type: ignore[union-attr]
    await page.get_by_role("button", name=f"Enable {receiver.url}").click()
    await page.get_by_role("button", name=f"Disable {receiver.url}").wait_for()

    await page.set_viewport_size({"width": 390, "height": 844})
    await check_page(page, "webhooks", 390)

    await page.get_by_role("button", name=f"Delete {receiver.url}").click()
    await page.get_by_role("button", name="Delete", exact=True).click()
    await page.get_by_text("No webhooks yet").wait_for()
    assert await gw.store.get_endpoint(hook.id) is None


async def test_rotating_the_secret_shows_the_new_one_once_and_both_verify_meanwhile(
        hooks_console: Any, aiohttp_server: Any) -> None:
    gw, page = hooks_console
    old, new = Receiver(), Receiver()  # a receiver still holding the old secret, and one switched already

    async def both(request: Any) -> Any:
        await old.handle(request)
        return await new.handle(request)

    app = web.Application()
    app.router.add_post("/hooks", both)
    url = f"http://127.0.0.1:{(await aiohttp_server(app)).port}/hooks"
    hook, old.secret = await gw.services.webhooks.create({"url": url, "events": ["*"]}, ADMIN)
    await sign_in(page)
    await page.get_by_role("link", name="Webhooks", exact=True).click()
    await page.get_by_role("button", name=f"Rotate the signing secret of {url}").click()
    dialog = page.get_by_role("dialog", name="Rotate the signing secret?")
    await dialog.get_by_label("Old secret keeps signing for").select_option(label="1 hour")
    await dialog.get_by_role("button", name="Rotate").click()
    await page.get_by_role("dialog", name="Signing secret rotated").wait_for()
    new.secret = await page.locator("#hook-secret").text_content()
    assert new.secret and new.secret.startswith("whsec_") and new.secret != old.secret
    assert "The old one signs too until" in (await page.locator("#dialog .notice").text_content() or "")
    await page.get_by_role("button", name="Done").click()
    assert await page.locator("#hook-secret").count() == 0  # shown once: it left the page with its dialog
    await page.locator("#webhooks tbody tr").first.get_by_text("old secret signs until").wait_for()
    stored = await gw.store.get_endpoint(hook.id)
    assert stored is not None and stored.secret == new.secret and stored.previous_secret == old.secret
    left = stored.previous_secret_expires_at - stored.updated_at  # type: ignore[operator]
    assert left.total_seconds() == 3600

    await page.get_by_role("button", name=f"Send a test event to {url}").click()
    await page.wait_for_selector("#webhooks-status:has-text('Test event')")
    await new.wait_count(1)
    assert (old.got[0].verified, new.got[0].verified) == (True, True)
    await check_page(page, "webhooks-rotated", 1280)
    await page.set_viewport_size({"width": 390, "height": 844})
    await check_page(page, "webhooks-rotated", 390)
