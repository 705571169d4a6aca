"""The secret-scanning receiver through a running gateway over TLS: reports signed as GitHub signs
them (a P-256 key pair made here, its public half in the config) mark this gateway's keys exposed;
anything unsigned, wrongly signed, too large or malformed changes nothing."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from multidict import CIMultiDict

from gateway.credentials.keyformat import ALPHABET, generate_key
from tests.access.test_keys_e2e import call, routes, tenant_and_key
from tests.conftest import ADMIN_TOKEN, admin_url, proxy_url, read_json

PATH = "/gateway/v1/secret-scanning"
KEY_ID = "90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a"
LEAKED_AT = "https://github.com/octo/app/blob/0123abc/settings.py"


class Scanner:
    """A secret scanner with its own signing key, as GitHub's partner program has."""

    def __init__(self, key_identifier: str = KEY_ID) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())
        self.key_identifier = key_identifier

    @property
    def public_key(self) -> dict[str, str]:
        pem = self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        return {"key_identifier": self.key_identifier, "key": pem}

    def sign(self, body: bytes) -> str:
        return base64.b64encode(self.private.sign(body, ec.ECDSA(hashes.SHA256()))).decode()

    def headers(self, body: bytes) -> dict[str, str]:
        return {"Github-Public-Key-Identifier": self.key_identifier, "Github-Public-Key-Signature": self.sign(body),
                "Content-Type": "application/json"}


def report(*tokens: str, url: str = LEAKED_AT) -> bytes:
    return json.dumps([{"token": t, "type": "gateway_api_key", "url": url, "source": "content"}
                       for t in tokens]).encode()


def bad_checksum(key: str) -> str:
    return key[:-1] + ALPHABET[(ALPHABET.index(key[-1]) + 1) % len(ALPHABET)]


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def scanner() -> Scanner:
    return Scanner()


async def gateway(start_gateway: Any, upstream: Any, scanner: Scanner, on_exposure: str = "revoke",
                  **scanning: Any) -> Any:
    return await start_gateway(
        routes=routes(upstream[0]), keys={"on_exposure": on_exposure},
        secret_scanning={"enabled": True, "public_keys": [scanner.public_key], **scanning})


async def post(https: Any, gw: Any, body: bytes, headers: Any) -> tuple[int, Any]:
    async with https.post(proxy_url(gw, PATH), data=body, headers=headers) as resp:
        return resp.status, await read_json(resp)


