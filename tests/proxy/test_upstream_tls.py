"""`https://` upstreams: the certificate is always verified, against the system's CAs (OpenSSL's,
so `SSL_CERT_FILE` names them) or a route's `upstream_tls.ca_file`; a route can show a client
certificate (mutual TLS) and check another name than the URL's host (`server_name`). Whatever
fails is a 502, never a plain-text request or an unverified one. Real TLS servers, trustme CAs."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trustme
import yaml
from aiohttp import web

from gateway.app import Gateway
from gateway.config import load_config
from tests.access.test_keys_e2e import tenant_and_key
from tests.conftest import ADMIN_TOKEN, UpstreamState, admin_url, base_config, proxy_url, read_json, upstream_app


def route(upstream: str, name: str = "api", path: str = "/api", **more: Any) -> dict[str, Any]:
    return {"name": name, "path": path, "upstream": upstream, "auth": [], **more}


@pytest.fixture
async def tls_upstream(aiohttp_server: Any) -> Any:
    """An HTTPS upstream on 127.0.0.1 whose certificate comes from a CA of its own."""
    async def start(ca: trustme.CA, *names: str) -> tuple[str, UpstreamState]:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(*names).configure_cert(ctx)
        state = UpstreamState()
        server = await aiohttp_server(upstream_app(state), ssl=ctx)
        return f"https://127.0.0.1:{server.port}", state
    return start


@dataclass
class Seen:
    """What a TLS upstream saw of each connection and request."""

    sni: list[str | None] = field(default_factory=list)       # per handshake
    clients: list[str | None] = field(default_factory=list)   # per request: the client certificate's CN
    hosts: list[str] = field(default_factory=list)


def common_name(peercert: Any) -> str | None:
    for rdn in (peercert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


StartTLS = Callable[..., Awaitable[tuple[int, Seen]]]


@pytest.fixture
async def reporting_upstream(aiohttp_server: Any) -> StartTLS:
    """An HTTPS upstream answering with the client certificate it was shown; `client_ca` set, it
    asks for one (required or optional)."""
    async def start(ca: trustme.CA, *names: str, client_ca: trustme.CA | None = None,
                    require: bool = True) -> tuple[int, Seen]:
        seen = Seen()
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(*names).configure_cert(ctx)
        if client_ca is not None:
            client_ca.configure_trust(ctx)
            ctx.verify_mode = ssl.CERT_REQUIRED if require else ssl.CERT_OPTIONAL
        ctx.sni_callback = lambda sslobj, name, _ctx: seen.sni.append(name)  # type: ignore[assignment,misc,func-returns-value]

        async def who(request: web.Request) -> web.Response:
            assert request.transport is not None
            seen.clients.append(common_name(request.transport.get_extra_info("peercert")))
            seen.hosts.append(request.headers["Host"])
            return web.json_response({"client": seen.clients[-1]})

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", who)
        server = await aiohttp_server(app, ssl=ctx)
        return server.port, seen
    return start


@dataclass
class Files:
    ca: str
    client_cert: str
    client_key: str


def pki(tmp_path: Path, server_ca: trustme.CA, client_ca: trustme.CA, name: str = "gateway-client") -> Files:
    """The server CA's certificate and a client certificate (with its key) issued by `client_ca`."""
    base = tmp_path / "pki"
    base.mkdir(exist_ok=True)
    server_ca.cert_pem.write_to_path(str(base / "ca.pem"))
    client = client_ca.issue_cert(f"{name}.example", common_name=name)
    for i, pem in enumerate(client.cert_chain_pems):
        pem.write_to_path(str(base / f"{name}.crt"), append=i > 0)
    client.private_key_pem.write_to_path(str(base / f"{name}.key"))
    return Files(str(base / "ca.pem"), str(base / f"{name}.crt"), str(base / f"{name}.key"))


async def get(https: aiohttp.ClientSession, gw: Gateway, path: str, **headers: str) -> tuple[int, Any]:
    async with https.get(proxy_url(gw, path), headers=headers) as resp:
        return resp.status, await read_json(resp)


async def test_an_https_upstream_with_a_trusted_certificate_is_reached_over_tls(
    start_gateway, https, tls_upstream, monkeypatch, tmp_path: Path
) -> None:
    ca = trustme.CA()
    url, state = await tls_upstream(ca, "127.0.0.1")
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    gw = await start_gateway(routes=[route(url + "/base")])
    async with https.get(proxy_url(gw, "/api/x?q=1")) as resp:
        assert resp.status == 200
        seen = await read_json(resp)
    assert (seen["path"], seen["query"]) == ("/base/api/x", "q=1")
    assert state.hits == 1


