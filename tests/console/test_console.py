"""The key console in a real browser: Debian's Chromium driven by Playwright, against a real gateway.

Things are found by role and label, as a person (or a screen reader) finds them.
"""

from __future__ import annotations

import re
import time

import aiohttp
from playwright.async_api import expect

from tests.access.test_keys_e2e import ADMIN, call
from tests.conftest import ADMIN_TOKEN, admin_url
from tests.console.conftest import shot, sign_in

DAY = 86400.0


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
    await page.get_by_role("table", name="API keys").wait_for()
    assert ADMIN_TOKEN not in page.url
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_selector("#sign-in-view:not([hidden])")
    assert await page.evaluate("sessionStorage.length") == 0


async def test_favicon_is_served_and_linked(console) -> None:
    gw, page = console
    async with aiohttp.ClientSession() as client:
        async with client.get(admin_url(gw, "/favicon.ico")) as resp:
            assert resp.status == 200 and resp.content_type == "image/vnd.microsoft.icon"
            assert (await resp.read())[:4] == b"\x00\x00\x01\x00"  # an icon resource
        links = await page.locator("link[rel=icon]").all()
        assert len(links) == 2  # the .ico for every browser, the SVG where it is understood
        for link in links:
            async with client.get(admin_url(gw, await link.get_attribute("href"))) as resp:
                assert resp.status == 200 and resp.content_type.startswith("image/")


async def test_navigation_shows_only_once_signed_in(console) -> None:
    gw, page = console
    nav = page.get_by_role("navigation", name="Views")
    assert not await nav.is_visible()
    assert not await page.get_by_role("link", name="Tenants", exact=True).is_visible()
    assert not await page.get_by_role("button", name="Sign out").is_visible()
    await sign_in(page)
    await page.get_by_role("link", name="Tenants", exact=True).click()
    await page.get_by_role("heading", name="Tenants").wait_for()
    await expect(page.locator("#view p.hint")).to_have_text("1 tenant")  # not "1 tenants"
    assert await page.get_by_role("link", name="Keys", exact=True).is_visible()
    await page.get_by_role("button", name="Sign out").click()
    await page.get_by_label("Admin token").wait_for()
    assert not await nav.is_visible()
    assert await page.text_content("#sign-in-error") == ""  # signing out is not a lost session


async def test_a_token_that_stops_working_leads_back_to_sign_in(console) -> None:
    gw, page = console
    await sign_in(page)
    await page.get_by_role("table", name="API keys").wait_for()
    await page.evaluate("sessionStorage.setItem('gateway.adminToken', 'no-longer-the-admin-token-xxxx')")
    await page.get_by_role("link", name="Audit", exact=True).click()
    await page.wait_for_selector("#sign-in-error:has-text('no longer valid')")
    assert not await page.get_by_role("navigation", name="Views").is_visible()
    assert await page.evaluate("document.activeElement.id") == "token"


async def test_views_and_filters_live_in_the_url(console) -> None:
    gw, page = console
    await gw.accounts.create_tenant({"id": "globex", "name": "Globex", "plan": "starter"}, ADMIN)
    await gw.accounts.create_key({"tenant_id": "acme", "name": "acme key", "scope": "read_only"}, ADMIN)
    await gw.accounts.create_key({"tenant_id": "globex", "name": "globex key", "scope": "read_only"}, ADMIN)
    await sign_in(page)
    keys = page.locator("#keys tbody tr td.cell-name")
    await page.get_by_role("table", name="API keys").wait_for()
    assert sorted(await keys.all_text_contents()) == ["acme key", "globex key"]
    await page.get_by_label("Tenant").select_option("globex")
    await page.wait_for_url(re.compile(r"#/keys\?tenant=globex$"))
    await expect(keys).to_have_text(["globex key"])
    await page.get_by_role("button", name="Name", exact=True).click()  # the order goes into the URL too
    await page.wait_for_url(re.compile(r"#/keys\?tenant=globex&sort=name$"))

    await page.reload()  # the same view, filter and order after a reload
    await page.get_by_role("table", name="API keys").wait_for()
    assert await keys.all_text_contents() == ["globex key"]
    assert await page.get_by_label("Tenant").input_value() == "globex"
    assert await page.get_attribute("th[aria-sort=ascending] button", "data-sort") == "name"

    await page.get_by_role("link", name="Calls", exact=True).click()
    await page.get_by_role("heading", name="Call log").wait_for()
    await page.reload()
    await page.get_by_role("heading", name="Call log").wait_for()
    assert await page.get_attribute("#nav a[aria-current=page]", "data-view") == "calls"
    await page.go_back()  # back: the keys of globex, as they were
    await page.wait_for_url(re.compile(r"#/keys\?tenant=globex&sort=name$"))
    await page.get_by_role("table", name="API keys").wait_for()
    assert await page.get_by_label("Tenant").input_value() == "globex"
    await page.go_back()
    await page.wait_for_url(re.compile(r"#/keys\?tenant=globex$"))
    await page.wait_for_selector("th[aria-sort=descending] button[data-sort=created_at]")
    await page.go_forward()
    await page.go_forward()
    await page.get_by_role("heading", name="Call log").wait_for()

    await page.goto(admin_url(gw, "/admin/#/calls?status=404"))  # a link to a filtered view
    await expect(page.get_by_label("Status")).to_have_value("404")
    await page.goto(admin_url(gw, "/admin/#/tenants"))
    await page.get_by_role("link", name="Keys of Acme Corp: 1 of 4 active").click()
    await page.wait_for_url(re.compile(r"#/keys\?tenant=acme$"))
    await expect(keys).to_have_text(["acme key"])


