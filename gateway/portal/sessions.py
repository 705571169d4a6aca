"""Server-side portal sessions (OWASP Session Management): the store is the only truth.

The browser holds a random 256-bit id in the `gw_session` cookie; the store holds its SHA-256,
the person and the times. Every portal request reads the session, the user and the tenant fresh
from the shared store, so a sign-out, a disabled user or tenant, or a password reset ends the
session at once on every instance, with no cache to invalidate. A new id is made at every
sign-in (the one the browser had is deleted), and a session ends `idle` seconds after its last
use or `max` seconds after sign-in, whichever comes first.

The CSRF token is derived from the session id (HMAC-SHA256 keyed with it): bound to the session,
unknowable without the cookie, nothing more to store, the same on every instance.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from gateway.keystore.base import KeyStore
from gateway.keystore.models import Login, PortalSession, SessionView

COOKIE = "gw_session"
_ID = re.compile(r"[A-Za-z0-9_-]{43}")  # token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class SessionSettings:
    idle: float = 1800      # portal.session_idle
    max: float = 43200      # portal.session_max

    @property
    def touch_every(self) -> float:
        """How stale `seen_at` may get before a request writes it again: a write per minute at
        most, not per request; the idle limit then errs early, by at most this, never late."""
        return min(60.0, self.idle / 10)


def id_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def csrf_token(session_id: str) -> str:
    digest = hmac.new(session_id.encode(), b"gateway portal csrf", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def csrf_matches(session_id: str, presented: str | None) -> bool:
    if not presented:
        return False
    return hmac.compare_digest(csrf_token(session_id).encode(), presented.encode("utf-8", "surrogateescape"))


class Sessions:
    def __init__(self, store: KeyStore, settings: SessionSettings, *,
                 clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self.settings = settings
        self._clock = clock

    def _now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._clock(), dt.UTC)

    async def start(self, login: Login, *, client_ip: str | None, user_agent: str | None,
                    previous: str | None = None) -> str:
        """A new session for someone who just proved who they are; its id, for the cookie only.
        A session id the browser already had (`previous`) is deleted with it: no fixation."""
        session_id = secrets.token_urlsafe(32)
        now = self._now()
        session = PortalSession(
            id_hash=id_hash(session_id), user_id=login.user.id, created_at=now, seen_at=now,
            expires_at=now + dt.timedelta(seconds=self.settings.max), client_ip=client_ip,
            user_agent=(user_agent or "")[:256] or None,
        )
        replaces = id_hash(previous) if previous and _ID.fullmatch(previous) else None
        await self._store.create_session(session, replaces=replaces)
        return session_id

    async def resolve(self, session_id: str | None) -> SessionView | None:
        """The live session behind a cookie, or None (then the cookie is worth nothing)."""
        if not session_id or not _ID.fullmatch(session_id):
            return None
        hashed = id_hash(session_id)
        view = await self._store.get_session(hashed)
        if view is None:
            return None
        now = self._now()
        session = view.session
        idle = (now - session.seen_at).total_seconds()
        if now >= session.expires_at or idle >= self.settings.idle or view.user.disabled or view.tenant.disabled:
            await self._store.delete_session(hashed)
            return None
        if idle >= self.settings.touch_every:
            await self._store.touch_session(hashed, now)
        return view

    async def end(self, session_id: str) -> None:
        if _ID.fullmatch(session_id):
            await self._store.delete_session(id_hash(session_id))

    async def end_all(self, user_id: str) -> None:
        await self._store.delete_user_sessions(user_id)

    async def purge(self) -> None:
        """Forget sessions and links that can no longer be used (a periodic chore)."""
        now = self._now()
        await self._store.purge_portal(now, now - dt.timedelta(seconds=self.settings.idle))
