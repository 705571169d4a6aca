"""Short-lived tokens end to end: exchange, use, expiry, revocation cascade, JWKS, identity assertion."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import jwt
import pytest

from tests.access.test_keys_e2e import ADMIN, call, routes, tenant_and_key
from tests.conftest import FakeClock, proxy_url, read_json, upstream_headers

TOKEN_PATH = "/api/v1/auth/token"


async def exchange(https: Any, gw: Any, secret: str | None = None, **headers: str) -> tuple[int, Any]:
    body = json.dumps({"api_key": secret}) if secret else None
    async with https.post(proxy_url(gw, TOKEN_PATH), data=body, headers=headers) as resp:
        return resp.status, await read_json(resp)


@pytest.fixture
async def clock() -> FakeClock:
    return FakeClock(time.time())


@pytest.fixture
async def gw(start_gateway, upstream, clock):
    return await start_gateway(clock=clock, routes=routes(upstream[0]))


async def test_exchange_then_use_token(gw, https) -> None:
    key, secret = await tenant_and_key(gw, scope="read_only")
    status, body = await exchange(https, gw, secret)
    assert status == 200, body
    assert body["token_type"] == "Bearer" and body["expires_at"].endswith("Z")
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert claims["sub"] == key.id and claims["tenant"] == "acme" and claims["scope"] == "read_only"
    assert claims["env"] == "live" and claims["exp"] - claims["iat"] == 3600
    assert {"iss", "aud", "nbf", "jti"} <= set(claims)
    assert jwt.get_unverified_header(body["token"])["alg"] == "EdDSA"
    status, seen, _ = await call(https, gw, "/api/v1/visitors", Authorization=f"Bearer {body['token']}")
    assert status == 200
    headers = upstream_headers(seen)
    assert headers["x-gateway-auth-method"] == "jwt" and headers["x-gateway-key-id"] == key.id
    status, err, _ = await call(https, gw, "/api/v1/visitors", "POST", Authorization=f"Bearer {body['token']}")
    assert (status, err["error"]["code"]) == (403, "INSUFFICIENT_SCOPE")


async def test_exchange_with_header_credential_and_bad_inputs(gw, https) -> None:
    _, secret = await tenant_and_key(gw)
    assert (await exchange(https, gw, **{"X-API-Key": secret}))[0] == 200
    status, body = await exchange(https, gw)
    assert (status, body["error"]["code"]) == (401, "MISSING_CREDENTIALS")
    status, body = await exchange(https, gw, "gw_live_garbage")
    assert (status, body["error"]["code"]) == (401, "INVALID_CREDENTIALS")
    # a body is not a header: any text may arrive, and one of a key's length is refused before hashing
    for wrong in (secret[:-1] + "é", "é" * len(secret), secret[:-1] + "\udcff"):
        status, body = await exchange(https, gw, wrong)
        assert (status, body["error"]["code"]) == (401, "INVALID_CREDENTIALS"), wrong
    # nesting deeper than the JSON parser recurses is malformed too, not a 500
    for malformed in (b"{not json", b'{"api_key": 5}', b'{"api_key": ["gw_live_x"]}', b"[" * 5000):
        async with https.post(proxy_url(gw, TOKEN_PATH), data=malformed) as resp:
            assert (resp.status, (await read_json(resp))["error"]["code"]) == (400, "BAD_REQUEST"), malformed
    async with https.get(proxy_url(gw, TOKEN_PATH)) as resp:
        assert resp.status == 405


async def test_token_expiry_follows_the_clock(gw, https, clock) -> None:
    _, secret = await tenant_and_key(gw)
    token = (await exchange(https, gw, secret))[1]["token"]
    clock.advance(3600 + 10)
    status, body, _ = await call(https, gw, "/api/v1/visitors", Authorization=f"Bearer {token}")
    assert (status, body["error"]["code"]) == (401, "EXPIRED_CREDENTIALS")


async def test_revoking_or_rotating_the_key_kills_its_tokens_at_once(gw, https) -> None:
    key, secret = await tenant_and_key(gw)
    token = (await exchange(https, gw, secret))[1]["token"]
    assert (await call(https, gw, "/api/v1/visitors", Authorization=f"Bearer {token}"))[0] == 200
    await gw.accounts.revoke_key(key.id, ADMIN)
    status, body, _ = await call(https, gw, "/api/v1/visitors", Authorization=f"Bearer {token}")
    assert (status, body["error"]["code"]) == (401, "REVOKED_CREDENTIALS")

    key2, secret2 = await tenant_and_key(gw)
    token2 = (await exchange(https, gw, secret2))[1]["token"]
    assert (await call(https, gw, "/api/v1/visitors", Authorization=f"Bearer {token2}"))[0] == 200
    await gw.accounts.rotate_key(key2.id, ADMIN)
    status, body, _ = await call(https, gw, "/api/v1/visitors", Authorization=f"Bearer {token2}")
    assert (status, body["error"]["code"]) == (401, "REVOKED_CREDENTIALS")


def _forge(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    enc = lambda raw: base64.urlsafe_b64encode(raw).rstrip(b"=").decode()  # noqa: E731
    return ".".join([enc(json.dumps(header).encode()), enc(json.dumps(payload).encode()), enc(signature)])


async def test_hostile_tokens_are_refused(gw, https) -> None:
    import hmac
    from hashlib import sha256

    from cryptography.hazmat.primitives import serialization

    key, secret = await tenant_and_key(gw)
    good = (await exchange(https, gw, secret))[1]["token"]
    header = jwt.get_unverified_header(good)
    claims = jwt.decode(good, options={"verify_signature": False})
    signing = gw.tokens._current
    public_pem = signing.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    h_, p_, s_ = good.split(".")
    hs_header = {"alg": "HS256", "typ": "JWT", "kid": header["kid"]}
    signing_input = _forge(hs_header, claims).rsplit(".", 1)[0]
    mac = hmac.new(public_pem, signing_input.encode(), sha256).digest()
    confused = signing_input + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    tampered_payload = base64.urlsafe_b64encode(
        json.dumps({**claims, "scope": "admin"}).encode()
    ).rstrip(b"=").decode()
    other = jwt.encode({**claims}, "x" * 32, algorithm="HS256", headers={"kid": header["kid"]})
    cases = {
        "alg none": _forge({"alg": "none", "typ": "JWT", "kid": header["kid"]}, claims),
        "hs256 with public key": confused,
        "tampered payload": f"{h_}.{tampered_payload}.{s_}",
        "unknown kid": _forge({**header, "kid": "nope"}, claims, b"x" * 64),
        "two segments": f"eyJ{h_[3:]}.{p_}.",
        "bad base64": "eyJ!!!.@@@.###",
        "hmac secret": other,
        "not an object": _forge(header, [1, 2, 3]),  # type: ignore[arg-type]
        "huge": "eyJ" + "A" * 10000 + ".e30.e30",
    }
    for name, token in cases.items():
        status, body, _ = await call(https, gw, "/api/v1/visitors", Authorization=f"Bearer {token}")
        assert (status, body["error"]["code"]) == (401, "INVALID_CREDENTIALS"), name


async def test_wrong_issuer_audience_and_not_yet_valid(gw, https, clock) -> None:
    key, secret = await tenant_and_key(gw)
    tokens = gw.tokens
    now = int(clock.now)
    base = {"sub": key.id, "iat": now, "nbf": now, "exp": now + 60}
    signing = tokens._current
    def sign(claims: dict[str, Any]) -> str:
        return jwt.encode(claims, signing.private_key, algorithm="EdDSA", headers={"kid": signing.kid})
    for claims in (
        {**base, "iss": "someone-else", "aud": "gateway"},
        {**base, "iss": "gateway", "aud": "another-api"},
        {**base, "iss": "gateway", "aud": "gateway", "nbf": now + 600},
    ):
        status, body, _ = await call(https, gw, "/api/v1/visitors", Authorization=f"Bearer {sign(claims)}")
        assert (status, body["error"]["code"]) == (401, "INVALID_CREDENTIALS"), claims


async def test_jwks_verifies_tokens_and_identity_assertion_with_pyjwkclient(gw, https, client_ssl) -> None:
    key, secret = await tenant_and_key(gw)
    async with https.get(proxy_url(gw, "/.well-known/jwks.json")) as resp:
        assert resp.status == 200
        assert "max-age" in resp.headers["Cache-Control"]
        jwks = await resp.json()
    assert jwks["keys"][0]["kty"] == "OKP" and "d" not in jwks["keys"][0]
    token = (await exchange(https, gw, secret))[1]["token"]
    status, seen, _ = await call(https, gw, "/api/v1/visitors", **{"X-API-Key": secret})
    assertion = upstream_headers(seen)["x-gateway-identity"]

    def verify_both() -> tuple[dict[str, Any], dict[str, Any]]:
        client = jwt.PyJWKClient(proxy_url(gw, "/.well-known/jwks.json"), ssl_context=client_ssl)
        t = jwt.decode(token, client.get_signing_key_from_jwt(token).key, algorithms=["EdDSA"], audience="gateway")
        a = jwt.decode(assertion, client.get_signing_key_from_jwt(assertion).key, algorithms=["EdDSA"], audience="visitors")
        return t, a

    token_claims, identity = await asyncio.to_thread(verify_both)
    assert token_claims["sub"] == key.id
    assert identity["sub"] == key.id and identity["tenant"] == "acme" and identity["auth_method"] == "api_key"
    assert identity["exp"] - identity["iat"] <= 60