async def test_a_link_to_one_key_shows_that_key_alone_after_sign_in(console) -> None:
    gw, page = console
    wanted, _ = await gw.accounts.create_key({"tenant_id": "acme", "name": "wanted", "scope": "read_only"}, ADMIN)
    await gw.accounts.create_key({"tenant_id": "acme", "name": "other", "scope": "read_only"}, ADMIN)
    await page.goto(admin_url(gw, f"/admin/#/keys?key={wanted.id}"))
    await sign_in(page)
    await page.get_by_text("Showing one key: wanted").wait_for()
    names = page.locator("#keys tbody tr td.cell-name")
    await expect(names).to_have_text(["wanted"])
    await page.get_by_role("button", name="Revoke wanted").wait_for()
    await page.get_by_role("link", name="Show all keys").click()
    await page.wait_for_url(re.compile(r"#/keys$"))
    await expect(names).to_have_text(["other", "wanted"])


async def test_expiry_says_revoked_or_how_long_ago_it_expired(console, console_clock) -> None:
    gw, page = console
    console_clock[0] = -100 * DAY  # made 100 days ago for 10 days: expired 90 days ago
    old, _ = await gw.accounts.create_key({"tenant_id": "acme", "name": "old", "scope": "read_only", "validity_days": 10}, ADMIN)
    console_clock[0] = 0.0
    gone, _ = await gw.accounts.create_key({"tenant_id": "acme", "name": "gone", "scope": "read_only"}, ADMIN)
    await gw.accounts.revoke_key(gone.id, ADMIN)
    live, _ = await gw.accounts.create_key({"tenant_id": "acme", "name": "live", "scope": "read_only"}, ADMIN)
    await sign_in(page)
    await page.get_by_role("table", name="API keys").wait_for()

    async def expiry(key_id: str) -> str:
        return (await page.text_content(f"tr[data-key-id={key_id}] td.expiry") or "").strip()

    assert await expiry(gone.id) == "revoked"
    assert (await expiry(old.id)).startswith("expired 90 days ago")
    assert await page.locator(f"tr[data-key-id={old.id}] [data-warning=expired]").count() == 1
    assert await expiry(live.id) == "in 90 days"
    assert await page.is_disabled(f"tr[data-key-id={gone.id}] button:has-text('Revoke')")


async def test_create_shows_the_secret_once_and_it_works_through_the_proxy(console, https) -> None:
    gw, page = console
    await sign_in(page)
    await page.get_by_role("button", name="New key").click()
    dialog = page.get_by_role("dialog", name="New API key")
    assert await page.evaluate("document.activeElement.id") == "new-name"  # focus moved into the dialog
    await dialog.get_by_label("Name").fill("bad/name")
    await dialog.get_by_label("Name").press("Enter")  # Enter submits; the dialog stays open
    await page.wait_for_selector("#new-name-error:not(:empty)")  # the API's 422 detail, beside the field
    assert await dialog.is_visible()
    await dialog.get_by_label("Name").fill("checkout service")
    await dialog.get_by_role("button", name="Create", exact=True).click()
    secret = await page.text_content("#new-secret", timeout=5000)
    assert secret and secret.startswith("gw_live_")
    assert "will not see it again" in (await page.text_content("#dialog"))
    await page.get_by_role("button", name="Done").click()
    await expect(page.locator("#new-secret")).to_have_count(0)  # gone from the page with the dialog
    assert secret not in await page.content()
    await page.wait_for_selector("tr:has-text('checkout service')")  # the view drawn again after the dialog closed
    await expect(page.get_by_role("button", name="New key")).to_be_focused()  # focus went back
    status, _, _ = await call(https, gw, "/api/v1/visitors", **{"X-API-Key": secret})
    assert status == 200


