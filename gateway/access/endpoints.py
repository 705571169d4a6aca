"""The gateway's own endpoints on the proxy listener: the API key → JWT exchange, and the JWKS
(the caller's own `/version` and `/me` are in `self_api.py`)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from gateway.access.authorize import authorize_identity
from gateway.access.guard import AccessGuard
from gateway.credentials.parse import KINDS, Credential, extract
from gateway.credentials.tokens import TokenService
from gateway.errors import BadRequest, InvalidCredentials, MethodNotAllowed
from gateway.exchange import RequestScope
from gateway.http.body import read_body
from gateway.http.messages import Request, Response, json_response

_ALL_KINDS = frozenset(KINDS)
_MAX_BODY = 8192


def json_answer(status: int, payload: Any, scope: RequestScope, **headers: str) -> Response:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return json_response(status, body, [*headers.items(), *scope.response_headers], scope.request_id)


class TokenEndpoints:
    def __init__(self, guard: AccessGuard, tokens: TokenService, *, ttl: int, body_timeout: float) -> None:
        self._guard = guard
        self._body_timeout = body_timeout
        self._tokens = tokens
        self._ttl = ttl
        self._jwks = json.dumps(tokens.jwks, separators=(",", ":")).encode()

    async def _credential(self, request: Request) -> Credential:
        raw = await read_body(request, _MAX_BODY, self._body_timeout) if request.body_exists else b""
        if raw.strip():
            try:
                body = json.loads(raw)
            except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested past the parser's depth
                raise BadRequest("body must be JSON: {\"api_key\": \"...\"}") from None
            if not isinstance(body, dict) or set(body) - {"api_key"}:
                raise BadRequest("body must be a JSON object with api_key only")
            key = body.get("api_key")
            if key is not None:
                if "Authorization" in request.headers or "X-API-Key" in request.headers:
                    raise BadRequest("send one credential: in the body or in a header, not both")
                if not isinstance(key, str):
                    raise BadRequest("api_key must be a string")
                if not key:
                    raise InvalidCredentials("api_key must be a non-empty string")
                return Credential("api_key_header", key)
        return extract(request.headers, _ALL_KINDS)

    async def exchange(self, request: Request, scope: RequestScope) -> Response:
        if request.method != "POST":
            raise MethodNotAllowed(["POST"])
        credential = await self._credential(request)
        if credential.is_jwt:
            raise InvalidCredentials("a token cannot be exchanged for another token; send an API key")
        scope.auth_method = credential.method
        identity = await self._guard.identify(credential, scope, request)
        scope.identity = identity
        authorize_identity(identity)
        await self._guard.count(identity, None, scope)
        claims = {
            "sub": identity.key_id,
            "tenant": identity.tenant_id,
            "scope": identity.scope,
            "env": identity.environment,
        }
        token, exp = self._tokens.mint(claims, ttl=self._ttl)
        expires_at = dt.datetime.fromtimestamp(exp, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return json_answer(
            200,
            {"token": token, "expires_at": expires_at, "token_type": "Bearer"},
            scope,
            **{"Cache-Control": "no-store"},
        )

    async def jwks(self, request: Request, scope: RequestScope) -> Response:
        if request.method not in ("GET", "HEAD"):
            raise MethodNotAllowed(["GET", "HEAD"])
        return json_response(200, self._jwks, [("Cache-Control", "public, max-age=300")], scope.request_id)
