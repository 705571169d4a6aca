"""The portal as the proxy listener serves it: under `portal.path` only when enabled, with the
client's address decided by the gateway (never by the client's headers), and the single-use
secrets of its paths kept out of the call log."""

from __future__ import annotations

import asyncio
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


async def raw_request(port: int, context: Any, method: str, target: str) -> int:
    """A request with its target exactly as written (no client library's normalising)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="localhost")
    body = b'{"password": "correct horse battery staple"}' if method == "POST" else b""
    writer.write(f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
    status_line = await reader.readline()
    await reader.read()
    writer.close()
    return int(status_line.split()[1])


LINK_VARIANTS = (
    "GET /portal/api/invitations/{t}", "POST /portal/api/invitations/{t}/accept",
    "GET /portal/api/Invitations/{t}", "POST /PORTAL/api/Invitations/{t}/accept",
    "GET /Portal/API/PASSWORD-RESET/{t}", "POST /portal/api/password-Reset/{t}",
    "GET /portal/api/invitations%2F{t}", "GET /portal/api/invitations%2f{t}%2Faccept",
    "GET /portal/api/password-reset%252F{t}", "GET /portal/api/%2569nvitations/{t}",
    "GET /portal//api//invitations//{t}//accept", "GET /portal/api/invitations/%2F{t}",
    "GET /%2Fportal/api/invitations/{t}", "GET /portal/api/./invitations/../invitations/{t}",
)


async def test_no_spelling_of_a_link_path_puts_its_secret_in_the_access_log(start_portal, client_ssl, capfd) -> None:
    """Another case, an encoded or doubled slash, a double-encoded letter: whatever the portal or a
    route makes of it, the access log line has the secret cut out (read on the decoded path)."""
    site = await start_portal()
    await site.tenant()
    tokens = []
    for i, variant in enumerate(LINK_VARIANTS):
        token = token_of(await site.invite("acme", f"person{i}@acme.example", "viewer"))
        tokens.append(token)
        method, target = variant.split(" ", 1)
        await raw_request(site.gateway.proxy_port, client_ssl, method, target.format(t=token))
    await site.gateway.stop()  # the access log's last batch is written
    lines = [line for line in capfd.readouterr().err.splitlines() if '"gateway.access"' in line]
    assert len(lines) >= len(LINK_VARIANTS)
    for variant, token in zip(LINK_VARIANTS, tokens, strict=True):
        assert not [line for line in lines if token in line], variant
    paths = [json.loads(line)["path"] for line in lines]
    assert "/portal/api/invitations/…/accept" in paths and "/PORTAL/api/Invitations/…/accept" in paths, paths


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

    site = await start_portal(server={"grace_period": 60})  # no loaded machine's pause reaches it
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


async def test_behind_a_trusted_proxy_the_portal_counts_the_address_the_proxy_names(start_portal) -> None:
    """From `server.trusted_proxies`, X-Forwarded-For is believed (as for every route): each
    client behind the proxy has its own sign-in budget, and one client still has only 50."""
    site = await start_portal(server={"trusted_proxies": ["127.0.0.1/32"]})
    await site.tenant()
    proxy = site.client()
    spread = [(await proxy.call("POST", "/api/session", {"email": f"u{i}@acme.example", "password": "wrong password"},
                                headers={"X-Forwarded-For": f"203.0.113.{i}"}))[0] for i in range(55)]
    assert set(spread) == {401}, spread
    one = [(await proxy.call("POST", "/api/session", {"email": f"v{i}@acme.example", "password": "wrong password"},
                             headers={"X-Forwarded-For": "198.51.100.7"}))[0] for i in range(51)]
    assert one.index(429) == 50, one


async def test_the_page_and_its_files_have_their_types_csp_and_validators(start_portal, https) -> None:
    site = await start_portal()
    base = f"{site.base}/portal"
    async with https.get(base, allow_redirects=False) as resp:
        assert resp.status == 302 and resp.headers["Location"] == "/portal/"
    files = {"/": "text/html", "/page/portal.js": "text/javascript", "/page/members.js": "text/javascript",
             "/page/portal.css": "text/css", "/console/js/keys.js": "text/javascript",
             "/console/console.css": "text/css", "/console/vendor/uplot/uPlot.iife.min.js": "text/javascript"}
    for path, kind in files.items():
        async with https.get(base + path) as resp:
            assert resp.status == 200 and resp.content_type == kind, path
            assert "script-src 'self'" in resp.headers["Content-Security-Policy"], path
            assert resp.headers["Cache-Control"] == "no-cache" and resp.headers["X-Content-Type-Options"] == "nosniff"
            assert resp.headers["Strict-Transport-Security"] == "max-age=31536000", path  # HTTPS only, as a browser remembers
            etag = resp.headers["ETag"]
            body = await resp.read()
        async with https.get(base + path, headers={"If-None-Match": etag}) as again:
            assert again.status == 304 and await again.read() == b"", path
    assert b'src="page/portal.js"' in (await (await https.get(base + "/")).read())  # relative: any portal.path
    for missing in ("/page/nope.js", "/console/../app.py", "/page/", "/console/js/", "/api/me"):
        async with https.get(base + missing) as resp:
            assert resp.status in (401, 404) and "Strict-Transport-Security" in resp.headers, missing
    assert body


async def test_new_tenants_start_with_the_configured_gates(start_gateway) -> None:
    from tests.portal.harness import OPERATOR

    gw = await start_gateway(tenants={"api_enabled_default": False, "write_enabled_default": False})
    tenant = await gw.accounts.create_tenant({"id": "acme", "name": "Acme", "plan": "starter"}, OPERATOR)
    assert (tenant.api_enabled, tenant.write_enabled) == (False, False)
    chosen = await gw.accounts.create_tenant({"id": "beta", "name": "Beta", "plan": "starter", "api_enabled": True},
                                             OPERATOR)
    assert (chosen.api_enabled, chosen.write_enabled) == (True, False)


async def test_plain_http_reaches_the_portal_only_from_a_trusted_tls_proxy(start_gateway) -> None:
    """The portal's cookie is `Secure` and its sign-in takes a password: never over plain HTTP,
    except from a TLS-terminating proxy of `server.trusted_proxies` that says the client used HTTPS."""
    for trusted, proto, code in (([], "https", "HTTPS_REQUIRED"), (["127.0.0.1/32"], "http", "HTTPS_REQUIRED"),
                                 (["127.0.0.1/32"], "https", "MISSING_CREDENTIALS")):
        gw = await start_gateway(portal={"enabled": True},
                                 server={"plain_http_port": 0, "trusted_proxies": trusted})
        async with aiohttp.ClientSession() as plain, plain.get(
                f"http://127.0.0.1:{gw.plain_port}/portal/api/me", headers={"X-Forwarded-Proto": proto}) as resp:
            assert (await resp.json())["error"]["code"] == code, (trusted, proto)