async def test_create_dialog_offers_what_the_api_takes(console, https) -> None:
    gw, page = console
    owner = await gw.accounts.create_user("acme", {"name": "Olive Owner", "email": "olive@acme.test", "role": "member"}, ADMIN)
    await sign_in(page)
    await page.get_by_role("button", name="New key").click()
    dialog = page.get_by_role("dialog", name="New API key")
    await dialog.get_by_label("Name").fill("stores reader")
    await dialog.get_by_label("Owner").select_option(owner.id)
    await dialog.get_by_label("Scope").select_option("custom")
    await dialog.get_by_label("Path").fill("nowhere")
    await dialog.get_by_label("Expires after (days)").fill("3")
    await dialog.get_by_label("Rate limit (requests per minute)").fill("0")
    await dialog.get_by_role("button", name="Add resource limit").click()
    await dialog.get_by_label("Values, comma-separated").fill("loc_001, loc_002")
    await dialog.get_by_role("button", name="Create", exact=True).click()
    await dialog.get_by_text("Name the route parameter").wait_for()  # a half-filled row, caught here
    assert await page.evaluate("document.activeElement.className") == "res-name"
    await dialog.get_by_label("Route parameter").fill("location")
    await dialog.get_by_role("button", name="Create", exact=True).click()
    # each of the API's 422 details beside its own field
    await page.wait_for_selector("#new-validity-error:has-text('from 10 to')")
    assert "positive integer" in await page.text_content("#new-rate-error")
    assert "path starting with /" in await dialog.locator(".perm .field-error").text_content()
    assert await page.evaluate("document.activeElement.className") == "perm-path"  # the first field to fix

    await dialog.get_by_label("Path").fill("/v1/locations/*")
    await dialog.get_by_label("Expires after (days)").fill("30")
    await dialog.get_by_label("Rate limit (requests per minute)").fill("5")
    await dialog.get_by_role("button", name="Create", exact=True).click()
    secret = await page.text_content("#new-secret", timeout=5000)
    await page.get_by_role("button", name="Done").click()
    made = (await gw.accounts.store.list_keys(tenant_id="acme", status=None, now=gw.accounts.now(), page=1,
                                              per_page=10, sort="name"))[0][0]
    assert made.user_id == owner.id and made.rate_limit_per_minute == 5
    assert dict(made.resources) == {"location": ("loc_001", "loc_002")}
    assert [(p.methods, p.path) for p in made.permissions] == [(("GET",), "/v1/locations/*")]
    assert 29 < (made.expires_at - made.created_at).total_seconds() / DAY <= 30
    assert (await call(https, gw, "/v1/locations/loc_002", **{"X-API-Key": secret}))[0] == 200
    assert (await call(https, gw, "/v1/locations/loc_003", **{"X-API-Key": secret}))[0] == 403

    await page.get_by_role("button", name="New key").click()
    await dialog.get_by_label("Name").fill("forever")
    await dialog.get_by_label("Never expires").check()
    assert await dialog.get_by_label("Expires after (days)").is_disabled()
    await dialog.get_by_role("button", name="Create", exact=True).click()
    await page.get_by_role("button", name="Done").click()
    await expect(page.locator("#keys tr", has_text="forever").locator("td.expiry")).to_have_text("never")

    # an end date instead of days: the browser's local time, sent as the instant in UTC
    await page.get_by_role("button", name="New key").click()
    await dialog.get_by_label("Name").fill("dated")
    await dialog.get_by_label("Or expires at (your local time)").fill("2001-02-03T04:05")
    assert await dialog.get_by_label("Expires after (days)").is_disabled()
    await dialog.get_by_role("button", name="Create", exact=True).click()
    await page.wait_for_selector("#new-expires-at-error:has-text('in the future')")
    local = time.strftime("%Y-%m-%dT%H:%M", time.localtime(gw.accounts.now().timestamp() + 20 * DAY))
    await dialog.get_by_label("Or expires at (your local time)").fill(local)
    await dialog.get_by_role("button", name="Create", exact=True).click()
    await page.get_by_role("button", name="Done").click()
    await page.wait_for_selector("#keys tr:has-text('dated')")
    wanted = await page.evaluate(f"new Date('{local}').getTime() / 1000")
    dated = [k for k in (await gw.accounts.store.list_keys(tenant_id="acme", status=None, now=gw.accounts.now(), page=1,
                                                           per_page=10, sort="name"))[0] if k.name == "dated"]
    assert dated[0].expires_at is not None and dated[0].expires_at.timestamp() == wanted


