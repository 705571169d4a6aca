"""Turn request headers into one credential, refusing ambiguity and junk before any lookup.

Runs on every request, so it does string work only: no I/O, no regex, no allocation beyond
the one `Credential` it returns. Which kinds a route accepts is enforced here: a credential
of a kind the route does not take counts as missing, as the contract says.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Literal, get_args

from multidict import CIMultiDictProxy

from gateway.errors import BadRequest, InvalidCredentials, MissingCredentials

Kind = Literal["bearer", "api_key_header", "basic"]
KINDS: tuple[Kind, ...] = get_args(Kind)  # every kind, in the order the config documents them
MAX_HEADER = 1024


@dataclass(slots=True)  # one per request: a frozen init costs twice as much
class Credential:
    kind: Kind
    secret: str                 # an API key, or a JWT when `is_jwt`
    key_id: str | None = None   # Basic auth: the key id given as user name
    is_jwt: bool = False

    @property
    def method(self) -> str:
        """The contract's X-Gateway-Auth-Method value."""
        if self.is_jwt:
            return "jwt"
        return "basic" if self.kind == "basic" else "api_key"


def _checked(value: str) -> str:
    if not value or len(value) > MAX_HEADER or not value.isascii() or not value.isprintable():
        raise InvalidCredentials("malformed credential header")
    return value


def _single(headers: CIMultiDictProxy[str], name: str) -> str | None:
    values = headers.getall(name, ())
    if not values:
        return None
    if len(values) > 1:
        raise BadRequest(f"more than one {name} header")
    return values[0]


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("eyJ")


def _basic(encoded: str) -> Credential:
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCredentials("malformed Basic credential") from None
    key_id, sep, secret = decoded.partition(":")
    if not sep or not key_id or not secret or not decoded.isprintable():
        raise InvalidCredentials("Basic credential must be key_id:api_key")
    return Credential("basic", secret, key_id=key_id)


def extract(headers: CIMultiDictProxy[str], accepted: frozenset[str]) -> Credential:
    """The request's single credential of a kind in `accepted`, or the contract's refusal."""
    authorization = _single(headers, "Authorization")
    api_key = _single(headers, "X-API-Key")
    if authorization is not None and api_key is not None:
        raise BadRequest("send one credential: Authorization or X-API-Key, not both")
    if api_key is not None:
        if "api_key_header" not in accepted:
            raise MissingCredentials()
        return Credential("api_key_header", _checked(api_key.strip()))
    if authorization is None:
        raise MissingCredentials()
    scheme, _, rest = _checked(authorization).partition(" ")
    scheme = scheme.lower()
    rest = rest.strip()
    if scheme == "bearer" and "bearer" in accepted:
        if not rest:
            raise InvalidCredentials("empty Bearer credential")
        return Credential("bearer", rest, is_jwt=looks_like_jwt(rest))
    if scheme == "basic" and "basic" in accepted:
        return _basic(rest)
    raise MissingCredentials()
