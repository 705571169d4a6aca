"""What a security reviewer of a SaaS sign-in checks, each test failing if its protection goes:
cookie flags, CSRF, throttling, enumeration, single-use links, session lifetime and fixation,
and tenant isolation of every endpoint."""

from __future__ import annotations

import asyncio
import re
from http.cookies import SimpleCookie
from typing import Any

from gateway.accounts import people as people_module
from gateway.portal.app import TABLES
from gateway.portal.authz import PUBLIC
from gateway.portal.sessions import SessionSettings
from tests.conftest import FakeClock, proxy_url
from tests.events.test_webhooks_api import LOOPBACK_ALLOWED
from tests.portal.harness import OPERATOR, PASSWORD, token_of

HOUR = 3600.0


async def test_the_session_cookie_has_every_flag_and_no_lifetime_of_its_own(start_portal) -> None:
    site = await start_portal()
    await site.tenant()
    await site.member("acme", "owner@acme.example")
    raw = site.clients[-1].last_headers.getall("Set-Cookie")
    assert len(raw) == 1
    cookie = SimpleCookie(raw[0])["gw_session"]
    attributes = {part.strip().split("=")[0].lower(): part.strip() for part in raw[0].split(";")[1:]}
    assert set(attributes) == {"httponly", "secure", "samesite", "path"}, raw[0]
    assert attributes["samesite"] == "SameSite=Strict" and attributes["path"] == "Path=/portal"
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", cookie.value)


async def test_a_new_session_id_at_every_sign_in_and_the_old_one_dies(start_portal) -> None:
    site = await start_portal()
    await site.tenant()
    browser = await site.member("acme", "owner@acme.example")
    first = browser.cookie()
    assert (await browser.sign_in("owner@acme.example"))[0] == 200
    second = browser.cookie()
    assert first and second and first != second
    status, _ = await site.client().api("GET", "/me", headers={"Cookie": f"gw_session={first}"})
    assert status == 401


async def test_state_changes_need_the_portals_origin_and_the_sessions_csrf_token(start_portal) -> None:
    site = await start_portal()
    await site.tenant()
    owner = await site.member("acme", "owner@acme.example")
    body = {"name": "k", "scope": "read_only"}
    for kw in ({"origin": "https://evil.example"}, {"origin": None}, {"csrf": None}, {"csrf": "x" * 43},
               {"headers": {"Sec-Fetch-Site": "cross-site"}}):
        status, answer = await owner.api("POST", "/keys", body, **kw)  # the cookie goes along every time
        assert (status, answer["error"]["code"]) == (403, "CSRF_FAILED"), kw
    other = await site.member("acme", "admin@acme.example", "admin")
    status, _ = await owner.api("POST", "/keys", body, csrf=other.csrf)  # another session's token
    assert status == 403
    status, answer = await owner.api("DELETE", "/session", origin="https://evil.example")
    assert (status, answer["error"]["code"]) == (403, "CSRF_FAILED")
    status, answer = await site.client().api("POST", "/session", {"email": "owner@acme.example", "password": PASSWORD},
                                             origin="https://evil.example")  # login CSRF too
    assert (status, answer["error"]["code"]) == (403, "CSRF_FAILED")
    assert (await owner.api("GET", "/keys"))[0] == 200  # reads need neither
    assert (await owner.api("POST", "/keys", body))[0] == 201


async def test_no_session_is_401_and_a_forged_cookie_is_no_session(start_portal) -> None:
    site = await start_portal()
    browser = site.client()
    for cookie in (None, "gw_session=" + "A" * 43, "gw_session=../../etc"):
        status, body = await browser.api("GET", "/keys", headers={"Cookie": cookie} if cookie else None)
        assert (status, body["error"]["code"]) == (401, "MISSING_CREDENTIALS")