@pytest.mark.parametrize("trusted, names", [(False, ("127.0.0.1",)), (True, ("localhost", "upstream.example"))])
async def test_an_untrusted_or_misnamed_upstream_certificate_is_a_502(
    start_gateway, https, tls_upstream, monkeypatch, tmp_path: Path, trusted: bool, names: tuple[str, ...],
    caplog: pytest.LogCaptureFixture,
) -> None:
    ca = trustme.CA()
    url, state = await tls_upstream(ca, *names)
    if trusted:  # trusted, but issued for other names than the one the route connects to
        ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    else:  # the system's CAs, which never issued it
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    gw = await start_gateway(routes=[route(url)])
    caplog.set_level(logging.WARNING, "gateway.proxy")
    for _ in range(2):
        async with https.get(proxy_url(gw, "/api")) as resp:
            assert resp.status == 502
            assert (await read_json(resp))["error"]["code"] == "UPSTREAM_UNAVAILABLE"
    assert state.hits == 0
    # the operator is told why (the client only sees 502), once for both requests
    warnings = [r.__dict__ for r in caplog.records if r.getMessage().startswith("upstream TLS handshake failed")]
    reason = "IP address mismatch" if trusted else "unable to get local issuer certificate"
    assert [(w["upstream"], w["server_name"]) for w in warnings] == [(url, "127.0.0.1")]
    assert warnings[0]["error"].startswith(reason)


