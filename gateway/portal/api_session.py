"""The portal's doors: sign in and out, who am I, invitations and password resets.

Sign-in answers the same 401 for an unknown email, a wrong password, an invitation not yet
accepted and a disabled account, after the same argon2 work (`People.authenticate`); attempts are
counted per account and per address before any of that, and a success is then no failure of its
account's (`gateway/portal/throttle.py`). Failed
attempts are logged without the email typed, which is now and then a password.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from gateway.accounts import rules
from gateway.accounts.views import person
from gateway.errors import InvalidCredentials
from gateway.portal.authz import Caller, Endpoints, capabilities
from gateway.portal.http import clear_session_cookie, client_of, json_response, read_json, set_session_cookie
from gateway.portal.services import PORTAL, Portal
from gateway.portal.sessions import COOKIE, csrf_token
from gateway.portal.throttle import LINK, RESET_REQUEST, SIGN_IN

log = logging.getLogger("gateway.portal")
routes = Endpoints()


def _me(portal: Portal, caller_user: Any, tenant: Any, email: str, session_id: str) -> dict[str, Any]:
    return {
        "user": {**person(caller_user, None, signs_in=True), "email": email},
        "role": caller_user.role,
        "tenant": portal.tenant(tenant),
        "csrf_token": csrf_token(session_id),
        "capabilities": sorted(capabilities(caller_user.role)),
        "session": {"idle_timeout": portal.sessions.settings.idle, "max_age": portal.sessions.settings.max},
    }


def _fields(body: Any, allowed: set[str], required: tuple[str, ...]) -> dict[str, Any]:
    body = rules.require_object(body)
    problems = rules.Problems()
    rules.check_unknown(body, allowed, problems)
    for name in required:
        if not isinstance(body.get(name), str):
            problems.add(name, "is required (a string)")
    problems.raise_if_any()
    return dict(body)


@routes.public("POST", "/session")
async def sign_in(request: web.Request) -> web.StreamResponse:
    portal = request.app[PORTAL]
    client = client_of(request) or "unknown"
    body = _fields(await read_json(request), {"email", "password"}, ("email", "password"))
    await portal.throttle.attempt(SIGN_IN, client, body["email"])
    login = await portal.people.authenticate(body["email"], body["password"])
    if login is None:
        log.info("portal sign-in refused", extra={"client_ip": client})
        raise InvalidCredentials("wrong email or password")
    await portal.throttle.succeeded(SIGN_IN, body["email"])
    session_id = await portal.sessions.start(login, client_ip=client, user_agent=request.headers.get("User-Agent"),
                                             previous=request.cookies.get(COOKIE))
    log.info("portal sign-in", extra={"user_id": login.user.id, "tenant_id": login.tenant.id, "client_ip": client})
    response = json_response(_me(portal, login.user, login.tenant, login.email, session_id))
    set_session_cookie(response, session_id, portal.path)
    return response


@routes.add("DELETE", "/session", needs="read")
async def sign_out(request: web.Request, caller: Caller) -> web.StreamResponse:
    portal = request.app[PORTAL]
    await portal.sessions.end(caller.session_id)
    response = json_response({"signed_out": True})
    clear_session_cookie(response, portal.path)
    return response


@routes.add("GET", "/me", needs="read")
async def me(request: web.Request, caller: Caller) -> web.StreamResponse:
    return json_response(_me(request.app[PORTAL], caller.user, caller.tenant, caller.email, caller.session_id))


@routes.public("GET", "/invitations/{token}")
async def invitation(request: web.Request) -> web.StreamResponse:
    login = await request.app[PORTAL].people.link_info(request.match_info["token"], "invitation")
    return json_response({"email": login.email, "name": login.user.name, "role": login.user.role,
                          "tenant": {"id": login.tenant.id, "name": login.tenant.name}})


@routes.public("POST", "/invitations/{token}/accept")
async def accept(request: web.Request) -> web.StreamResponse:
    portal = request.app[PORTAL]
    await portal.throttle.attempt(LINK, client_of(request) or "unknown")
    user = await portal.people.redeem(request.match_info["token"], "invitation", await read_json(request))
    return json_response({"user": person(user, None, signs_in=True)})


@routes.public("POST", "/password-reset")
async def request_reset(request: web.Request) -> web.StreamResponse:
    """202 whatever the email: the lookup and the mail happen after the answer has left. The link
    is on `portal.public_url` (else the proxy listener's address), never on the Host this request
    names: anyone may ask, and a script names any Host and a matching Origin (reset poisoning)."""
    portal = request.app[PORTAL]
    body = _fields(await read_json(request), {"email"}, ("email",))
    await portal.throttle.attempt(RESET_REQUEST, client_of(request) or "unknown", body["email"])
    portal.later(portal.people.request_reset(body["email"]))
    return json_response({"message": "if this email signs in here, a link to reset its password is on its way"}, 202)


@routes.public("GET", "/password-reset/{token}")
async def reset_info(request: web.Request) -> web.StreamResponse:
    login = await request.app[PORTAL].people.link_info(request.match_info["token"], "reset")
    return json_response({"email": login.email})


@routes.public("POST", "/password-reset/{token}")
async def reset(request: web.Request) -> web.StreamResponse:
    portal = request.app[PORTAL]
    await portal.throttle.attempt(LINK, client_of(request) or "unknown")
    user = await portal.people.redeem(request.match_info["token"], "reset", await read_json(request))
    return json_response({"user": person(user, None, signs_in=True)})
