"""The gateway's own refusals, one class per contract error code.

Each refusal is raised where it is decided and rendered once per listener as the contract's
JSON envelope, so no handler builds error bodies by hand and no traceback reaches a client.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import ClassVar

from aiohttp import web

_JSON = "application/json"
# One encoder made once: `json.dumps` with options builds a new encoder on every call (3.0 → 1.2 µs).
_encode = json.JSONEncoder(separators=(",", ":")).encode
_PLAIN_BODIES: dict[type, bytes] = {}
SERVER = "gateway"  # what the gateway's own answers say in `Server`: no library or version to fingerprint


class GatewayError(Exception):
    """A refusal with its HTTP status and contract code on the class."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "INTERNAL_ERROR"
    default_message: ClassVar[str] = "internal error"
    default_headers: ClassVar[Mapping[str, str]] = {}
    closes_connection: ClassVar[bool] = False  # the request's bytes can no longer be trusted to end

    def __init__(
        self,
        message: str | None = None,
        *,
        details: Sequence[Mapping[str, str]] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.details = [dict(d) for d in details]
        self.headers = {**self.default_headers, **(headers or {})}
        super().__init__(self.message)

    def body(self) -> bytes:
        plain = not self.details and self.message == self.default_message
        if plain:  # the common refusals (a flood of unknown keys) reuse one rendering per class
            cached = _PLAIN_BODIES.get(type(self))
            if cached is not None:
                return cached
        body = _encode({"error": {"code": self.code, "message": self.message, "details": self.details}}).encode()
        if plain:
            _PLAIN_BODIES[type(self)] = body
        return body

    def response(self, request_id: str | None = None) -> web.Response:
        headers = {"Server": SERVER, **self.headers}
        if request_id:
            headers["X-Request-Id"] = request_id
        response = web.Response(status=self.status, body=self.body(), content_type=_JSON, headers=headers)
        if self.closes_connection:
            response.force_close()
        return response


class BadRequest(GatewayError):
    status, code, default_message = 400, "BAD_REQUEST", "malformed request"


class CredentialInQuery(GatewayError):
    status, code = 400, "CREDENTIAL_IN_QUERY"
    default_message = ("an API key was sent in the query string, where it is logged and kept: it is marked "
                       "exposed; send keys in the Authorization or X-API-Key header")


class _Unauthenticated(GatewayError):
    status = 401
    default_headers = {"WWW-Authenticate": "Bearer"}


class MissingCredentials(_Unauthenticated):
    code, default_message = "MISSING_CREDENTIALS", "no credential of a kind this route accepts"


class InvalidCredentials(_Unauthenticated):
    code, default_message = "INVALID_CREDENTIALS", "the credential is not valid"


class ExpiredCredentials(_Unauthenticated):
    code, default_message = "EXPIRED_CREDENTIALS", "the credential has expired"


class RevokedCredentials(_Unauthenticated):
    code, default_message = "REVOKED_CREDENTIALS", "the credential has been revoked"


class HttpsRequired(GatewayError):
    status, code, default_message = 403, "HTTPS_REQUIRED", "this gateway only accepts HTTPS"


class InsufficientScope(GatewayError):
    status, code = 403, "INSUFFICIENT_SCOPE"
    default_message = "the credential does not allow this method and path"


class ResourceForbidden(GatewayError):
    status, code = 403, "RESOURCE_FORBIDDEN"
    default_message = "the credential does not allow this resource"


class SandboxUnavailable(GatewayError):
    status, code = 403, "SANDBOX_UNAVAILABLE"
    default_message = "test keys are not accepted on this route: it has no sandbox upstream"


class ApiAccessDisabled(GatewayError):
    status, code = 403, "API_ACCESS_DISABLED"
    default_message = "API access is not enabled for this tenant"


class WriteDisabled(GatewayError):
    status, code = 403, "WRITE_DISABLED"
    default_message = "write access is not enabled for this tenant"


class CsrfFailed(GatewayError):
    status, code = 403, "CSRF_FAILED"
    default_message = "the request lacks this session's CSRF token or comes from another origin"


class RouteNotFound(GatewayError):
    status, code, default_message = 404, "ROUTE_NOT_FOUND", "no route matches this path"


class NotFound(GatewayError):
    status, code, default_message = 404, "NOT_FOUND", "no such object"


class MethodNotAllowed(GatewayError):
    status, code, default_message = 405, "METHOD_NOT_ALLOWED", "method not allowed on this route"

    def __init__(self, allowed: Sequence[str], message: str | None = None) -> None:
        super().__init__(message, headers={"Allow": ", ".join(allowed)})


class Conflict(GatewayError):
    status, code, default_message = 409, "CONFLICT", "the object already exists"


class PayloadTooLarge(GatewayError):
    status, code, default_message = 413, "PAYLOAD_TOO_LARGE", "request body too large"


class HeadersTooLarge(BadRequest):
    status, default_message = 431, "request header fields too large"


class RequestTimeout(GatewayError):
    status, code, default_message = 408, "REQUEST_TIMEOUT", "the request was not received in time"
    closes_connection = True


class ValidationError(GatewayError):
    status, code, default_message = 422, "VALIDATION_ERROR", "the input breaks a rule"


class RateLimited(GatewayError):
    status, code, default_message = 429, "RATE_LIMITED", "rate limit exceeded"


class UpstreamUnavailable(GatewayError):
    status, code, default_message = 502, "UPSTREAM_UNAVAILABLE", "the upstream is unavailable"


class StoreUnavailable(GatewayError):
    status, code, default_message = 503, "STORE_UNAVAILABLE", "the key store cannot be reached"


class UpstreamTimeout(GatewayError):
    status, code, default_message = 504, "UPSTREAM_TIMEOUT", "the upstream did not answer in time"


class InternalError(GatewayError):
    """Only for bugs: rendered without any detail of what went wrong."""


# A credential was presented and was wrong: what `ratelimit.failed_auth_per_minute` counts.
WRONG_CREDENTIALS = (InvalidCredentials, ExpiredCredentials, RevokedCredentials)