async def key_view(https: Any, gw: Any, key_id: str) -> dict[str, Any]:
    async with https.get(admin_url(gw, f"/admin/keys/{key_id}"), headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as resp:
        assert resp.status == 200
        view: dict[str, Any] = await read_json(resp)
        return view


async def audit_actions(https: Any, gw: Any) -> list[tuple[str, str | None]]:
    async with https.get(admin_url(gw, "/admin/audit"), headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as resp:
        return [(e["action"], e.get("source_ip")) for e in (await read_json(resp))["data"]]


async def test_a_signed_report_revokes_the_key_and_labels_every_token(start_gateway, upstream, https, scanner) -> None:
    gw = await gateway(start_gateway, upstream, scanner)
    key, secret = await tenant_and_key(gw)
    assert (await call(https, gw, "/api/v1/visitors", **{"X-API-Key": secret}))[0] == 200  # cached as valid
    unknown, made_up = generate_key("gw", "live"), bad_checksum(generate_key("gw", "test"))
    other_gateway = generate_key("acme", "live")
    body = report(secret, unknown, made_up, other_gateway, secret)
    status, answer = await post(https, gw, body, scanner.headers(body))
    assert status == 200, answer
    assert answer == [
        {"token_hash": sha256(secret), "token_type": "gateway_api_key", "label": "true_positive"},
        {"token_hash": sha256(unknown), "token_type": "gateway_api_key", "label": "false_positive"},
        {"token_hash": sha256(made_up), "token_type": "gateway_api_key", "label": "false_positive"},
        {"token_hash": sha256(other_gateway), "token_type": "gateway_api_key", "label": "false_positive"},
        {"token_hash": sha256(secret), "token_type": "gateway_api_key", "label": "true_positive"},
    ]
    status, err, _ = await call(https, gw, "/api/v1/visitors", **{"X-API-Key": secret})
    assert (status, err["error"]["code"]) == (401, "REVOKED_CREDENTIALS")
    view = await key_view(https, gw, key.id)
    assert view["status"] == "revoked" and view["exposed_at"] is not None
    assert view["exposure"]["reason"] == "secret_scanning" and view["exposure"]["url"] == LEAKED_AT
    actions = await audit_actions(https, gw)
    assert ("key.exposed", "127.0.0.1") in actions and actions.count(("key.exposed", "127.0.0.1")) == 1
    # reported again: the same answer, nothing written twice
    body = report(secret, url="https://github.com/octo/other/blob/1/x.py")
    status, answer = await post(https, gw, body, scanner.headers(body))
    assert status == 200 and answer[0]["label"] == "true_positive"
    assert (await key_view(https, gw, key.id))["exposure"]["url"] == LEAKED_AT
    assert [a for a, _ in await audit_actions(https, gw)].count("key.exposed") == 1


async def test_with_flag_the_key_is_marked_and_keeps_working(start_gateway, upstream, https, scanner) -> None:
    gw = await gateway(start_gateway, upstream, scanner, on_exposure="flag")
    key, secret = await tenant_and_key(gw)
    body = report(secret)
    status, answer = await post(https, gw, body, scanner.headers(body))
    assert (status, answer[0]["label"]) == (200, "true_positive")
    view = await key_view(https, gw, key.id)
    assert view["status"] == "active" and view["exposure"]["reason"] == "secret_scanning"
    assert (await call(https, gw, "/api/v1/visitors", **{"X-API-Key": secret}))[0] == 200


async def test_unsigned_or_wrongly_signed_reports_change_nothing(start_gateway, upstream, https, scanner) -> None:
    gw = await gateway(start_gateway, upstream, scanner)
    key, secret = await tenant_and_key(gw)
    body = report(secret)
    impostor = Scanner()  # GitHub's identifier, another key
    unknown_id = Scanner("another-key-id")
    good = scanner.headers(body)
    twice: CIMultiDict[str] = CIMultiDict(good)
    twice.add("Github-Public-Key-Identifier", "another-key-id")
    cases: list[tuple[Any, str]] = [
        ({"Content-Type": "application/json"}, "MISSING_CREDENTIALS"),
        (impostor.headers(body), "INVALID_CREDENTIALS"),
        (unknown_id.headers(body), "INVALID_CREDENTIALS"),
        ({**good, "Github-Public-Key-Identifier": "another-key-id"}, "INVALID_CREDENTIALS"),
        (scanner.headers(report(generate_key("gw", "live"))), "INVALID_CREDENTIALS"),  # signed another body
        ({**good, "Github-Public-Key-Signature": "not base64!"}, "INVALID_CREDENTIALS"),
        ({**good, "Github-Public-Key-Signature": base64.b64encode(b"\x30\x06\x02\x01\x01\x02\x01\x01").decode()},
         "INVALID_CREDENTIALS"),
        ({"Github-Public-Key-Identifier": KEY_ID}, "INVALID_CREDENTIALS"),  # no signature
        (twice, "INVALID_CREDENTIALS"),
    ]
    for headers, code in cases:
        status, err = await post(https, gw, body, headers)
        assert (status, err["error"]["code"]) == (401, code), headers
    assert (await call(https, gw, "/api/v1/visitors", **{"X-API-Key": secret}))[0] == 200
    view = await key_view(https, gw, key.id)
    assert view["status"] == "active" and view["exposed_at"] is None


async def test_oversized_and_malformed_reports_are_refused(start_gateway, upstream, https, scanner) -> None:
    gw = await gateway(start_gateway, upstream, scanner, max_body=200_000)
    key, secret = await tenant_and_key(gw)
    big = report(*[secret] * 2000)
    assert len(big) > 200_000
    status, err = await post(https, gw, big, scanner.headers(big))
    assert (status, err["error"]["code"]) == (413, "PAYLOAD_TOO_LARGE")
    malformed = [
        b"[{not json",
        b'[{"token": "%s", "token": "x", "type": "t"}]' % secret.encode(),  # duplicate field
        b'{"token": "%s", "type": "t"}' % secret.encode(),  # not an array
        b'[{"token": 5, "type": "t"}]',
        b'[{"token": "%s"}]' % secret.encode(),  # no type
        b'[{"token": "%s", "type": "t", "url": 3}]' % secret.encode(),
        b'[{"token": "%s", "type": "t", "source": ["content"]}]' % secret.encode(),
        b'["%s"]' % secret.encode(),
        b'[{"token": "%s", "type": "t", "n": NaN}]' % secret.encode(),
        b"\xff\xfe[]",
        b"[" * 90_000 + b"]" * 90_000,  # deeper than the parser goes
    ]
    for body in malformed:
        status, err = await post(https, gw, body, scanner.headers(body))
        assert (status, err["error"]["code"]) == (400, "BAD_REQUEST"), body[:60]
    async with https.get(proxy_url(gw, PATH)) as resp:
        assert resp.status == 405 and resp.headers["Allow"] == "POST"
    assert (await key_view(https, gw, key.id))["exposed_at"] is None
    status, answer = await post(https, gw, b"[]", scanner.headers(b"[]"))
    assert (status, answer) == (200, [])


async def test_only_well_formed_tokens_are_looked_up(start_gateway, upstream, https, scanner, monkeypatch) -> None:
    gw = await gateway(start_gateway, upstream, scanner)
    looked_up: list[str] = []
    lookup = gw.store.get_principal_by_hash

    async def counted(secret_hash: str) -> Any:
        looked_up.append(secret_hash)
        return await lookup(secret_hash)

    monkeypatch.setattr(gw.store, "get_principal_by_hash", counted)
    unknown = generate_key("gw", "live")
    made_up = [bad_checksum(generate_key("gw", "live")) for _ in range(30)] + ["gw_live_short", "", "x" * 200]
    body = report(*made_up, unknown, unknown)
    status, answer = await post(https, gw, body, scanner.headers(body))
    assert status == 200 and {a["label"] for a in answer} == {"false_positive"} and len(answer) == 35
    assert looked_up == [hashlib.sha256(unknown.encode()).hexdigest()]


async def test_the_receiver_is_off_unless_enabled(start_gateway, upstream, https, scanner) -> None:
    gw = await start_gateway(routes=routes(upstream[0]), secret_scanning={"public_keys": [scanner.public_key]})
    _, secret = await tenant_and_key(gw)
    body = report(secret)
    status, err = await post(https, gw, body, scanner.headers(body))
    assert (status, err["error"]["code"]) == (404, "ROUTE_NOT_FOUND")


async def test_a_report_signed_with_openssl_as_the_readme_shows(start_gateway, upstream, https, tmp_path) -> None:
    def openssl(*args: str, data: bytes | None = None) -> bytes:
        return subprocess.run(["openssl", *args], input=data, check=True, capture_output=True, cwd=tmp_path,
                              timeout=60).stdout

    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "scanner.key")
    openssl("ec", "-in", "scanner.key", "-pubout", "-out", "scanner.pub")
    gw = await start_gateway(routes=routes(upstream[0]), secret_scanning={
        "enabled": True, "public_keys": [{"key_identifier": "test", "key": (tmp_path / "scanner.pub").read_text()}]})
    _, secret = await tenant_and_key(gw)
    body = report(secret)
    signature = base64.b64encode(openssl("dgst", "-sha256", "-sign", "scanner.key", data=body)).decode()
    status, answer = await post(https, gw, body, {"Github-Public-Key-Identifier": "test",
                                                  "Github-Public-Key-Signature": signature})
    assert (status, answer[0]["label"]) == (200, "true_positive")