async def test_twenty_wrong_passwords_are_throttled_per_account_and_per_address(start_portal) -> None:
    site = await start_portal()
    await site.tenant()
    await site.member("acme", "owner@acme.example")
    attacker = site.client()
    answers = [await attacker.sign_in("owner@acme.example", f"wrong password {i:04d}") for i in range(20)]
    statuses = [status for status, _ in answers]
    refused = statuses.index(429)  # at most 10 failures an account (the owner's own sign-in is none)
    assert refused == 10 and set(statuses[:refused]) == {401} and set(statuses[refused:]) == {429}
    assert answers[-1][1]["error"]["code"] == "RATE_LIMITED"
    assert int(attacker.last_headers["Retry-After"]) >= 1
    assert (await attacker.sign_in("owner@acme.example"))[0] == 429  # the right password no longer helps
    # per address: one account after another from the same address (11 attempts counted so far:
    # every attempt, the owner's successful one too, costs a hash)
    statuses = [(await attacker.sign_in(f"user{i}@acme.example", "wrong password"))[0] for i in range(45)]
    assert statuses.index(429) == 39 and set(statuses[39:]) == {429}


async def test_successful_sign_ins_never_lock_an_account_and_its_failures_still_do(start_portal) -> None:
    """Only failures count against an account: its owner (or anyone with the password) signing in
    25 times in a row is never refused, and a guesser still gets 10 wrong passwords, successes
    between them wiping none of their count."""
    site = await start_portal()
    await site.tenant()
    await site.member("acme", "owner@acme.example")
    owner = site.client()
    assert [(await owner.sign_in("owner@acme.example"))[0] for _ in range(25)] == [200] * 25
    guesser = site.client()
    statuses = [(await guesser.sign_in("owner@acme.example", f"wrong password {i:04d}"))[0] for i in range(5)]
    statuses.append((await owner.sign_in(" Owner@ACME.example "))[0])  # the same account, however typed
    statuses += [(await guesser.sign_in("OWNER@acme.example", f"wrong password {i:04d}"))[0] for i in range(6)]
    assert statuses == [401] * 5 + [200] + [401] * 5 + [429], statuses
    assert (await owner.sign_in("owner@acme.example"))[0] == 429  # locked now: the right password no longer helps


async def test_wrong_passwords_sent_at_once_get_no_more_than_the_accounts_ten(start_portal) -> None:
    """Each attempt takes its place before the password is checked: 16 guesses at once, each on a
    connection of its own, still get 10 answers of 401 and 6 of 429."""
    site = await start_portal()
    await site.tenant()
    await site.member("acme", "owner@acme.example")
    guessers = [site.client() for _ in range(16)]
    answers = await asyncio.gather(*(guesser.sign_in("owner@acme.example", f"wrong password {i:04d}")
                                     for i, guesser in enumerate(guessers)))
    assert sorted(status for status, _ in answers) == [401] * 10 + [429] * 6


async def test_unknown_email_wrong_password_and_pending_invitation_work_alike(start_portal, monkeypatch) -> None:
    site = await start_portal()
    await site.tenant()
    await site.member("acme", "owner@acme.example")
    await site.invite("acme", "pending@acme.example", "viewer")
    verified: list[str | None] = []
    passwords = site.portal.people.passwords
    real = passwords._verify

    def spy(stored: str | None, password: bytes) -> bool:
        verified.append(stored)
        return real(stored, password)

    monkeypatch.setattr(passwords, "_verify", spy)
    looked_up: list[str] = []
    store = site.gateway.accounts.store
    real_lookup = store.login_by_email

    async def lookup(email: str) -> Any:
        looked_up.append(email)
        return await real_lookup(email)

    monkeypatch.setattr(store, "login_by_email", lookup)
    answers = []
    for email, password in (("nobody@acme.example", PASSWORD), ("owner@acme.example", "wrong password!"),
                            ("pending@acme.example", PASSWORD)):
        verified.clear()
        looked_up.clear()
        status, body = await site.client().sign_in(email, password)
        answers.append((status, body))
        assert len(verified) == 1 and len(looked_up) == 1, email  # one lookup, one argon2 verification each
    assert answers[0] == answers[1] == answers[2]
    assert answers[0][0] == 401 and answers[0][1]["error"]["code"] == "INVALID_CREDENTIALS"


async def test_the_dummy_hash_costs_what_a_real_one_does(start_portal, monkeypatch) -> None:
    from gateway.accounts.passwords import Passwords

    passwords = Passwords()  # the real parameters
    real = await passwords.hash(PASSWORD)
    assert passwords._dummy.split("$")[:4] == real.split("$")[:4]  # argon2id, same version, m, t and p


