"""An `https://` upstream is reached over TLS with its certificate verified against the system's
CAs (OpenSSL's, so `SSL_CERT_FILE` names them): an untrusted or misnamed certificate is a 502,
never a plain-text request or an unverified one. (Per-route CA files are a later addition.)"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
import trustme

from tests.conftest import UpstreamState, proxy_url, read_json, upstream_app


def route(upstream: str) -> dict[str, Any]:
    return {"name": "api", "path": "/api", "upstream": upstream, "auth": []}


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
    start_gateway, https, tls_upstream, monkeypatch, tmp_path: Path, trusted: bool, names: tuple[str, ...]
) -> None:
    ca = trustme.CA()
    url, state = await tls_upstream(ca, *names)
    if trusted:  # trusted, but issued for other names than the one the route connects to
        ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    else:  # the system's CAs, which never issued it
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    gw = await start_gateway(routes=[route(url)])
    async with https.get(proxy_url(gw, "/api")) as resp:
        assert resp.status == 502
        assert (await read_json(resp))["error"]["code"] == "UPSTREAM_UNAVAILABLE"
    assert state.hits == 0
