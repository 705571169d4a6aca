"""A tenant portal to talk to over HTTPS, as a browser would: cookies kept, Origin and CSRF sent."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from argon2 import PasswordHasher

from gateway.accounts.actors import Actor
from gateway.accounts.passwords import Passwords

OPERATOR = Actor("admin", "192.0.2.1")
PASSWORD = "correct horse battery staple"


def cheap_passwords() -> Passwords:
    """argon2id with small parameters: the same code path, a fraction of the time (tests that
    are about the parameters themselves use the defaults)."""
    return Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def token_of(url: str) -> str:
    fragment = urlsplit(url).fragment
    name, _, token = fragment.partition("=")
    assert name in ("invitation", "reset") and token, url
    return token


class PortalClient:
    """One browser: its own cookie jar, the portal's origin on every request, the CSRF token
    from sign-in on every state-changing one."""

    def __init__(self, base: str, path: str, ssl: Any) -> None:
        self.base = base.rstrip("/")
        self.path = path
        self.origin = self.base
        self.csrf: str | None = None
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=ssl), cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.last_headers: Any = None

    async def close(self) -> None:
        await self.session.close()

    def url(self, path: str) -> str:
        return f"{self.base}{self.path}{path}"

    async def call(self, method: str, path: str, body: Any = None, *, origin: str | None | bool = True,
                   csrf: str | None | bool = True, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        sent = dict(headers or {})
        if origin is True:
            sent["Origin"] = self.origin
        elif isinstance(origin, str):
            sent["Origin"] = origin
        if csrf is True and self.csrf:
            sent["X-CSRF-Token"] = self.csrf
        elif isinstance(csrf, str):
            sent["X-CSRF-Token"] = csrf
        data = None if body is None else json.dumps(body)
        if data is not None:
            sent["Content-Type"] = "application/json"
        async with self.session.request(method, self.url(path), data=data, headers=sent) as resp:
            raw = await resp.read()
            self.last_headers = resp.headers
            try:
                return resp.status, json.loads(raw) if raw else None
            except ValueError:
                return resp.status, raw.decode(errors="replace")

    async def api(self, method: str, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        return await self.call(method, "/api" + path, body, **kw)

    async def sign_in(self, email: str, password: str = PASSWORD) -> tuple[int, Any]:
        status, body = await self.api("POST", "/session", {"email": email, "password": password})
        if status == 200:
            self.csrf = body["csrf_token"]
        return status, body

    async def accept(self, url: str, password: str = PASSWORD, **fields: Any) -> tuple[int, Any]:
        return await self.api("POST", f"/invitations/{token_of(url)}/accept", {"password": password, **fields})

    def cookie(self) -> str | None:
        for cookie in self.session.cookie_jar:
            if cookie.key == "gw_session":
                return cookie.value
        return None