async def test_an_invitation_works_once_and_not_after_72_hours(start_portal) -> None:
    clock = FakeClock()
    site = await start_portal(clock=clock)
    await site.tenant()
    url = await site.invite("acme", "once@acme.example", "admin")
    browser = site.client()
    assert (await browser.accept(url))[0] == 200
    status, body = await browser.accept(url, "another password entirely")
    assert (status, body["error"]["code"]) == (404, "NOT_FOUND")
    assert (await browser.sign_in("once@acme.example", PASSWORD))[0] == 200  # the first password stands
    late = await site.invite("acme", "late@acme.example", "viewer")
    clock.advance(72 * HOUR)
    status, body = await browser.accept(late)
    assert (status, body["error"]["code"]) == (404, "NOT_FOUND")
    assert (await browser.api("GET", f"/invitations/{token_of(late)}"))[0] == 404
    assert (await browser.sign_in("late@acme.example", PASSWORD))[0] == 401


async def test_sessions_end_when_idle_and_at_their_absolute_limit(start_portal) -> None:
    clock = FakeClock()
    site = await start_portal(clock=clock, settings=SessionSettings(idle=1800, max=43200))
    await site.tenant()
    browser = await site.member("acme", "owner@acme.example")
    for _ in range(30):  # in use every 29 minutes: never idle, but...
        clock.advance(29 * 60)
        if clock.now - 1_800_000_000.0 >= 43200:
            break
        assert (await browser.api("GET", "/me"))[0] == 200
    assert (await browser.api("GET", "/me"))[0] == 401  # ...12 hours after sign-in it ends anyway
    assert (await browser.sign_in("owner@acme.example"))[0] == 200
    clock.advance(1800)
    assert (await browser.api("GET", "/me"))[0] == 401  # 30 minutes unused


async def test_signing_out_or_disabling_ends_the_session_on_another_instance(start_portal) -> None:
    first = await start_portal()
    second = await start_portal(gateway=await _second_gateway(first))
    await first.tenant()
    browser = await first.member("acme", "owner@acme.example")
    elsewhere = second.client()  # the same browser, its next request served by the other instance
    elsewhere.csrf = browser.csrf
    cookie = {"Cookie": f"gw_session={browser.cookie()}"}
    assert (await elsewhere.api("GET", "/me", headers=cookie))[0] == 200
    assert (await browser.api("DELETE", "/session"))[0] == 200
    assert (await elsewhere.api("GET", "/me", headers=cookie))[0] == 401

    assert (await browser.sign_in("owner@acme.example"))[0] == 200
    cookie = {"Cookie": f"gw_session={browser.cookie()}"}
    assert (await elsewhere.api("GET", "/me", headers=cookie))[0] == 200
    user_id = (await browser.api("GET", "/me"))[1]["user"]["id"]
    await first.gateway.accounts.update_user(user_id, {"disabled": True}, people_module.Actor("admin"))
    assert (await elsewhere.api("GET", "/me", headers=cookie))[0] == 401


async def _second_gateway(site: Any) -> Any:
    """Another gateway on the same store (same SQLite file, or the same PostgreSQL schema)."""
    from gateway.app import Gateway
    from tests.conftest import ADMIN_TOKEN

    gw = Gateway(site.gateway.cfg, admin_token=ADMIN_TOKEN)
    await gw.start()
    site.clients.append(_Stopper(gw))  # stopped with the site's clients
    return gw


class _Stopper:
    def __init__(self, gateway: Any) -> None:
        self._gateway = gateway

    async def close(self) -> None:
        await self._gateway.stop()


def _endpoints() -> list[Any]:
    """Signing out last: it ends the session the walk uses."""
    found = [e for table in TABLES for e in table.all if e.needs != PUBLIC]
    return sorted(found, key=lambda e: (e.method, e.path) == ("DELETE", "/session"))


