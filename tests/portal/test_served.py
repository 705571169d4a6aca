"""The portal as the proxy listener serves it: under `portal.path` only when enabled, with the
client's address decided by the gateway (never by the client's headers), and the single-use
secrets of its paths kept out of the call log."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from tests.conftest import ADMIN_TOKEN, proxy_url
from tests.portal.harness import token_of

SPOOFED = ("X-Forwarded-For", "X-Real-IP", "X-Gateway-Client-Ip", "X_Gateway_Client_Ip", "Forwarded",
           "True-Client-IP", "X-Client-IP")


async def test_spoofed_client_address_headers_do_not_buy_more_sign_in_attempts(start_portal) -> None:
    """50 attempts per address: each with another made-up address in every header a client could
    try; the gateway tells the portal the connection's address, so the 51st is refused anyway."""
    site = await start_portal()
    await site.tenant()
    attacker = site.client()
    statuses = []
    for i in range(52):
        address = f"198.51.100.{i}"
        headers = {name: (f"for={address}" if name == "Forwarded" else address) for name in SPOOFED}
        status, _ = await attacker.call("POST", "/api/session", {"email": f"user{i}@acme.example",
                                                                 "password": "wrong password"}, headers=headers)
        statuses.append(status)
    assert statuses.index(429) == 50 and set(statuses[:50]) == {401}, statuses


async def test_link_secrets_stay_out_of_the_access_log_and_the_call_log(start_portal, https, capfd) -> None:
    site = await start_portal()
    await site.tenant()
    url = await site.invite("acme", "owner@acme.example")
    token = token_of(url)
    browser = site.client()
    status, body = await browser.api("GET", f"/invitations/{token}")
    assert status == 200 and body["email"] == "owner@acme.example"
    assert (await browser.accept(url))[0] == 200
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    admin = f"http://127.0.0.1:{site.gateway.admin_port}/admin/calls?limit=100"
    async with https.get(admin, headers=headers) as resp:
        page = await resp.json()
    assert page["data"] == []  # the gateway's own pages and API are not calls of a tenant's API
    await site.gateway.stop()  # the access log's last batch is written
    lines = [json.loads(line) for line in capfd.readouterr().err.splitlines() if '"gateway.access"' in line]
    paths = [line["path"] for line in lines]
    assert "/portal/api/invitations/…" in paths and "/portal/api/invitations/…/accept" in paths, paths
    assert token not in str(lines)


async def test_the_portal_is_served_only_when_enabled_and_only_under_its_path(start_gateway, upstream, https) -> None:
    from tests.access.test_keys_e2e import routes

    off = await start_gateway(routes=routes(upstream[0]))
    async with https.get(proxy_url(off, "/portal/api/me")) as resp:
        assert resp.status == 404 and (await resp.json())["error"]["code"] == "ROUTE_NOT_FOUND"
    on = await start_gateway(routes=routes(upstream[0]), portal={"enabled": True, "path": "/self-service"})
    for path, code in (("/self-service/api/me", "MISSING_CREDENTIALS"), ("/self-servicex/api/me", "ROUTE_NOT_FOUND"),
                       ("/portal/api/me", "ROUTE_NOT_FOUND")):
        async with https.get(proxy_url(on, path)) as resp:
            body: Any = await resp.json()
            assert body["error"]["code"] == code, path
            assert resp.headers["X-Request-Id"], path
    async with https.get(proxy_url(on, "/self-service/api/me")) as resp:
        assert resp.status == 401 and resp.headers["Cache-Control"] == "no-store"
        assert "gateway-portal" not in str(resp.headers)  # nothing of the internal socket shows


async def test_a_portal_request_in_flight_is_answered_when_the_gateway_stops(start_portal, monkeypatch) -> None:
    """The listener's drain applies: a stop waits for the portal's answer, then nothing more is served."""
    import asyncio

    site = await start_portal()
    await site.tenant()
    url = await site.invite("acme", "owner@acme.example")
    people = site.portal.people
    entered, release = asyncio.Event(), asyncio.Event()
    redeem = people.redeem

    async def held(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        await release.wait()
        return await redeem(*args, **kwargs)

    monkeypatch.setattr(people, "redeem", held)
    browser = site.client()
    accepting = asyncio.ensure_future(browser.accept(url))
    await entered.wait()
    stopping = asyncio.ensure_future(site.gateway.stop())
    await site.gateway.draining.wait()
    release.set()
    assert (await accepting)[0] == 200
    await stopping
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=site.ssl)) as after:
        try:
            async with after.get(f"{site.base}/portal/api/me"):
                raise AssertionError("a stopped gateway still answered")
        except aiohttp.ClientConnectionError:
            pass
