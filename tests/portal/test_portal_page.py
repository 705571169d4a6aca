"""The portal page in Debian's Chromium, through the gateway's real HTTPS listener: the issue's
"done when" walk, by roles and labels, and the layout at a desktop and a phone width."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
from playwright.async_api import expect

from tests.conftest import ADMIN_TOKEN, admin_url
from tests.console.conftest import browser, shot  # noqa: F401  (browser: the fixture, Debian's Chromium)
from tests.console.test_console_layout import PAGE_PROBLEMS
from tests.portal.harness import PASSWORD
from tests.portal.test_mail import smtp  # noqa: F401  (the fixture: a real SMTP server)

OWNER = "owner@acme.example"
ADMIN_EMAIL = "admin@acme.example"
VIEWER = "viewer@acme.example"


async def operator(site: Any, method: str, path: str, body: Any = None) -> Any:
    """The operator on the admin listener (plain HTTP on loopback) with the admin token."""
    async with aiohttp.ClientSession() as http, http.request(
            method, admin_url(site.gateway, path), json=body, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as resp:
        answer = await resp.json()
        assert resp.status < 300, answer
        return answer


class Pages:
    """Browser contexts (each its own cookies, like separate people), watched for script errors,
    alerts (a script run from rendered data) and requests for missing files (the page's own)."""

    def __init__(self, chromium: Any) -> None:
        self.chromium = chromium
        self.problems: list[str] = []
        self.contexts: list[Any] = []

    async def new(self, width: int = 1280) -> Any:
        context = await self.chromium.new_context(ignore_https_errors=True, viewport={"width": width, "height": 900})
        self.contexts.append(context)
        page = await context.new_page()
        page.on("pageerror", lambda e: self.problems.append(f"error: {e}"))
        page.on("dialog", lambda d: (self.problems.append(f"alert: {d.message}"), d.dismiss()))
        page.on("response", lambda r: self.problems.append(f"404: {r.url}")
                if r.status == 404 and "/portal/api/" not in r.url else None)  # the API's 404s are answers
        return page


@pytest.fixture
async def pages(browser) -> AsyncIterator[Pages]:  # noqa: F811
    made = Pages(browser)
    yield made
    for context in made.contexts:
        await context.close()
    assert made.problems == []


async def accept(page: Any, url: str, name: str) -> None:
    """Opens an invitation link, sets the password, then signs in with it."""
    await page.goto(url)
    await page.get_by_role("heading", name="Accept your invitation").wait_for()
    assert "#invitation=" not in page.url  # the secret left the address bar (and its history entry)
    await page.get_by_label("Your name").fill(name)
    await page.get_by_label("New password", exact=True).fill(PASSWORD)
    await page.get_by_label("Repeat the password").fill(PASSWORD)
    await page.get_by_role("button", name="Accept and set password").click()
    await page.get_by_text("Your account is ready").wait_for()
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("heading", name="API keys").wait_for()


async def invite(page: Any, email: str, role: str) -> str:
    await page.get_by_role("link", name="Members").click()
    await page.get_by_role("heading", name="Members").wait_for()
    form = page.get_by_role("form", name="Invite a member")
    await form.get_by_label("Email").fill(email)
    await form.get_by_label("Role").select_option(role)
    await form.get_by_role("button", name="Invite").click()
    await page.locator("#invitation-once").get_by_text(f"Invitation for {email}").wait_for()
    link = page.locator("#invitation-url")
    url = (await link.text_content()) or ""
    assert re.search(r"/portal/#invitation=[A-Za-z0-9_-]{43}$", url), url
    await expect(page.get_by_role("row").filter(has_text=email)).to_have_count(1)
    return url


async def test_owner_invited_by_the_operator_runs_the_tenants_api_access(start_portal, pages) -> None:
    site = await start_portal()
    await operator(site, "POST", "/admin/tenants", {"id": "acme", "name": "Acme Corp", "plan": "starter"})
    invited = await operator(site, "POST", "/admin/tenants/acme/invitations", {"email": OWNER, "role": "owner"})
    assert invited["invitation_url"].startswith(f"{site.base}/portal/#invitation=")

    owner = await pages.new()
    await accept(owner, invited["invitation_url"], "Olivia Owner")
    assert await owner.locator("#who").text_content() == f"{OWNER} · owner · Acme Corp"

    # a key: the secret shown once
    await owner.get_by_role("button", name="New key").click()
    await owner.get_by_label("Name", exact=True).fill("backend")
    assert await owner.locator("#new-rate").count() == 0  # the portal's keys take the plan's limit
    await owner.get_by_role("button", name="Create", exact=True).click()
    secret = (await owner.locator("#new-secret").text_content()) or ""
    assert re.fullmatch(r"gw_live_\w+", secret), secret
    await owner.get_by_role("button", name="Done", exact=True).click()
    row = owner.get_by_role("row").filter(has_text="backend")
    await row.wait_for()
    assert secret not in (await owner.content())
    assert secret[-4:] in ((await row.text_content()) or "")  # only its last four, masked

    admin_link = await invite(owner, ADMIN_EMAIL, "admin")
    viewer_link = await invite(owner, VIEWER, "viewer")
    assert admin_link != viewer_link

    # the viewer sees the keys, and no control to change them
    viewer = await pages.new()
    await accept(viewer, viewer_link, "Victor Viewer")
    await viewer.get_by_role("row").filter(has_text="backend").wait_for()
    for name in ("New key", "Rotate backend", "Revoke backend"):
        assert await viewer.get_by_role("button", name=name).count() == 0, name
    await viewer.get_by_role("link", name="Members").click()
    await viewer.get_by_role("heading", name="Members").wait_for()
    assert await viewer.get_by_role("button", name="Invite").count() == 0
    assert await viewer.get_by_role("link", name="Webhooks").is_hidden()
    # ...and the API refuses those calls (its own session, its CSRF token: only the role is missing)
    api = site.client()
    assert (await api.sign_in(VIEWER))[0] == 200
    key_id = (await api.api("GET", "/keys"))[1]["data"][0]["id"]
    for path in ("/keys", f"/keys/{key_id}/rotate", f"/keys/{key_id}/revoke"):
        status, body = await api.api("POST", path, {"name": "mine", "scope": "read_only"} if path == "/keys" else None)
        assert (status, body["error"]["code"]) == (403, "INSUFFICIENT_SCOPE"), path

    # the owner revokes the key; the audit trail names the owner
    await owner.get_by_role("link", name="Keys").click()
    await owner.get_by_role("button", name="Revoke backend").click()
    await owner.locator("#confirm-revoke").click()
    await owner.get_by_role("row").filter(has_text="backend").filter(has_text="revoked").wait_for()
    await owner.get_by_role("link", name="Audit").click()
    revoked = owner.get_by_role("row").filter(has_text="key.revoked")
    await revoked.wait_for()
    assert f"({OWNER})" in ((await revoked.text_content()) or "")

    # signing out ends the session: a reload asks to sign in again
    await owner.get_by_role("button", name="Sign out").click()
    await owner.reload()
    await owner.get_by_role("heading", name="Sign in").wait_for()


async def test_the_operators_gates_show_as_notices(start_portal, pages) -> None:
    site = await start_portal()
    await operator(site, "POST", "/admin/tenants", {"id": "acme", "name": "Acme Corp", "plan": "starter"})
    await operator(site, "PATCH", "/admin/tenants/acme", {"api_enabled": False})
    invited = await operator(site, "POST", "/admin/tenants/acme/invitations", {"email": OWNER, "role": "owner"})
    owner = await pages.new()
    await accept(owner, invited["invitation_url"], "Olivia Owner")
    await owner.get_by_text("API access is not enabled").wait_for()
    assert await owner.get_by_role("button", name="New key").count() == 0
    await operator(site, "PATCH", "/admin/tenants/acme", {"api_enabled": True, "write_enabled": False})
    await owner.reload()
    await owner.get_by_text("Write access is not enabled").wait_for()
    assert await owner.get_by_text("API access is not enabled").count() == 0
    assert await owner.get_by_role("button", name="New key").is_enabled()


@pytest.mark.parametrize("width", [1280, 390])
async def test_every_view_fits_a_desktop_and_a_phone(start_portal, pages, width: int) -> None:
    site = await start_portal()
    await operator(site, "POST", "/admin/tenants", {"id": "acme", "name": "Acme Corp", "plan": "starter"})
    invited = await operator(site, "POST", "/admin/tenants/acme/invitations", {"email": OWNER, "role": "owner"})
    page = await pages.new(width)
    await page.goto(f"{site.base}/portal/")
    await page.get_by_role("heading", name="Sign in").wait_for()
    assert await page.evaluate(PAGE_PROBLEMS) == [], "sign in"
    await accept(page, invited["invitation_url"], "Olivia Owner")
    await page.get_by_role("button", name="New key").click()
    await page.get_by_label("Name", exact=True).fill("backend-" + "n" * 60)
    await page.get_by_role("button", name="Create", exact=True).click()
    await page.get_by_role("button", name="Done", exact=True).click()
    for view, heading in (("Keys", "API keys"), ("Members", "Members"), ("Usage", "Usage"), ("Audit", "Audit trail"),
                          ("Calls", "Call log"), ("Webhooks", "Webhooks")):
        await page.get_by_role("link", name=view).click()
        await page.get_by_role("heading", name=heading).wait_for()
        await page.screenshot(path=shot(f"portal-{view.lower()}-{width}"), full_page=True)
        assert await page.evaluate(PAGE_PROBLEMS) == [], f"{view} at {width} px"


async def test_a_forgotten_password_is_reset_through_the_mailed_link(start_portal, pages, smtp) -> None:
    from tests.portal.test_mail import mailer

    box, settings = smtp
    post = mailer(settings)
    site = await start_portal(mailer=post)
    await site.tenant()
    await site.member("acme", OWNER)
    page = await pages.new()
    await page.goto(f"{site.base}/portal/")
    await page.get_by_role("link", name="Forgot your password?").click()
    await page.get_by_role("heading", name="Reset your password").wait_for()
    await page.get_by_role("textbox", name="Email").and_(page.locator("#forgot-email")).fill(OWNER)
    await page.get_by_role("button", name="Send a reset link").click()
    await page.get_by_text("a link to reset its password is on its way").wait_for()
    await site.portal.close()  # the lookup and the mail happen after the answer
    await post.close()
    link = re.search(r"https://\S+#reset=[A-Za-z0-9_-]{43}", box.body())
    assert link, box.body()

    await page.goto(link.group(0))
    await page.get_by_role("heading", name="Choose a new password").wait_for()
    assert "#reset=" not in page.url
    new = "a whole new passphrase 42"
    await page.get_by_label("New password", exact=True).fill(new)
    await page.get_by_label("Repeat the password").fill(new)
    await page.get_by_role("button", name="Set new password").click()
    await page.get_by_text("Your password is changed").wait_for()
    await page.get_by_label("Password", exact=True).fill(new)
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("heading", name="API keys").wait_for()
    assert (await site.client().sign_in(OWNER, PASSWORD))[0] == 401  # the old one is gone
    await page.goto(link.group(0))  # single use
    await page.get_by_text("This link is not valid any more").wait_for()


async def test_members_change_role_and_disable_and_only_owners_touch_owners(start_portal, pages) -> None:
    site = await start_portal()
    await site.tenant()
    await site.member("acme", OWNER)
    admin_url = await site.invite("acme", ADMIN_EMAIL, "admin")
    await site.member("acme", VIEWER, "viewer")
    admin = await pages.new()
    await accept(admin, admin_url, "Ada Admin")
    await admin.get_by_role("link", name="Members").click()
    form = admin.get_by_role("form", name="Invite a member")
    await expect(form.get_by_label("Role").locator("option")).to_have_text(["admin", "member", "viewer"])  # waits for the view
    # the owner's row: no controls for an admin; the viewer's: a role select without "owner"
    owner_row = admin.get_by_role("row").filter(has_text=OWNER)
    await owner_row.wait_for()  # the table is drawn before its controls are counted
    assert await owner_row.get_by_role("combobox").count() == 0 and await owner_row.get_by_role("button").count() == 0
    role = admin.get_by_label(f"Role of {VIEWER}")
    await role.select_option("member")  # disabled until the change is saved and the view drawn again
    await expect(role).to_be_enabled()
    await expect(role).to_have_value("member")
    await admin.get_by_role("row").filter(has_text=VIEWER).filter(has_text="active").wait_for()
    await admin.get_by_role("button", name=f"Disable {VIEWER}").click()
    await admin.get_by_role("row").filter(has_text=VIEWER).filter(has_text="disabled").wait_for()
    await admin.get_by_role("button", name=f"Enable {VIEWER}").wait_for()
    checker = await site.member("acme", "check@acme.example", "viewer")
    users = {u["email"]: u for u in (await checker.api("GET", "/users"))[1]["data"]}
    assert (users[VIEWER]["role"], users[VIEWER]["disabled"]) == ("member", True)
    entries = (await operator_audit(site))
    assert any(e["action"] == "user.updated" and e.get("actor_email") == ADMIN_EMAIL for e in entries), entries


async def test_rotate_is_offered_on_ones_own_keys_and_the_operators_never_on_another_persons(
        start_portal, pages) -> None:
    """Someone else's key shows Rotate disabled, saying why (the API refuses it: the new secret would
    act as that person), and Revoke enabled; the operator's keys and one's own rotate."""
    site = await start_portal()
    await site.tenant()
    owner = await site.member("acme", OWNER)
    admin = await site.member("acme", ADMIN_EMAIL, "admin")
    assert (await owner.api("POST", "/keys", {"name": "olivias", "scope": "read_only"}))[0] == 201
    assert (await admin.api("POST", "/keys", {"name": "adas", "scope": "read_only"}))[0] == 201
    await operator(site, "POST", "/admin/keys", {"tenant_id": "acme", "name": "operators", "scope": "read_only"})
    for email, own, other in ((OWNER, "olivias", "adas"), (ADMIN_EMAIL, "adas", "olivias")):
        page = await pages.new()
        await page.goto(f"{site.base}/portal/")
        await sign_in_on(page, email)
        theirs = page.get_by_role("button", name=f"Rotate {other}")
        await expect(theirs).to_be_disabled()
        await expect(theirs).to_have_attribute("title", "Only the key's owner can rotate it; you can revoke it")
        await expect(page.get_by_role("button", name=f"Revoke {other}")).to_be_enabled()
        await expect(page.get_by_role("button", name=f"Rotate {own}")).to_be_enabled()
        await expect(page.get_by_role("button", name="Rotate operators")).to_be_enabled()
    # the operator's key rotates from the page (the last page: the admin's)
    await page.get_by_role("button", name="Rotate operators").click()
    await page.locator("#confirm-rotate").click()
    await expect(page.locator("#new-secret")).to_have_text(re.compile(r"gw_live_\w+"))


async def operator_audit(site: Any) -> list[dict[str, Any]]:
    return (await operator(site, "GET", "/admin/audit?order=desc&limit=100"))["data"]  # type: ignore[no-any-return]


async def sunset_link(site: Any, secret: str) -> str:
    """The `Link: rel="sunset"` of an answer to this key."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=site.ssl)) as http, http.get(
            f"{site.base}/api/v1/visitors", headers={"X-API-Key": secret}) as resp:
        assert resp.status == 200 and "Sunset" in resp.headers
        link = re.fullmatch(r'<(https://[^>]+/portal/#/keys\?key=[^>]+)>; rel="sunset"', resp.headers["Link"])
        assert link and link.group(1).startswith(site.base), resp.headers["Link"]
        return link.group(1)


async def sign_in_on(page: Any, email: str = OWNER) -> None:
    await page.locator("#email").fill(email)
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()


async def test_the_sunset_link_opens_its_key_after_sign_in(start_portal, pages) -> None:
    site = await start_portal()
    gw = site.gateway  # portal.public_url is where the test reaches it (its port is known now): a reload
    gw.apply_config(replace(gw.cfg, portal=replace(gw.cfg.portal, public_url=site.base)))
    await site.tenant()
    owner = await site.member("acme", OWNER)
    status, soon = await owner.api("POST", "/keys", {"name": "soon", "scope": "read_only", "validity_days": 10})
    assert status == 201, soon
    assert (await owner.api("POST", "/keys", {"name": "later", "scope": "read_only", "validity_days": 90}))[0] == 201
    link = await sunset_link(site, soon["key"])

    async def lands_on_the_key(page: Any) -> None:
        await page.get_by_text("Showing one key: soon").wait_for()
        rows = page.locator("#keys tbody tr")
        assert await rows.count() == 1 and await rows.get_attribute("data-key-id") == soon["id"]
        assert await page.get_by_role("button", name="Rotate soon").is_visible()  # its actions are there
        assert "later" not in ((await page.locator("#keys").text_content()) or "")

    # signed out: the sign-in form, then the key
    page = await pages.new()
    await page.goto(link)
    await page.get_by_role("heading", name="Sign in").wait_for()
    await sign_in_on(page)
    await lands_on_the_key(page)
    await page.get_by_role("link", name="Show all keys").click()
    await page.get_by_role("row").filter(has_text="later").wait_for()
    assert await page.locator("#keys tbody tr").count() == 2

    # a detour through "forgot your password" keeps where the link goes
    page = await pages.new()
    await page.goto(link)
    await page.get_by_role("link", name="Forgot your password?").click()
    await page.get_by_role("link", name="Back to sign in").click()
    await sign_in_on(page)
    await lands_on_the_key(page)

    # another tenant's person: the key is not there for them, as one that does not exist
    await site.tenant("globex", "Globex")
    await site.member("globex", "someone@globex.example")
    page = await pages.new()
    await page.goto(link)
    await sign_in_on(page, "someone@globex.example")
    await page.get_by_text("This key is not here").wait_for()
    assert await page.locator("#keys tbody tr[data-key-id]").count() == 0


async def test_a_link_form_cannot_be_sent_before_the_page_handles_it(start_portal, pages) -> None:
    """Sent natively (before the script set its handler), the form would put the new password in
    the page's URL: its button waits for what the link is for."""
    site = await start_portal()
    await site.tenant()
    url = await site.invite("acme", OWNER)
    page = await pages.new()
    release = asyncio.Event()

    async def hold(route: Any) -> None:
        await release.wait()
        await route.continue_()

    await page.route(re.compile(r".*/portal/api/invitations/[A-Za-z0-9_-]+$"), hold)
    await page.goto(url)
    await page.get_by_role("heading", name="Accept your invitation").wait_for()
    submit = page.get_by_role("button", name="Accept and set password")
    assert await submit.is_disabled()
    await page.get_by_label("New password", exact=True).fill(PASSWORD)
    await page.get_by_label("Repeat the password").press("Enter")  # implicit submission: nothing either
    assert "password" not in page.url and await submit.is_disabled()
    release.set()
    await expect(submit).to_be_enabled()
    await page.get_by_label("Repeat the password").fill(PASSWORD)
    await submit.click()
    await page.get_by_text("Your account is ready").wait_for()
    assert "password" not in page.url
    assert await page.get_by_role("button", name="Sign in").is_enabled()
