"""README's identity-verification snippet, run as printed against a gateway with the demo's kind of
certificate (self-signed under `gateway-demo/tls/`): it trusts that file and verifies a real
X-Gateway-Identity; a forged or re-aimed assertion raises."""

from __future__ import annotations

import asyncio
import os
import re
import ssl
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from multidict import CIMultiDict

from tests.access.test_keys_e2e import routes, tenant_and_key
from tests.cli.test_run import ROOT


def snippet() -> str:
    section = (ROOT / "README.md").read_text().split("### Proving to your upstream", 1)[1].split("\n## ", 1)[0]
    [code] = re.findall(r"```python\n(.*?)```", section, re.S)
    return code


async def test_the_readme_snippet_verifies_the_identity_through_the_demo_certificate(
    start_gateway: Any, upstream: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = snippet()
    assert 'cafile="gateway-demo/tls/self-signed.crt"' in code and "https://127.0.0.1:8443/" in code
    gw = await start_gateway(routes=routes(upstream[0]), data_dir=str(tmp_path / "gateway-demo"),
                             server={"tls": {"self_signed": True}})
    _, secret = await tenant_and_key(gw)
    demo_cert = tmp_path / "gateway-demo" / "tls" / "self-signed.crt"
    trust = ssl.create_default_context(cafile=str(demo_cert))
    async with (aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trust)) as client,
                client.get(f"https://127.0.0.1:{gw.proxy_port}/api/v1/visitors/1",
                           headers={"X-API-Key": secret}) as resp):
        assert resp.status == 200
    headers = CIMultiDict(upstream[1].last["headers"])  # what the service's framework hands it

    monkeypatch.chdir(tmp_path)  # the demo's directory is relative, as in the README
    namespace: dict[str, Any] = {}
    # the snippet blocks (urllib): it runs beside the event loop serving the gateway
    await asyncio.to_thread(exec, code.replace(":8443/", f":{gw.proxy_port}/"), namespace)
    verify = namespace["verify_gateway_identity"]
    claims = await asyncio.to_thread(verify, headers, "visitors")
    assert claims["aud"] == "visitors" and claims["iss"] == "gateway" and claims["tenant"] == "acme"
    assert headers["X-Gateway-Tenant"] == "acme"
    with pytest.raises(jwt.InvalidAudienceError):  # an assertion meant for another route
        await asyncio.to_thread(verify, headers, "location")
    forged = dict(headers)
    head, body, sig = forged["X-Gateway-Identity"].split(".")
    forged["X-Gateway-Identity"] = ".".join((head, body, sig[:-4] + ("AAAA" if sig[-4:] != "AAAA" else "BBBB")))
    with pytest.raises(jwt.InvalidSignatureError):
        await asyncio.to_thread(verify, forged, "visitors")
    assert os.path.exists("gateway-demo/tls/self-signed.crt")
