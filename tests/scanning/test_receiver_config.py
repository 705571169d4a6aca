"""The `secret_scanning` section: what check-config refuses (a route over the receiver's path, no
key to verify with, a key that is no P-256 public key, one identifier twice)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.config import ConfigError, parse_config
from tests.cli.test_check_config import check
from tests.scanning.test_receiver import Scanner

TLS = {"tls": {"self_signed": True}}


def problems(**sections: Any) -> list[str]:
    try:
        parse_config({"server": TLS, **sections}, env={})
    except ConfigError as err:
        return err.problems
    return []


def test_a_good_section_passes_and_is_read() -> None:
    key = Scanner().public_key
    cfg = parse_config({"server": TLS, "secret_scanning": {"enabled": True, "public_keys": [key]}}, env={})
    assert cfg.secret_scanning.path == "/gateway/v1/secret-scanning" and cfg.secret_scanning.max_body == 1024 * 1024
    assert cfg.secret_scanning.public_keys[0].key == key["key"]
    assert parse_config({"server": TLS}, env={}).secret_scanning.enabled is False


def test_enabled_needs_a_public_key() -> None:
    assert problems(secret_scanning={"enabled": True}) == [
        "secret_scanning.public_keys: must list at least one key when enabled (unsigned reports are refused)"]
    assert problems(secret_scanning={"enabled": False}) == []


def test_keys_must_be_p256_public_keys_named_once() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    def pem(public: Any) -> str:
        return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    good = Scanner().public_key
    p384 = pem(ec.generate_private_key(ec.SECP384R1()).public_key())
    ed = pem(ed25519.Ed25519PrivateKey.generate().public_key())
    private = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    rule = "must be an ECDSA P-256 public key in PEM (-----BEGIN PUBLIC KEY-----)"
    keys = [{"key_identifier": f"k{i}", "key": k} for i, k in enumerate([p384, ed, private, "not a key"])]
    assert problems(secret_scanning={"public_keys": keys}) == [
        f"secret_scanning.public_keys[{i}].key: {rule}" for i in range(4)]
    assert problems(secret_scanning={"public_keys": [good, {**good}]}) == [
        "secret_scanning.public_keys[1].key_identifier: duplicates public_keys[0]"]
    assert problems(secret_scanning={"public_keys": [{**good, "key_identifier": "has space"}]}) == [
        "secret_scanning.public_keys[0].key_identifier: must be 1-256 printable ASCII characters, no spaces"]


@pytest.mark.parametrize("path, refused", [
    ("/hooks/secret-scanning", True),
    ("/hooks/secret-scanning/more", True),
    ("/{kind}/secret-scanning", True),
    ("/Hooks/Secret-Scanning", True),
    ("/hooks", False),           # above it: the receiver's exact path is answered first
    ("/hooks/secret", False),
])
def test_check_config_refuses_a_route_at_or_below_the_path(tmp_path: Path, path: str, refused: bool) -> None:
    scanning = {"enabled": True, "public_keys": [Scanner().public_key], "path": "/hooks/secret-scanning"}
    cfg: dict[str, Any] = {"server": TLS, "secret_scanning": scanning,
                           "routes": [{"name": "api", "path": path, "upstream": "http://127.0.0.1:9"}]}
    file = tmp_path / "gateway.yaml"
    file.write_text(yaml.safe_dump(cfg))
    result = check(file)
    assert (result.returncode != 0) == refused, result.stderr
    if refused:
        assert "routes[0].path: is at or below the secret-scanning receiver's path " \
               "(secret_scanning.path /hooks/secret-scanning)" in result.stderr
        cfg["secret_scanning"]["enabled"] = False  # off: the path is the routes' to serve
        file.write_text(yaml.safe_dump(cfg))
        assert check(file).returncode == 0


def test_the_path_is_none_of_the_gateways_own() -> None:
    key = Scanner().public_key
    assert problems(secret_scanning={"enabled": True, "public_keys": [key], "path": "/api/v1/auth/token"}) == [
        "secret_scanning.path: is the token exchange path (tokens.path)"]
    assert problems(secret_scanning={"enabled": True, "public_keys": [key], "path": "/.well-known/jwks.json"}) == [
        "secret_scanning.path: is the JWKS path"]
    assert problems(secret_scanning={"enabled": True, "public_keys": [key], "path": "/portal/scan"},
                    portal={"enabled": True}) == ["secret_scanning.path: is under the tenant portal's path /portal"]
    assert problems(secret_scanning={"enabled": True, "public_keys": [key], "path": "/gateway/v1/me"}) == [
        "secret_scanning.path: is one of the caller's own endpoints (self_api.path /gateway/v1)"]
    assert problems(secret_scanning={"path": "/scan/"}) != []
