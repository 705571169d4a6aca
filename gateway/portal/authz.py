"""The one door of the tenant-scoped API: every endpoint is declared here with what it needs.

An endpoint is registered only through `Endpoints.add`, which requires naming the capability it
needs (or `PUBLIC`), and is wrapped so that, before its handler runs: the session is resolved
from the cookie (401 `MISSING_CREDENTIALS` without one), a state-changing request carries the
session's CSRF token (403 `CSRF_FAILED`; the Origin was checked for every request already, see
`gateway/portal/http.py`), and the person's role has the capability (403 `INSUFFICIENT_SCOPE`).
An operation that reads no query parameter refuses any (422 naming it, as the admin API does):
a misspelt filter must not pass for a list of everything; those that read some refuse the others
themselves (`gateway/admin/queries.py`). The handler then gets a `Caller`, whose lookups by id
are the only way to reach one object: an object of another tenant is `NotFound`, exactly like one
that does not exist. A test walks every registered endpoint with another tenant's ids.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from aiohttp import web

from gateway.accounts.actors import Actor
from gateway.accounts.service import Accounts
from gateway.errors import CsrfFailed, InsufficientScope, MissingCredentials, NotFound, ValidationError
from gateway.keystore.models import ApiKey, SessionView, Tenant, User
from gateway.portal.sessions import COOKIE, Sessions, csrf_matches

Capability = Literal["read", "keys", "users", "owners", "webhooks"]
PUBLIC: Literal["public"] = "public"
ROLE_CAPABILITIES: dict[str, frozenset[Capability]] = {
    "owner": frozenset({"read", "keys", "users", "owners", "webhooks"}),
    "admin": frozenset({"read", "keys", "users", "webhooks"}),
    "member": frozenset({"read"}),
    "viewer": frozenset({"read"}),
}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def capabilities(role: str) -> frozenset[Capability]:
    return ROLE_CAPABILITIES.get(role, frozenset())


@dataclass(frozen=True, slots=True)
class Caller:
    """The signed-in person making this request, and the only way handlers reach tenant data."""

    view: SessionView
    session_id: str
    client_ip: str | None
    accounts: Accounts

    @property
    def user(self) -> User:
        return self.view.user

    @property
    def tenant(self) -> Tenant:
        return self.view.tenant

    @property
    def email(self) -> str:
        return self.view.email

    @property
    def actor(self) -> Actor:
        return Actor.person(self.user.id, self.email, self.client_ip)

    def can(self, capability: Capability) -> bool:
        return capability in capabilities(self.user.role)

    def require(self, capability: Capability, what: str) -> None:
        if not self.can(capability):
            raise InsufficientScope(f"a {self.user.role} cannot {what}")

    async def key(self, key_id: str) -> ApiKey:
        key = await self.accounts.store.get_key(key_id)
        if key is None or key.tenant_id != self.tenant.id:
            raise NotFound(f"no key {key_id}")
        return key

    async def member(self, user_id: str) -> User:
        user = await self.accounts.store.get_user(user_id)
        if user is None or user.tenant_id != self.tenant.id:
            raise NotFound(f"no user {user_id}")
        return user


PublicHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Handler = Callable[[web.Request, Caller], Awaitable[web.StreamResponse]]
ClientOf = Callable[[web.Request], "str | None"]
TakesQuery = Callable[["Endpoint"], bool]


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str                 # below the API's prefix, e.g. /keys/{key_id}
    needs: Capability | Literal["public"]
    handler: Handler | PublicHandler


class Endpoints:
    """The tenant-scoped API's table: what `install` registers, and what tests enumerate."""

    def __init__(self) -> None:
        self.all: list[Endpoint] = []

    def add(self, method: str, path: str, *, needs: Capability | Literal["public"]) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.all.append(Endpoint(method, path, needs, handler))
            return handler
        return register

    def public(self, method: str, path: str) -> Callable[[PublicHandler], PublicHandler]:
        def register(handler: PublicHandler) -> PublicHandler:
            self.all.append(Endpoint(method, path, PUBLIC, handler))
            return handler
        return register

    def install(self, app: web.Application, prefix: str, sessions: Sessions, accounts: Accounts,
                client_of: ClientOf, takes_query: TakesQuery) -> None:
        """`takes_query`: whether an endpoint reads query parameters (its OpenAPI operation states some)."""
        for endpoint in self.all:
            strict = not takes_query(endpoint)
            if endpoint.needs == PUBLIC:
                app.router.add_route(endpoint.method, prefix + endpoint.path, _public(endpoint, strict))
            else:
                app.router.add_route(endpoint.method, prefix + endpoint.path,
                                     _guarded(endpoint, sessions, accounts, client_of, strict))


def _no_query(request: web.Request) -> None:
    if request.query:
        raise ValidationError(details=[{"field": name, "issue": "unknown parameter (this operation takes none)"}
                                       for name in dict.fromkeys(request.query)])


def _public(endpoint: Endpoint, strict: bool) -> PublicHandler:
    handler: PublicHandler = endpoint.handler  # type: ignore[assignment]
    if not strict:
        return handler

    async def public(request: web.Request) -> web.StreamResponse:
        _no_query(request)
        return await handler(request)

    public.__name__ = getattr(handler, "__name__", "endpoint")
    return public


def _guarded(endpoint: Endpoint, sessions: Sessions, accounts: Accounts, client_of: ClientOf,
             strict: bool) -> PublicHandler:
    handler: Handler = endpoint.handler  # type: ignore[assignment]
    needs = endpoint.needs

    async def guarded(request: web.Request) -> web.StreamResponse:
        session_id = request.cookies.get(COOKIE)
        view = await sessions.resolve(session_id)
        if view is None or session_id is None:
            raise MissingCredentials("sign in to the portal first")
        if request.method not in SAFE_METHODS and not csrf_matches(session_id, request.headers.get("X-CSRF-Token")):
            raise CsrfFailed("this request lacks the session's CSRF token (X-CSRF-Token)")
        if needs not in capabilities(view.user.role):
            raise InsufficientScope(f"a {view.user.role} cannot do this")
        if strict:
            _no_query(request)
        return await handler(request, Caller(view, session_id, client_of(request), accounts))

    guarded.__name__ = getattr(handler, "__name__", "endpoint")
    return guarded