async def test_a_private_ca_named_by_ca_file_is_trusted_by_its_route_only(
    start_gateway, https, tls_upstream, monkeypatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    private = trustme.CA()
    url, state = await tls_upstream(private, "127.0.0.1")
    files = pki(tmp_path, private, trustme.CA())
    gw = await start_gateway(routes=[route(url, "with", "/with", upstream_tls={"ca_file": files.ca}),
                                     route(url, "without", "/without")])
    status, seen = await get(https, gw, "/with/x")
    assert (status, seen["path"]) == (200, "/with/x")
    status, body = await get(https, gw, "/without/x")  # the system's CAs: never issued it
    assert (status, body["error"]["code"]) == (502, "UPSTREAM_UNAVAILABLE")
    assert state.hits == 1


async def test_an_upstream_requiring_a_client_certificate_gets_the_routes_and_refuses_the_rest(
    start_gateway, https, reporting_upstream: StartTLS, tmp_path: Path
) -> None:
    server_ca, client_ca = trustme.CA(), trustme.CA()
    port, seen = await reporting_upstream(server_ca, "127.0.0.1", client_ca=client_ca, require=True)
    files = pki(tmp_path, server_ca, client_ca)
    stranger = pki(tmp_path, server_ca, trustme.CA(), name="stranger")  # a certificate the upstream does not trust
    url = f"https://127.0.0.1:{port}"
    gw = await start_gateway(routes=[
        route(url, "mtls", "/mtls", upstream_tls={"ca_file": files.ca, "cert_file": files.client_cert,
                                                  "key_file": files.client_key}),
        route(url, "nocert", "/nocert", upstream_tls={"ca_file": files.ca}),
        route(url, "stranger", "/stranger", upstream_tls={"ca_file": files.ca, "cert_file": stranger.client_cert,
                                                          "key_file": stranger.client_key}),
    ])
    for _ in range(2):  # the second over the kept connection
        assert await get(https, gw, "/mtls") == (200, {"client": "gateway-client"})
    for path in ("/nocert", "/stranger"):
        status, body = await get(https, gw, path)
        assert (status, body["error"]["code"]) == (502, "UPSTREAM_UNAVAILABLE"), path
    assert seen.clients == ["gateway-client", "gateway-client"]


async def test_a_connection_made_with_a_client_certificate_carries_no_other_routes_requests(
    start_gateway, https, reporting_upstream: StartTLS, tmp_path: Path
) -> None:
    """Kept connections are pooled per TLS context: a route without the certificate never rides
    on a connection that showed it (to an upstream that only asks)."""
    server_ca, client_ca = trustme.CA(), trustme.CA()
    port, seen = await reporting_upstream(server_ca, "127.0.0.1", client_ca=client_ca, require=False)
    files = pki(tmp_path, server_ca, client_ca)
    url = f"https://127.0.0.1:{port}"
    gw = await start_gateway(routes=[
        route(url, "mtls", "/mtls", upstream_tls={"ca_file": files.ca, "cert_file": files.client_cert,
                                                  "key_file": files.client_key}),
        route(url, "anonymous", "/anonymous", upstream_tls={"ca_file": files.ca}),
    ])
    for path, client in (("/mtls", "gateway-client"), ("/anonymous", None), ("/mtls", "gateway-client"),
                         ("/anonymous", None)):
        assert await get(https, gw, path) == (200, {"client": client}), path
    assert len(seen.sni) == 2  # one connection each, kept and reused


async def test_server_name_is_sent_and_verified_instead_of_the_urls_address(
    start_gateway, https, reporting_upstream: StartTLS, tmp_path: Path
) -> None:
    ca = trustme.CA()
    port, seen = await reporting_upstream(ca, "orders.internal")  # no IP address in the certificate
    files = pki(tmp_path, ca, trustme.CA())
    url = f"https://127.0.0.1:{port}"
    gw = await start_gateway(routes=[
        route(url, "named", "/named", upstream_tls={"ca_file": files.ca, "server_name": "orders.internal"}),
        route(url, "by-address", "/by-address", upstream_tls={"ca_file": files.ca}),
        route(url, "other-name", "/other-name", upstream_tls={"ca_file": files.ca, "server_name": "billing.internal"}),
    ])
    assert await get(https, gw, "/named") == (200, {"client": None})
    assert seen.sni == ["orders.internal"]
    assert seen.hosts == [f"127.0.0.1:{port}"]  # the Host header stays the URL's
    for path in ("/by-address", "/other-name"):
        status, body = await get(https, gw, path)
        assert (status, body["error"]["code"]) == (502, "UPSTREAM_UNAVAILABLE"), path
    assert len(seen.hosts) == 1


async def test_a_sandbox_upstream_has_its_own_tls_settings(
    start_gateway, https, upstream, tls_upstream, monkeypatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    private = trustme.CA()
    sandbox_url, sandbox = await tls_upstream(private, "sandbox.internal")
    files = pki(tmp_path, private, trustme.CA())
    gw = await start_gateway(routes=[{
        "name": "api", "path": "/api", "upstream": upstream[0], "sandbox_upstream": sandbox_url,
        "sandbox_upstream_tls": {"ca_file": files.ca, "server_name": "sandbox.internal"}}])
    _, live = await tenant_and_key(gw)
    _, test = await tenant_and_key(gw, environment="test")
    assert (await get(https, gw, "/api", **{"X-API-Key": test}))[0] == 200
    assert (await get(https, gw, "/api", **{"X-API-Key": live}))[0] == 200
    assert (sandbox.hits, upstream[1].hits) == (1, 1)


async def test_a_reload_reads_the_tls_files_again_and_a_broken_one_is_refused(
    tmp_path: Path, server_cert, https, tls_upstream, monkeypatch
) -> None:
    """Contexts are made at load and reload: a rotated CA is read by the next reload; a broken file
    refuses the reload (one line naming it) and the running routes keep serving."""
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    old_ca, new_ca = trustme.CA(), trustme.CA()
    old_url, old_state = await tls_upstream(old_ca, "127.0.0.1")
    new_url, new_state = await tls_upstream(new_ca, "127.0.0.1")
    ca_file = tmp_path / "upstream-ca.pem"
    old_ca.cert_pem.write_to_path(str(ca_file))
    path = tmp_path / "gateway.yaml"

    def write(url: str) -> None:
        cfg = base_config(tmp_path, server_cert, routes=[route(url, upstream_tls={"ca_file": str(ca_file)})])
        path.write_text(yaml.safe_dump(cfg))

    write(old_url)
    gw = Gateway(load_config(path), admin_token=ADMIN_TOKEN)
    await gw.start()
    try:
        assert (await get(https, gw, "/api"))[0] == 200
        ca_file.write_text("not a certificate\n")
        write(new_url)
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as admin:
            async with admin.post(admin_url(gw, "/admin/reload")) as resp:
                refused = resp.status, await resp.json()
            assert (await get(https, gw, "/api"))[0] == 200  # the old table, its context made before
            assert (old_state.hits, new_state.hits) == (2, 0)
            new_ca.cert_pem.write_to_path(str(ca_file))  # the rotated CA
            async with admin.post(admin_url(gw, "/admin/reload")) as resp:
                assert resp.status == 200
        assert (await get(https, gw, "/api"))[0] == 200
        assert (old_state.hits, new_state.hits) == (2, 1)
    finally:
        await gw.stop()
    status, body = refused
    assert status == 422
    details = body["error"]["details"]
    assert details == [{"field": "routes[0].upstream_tls",
                        "issue": f"cannot load CA file {ca_file}: no certificate or crl found"}]
