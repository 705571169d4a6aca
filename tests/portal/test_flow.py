"""The portal's API as its people use it: invitation, sign-in, keys by role, the audit trail."""

from __future__ import annotations

import aiohttp

from tests.conftest import ADMIN_TOKEN, admin_url, proxy_url
from tests.portal.harness import token_of


async def test_an_owner_is_invited_accepts_signs_in_and_manages_keys_and_people(start_portal, https) -> None:
    site = await start_portal()
    await site.tenant()
    url = await site.invite("acme", "owner@acme.example")
    assert url.startswith(f"{site.base}/portal/#invitation=")  # the proxy listener the gateway serves it on
    owner = site.client()
    status, info = await owner.api("GET", f"/invitations/{token_of(url)}")
    assert status == 200 and info["email"] == "owner@acme.example" and info["tenant"]["name"] == "Acme Corp"
    status, body = await owner.accept(url, "too short")
    assert status == 422 and body["error"]["details"][0]["field"] == "password"
    assert (await owner.accept(url, name="Olive Owner"))[0] == 200
    status, body = await owner.sign_in("Owner@Acme.example ")  # an email's case and spaces do not matter
    assert status == 200, body
    assert body["user"]["name"] == "Olive Owner" and body["role"] == "owner" and body["tenant"]["id"] == "acme"
    assert body["csrf_token"] and "keys" in body["capabilities"]

    status, created = await owner.api("POST", "/keys", {"name": "checkout", "scope": "read_write"})
    assert status == 201 and created["key"].startswith("gw_live_") and created["user_id"] == body["user"]["id"]
    async with https.get(proxy_url(site.gateway, "/api/v1/visitors"), headers={"X-API-Key": created["key"]}) as resp:
        assert resp.status == 200
    status, listed = await owner.api("GET", "/keys")
    assert status == 200 and [k["id"] for k in listed["data"]] == [created["id"]]
    assert "key" not in listed["data"][0] and "secret_hash" not in listed["data"][0]
    status, shown = await owner.api("GET", f"/keys/{created['id']}")
    assert status == 200 and "key" not in shown

    invites = {}
    for email, role in (("admin@acme.example", "admin"), ("viewer@acme.example", "viewer")):
        status, invited = await owner.api("POST", "/users", {"email": email, "role": role})
        assert status == 201 and invited["status"] == "invited" and invited["role"] == role, invited
        invites[role] = invited["invitation_url"]
    viewer = site.client()
    assert (await viewer.accept(invites["viewer"]))[0] == 200
    assert (await viewer.sign_in("viewer@acme.example"))[0] == 200
    status, seen = await viewer.api("GET", "/keys")
    assert status == 200 and [k["id"] for k in seen["data"]] == [created["id"]]
    for method, path, payload in (("POST", "/keys", {"name": "mine", "scope": "read_only"}),
                                  ("POST", f"/keys/{created['id']}/rotate", None),
                                  ("POST", f"/keys/{created['id']}/revoke", None),
                                  ("POST", "/users", {"email": "x@acme.example", "role": "viewer"})):
        status, refused = await viewer.api(method, path, payload)
        assert (status, refused["error"]["code"]) == (403, "INSUFFICIENT_SCOPE"), (method, path)

    status, revoked = await owner.api("POST", f"/keys/{created['id']}/revoke")
    assert status == 200 and revoked["status"] == "revoked"
    async with https.get(proxy_url(site.gateway, "/api/v1/visitors"), headers={"X-API-Key": created["key"]}) as resp:
        assert resp.status == 401
    status, audit = await owner.api("GET", "/audit?order=desc")
    assert status == 200
    entry = audit["data"][0]
    assert entry["action"] == "key.revoked" and entry["actor"] == f"user:{body['user']['id']}"
    assert entry["actor_email"] == "owner@acme.example"
    assert {e["action"] for e in audit["data"]} >= {"tenant.created", "user.invited", "user.activated",
                                                    "key.created", "key.revoked"}
    operator_entries = [e for e in audit["data"] if e["actor"] == "admin"]
    assert operator_entries and all("source_ip" not in e for e in operator_entries)


async def test_signing_out_ends_the_session_for_good(start_portal) -> None:
    site = await start_portal()
    await site.tenant()
    owner = await site.member("acme", "owner@acme.example")
    stolen = owner.cookie()
    assert (await owner.api("GET", "/me"))[0] == 200
    status, _ = await owner.api("DELETE", "/session")
    assert status == 200
    assert "gw_session=;" in owner.last_headers["Set-Cookie"].replace('""', "")
    status, body = await owner.api("GET", "/me", headers={"Cookie": f"gw_session={stolen}"})
    assert (status, body["error"]["code"]) == (401, "MISSING_CREDENTIALS")


async def test_a_person_who_signs_in_is_shown_as_one_everywhere(start_portal) -> None:
    """`signs_in` and `status` of one person agree between the invitation's answer, the member list,
    the accepted link and the signed-in caller's own `/me` (they said `signs_in: false` there)."""
    site = await start_portal()
    await site.tenant()
    owner = site.client()
    assert (await owner.accept(await site.invite("acme", "owner@acme.example")))[0] == 200
    status, me = await owner.sign_in("owner@acme.example")
    assert status == 200 and (me["user"]["status"], me["user"]["signs_in"]) == ("active", True), me
    assert (await owner.api("GET", "/me"))[1]["user"]["signs_in"] is True
    status, invited = await owner.api("POST", "/users", {"email": "viewer@acme.example", "role": "viewer"})
    assert status == 201 and (invited["status"], invited["signs_in"]) == ("invited", True), invited
    listed = {u["email"]: (u["status"], u["signs_in"]) for u in (await owner.api("GET", "/users"))[1]["data"]}
    assert listed == {"owner@acme.example": ("active", True), "viewer@acme.example": ("invited", True)}, listed
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as admin, \
            admin.get(admin_url(site.gateway, "/admin/tenants/acme/users")) as resp:
        operators = {u["email"]: (u["status"], u["signs_in"]) for u in (await resp.json())["data"]}
    assert operators == listed, operators  # the operator sees who has not accepted yet, as the tenant does
    status, accepted = await site.client().accept(invited["invitation_url"])
    assert status == 200 and (accepted["user"]["status"], accepted["user"]["signs_in"]) == ("active", True)