async def test_every_endpoint_answers_404_for_another_tenants_objects(start_portal) -> None:
    """Walks the API's own table, so an endpoint added later is walked too."""
    site = await start_portal(webhooks=LOOPBACK_ALLOWED)
    await site.tenant("acme")
    await site.tenant("globex", "Globex")
    mine = await site.member("acme", "owner@acme.example")
    theirs = await site.member("globex", "owner@globex.example")
    status, their_key = await theirs.api("POST", "/keys", {"name": "theirs", "scope": "read_only"})
    assert status == 201
    status, their_user = await theirs.api("POST", "/users", {"email": "v@globex.example", "role": "viewer"})
    assert status == 201
    status, their_hook = await theirs.api("POST", "/webhooks", {"url": "http://127.0.0.1:9/h", "events": ["*"]})
    assert status == 201, their_hook
    status, test = await theirs.api("POST", f"/webhooks/{their_hook['id']}/test")
    assert status == 202
    their_delivery = next(d for d in (await theirs.api("GET", f"/webhooks/{their_hook['id']}/deliveries"))[1]["data"]
                          if d["event_id"] == test["event_id"])
    ids = {"key_id": their_key["id"], "user_id": their_user["id"], "webhook_id": their_hook["id"],
           "delivery_id": their_delivery["id"]}
    secret_ids = set(ids.values()) | {"globex"}
    walked = []
    for endpoint in _endpoints():
        names = re.findall(r"\{(\w+)\}", endpoint.path)
        assert set(names) <= set(ids), f"the walk needs an id of another tenant for {endpoint.path}"
        path = endpoint.path.format(**ids)
        status, body = await mine.api(endpoint.method, path, {} if endpoint.method != "GET" else None)
        walked.append((endpoint.method, endpoint.path, status))
        if names:
            assert (status, body["error"]["code"]) == (404, "NOT_FOUND"), (endpoint.method, path, body)
        else:
            assert not any(s in str(body) for s in secret_ids), (endpoint.method, path)
    assert {(m, p) for m, p, _ in walked} >= {("GET", "/keys/{key_id}"), ("PATCH", "/users/{user_id}"),
                                               ("DELETE", "/webhooks/{webhook_id}"),
                                               ("POST", "/deliveries/{delivery_id}/retry")}
    status, still = await theirs.api("GET", f"/keys/{their_key['id']}")
    assert status == 200 and still["status"] == "active"  # nothing of theirs changed
    status, hook = await theirs.api("GET", f"/webhooks/{their_hook['id']}")
    assert status == 200 and hook["disabled"] is False


async def test_every_api_route_of_the_app_comes_from_the_guarded_table(start_portal) -> None:
    site = await start_portal()
    from gateway.portal.app import portal_app

    app = portal_app(site.portal)
    declared = {(e.method, "/portal/api" + e.path) for table in TABLES for e in table.all}
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or ""
        if route.method != "HEAD" and path.startswith("/portal/api"):
            assert (route.method, path) in declared, f"{route.method} {path} bypasses authz.Endpoints"


async def test_no_password_or_hash_in_any_log_line_or_answer(start_portal, caplog) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    site = await start_portal()
    await site.tenant()
    url = await site.invite("acme", "owner@acme.example")
    browser = site.client()
    answers: list[str] = []
    original = browser.call

    async def recorded(*args: Any, **kwargs: Any) -> Any:
        status, body = await original(*args, **kwargs)
        answers.append(f"{status} {body} {dict(browser.last_headers)}")
        return status, body

    browser.call = recorded  # type: ignore[method-assign]
    await browser.accept(url)
    await browser.sign_in("owner@acme.example", "not the password at all")
    await browser.sign_in("owner@acme.example")
    await browser.api("GET", "/me")
    await browser.api("GET", "/users")
    await browser.api("GET", "/audit")
    login = await site.gateway.accounts.store.login_by_email("owner@acme.example")
    assert login is not None and login.password_hash and login.password_hash.startswith("$argon2id$")
    text = "\n".join(answers + [r.getMessage() + str(r.__dict__) for r in caplog.records])
    for secret in (PASSWORD, "not the password at all", login.password_hash, "$argon2"):
        assert secret not in text


