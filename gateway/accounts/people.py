"""People who sign in to the tenant portal: invitations, single-use password links, sign-in checks.

Shared by the admin API, the CLI and the portal. A link's secret (32 random bytes) exists only in
the URL handed out once; the store keeps its SHA-256. The secret travels in the URL's fragment
(`<portal>/#invitation=...`), which browsers never send to a server or in a Referer, so it reaches
no access log; the page posts it to the API itself.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import re
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.accounts import rules
from gateway.accounts.actors import Actor
from gateway.accounts.events import user_event
from gateway.accounts.passwords import MAX_LENGTH, Passwords, check_password
from gateway.accounts.service import Accounts
from gateway.credentials.keyformat import new_id
from gateway.errors import Conflict, InsufficientScope, NotFound
from gateway.keystore.base import DuplicateError, KeyStore
from gateway.keystore.models import Login, PortalToken, TokenPurpose, User
from gateway.keystore.outbox import NewEvent

log = logging.getLogger("gateway.people")

INVITATION_TTL = dt.timedelta(hours=72)
RESET_TTL = dt.timedelta(hours=1)
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")
_FRAGMENT = {"invitation": "invitation", "reset": "reset"}


def normal_email(email: str) -> str:
    return email.strip().lower()


def could_be_stored(email: str) -> bool:
    """Whether `email` can name anyone: stored emails are at most 320 printable characters, and a
    lone surrogate or a NUL is not even a value the store can be asked about (its error would be a 503)."""
    return len(email) <= 320 and email.isprintable()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Mail(Protocol):
    def send_later(self, to: str, subject: str, body: str) -> None: ...


@dataclass(frozen=True, slots=True)
class PortalLinks:
    """Where links point: `public_url` (config `portal.public_url`), else `fallback` (the proxy
    listener's configured address). Never the host a request names: a script sends any Host and a
    matching Origin, and a link built on it would carry its secret to that host (a mailed one from
    the operator's own address, to whoever it went to)."""

    path: str = "/portal"
    public_url: str | None = None
    fallback: str = "https://localhost:8443"

    def base(self) -> str:
        return (self.public_url or self.fallback).rstrip("/")

    def url(self, purpose: TokenPurpose, token: str) -> str:
        return f"{self.base()}{self.path}/#{_FRAGMENT[purpose]}={token}"

    def page(self) -> str:
        return f"{self.base()}{self.path}/"


class People:
    def __init__(self, accounts: Accounts, passwords: Passwords, links: PortalLinks, *,
                 mailer: Mail | None = None) -> None:
        self.accounts = accounts
        self.passwords = passwords
        self.links = links
        self.mailer = mailer

    @property
    def store(self) -> KeyStore:
        return self.accounts.store

    def _new_link(self, user_id: str, purpose: TokenPurpose) -> tuple[PortalToken, str]:
        secret = secrets.token_urlsafe(32)
        now = self.accounts.now()
        ttl = INVITATION_TTL if purpose == "invitation" else RESET_TTL
        return PortalToken(token_hash(secret), purpose, user_id, now, now + ttl), secret

    async def invite(self, tenant_id: str, body: Any, actor: Actor, *,
                     roles: Collection[str] = rules.ROLES) -> tuple[User, str]:
        """A new user of the tenant and the URL of their invitation (shown once; mailed too
        when mail is set up). `roles`: those this actor may hand out (else 403)."""
        tenant = await self.accounts.tenant(tenant_id)
        body = rules.require_object(body)
        problems = rules.Problems()
        rules.check_unknown(body, {"email", "name", "role"}, problems)
        email = rules.text(body, "email", problems, required=True, limit=320)
        if email is not None and not rules.EMAIL.fullmatch(email.strip()):
            problems.add("email", "must be an email address")
        name = rules.text(body, "name", problems, required=False)
        role = rules.choice(body, "role", rules.ROLES, problems, default=None)
        problems.raise_if_any()
        assert email is not None and role is not None
        if role not in roles:
            raise InsufficientScope(f"your role cannot invite an {role}")
        email = email.strip()
        now = self.accounts.now()
        user = User(id=new_id("usr"), tenant_id=tenant.id, name=name or email.split("@", 1)[0], email=email,
                    role=role, disabled=False, created_at=now, updated_at=now)  # type: ignore[arg-type]
        link, secret = self._new_link(user.id, "invitation")
        try:
            await self.store.create_invited_user(user, normal_email(email), link, events=[
                user_event("user.created", user, at=now, actor=actor.name, status="invited")])
        except DuplicateError:  # this tenant's own: another tenant's person is neither an obstacle nor told
            raise Conflict("this email is already a user of this tenant") from None
        self.accounts.record(actor, "user.invited", "user", user.id, tenant_id=tenant.id)
        url = self.links.url("invitation", secret)
        self._mail(email, f"You are invited to {tenant.name}",
                   f"You have been invited to manage the API access of {tenant.name} as {role}.\n\n"
                   f"Choose your password here within 72 hours (the link works once):\n\n{url}\n")
        return user, url

    async def reinvite(self, user: User, actor: Actor) -> str:
        """A new invitation URL for someone who has not accepted yet; the earlier one stops working."""
        login = await self.store.login_of(user.id)
        if login is None or login.password_hash is not None:
            raise Conflict("only a user who has not accepted an invitation yet can be invited again")
        link, secret = self._new_link(user.id, "invitation")
        await self.store.add_token(link)
        self.accounts.record(actor, "user.invited", "user", user.id, tenant_id=user.tenant_id)
        url = self.links.url("invitation", secret)
        self._mail(login.email, f"You are invited to {login.tenant.name}",
                   f"Choose your password here within 72 hours (the link works once):\n\n{url}\n")
        return url

    async def reset_link(self, user_id: str, actor: Actor) -> str:
        """A password-reset URL for the operator to hand over (shown once)."""
        login = await self.store.login_of(user_id)
        if login is None:
            raise NotFound(f"no user {user_id} who signs in to the portal")
        link, secret = self._new_link(user_id, "reset")
        await self.store.add_token(link)
        self.accounts.record(actor, "user.reset_link_created", "user", user_id, tenant_id=login.tenant.id)
        return self.links.url("reset", secret)

    async def request_reset(self, email: str) -> None:
        """Forgot password: a link by mail if the email signs someone in, nothing otherwise; the
        caller answers the same either way (and this does the same store work either way)."""
        login = await self.store.login_by_email(normal_email(email)) if could_be_stored(email) else None
        if login is None or login.user.disabled or login.tenant.disabled or self.mailer is None:
            return
        link, secret = self._new_link(login.user.id, "reset")
        await self.store.add_token(link)
        url = self.links.url("reset", secret)
        self._mail(login.email, "Reset your password",
                   f"Someone asked to reset the password of {login.email} for {login.tenant.name}.\n\n"
                   f"Choose a new password here within an hour (the link works once):\n\n{url}\n\n"
                   "If it was not you, ignore this message: nothing changes.\n")

    async def link_info(self, token: str, purpose: TokenPurpose) -> Login:
        """Whose link this is while it can be used; 404 for a used, expired or unknown one alike."""
        login = (await self.store.token_login(token_hash(token), purpose, self.accounts.now())
                 if _TOKEN.fullmatch(token) else None)
        if login is None:
            raise NotFound("this link is not valid: it was used, has expired, or never existed")
        return login

    async def redeem(self, token: str, purpose: TokenPurpose, body: Any) -> User:
        """Set the password through a link (accepting an invitation, or a reset), once."""
        body = rules.require_object(body)
        problems = rules.Problems()
        rules.check_unknown(body, {"password", "name"}, problems)
        name = rules.text(body, "name", problems, required=False) if purpose == "invitation" else None
        if purpose == "reset" and "name" in body:
            problems.add("name", "unknown field")
        problems.raise_if_any()
        password = check_password(body.get("password"))
        holder = await self.link_info(token, purpose)  # a dead link costs no hashing
        hashed = await self.passwords.hash(password)
        now = self.accounts.now()
        actor = Actor.person(holder.user.id, holder.email)
        events = [self._joined(holder.user, name, now, actor)] if purpose == "invitation" else []
        try:
            user = await self.store.redeem_token(token_hash(token), purpose, now, hashed, name, events=events)
        except DuplicateError:  # another tenant's invitation of this email was accepted first
            raise Conflict("this email already signs in to this gateway for another organisation: ask whoever "
                           "invited you to invite another address") from None
        if user is None:  # spent by a concurrent request meanwhile (and its event with it)
            raise NotFound("this link is not valid: it was used, has expired, or never existed")
        action = "user.activated" if purpose == "invitation" else "user.password_reset"
        self.accounts.record(actor, action, "user", user.id, tenant_id=user.tenant_id)
        return user

    @staticmethod
    def _joined(user: User, name: str | None, at: dt.datetime, actor: Actor) -> NewEvent:
        """`user.updated` for a person who accepted their invitation: now `active` (and named)."""
        changes = ["name", "status"] if name is not None and name != user.name else ["status"]
        after = dataclasses.replace(user, name=name, updated_at=at) if name is not None else user
        return user_event("user.updated", after, at=at, actor=actor.name, changes=changes, status="active")

    async def authenticate(self, email: Any, password: Any) -> Login | None:
        """The person signing in, or None: an unknown email, a wrong password, an invitation not
        yet accepted, a disabled user or tenant all cost one argon2 verification and look alike."""
        if not isinstance(email, str) or not isinstance(password, str) or len(password) > MAX_LENGTH:
            return None
        login = await self.store.login_by_email(normal_email(email)) if could_be_stored(email) else None
        ok = await self.passwords.verify(login.password_hash if login else None, password)
        if not ok or login is None or login.user.disabled or login.tenant.disabled:
            return None
        assert login.password_hash is not None
        if self.passwords.needs_rehash(login.password_hash):
            await self.store.set_password(login.user.id, await self.passwords.hash(password), self.accounts.now())
        return login

    def _mail(self, to: str, subject: str, body: str) -> None:
        if self.mailer is not None:
            self.mailer.send_later(to, subject, body)
