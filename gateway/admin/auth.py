"""The admin bearer token: read once at startup, compared in constant time on every call."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.errors import InvalidCredentials, MissingCredentials

MIN_TOKEN_LENGTH = 24
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/admin", "/admin/", "/admin/docs", "/admin/openapi.json"})
PUBLIC_PREFIXES = ("/admin/console/", "/admin/docs/")
CONSOLE_PAGES = frozenset({"/admin", "/admin/"})


class AdminTokenError(Exception):
    """A missing or weak admin token where one is required; one line for the operator."""


def check_admin_token(token: str | None, *, env_name: str, host: str, allow_weak: bool) -> str | None:
    """The token to require; a weak or missing one only on loopback with allow_weak_token."""
    if token and len(token) >= MIN_TOKEN_LENGTH:
        return token
    if allow_weak and (host == "localhost" or _is_loopback(host)):
        return token or None  # None: the admin API refuses every call
    problem = "is not set" if not token else f"is shorter than {MIN_TOKEN_LENGTH} characters"
    raise AdminTokenError(
        f"${env_name} {problem}: set it to a random token of at least {MIN_TOKEN_LENGTH} characters "
        "(or admin.allow_weak_token: true on a loopback-only admin listener)"
    )


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def token_middleware(token: str | None):  # type: ignore[no-untyped-def]
    """Admin endpoints need `Authorization: Bearer <token>`; health, metrics and static pages do not."""
    expected = hashlib.sha256(token.encode()).digest() if token else None

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if (
            not path.startswith("/admin")
            or path in PUBLIC_PATHS
            or path in CONSOLE_PAGES
            or path.startswith(PUBLIC_PREFIXES)
        ):
            return await handler(request)
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise MissingCredentials("admin API needs Authorization: Bearer <admin token>")
        # Hash both sides so the comparison is constant-time whatever the lengths.
        presented = hashlib.sha256(given.strip().encode("utf-8", "surrogateescape")).digest()
        if expected is None or not hmac.compare_digest(presented, expected):
            raise InvalidCredentials("wrong admin token")
        return await handler(request)

    return middleware
