"""The key format, the credential header parser and the token verifier, against random and
near-valid input (hypothesis). CI runs the default profile (a few hundred inputs per test); the
long run by hand is `HYPOTHESIS_PROFILE=fuzz pytest tests/unit/test_credentials.py
--hypothesis-show-statistics` (tests/conftest.py registers the profiles)."""

from __future__ import annotations

import base64
import json

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.credentials.keyformat import (
    ALPHABET,
    ParsedKey,
    display_prefix,
    generate_key,
    hash_key,
    key_length,
    last4,
    new_id,
    parse_key,
)
from gateway.credentials.parse import Credential, extract
from gateway.credentials.tokens import TokenService, load_signing_keys
from gateway.errors import ExpiredCredentials, GatewayError, InvalidCredentials

NOW = 1_800_000_000.0


@given(env=st.sampled_from(["live", "test"]), data=st.data())
def test_any_single_character_change_is_refused_without_lookup(env: str, data: st.DataObject) -> None:
    key = generate_key("gw", env)
    assert parse_key(key, "gw") is not None
    at = data.draw(st.integers(0, len(key) - 1))
    other = data.draw(st.sampled_from(ALPHABET + "_-"))
    if other == key[at]:  # not a filter: what is drawn must not depend on the random key
        other = ALPHABET[(ALPHABET.find(other) + 1) % len(ALPHABET)]
    assert parse_key(key[:at] + other + key[at + 1 :], "gw") is None


@given(st.text(max_size=120))
def test_random_text_is_never_a_key(text: str) -> None:
    parsed = parse_key(text, "gw")
    assert parsed is None or parsed.secret == text


def test_truncated_extended_and_foreign_prefix_keys_are_refused() -> None:
    key = generate_key("gw", "live")
    assert parse_key(key[:-1], "gw") is None
    assert parse_key(key + "A", "gw") is None
    assert parse_key(key, "acme") is None
    assert hash_key(key) != hash_key(generate_key("gw", "live"))
    assert len(hash_key(key)) == 64


def _with_checksum(body: str) -> str:
    """A key-shaped text whose checksum holds, whatever else is wrong with it."""
    from gateway.credentials.keyformat import _checksum

    return body + _checksum(body)


RANDOM = "A1b2C3d4E5f6G7h8J9k0LmNoPqRsTuVw"


@pytest.mark.parametrize("body", [
    "xw_live_" + RANDOM,              # another prefix of the same length
    "gw-live_" + RANDOM,              # the first separator
    "gw_live-" + RANDOM,              # the second separator
    "gw_liv3_" + RANDOM,              # not an environment
    "gw_prod_" + RANDOM,
    "gw_live_-" + RANDOM[1:],         # the first random character outside the alphabet
    "gw_live_" + RANDOM[:-1] + "-",   # the last
    "gw_live_" + RANDOM[:15] + "_" + RANDOM[16:],
])
def test_a_valid_checksum_does_not_make_a_malformed_key_ours(body: str) -> None:
    assert len(body) == 40
    assert parse_key(_with_checksum(body), "gw") is None


def test_a_well_formed_key_parses_to_its_environment_and_itself() -> None:
    for env in ("live", "test"):
        key = _with_checksum(f"gw_{env}_{RANDOM}")
        assert parse_key(key, "gw") == ParsedKey(env, key)
        assert parse_key(key[:-1] + ("A" if key[-1] != "A" else "B"), "gw") is None
    long_prefix = _with_checksum(f"acme2_live_{RANDOM}")
    assert parse_key(long_prefix, "acme2") == ParsedKey("live", long_prefix)
    assert parse_key(long_prefix, "acme") is None
    assert key_length("gw") == 46 and key_length("acme2") == 49


def test_generated_keys_ids_and_what_the_console_shows() -> None:
    key = generate_key("gw", "test")
    assert key.startswith("gw_test_") and len(key) == key_length("gw") and parse_key(key, "gw") is not None
    with pytest.raises(ValueError, match="live or test, not 'prod'"):
        generate_key("gw", "prod")
    assert display_prefix("gw_live_AbCdEfGh") == "gw_live_AbCd"
    assert display_prefix("acme2_test_Wxyz12") == "acme2_test_Wxyz"
    assert last4("gw_live_AbCdEfGh") == "EfGh"
    ids = {new_id("key") for _ in range(50)}
    assert len(ids) == 50
    for made in ids:
        kind, _, rest = made.partition("_")
        assert kind == "key" and len(rest) == 20 and set(rest) <= set(ALPHABET)
    assert len({key[8:40] for key in (generate_key("gw", "live") for _ in range(50))}) == 50