async def test_sort_by_expiry_warning_mark_revoke_and_rotate(console, https) -> None:
    gw, page = console
    soon, soon_secret = await gw.accounts.create_key({"tenant_id": "acme", "name": "soon", "scope": "read_write",
                                                      "validity_days": 10}, ADMIN)
    later, later_secret = await gw.accounts.create_key({"tenant_id": "acme", "name": "later", "scope": "read_write",
                                                        "validity_days": 200}, ADMIN)
    await sign_in(page)
    names = page.locator("#keys tbody tr td.cell-name")
    await page.get_by_role("button", name="Expires", exact=True).click()
    await page.wait_for_selector("th[aria-sort=ascending] button[data-sort=expires_at]")
    assert await names.all_text_contents() == ["soon", "later"]
    await page.get_by_role("button", name="Expires", exact=True).click()
    await page.wait_for_selector("th[aria-sort=descending] button[data-sort=expires_at]")
    assert await names.all_text_contents() == ["later", "soon"]
    warning = page.locator(f"tr[data-key-id={soon.id}] [data-warning=warn]")
    assert await warning.count() == 1
    assert "Expires soon" in (await warning.get_attribute("title"))
    assert await page.locator(f"tr[data-key-id={later.id}] [data-warning]").count() == 0

    await page.get_by_role("button", name="Revoke soon").click()
    assert "401" in await page.text_content("#dialog")  # the confirmation says what breaks
    await page.get_by_role("dialog").get_by_role("button", name="Revoke").click()
    await page.wait_for_selector(f"tr[data-key-id={soon.id}] .status-revoked")
    status, body, _ = await call(https, gw, "/api/v1/visitors", **{"X-API-Key": soon_secret})
    assert (status, body["error"]["code"]) == (401, "REVOKED_CREDENTIALS")

    await page.get_by_role("button", name="Rotate later").click()
    await page.get_by_role("dialog").get_by_role("button", name="Rotate").click()
    new_secret = await page.text_content("#new-secret", timeout=5000)
    await page.get_by_role("button", name="Done").click()
    assert (await call(https, gw, "/api/v1/visitors", **{"X-API-Key": later_secret}))[0] == 401
    assert (await call(https, gw, "/api/v1/visitors", **{"X-API-Key": new_secret}))[0] == 200


async def test_a_refused_action_is_shown_in_its_dialog(console) -> None:
    gw, page = console
    key, _ = await gw.accounts.create_key({"tenant_id": "acme", "name": "doomed", "scope": "read_only"}, ADMIN)
    await sign_in(page)
    await page.get_by_role("button", name="Revoke doomed").click()
    await page.route("**/admin/keys/*/revoke", lambda route: route.fulfill(
        status=503, content_type="application/json",
        body='{"error": {"code": "STORE_UNAVAILABLE", "message": "the key store cannot be reached"}}'))
    await page.get_by_role("dialog").get_by_role("button", name="Revoke").click()
    await page.wait_for_selector("#dialog-error:has-text('cannot be reached')")
    assert await page.get_by_role("dialog").is_visible()


async def test_create_is_disabled_at_the_tenant_maximum(console) -> None:
    gw, page = console
    for i in range(gw.cfg.keys.max_per_tenant):
        await gw.accounts.create_key({"tenant_id": "acme", "name": f"k{i}", "scope": "read_only"}, ADMIN)
    await sign_in(page)
    await page.get_by_role("table", name="API keys").wait_for()
    await page.get_by_label("Tenant").select_option("acme")
    await page.wait_for_selector("#create-key[disabled]")
    assert "4 of 4 active keys" in (await page.get_attribute("#create-key", "title") or "")
    assert "4 of 4 active keys" in await page.text_content("#create-key-why")  # said in words, not only a tooltip


