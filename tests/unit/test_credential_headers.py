"""Which credential a request carries, exactly: each accepted form, each refusal with its code
and the message the client reads."""

from __future__ import annotations

import base64

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.credentials.parse import MAX_HEADER, Credential, extract, looks_like_jwt
from gateway.errors import GatewayError

ALL = frozenset({"bearer", "api_key_header", "basic"})
KEY = "gw_live_" + "A" * 38
JWT = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJrIn0.c2ln"


def headers(*pairs: tuple[str, str]) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict(pairs))


def basic(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


def outcome(pairs: list[tuple[str, str]], accepted: frozenset[str] = ALL) -> Credential | tuple[int, str, str]:
    try:
        return extract(headers(*pairs), accepted)
    except GatewayError as err:
        return err.status, err.code, err.message


@pytest.mark.parametrize("pairs, expected", [
    ([("X-API-Key", KEY)], Credential("api_key_header", KEY)),
    ([("x-api-key", f"  {KEY} ")], Credential("api_key_header", KEY)),
    ([("Authorization", f"Bearer {KEY}")], Credential("bearer", KEY)),
    ([("authorization", f"bearer   {KEY}  ")], Credential("bearer", KEY)),
    ([("Authorization", f"BEARER {JWT}")], Credential("bearer", JWT, is_jwt=True)),
    ([("Authorization", basic(f"key_1:{KEY}"))], Credential("basic", KEY, key_id="key_1")),
    ([("Authorization", basic(f"key_1:{KEY}:x"))], Credential("basic", f"{KEY}:x", key_id="key_1")),
    ([("Authorization", "bAsIc " + base64.b64encode(b"id:s").decode())], Credential("basic", "s", key_id="id")),
])
def test_each_accepted_form(pairs: list[tuple[str, str]], expected: Credential) -> None:
    assert outcome(pairs) == expected


@pytest.mark.parametrize("pairs, expected", [
    ([], (401, "MISSING_CREDENTIALS", "no credential of a kind this route accepts")),
    ([("X-API-Key", KEY), ("X-API-Key", KEY)], (400, "BAD_REQUEST", "more than one X-API-Key header")),
    ([("Authorization", f"Bearer {KEY}"), ("authorization", "Bearer x")],
     (400, "BAD_REQUEST", "more than one Authorization header")),
    ([("Authorization", f"Bearer {KEY}"), ("X-API-Key", KEY)],
     (400, "BAD_REQUEST", "send one credential: Authorization or X-API-Key, not both")),
    ([("X-API-Key", "")], (401, "INVALID_CREDENTIALS", "malformed credential header")),
    ([("X-API-Key", "   ")], (401, "INVALID_CREDENTIALS", "malformed credential header")),
    ([("X-API-Key", "k" * (MAX_HEADER + 1))], (401, "INVALID_CREDENTIALS", "malformed credential header")),
    ([("X-API-Key", "gw_live_caf\u00e9")], (401, "INVALID_CREDENTIALS", "malformed credential header")),
    ([("Authorization", "Bearer a\x7fb")], (401, "INVALID_CREDENTIALS", "malformed credential header")),
    ([("Authorization", "Bearer")], (401, "INVALID_CREDENTIALS", "empty Bearer credential")),
    ([("Authorization", "Bearer    ")], (401, "INVALID_CREDENTIALS", "empty Bearer credential")),
    ([("Authorization", "Basic !!!")], (401, "INVALID_CREDENTIALS", "malformed Basic credential")),
    ([("Authorization", "Basic " + base64.b64encode(b"a:b").decode() + "\u0021")],
     (401, "INVALID_CREDENTIALS", "malformed Basic credential")),
    ([("Authorization", "Basic " + base64.b64encode("id:caf\u00e9".encode()).decode())],
     (401, "INVALID_CREDENTIALS", "malformed Basic credential")),
    ([("Authorization", basic("no-colon"))], (401, "INVALID_CREDENTIALS", "Basic credential must be key_id:api_key")),
    ([("Authorization", basic(":secret"))], (401, "INVALID_CREDENTIALS", "Basic credential must be key_id:api_key")),
    ([("Authorization", basic("id:"))], (401, "INVALID_CREDENTIALS", "Basic credential must be key_id:api_key")),
    ([("Authorization", basic("id:se\ncret"))], (401, "INVALID_CREDENTIALS", "Basic credential must be key_id:api_key")),
    ([("Authorization", "Digest abc")], (401, "MISSING_CREDENTIALS", "no credential of a kind this route accepts")),
])
def test_each_refusal(pairs: list[tuple[str, str]], expected: tuple[int, str, str]) -> None:
    assert outcome(pairs) == expected


def test_a_credential_header_of_the_longest_length_is_read() -> None:
    longest = "k" * MAX_HEADER
    assert outcome([("X-API-Key", longest)]) == Credential("api_key_header", longest)


def test_a_kind_the_route_does_not_accept_counts_as_missing() -> None:
    missing = (401, "MISSING_CREDENTIALS", "no credential of a kind this route accepts")
    assert outcome([("X-API-Key", KEY)], frozenset({"bearer", "basic"})) == missing
    assert outcome([("Authorization", f"Bearer {KEY}")], frozenset({"api_key_header", "basic"})) == missing
    assert outcome([("Authorization", basic(f"id:{KEY}"))], frozenset({"bearer", "api_key_header"})) == missing
    assert outcome([("Authorization", basic(f"id:{KEY}"))], frozenset({"basic"})) == Credential("basic", KEY, key_id="id")
    assert outcome([("Authorization", f"Bearer {KEY}")], frozenset({"bearer"})) == Credential("bearer", KEY)


def test_what_looks_like_a_jwt_and_the_auth_method_named_upstream() -> None:
    assert looks_like_jwt(JWT) and not looks_like_jwt(KEY) and not looks_like_jwt("eyJ.a") and not looks_like_jwt("a.b.c")
    assert not looks_like_jwt("eyJa.b.c.d")
    assert Credential("bearer", JWT, is_jwt=True).method == "jwt"
    assert Credential("bearer", KEY).method == "api_key"
    assert Credential("api_key_header", KEY).method == "api_key"
    assert Credential("basic", KEY, key_id="k").method == "basic"