def test_a_key_hashes_as_its_bytes() -> None:
    import hashlib

    key = _with_checksum("gw_live_" + RANDOM)
    assert hash_key(key) == hashlib.sha256(key.encode()).hexdigest()
    # text that came from bytes that were not text (surrogateescape) hashes as those bytes
    assert hash_key("gw_live_\udcff") == hashlib.sha256(b"gw_live_\xff").hexdigest()


_HEADER_TEXT = st.one_of(
    st.text(max_size=200),
    st.builds(lambda scheme, rest: f"{scheme} {rest}",
              st.sampled_from(["Bearer", "bearer", "Basic", "BASIC", "Digest", ""]),
              st.one_of(st.text(max_size=120),
                        st.binary(max_size=90).map(lambda b: base64.b64encode(b).decode()),
                        st.text(max_size=60).map(lambda t: base64.b64encode(t.encode()).decode()))),
)


@given(
    pairs=st.lists(st.tuples(st.sampled_from(["Authorization", "authorization", "X-API-Key", "x-api-key", "X-Other"]),
                             _HEADER_TEXT), max_size=4),
    accepted=st.frozensets(st.sampled_from(["bearer", "api_key_header", "basic"])),
)
def test_credential_headers_parse_to_one_credential_or_a_contract_refusal(pairs, accepted) -> None:
    headers = CIMultiDictProxy(CIMultiDict(pairs))
    try:
        credential = extract(headers, accepted)
    except GatewayError as refusal:
        assert refusal.status in (400, 401)
        return
    assert isinstance(credential, Credential) and credential.kind in accepted
    assert credential.secret and credential.secret.isascii() and credential.secret.isprintable()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> TokenService:
    keys = load_signing_keys("EdDSA", (), str(tmp_path_factory.mktemp("keys")))
    return TokenService(keys, issuer="gateway", audience="gateway", leeway=5, clock=lambda: NOW)


def _segment(value: object) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@given(st.binary(max_size=600))
def test_random_bytes_are_invalid_credentials(service: TokenService, raw: bytes) -> None:
    with pytest.raises(InvalidCredentials):
        service.verify(raw.decode("latin-1"))


@given(
    header=st.dictionaries(st.sampled_from(["alg", "kid", "typ", "crit"]),
                           st.one_of(st.text(max_size=20), st.integers(), st.none(), st.lists(st.integers()))),
    payload=st.one_of(
        st.dictionaries(st.sampled_from(["sub", "exp", "nbf", "iat", "iss", "aud"]),
                        st.one_of(st.text(max_size=20), st.integers(), st.floats(allow_nan=True), st.none())),
        st.lists(st.integers()), st.integers(), st.text(),
    ),
    signature=st.binary(max_size=80),
)
def test_near_valid_forged_tokens_are_refused(service: TokenService, header, payload, signature) -> None:
    token = ".".join([_segment(header), _segment(payload), _segment(signature)])
    with pytest.raises(InvalidCredentials):
        service.verify(token)


@given(mutation=st.integers(0, 10_000), char=st.sampled_from("AQgw_-"))
def test_any_tampered_character_of_a_valid_token_is_refused(service: TokenService, mutation: int, char: str) -> None:
    token, _ = service.mint({"sub": "key_1"}, ttl=600)
    at = mutation % len(token)
    if token[at] == char or token[at] == ".":
        return
    tampered = token[:at] + char + token[at + 1 :]
    try:
        accepted = service.verify(tampered)
    except (InvalidCredentials, ExpiredCredentials):
        return
    # only a change base64url ignores (the spare low bits of a segment's last character) may pass
    assert accepted == "key_1"
    assert _decoded(tampered) == _decoded(token)


def _decoded(token: str) -> list[bytes]:
    return [base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)) for part in token.split(".")]


def test_alg_none_and_hs256_with_the_public_key_are_refused(service: TokenService) -> None:
    token, _ = service.mint({"sub": "key_1"}, ttl=600)
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    unsigned = ".".join([_segment({**header, "alg": "none"}), _segment(claims), ""])
    with pytest.raises(InvalidCredentials):
        service.verify(unsigned)
    public_pem = service.jwks["keys"][0]["x"].encode()
    forged = jwt.encode(claims, public_pem, algorithm="HS256", headers={"kid": header["kid"]})
    with pytest.raises(InvalidCredentials):
        service.verify(forged)
    assert service.verify(token) == "key_1"