async def test_tenant_names_render_as_text_and_records_views_list_newest_first(console, https) -> None:
    gw, page = console
    hostile = '<img src=x onerror=alert(1)><script>alert(2)</script>'
    await gw.accounts.update_tenant("acme", {"write_enabled": False}, ADMIN)
    await gw.accounts.create_tenant({"id": "evil", "name": hostile, "plan": "starter"}, ADMIN)
    await gw.accounts.create_user("evil", {"name": "Ops", "role": "admin"}, ADMIN)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as admin, admin.post(
            admin_url(gw, "/admin/tenants/evil/invitations"), json={"email": "o@evil.example", "name": "Olga", "role": "owner"}) as made:
        assert made.status == 201, await made.text()  # a portal invitation nobody has accepted yet
    _, secret = await gw.accounts.create_key({"tenant_id": "evil", "name": "probe", "scope": "read_write"}, ADMIN)
    await call(https, gw, "/api/v1/visitors", **{"X-API-Key": secret})
    await sign_in(page)
    await page.get_by_role("link", name="Tenants", exact=True).click()
    await expect(page.locator("tr[data-tenant-id=acme] td[data-label=State]")).to_have_text("active · read only")
    cell = page.locator("tr[data-tenant-id=evil] td.tenant-name")
    assert await cell.text_content() == hostile
    assert await page.locator("#tenants img, #tenants script").count() == 0
    await expect(page.locator("tr[data-tenant-id=evil] ul.users li")).to_have_text(["Ops (admin)", "Olga (owner, invited)"])
    await page.get_by_role("link", name="Audit", exact=True).click()
    await page.wait_for_selector("td:has-text('key.created')")
    first_action = await page.locator("tbody tr:first-child td:nth-child(3)").text_content()
    assert first_action == "key.created"  # newest first: the key came after both tenants
    await page.get_by_label("Tenant id").fill("evil")
    await page.get_by_label("Action").fill("tenant.created")
    await page.get_by_role("button", name="Apply").click()
    await page.wait_for_url(re.compile(r"#/audit\?tenant_id=evil&action=tenant\.created$"))
    await expect(page.locator("#audit tbody tr td:nth-child(3)")).to_have_text(["tenant.created"])
    await page.get_by_role("link", name="Calls", exact=True).click()
    await page.wait_for_selector("td:has-text('/api/v1/visitors')")
    await page.get_by_label("Status").fill("404")
    await page.get_by_role("button", name="Apply").click()
    await page.wait_for_selector("#calls tr.empty")
    await page.screenshot(path=shot("calls-filtered-1280"))


async def test_the_components_mount_in_a_second_mode_with_fewer_capabilities(console) -> None:
    """What the tenant portal will do: the same views, another client and a viewer's capabilities."""
    gw, page = console
    await gw.accounts.create_key({"tenant_id": "acme", "name": "shared", "scope": "read_only"}, ADMIN)
    await sign_in(page)
    await page.get_by_role("table", name="API keys").wait_for()
    mounted = await page.evaluate("""async () => {
      const { bearerAuth, createClient } = await import("/admin/console/js/api.js");
      const { keysView } = await import("/admin/console/js/keys.js");
      const { auditView } = await import("/admin/console/js/records.js");
      const calls = [];
      const client = createClient({ base: "/admin", auth: bearerAuth(() => sessionStorage.getItem("gateway.adminToken")) });
      const traced = { get: (path, params) => { calls.push(path); return client.get(path, params); } };
      const ctx = { client: traced, caps: { tenants: false, createKeys: false, manageKeys: false, chooseOwner: false },
                    tenants: async () => [{ id: "acme", name: "Acme Corp" }], params: {}, navigate() {}, refresh() {} };
      const keys = document.createElement("div");
      const audit = document.createElement("div");
      await keysView(keys, ctx);
      await auditView(audit, ctx);
      const texts = (root, sel) => [...root.querySelectorAll(sel)].map((e) => e.textContent.trim());
      return { calls, keyHeads: texts(keys, "th"), keyButtons: texts(keys, "button"), names: texts(keys, "td.cell-name"),
               selects: [...keys.querySelectorAll("select")].map((s) => s.id), auditHeads: texts(audit, "th") };
    }""")
    assert mounted["calls"] == ["/keys", "/audit"]  # paths under the client's base, nothing of the admin API's own
    assert mounted["names"] == ["shared"]
    assert "Tenant" not in mounted["keyHeads"] and "Actions" not in mounted["keyHeads"]
    assert not {"New key", "Rotate", "Revoke"} & set(mounted["keyButtons"])
    assert "filter-tenant" not in mounted["selects"] and "filter-status" in mounted["selects"]
    assert "Tenant" not in mounted["auditHeads"] and "Action" in mounted["auditHeads"]