async def test_only_a_keys_owner_rotates_it_others_revoke_it_and_the_operators_keys_rotate(
        start_portal, https) -> None:
    """Rotation hands over a new secret that acts as the key's owner upstream (X-Gateway-User): no
    owner or admin may take another person's key that way (GitHub's organisation admins revoke, never
    regenerate, a member's token); they revoke it. A key with no owner (the operator's) is the
    tenant's: owners and admins rotate it; and everyone rotates their own."""
    site = await start_portal()
    await site.tenant()
    owner = await site.member("acme", "owner@acme.example")
    other_owner = await site.member("acme", "owner2@acme.example")
    admin = await site.member("acme", "admin@acme.example", "admin")
    viewer = await site.member("acme", "viewer@acme.example", "viewer")
    viewer_id = (await viewer.api("GET", "/me"))[1]["user"]["id"]
    _, owners = await owner.api("POST", "/keys", {"name": "owner's", "scope": "read_write"})
    _, admins = await admin.api("POST", "/keys", {"name": "admin's", "scope": "read_write"})
    accounts = site.gateway.accounts
    viewers, _ = await accounts.create_key({"tenant_id": "acme", "name": "viewer's", "scope": "read_only",
                                            "user_id": viewer_id}, OPERATOR)
    tenants, _ = await accounts.create_key({"tenant_id": "acme", "name": "the tenant's", "scope": "read_only"},
                                           OPERATOR)
    for who, key in ((admin, owners), (owner, admins), (other_owner, owners), (owner, {"id": viewers.id}),
                     (admin, {"id": viewers.id})):
        status, body = await who.api("POST", f"/keys/{key['id']}/rotate")
        assert (status, body["error"]["code"]) == (403, "INSUFFICIENT_SCOPE") and "key" not in body, body
        assert body["error"]["message"] == "only the key's owner can rotate it (revoke it instead)"
    # refused, nothing changed: the keys still work, with their own secrets
    async with https.get(proxy_url(site.gateway, "/api/v1/visitors"), headers={"X-API-Key": owners["key"]}) as resp:
        assert resp.status == 200
    assert (await owner.api("GET", "/keys?status=active&per_page=100"))[1]["meta"]["total"] == 4
    # the operator's key: any owner or admin; one's own: its owner
    status, rotated = await admin.api("POST", f"/keys/{tenants.id}/rotate")
    assert status == 201 and rotated["key"] and rotated["user_id"] is None, rotated
    assert (await other_owner.api("POST", f"/keys/{rotated['id']}/rotate"))[0] == 201
    assert (await admin.api("POST", f"/keys/{admins['id']}/rotate"))[0] == 201
    status, owners_new = await owner.api("POST", f"/keys/{owners['id']}/rotate")
    assert status == 201, owners_new
    # revoking another person's key stays an owner's and an admin's to do
    assert (await admin.api("POST", f"/keys/{viewers.id}/revoke"))[1]["status"] == "revoked"
    assert (await admin.api("POST", f"/keys/{owners_new['id']}/revoke"))[1]["status"] == "revoked"


async def test_inviting_another_tenants_person_is_answered_as_for_a_new_address(start_portal) -> None:
    """Globex's owner invites an address that signs in to Acme: the same 201, invitation and link
    page as for an address nobody uses, so nothing tells Globex that Acme's person exists; only
    Globex's own users are a conflict. The person, who may belong to one tenant only, is told when
    accepting (409), and still signs in to Acme."""
    site = await start_portal()
    await site.tenant("acme")
    await site.tenant("globex", "Globex")
    person = await site.member("acme", "sam@shared.example", "viewer")
    owner = await site.member("globex", "owner@globex.example")
    answers = {}
    for email in ("new@elsewhere.example", "Sam@Shared.example"):
        status, body = await owner.api("POST", "/users", {"email": email, "role": "viewer"})
        assert status == 201, body
        status, page = await site.client().api("GET", f"/invitations/{token_of(body['invitation_url'])}")
        assert status == 200, page
        answers[email] = (body, page)
    (new, new_page), (taken, taken_page) = answers.values()
    ignore = {"id", "email", "name", "invitation_url", "created_at", "updated_at"}
    assert {k: v for k, v in new.items() if k not in ignore} == {k: v for k, v in taken.items() if k not in ignore}
    assert new_page["tenant"] == taken_page["tenant"] == {"id": "globex", "name": "Globex"}
    assert taken_page["email"] == "sam@shared.example" and new_page.keys() == taken_page.keys()
    status, members = await owner.api("GET", "/users")
    assert {m["email"].lower(): m["status"] for m in members["data"]} == {
        "owner@globex.example": "active", "new@elsewhere.example": "invited", "sam@shared.example": "invited"}
    status, body = await owner.api("POST", "/users", {"email": "sam@shared.example", "role": "admin"})
    assert (status, body["error"]["code"]) == (409, "CONFLICT")  # Globex's own user: Globex knows it
    status, body = await person.accept(taken["invitation_url"])
    assert (status, body["error"]["code"]) == (409, "CONFLICT")
    assert (await person.sign_in("sam@shared.example"))[1]["tenant"]["id"] == "acme"
