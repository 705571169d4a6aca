"""One error middleware for the admin listener, so every refusal there is the contract envelope."""

from __future__ import annotations

import logging
import uuid

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.errors import (
    BadRequest,
    GatewayError,
    InternalError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    StoreUnavailable,
)
from gateway.keystore.base import StoreError
from gateway.proxy.headers import sane_request_id

log = logging.getLogger("gateway.admin")


def _translate(exc: web.HTTPException) -> GatewayError:
    if isinstance(exc, web.HTTPMethodNotAllowed):
        return MethodNotAllowed(sorted(exc.allowed_methods))
    if isinstance(exc, web.HTTPNotFound):
        return NotFound("no such endpoint")
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return PayloadTooLarge()
    return BadRequest(exc.reason)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = request.headers.get("X-Request-Id")
    if not sane_request_id(request_id):
        request_id = uuid.uuid4().hex
    try:
        if "\x00" in request.path:  # decoded: no object has such an id (and PostgreSQL could not be asked: a 503)
            raise NotFound("no such object")
        response = await handler(request)
    except GatewayError as err:
        return err.response(request_id)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _translate(exc).response(request_id)
    except StoreError as exc:  # locked, read-only, full or unreachable: the client may retry
        log.warning("admin request failed on the store", extra={"request_id": request_id, "error": str(exc)})
        return StoreUnavailable().response(request_id)
    except Exception:
        log.exception("unhandled error in admin handler", extra={"request_id": request_id})
        return InternalError().response(request_id)
    response.headers.setdefault("X-Request-Id", request_id)
    return response
