"""Gateway-signed JWTs: signing keys, minting, verification with a pinned algorithm, and JWKS.

pyjwt with cryptography does all JOSE work. The verifier never trusts the token's `alg`: it
accepts exactly the configured algorithm with the key named by `kid`, so `alg: none` and
HS256-signed-with-the-public-key are refused by construction. Expiry is checked against the
gateway's clock (injectable for tests) with a small leeway.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.utils import base64url_encode

from gateway.errors import ExpiredCredentials, InvalidCredentials
from gateway.files import exclusive, write_atomically

SIGNING_DIR = "signing-keys"
_MAX_TOKEN = 4096
_B64URL = re.compile(r"[A-Za-z0-9_-]{4,1024}")


def _kid(token: str) -> str | None:
    """The `kid` of a token's header, read only to choose the key; pyjwt checks the header itself.

    `jwt.get_unverified_header` parses and validates the whole token, which `jwt.decode` then
    does again: reading just the header here halves the cost of verifying a new token.
    """
    header_b64 = token.partition(".")[0]
    if _B64URL.fullmatch(header_b64) is None:
        return None
    try:
        header = json.loads(base64.urlsafe_b64decode(header_b64 + "=" * (-len(header_b64) % 4)))
    except (binascii.Error, ValueError):
        return None
    kid = header.get("kid") if isinstance(header, dict) else None
    return kid if isinstance(kid, str) else None


class SigningKeyError(Exception):
    """A configured signing key that cannot be used; one line for the operator."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    algorithm: str
    private_key: Any
    public_key: Any
    jwk: Mapping[str, str]


def _generate(algorithm: str) -> Any:
    if algorithm == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _matches(algorithm: str, key: Any) -> bool:
    kinds = {
        "EdDSA": ed25519.Ed25519PrivateKey,
        "ES256": ec.EllipticCurvePrivateKey,
        "RS256": rsa.RSAPrivateKey,
    }
    return isinstance(key, kinds[algorithm])


def _signing_key(algorithm: str, private_key: Any) -> SigningKey:
    public = private_key.public_key()
    algo = jwt.get_algorithm_by_name(algorithm)
    jwk: dict[str, str] = json.loads(algo.to_jwk(public))
    # RFC 7638 thumbprint as the kid: stable across restarts and derived from the key alone.
    required = {"OKP": ("crv", "kty", "x"), "EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n")}
    members = {k: jwk[k] for k in required[jwk["kty"]]}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    digest = base64url_encode(hashlib.sha256(canonical).digest()).decode()
    jwk.update({"kid": digest, "alg": algorithm, "use": "sig"})
    return SigningKey(digest, algorithm, private_key, public, jwk)


def load_signing_keys(algorithm: str, files: tuple[str, ...], data_dir: str) -> list[SigningKey]:
    """Configured PEM files (first one signs), or keys kept under data_dir (newest signs)."""
    paths = [Path(p) for p in files]
    if not paths:
        folder = Path(data_dir) / SIGNING_DIR / algorithm.lower()
        with exclusive(folder / ".lock"):  # workers starting together share one key
            paths = sorted(folder.glob("*.pem"), reverse=True)
            if not paths:
                path = folder / f"{int(time.time())}.pem"
                pem = _generate(algorithm).private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
                write_atomically(path, pem)
                paths = [path]
    keys = []
    for path in paths:
        try:
            private = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise SigningKeyError(f"cannot load signing key {path}: {exc}") from None
        if not _matches(algorithm, private):
            raise SigningKeyError(f"signing key {path} is not a key for {algorithm}")
        keys.append(_signing_key(algorithm, private))
    return keys


class TokenService:
    """Mints and verifies gateway tokens; remembers verified tokens so repeats cost no crypto."""

    def __init__(
        self,
        keys: list[SigningKey],
        *,
        issuer: str,
        audience: str,
        leeway: float,
        clock: Callable[[], float] = time.time,
        cache_size: int = 10_000,
    ) -> None:
        if not keys:
            raise SigningKeyError("no signing key")
        self._keys = {k.kid: k for k in keys}
        self._current = keys[0]
        self.algorithm = keys[0].algorithm
        self.issuer = issuer
        self.audience = audience
        self._leeway = leeway
        self._clock = clock
        self._verified: OrderedDict[str, tuple[str, float, float]] = OrderedDict()
        self._cache_size = cache_size
        self.jwks = {"keys": [dict(k.jwk) for k in keys]}

    def mint(self, claims: Mapping[str, Any], *, ttl: float, audience: str | None = None) -> tuple[str, float]:
        now = int(self._clock())
        exp = now + int(ttl)
        payload = {
            "iss": self.issuer,
            "aud": audience or self.audience,
            "iat": now,
            "nbf": now,
            "exp": exp,
            "jti": uuid.uuid4().hex,
            **claims,
        }
        token = jwt.encode(
            payload, self._current.private_key, algorithm=self.algorithm, headers={"kid": self._current.kid}
        )
        return token, float(exp)

    def _check_times(self, nbf: float, exp: float) -> None:
        now = self._clock()
        if now >= exp + self._leeway:
            raise ExpiredCredentials("the token has expired")
        if now < nbf - self._leeway:
            raise InvalidCredentials("the token is not valid yet")

    def verify(self, token: str) -> str:
        """The key id (`sub`) of a valid token of ours, or the contract's 401."""
        hit = self._verified.get(token)
        if hit is not None:
            self._check_times(hit[1], hit[2])
            return hit[0]
        if len(token) > _MAX_TOKEN:
            raise InvalidCredentials("token too large")
        try:
            kid = _kid(token)
            key = self._keys.get(kid) if kid is not None else None
            if key is None:
                raise InvalidCredentials("unknown token signing key")
            claims = jwt.decode(
                token,
                key.public_key,
                algorithms=[self.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                options={
                    "require": ["exp", "nbf", "iat", "sub", "iss", "aud"],
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.PyJWTError:
            raise InvalidCredentials("invalid token") from None
        sub, nbf, exp = claims.get("sub"), claims.get("nbf"), claims.get("exp")
        if not isinstance(sub, str) or not isinstance(nbf, (int, float)) or not isinstance(exp, (int, float)):
            raise InvalidCredentials("invalid token claims")
        self._check_times(float(nbf), float(exp))
        self._verified[token] = (sub, float(nbf), float(exp))
        if len(self._verified) > self._cache_size:
            self._verified.popitem(last=False)
        return sub
