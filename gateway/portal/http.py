"""The portal app's HTTP edges: who is asking and from where, the Origin check, the cookie, headers.

The portal app listens only on a private socket that the gateway's proxy listener forwards to,
so the client address and the public host come from headers the gateway sets itself (client-sent
`X-Gateway-*` headers are stripped on the proxy listener, like for any upstream).

Origin (OWASP CSRF cheat sheet, "verifying origin with standard headers"): every state-changing
request must carry an `Origin` equal to the portal's own: `portal.public_url`'s origin when set,
else `https://` and the host the browser asked for. Browsers send `Origin` on every cross-origin
request and every same-origin POST, PUT, PATCH and DELETE, so a missing one is refused too.
`Sec-Fetch-Site`, when present, must say `same-origin`.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from gateway.errors import BadRequest, CsrfFailed, PayloadTooLarge
from gateway.portal.sessions import COOKIE
from gateway.proxy.mount import CLIENT_HEADER  # set by the gateway: the client's address as it decided it

HOST_HEADER = "X-Forwarded-Host"        # set by the gateway: the host the client asked for
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_BODY = 64 * 1024
API_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # the portal is HTTPS only (contract section 9): a browser that saw it once never tries plain
    # HTTP there again, where a network attacker could answer (no includeSubDomains: not ours to say)
    "Strict-Transport-Security": "max-age=31536000",
}


def client_of(request: web.Request) -> str | None:
    return request.headers.get(CLIENT_HEADER) or request.remote


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class Origins:
    """The portal's own origin for a request, as the Origin check and links need it."""

    def __init__(self, public_url: str | None) -> None:
        self._fixed = origin_of(public_url) if public_url else None

    def own(self, request: web.Request) -> str | None:
        if self._fixed is not None:
            return self._fixed
        host = request.headers.get(HOST_HEADER) or request.host
        return f"https://{host}".lower() if host else None

    def check(self, request: web.Request) -> None:
        origin = request.headers.get("Origin")
        own = self.own(request)
        if origin is None or own is None or origin.lower() != own:
            raise CsrfFailed("this request does not come from the portal's own origin")
        site = request.headers.get("Sec-Fetch-Site")
        if site is not None and site != "same-origin":
            raise CsrfFailed("this request does not come from the portal's own origin")

    def middleware(self) -> Middleware:
        @web.middleware
        async def check_origin(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.method not in SAFE_METHODS:
                self.check(request)
            return await handler(request)

        return check_origin


async def read_json(request: web.Request) -> Any:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise PayloadTooLarge("portal request bodies are limited to 64 KiB")
    raw = await request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise PayloadTooLarge("portal request bodies are limited to 64 KiB")
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested past the parser's depth
        raise BadRequest("the body must be valid JSON") from None


def json_response(payload: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=json.dumps(payload).encode(), content_type="application/json",
                        headers=API_HEADERS)


def set_session_cookie(response: web.StreamResponse, session_id: str, path: str) -> None:
    """`HttpOnly; Secure; SameSite=Strict; Path=<portal.path>`, and no expiry: the browser
    forgets it when it closes, the store when a timeout passes."""
    response.set_cookie(COOKIE, session_id, path=path, secure=True, httponly=True, samesite="Strict")


def clear_session_cookie(response: web.StreamResponse, path: str) -> None:
    response.set_cookie(COOKIE, "", path=path, secure=True, httponly=True, samesite="Strict", max_age=0,
                        expires="Thu, 01 Jan 1970 00:00:00 GMT")
