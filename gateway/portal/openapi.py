"""The OpenAPI 3.1 document of the portal's tenant-scoped API (`<portal.path>/api/...`), generated.

Built from the endpoint table every portal route is registered through (`authz.Endpoints`), so an
endpoint cannot be left out: each one needs an operation here (a missing one fails the build of
the document, and its test). Request bodies and query parameters are the JSON schemas of the
models that validate them, the admin API's where the portal shares its rules (keys, users,
webhooks, pages) and `portal/requests.py` for its own; answers reuse the admin API's schemas.
A signed-in session is the cookie `gw_session`; a state-changing request also sends the session's
`X-CSRF-Token` (and an `Origin` equal to the portal's own).
"""

from __future__ import annotations

import copy
import re
from typing import Any

from pydantic import BaseModel

from gateway.accounts.requests import KeyInput, UserPatch
from gateway.admin import queries
from gateway.admin.openapi import (
    JSON,
    answers,
    body_schemas,
    configure_key_input,
    default_config,
    envelope,
    query_parameters,
)
from gateway.admin.responses import BOOL, INT, RESPONSES, STR, TIME, nullable, obj, page_of, ref
from gateway.config import Config
from gateway.events.requests import SecretRotationInput, WebhookInput, WebhookPatch
from gateway.portal.authz import PUBLIC, SAFE_METHODS, Endpoint, Endpoints
from gateway.portal.requests import (
    AUDIT_QUERY,
    CALL_QUERY,
    KEY_QUERY,
    USAGE_QUERY,
    Invitation,
    PasswordSet,
    ResetRequest,
    SignIn,
)

BODIES: tuple[type[BaseModel], ...] = (KeyInput, UserPatch, WebhookInput, WebhookPatch, SecretRotationInput, SignIn,
                                       Invitation, PasswordSet, ResetRequest)
SET_BY_PORTAL = ("tenant_id", "user_id", "rate_limit_per_minute")  # a key's fields the portal sets itself
STATUS_TEXT = {
    "400": "Malformed request, JSON or cursor", "401": "No session: sign in first",
    "403": "The role cannot do this (INSUFFICIENT_SCOPE), or no CSRF token or another origin (CSRF_FAILED)",
    "404": "No such object in the caller's tenant", "409": "Conflict with the current state",
    "413": "Body over 64 KiB", "422": "A rule is broken; `details` names each field",
    "429": "Too many attempts; `Retry-After` says when to come back", "503": "The store cannot be reached; retry",
}
READ = ("401", "403", "503")
WRITE = ("400", "401", "403", "413", "422", "503")
LINK = ("400", "404", "413", "422", "429", "503")   # a single-use link: unknown, used or expired is 404


def _person() -> dict[str, Any]:
    user: dict[str, Any] = copy.deepcopy(RESPONSES["User"])
    user["properties"].update(status={"enum": ["invited", "active", "disabled"]}, signs_in=BOOL)
    return user


PORTAL_RESPONSES: dict[str, Any] = {
    "Person": _person(),
    "PersonPage": page_of("Person"),
    "InvitedPerson": {"allOf": [ref("Person"), obj({"invitation_url": STR}, ["invitation_url"])]},
    "PortalTenant": obj({"id": STR, "name": STR, "plan": STR, "disabled": BOOL, "api_enabled": BOOL,
                         "write_enabled": BOOL, "created_at": TIME, "updated_at": TIME,
                         "requests_per_minute": nullable(INT), "max_keys": INT},
                        ["id", "name", "plan", "disabled", "requests_per_minute", "max_keys"]),
    "Me": obj({"user": ref("Person"), "role": {"enum": ["owner", "admin", "member", "viewer"]},
               "tenant": ref("PortalTenant"), "csrf_token": STR,
               "capabilities": {"type": "array", "items": STR},
               "session": obj({"idle_timeout": {"type": "number"}, "max_age": {"type": "number"}},
                              ["idle_timeout", "max_age"])},
              ["user", "role", "tenant", "csrf_token", "capabilities", "session"]),
    "SignedOut": obj({"signed_out": {"const": True}}, ["signed_out"]),
    "InvitationInfo": obj({"email": STR, "name": STR, "role": STR,
                           "tenant": obj({"id": STR, "name": STR}, ["id", "name"])},
                          ["email", "role", "tenant"]),
    "LinkRedeemed": obj({"user": ref("Person")}, ["user"]),
    "ResetRequested": obj({"message": STR}, ["message"]),
    "ResetInfo": obj({"email": STR}, ["email"]),
}


PAGING = ("page", "per_page")
ID = {"type": "string", "pattern": "^[A-Za-z0-9_-]+$"}  # ids and link tokens (URL-safe base64)
RECORDS = ("after", "limit", "order")

# (method, path below <portal.path>/api) -> summary, success status, answer schema, other statuses,
# request body, query parameters
OPERATIONS: dict[tuple[str, str], tuple[Any, ...]] = {
    ("POST", "/session"): ("Sign in: the session cookie and its CSRF token", "200", "Me",
                           ("400", "401", "413", "422", "429", "503"), "SignIn", None),
    ("DELETE", "/session"): ("Sign out: the session ends on every instance", "200", "SignedOut", READ, None, None),
    ("GET", "/me"): ("The signed-in person, their role, capabilities and tenant", "200", "Me", READ, None, None),
    ("GET", "/invitations/{token}"): ("What an invitation link is for (404: unknown, used or expired)", "200",
                                      "InvitationInfo", LINK, None, None),
    ("POST", "/invitations/{token}/accept"): ("Accept an invitation: set the password (once)", "200",
                                              "LinkRedeemed", LINK, "PasswordSet", None),
    ("POST", "/password-reset"): ("Ask for a password-reset link by mail (the same answer for any email)", "202",
                                  "ResetRequested", ("400", "413", "422", "429"), "ResetRequest", None),
    ("GET", "/password-reset/{token}"): ("Whose password a reset link sets", "200", "ResetInfo", LINK, None, None),
    ("POST", "/password-reset/{token}"): ("Set a new password through a reset link (once)", "200", "LinkRedeemed",
                                          LINK, "PasswordSet", None),
    ("GET", "/keys"): ("The tenant's keys", "200", "KeyPage", ("422", *READ), None,
                       query_parameters(queries.KeyList, KEY_QUERY)),
    ("POST", "/keys"): ("Create a key owned by the caller (capped by their role; the secret is in this answer "
                        "only). 422 also at the tenant's key limit, without API access, or a key that writes "
                        "without write access", "201", "KeyWithSecret", WRITE, "PortalKeyInput", None),
    ("GET", "/keys/{key_id}"): ("A key of the tenant (never its secret)", "200", "Key", ("404", *READ), None, None),
    ("POST", "/keys/{key_id}/rotate"): ("New secret, same settings; the old key stops at once. Only the key's "
                                        "owner (or, for a key with none, an owner or admin): 403 otherwise", "201",
                                        "KeyWithSecret", ("404", "409", "422", *READ), None, None),
    ("POST", "/keys/{key_id}/revoke"): ("Revoke; the key fails on its next request", "200", "Key",
                                        ("404", "422", *READ), None, None),
    ("GET", "/users"): ("The tenant's people", "200", "PersonPage", READ, None, None),
    ("POST", "/users"): ("Invite a person (the invitation URL is in this answer only; single use, 72 h)", "201",
                         "InvitedPerson", (*WRITE, "409"), "Invitation", None),
    ("POST", "/users/{user_id}/invitation"): ("A new invitation URL for a person who has not accepted yet", "201",
                                              "InvitedPerson", ("404", "409", "422", *READ), None, None),
    ("PATCH", "/users/{user_id}"): ("Change a person's role, name or disabled (owners alone manage owners)", "200",
                                    "Person", (*WRITE, "404"), "UserPatch", None),
    ("GET", "/audit"): ("The tenant's audit trail after a cursor, oldest first (order=desc: newest first)", "200",
                        "AuditPage", ("400", "422", *READ), None, query_parameters(queries.AuditPage, AUDIT_QUERY)),
    ("GET", "/calls"): ("The tenant's call log after a cursor", "200", "CallPage", ("400", "422", *READ), None,
                        query_parameters(queries.CallPage, CALL_QUERY)),
    ("GET", "/usage"): ("The tenant's or one of its keys' usage (404: a key of another tenant)", "200", "UsageSeries",
                        ("404", "422", *READ), None, query_parameters(queries.Usage, USAGE_QUERY)),
    ("GET", "/webhooks"): ("The tenant's webhook endpoints (owners and admins)", "200", "WebhookPage",
                           ("422", *READ), None, query_parameters(queries.Paging, PAGING)),
    ("POST", "/webhooks"): ("Register a webhook endpoint for the tenant's events (its secret is in this answer "
                            "only); 422 also for a URL inside the network", "201", "WebhookWithSecret", WRITE,
                            "WebhookInput", None),
    ("GET", "/webhooks/{webhook_id}"): ("A webhook endpoint (never its secret)", "200", "Webhook", ("404", *READ),
                                        None, None),
    ("PATCH", "/webhooks/{webhook_id}"): ("Change url, events, description or disabled", "200", "Webhook",
                                          (*WRITE, "404"), "WebhookPatch", None),
    ("DELETE", "/webhooks/{webhook_id}"): ("Delete the endpoint and its delivery log", "204", None, ("404", *READ),
                                           None, None),
    ("POST", "/webhooks/{webhook_id}/test"): ("Send it a webhook.test event (409: it is disabled)", "202",
                                              "WebhookTest", ("404", "409", *READ), None, None),
    ("POST", "/webhooks/{webhook_id}/rotate-secret"): (
        "A new signing secret (in this answer only); the one it replaces keeps signing beside it for expires_in "
        "seconds (default 24 hours; 0: it stops at once)", "200", "WebhookWithSecret", (*WRITE, "404"),
        "SecretRotationInput", None),
    ("GET", "/webhooks/{webhook_id}/deliveries"): ("Its deliveries after a cursor (order=desc: newest first)", "200",
                                                   "DeliveryPage", ("400", "404", "422", *READ), None,
                                                   query_parameters(queries.DeliveryLog, RECORDS)),
    ("POST", "/deliveries/{delivery_id}/retry"): ("Attempt a delivery again now (409: its endpoint is disabled)",
                                                  "202", "Delivery", ("404", "409", *READ), None, None),
}


def _operation(endpoint: Endpoint) -> dict[str, Any]:
    summary, ok, schema, statuses, body, params = OPERATIONS[(endpoint.method, endpoint.path)]
    names = re.findall(r"\{(\w+)\}", endpoint.path)
    if names:  # the proxy listener refuses a path with control characters or `\` before the portal sees it
        statuses = (*statuses, "400")
    operation: dict[str, Any] = {"operationId": getattr(endpoint.handler, "__name__", ""), "summary": summary,
                                 "responses": answers(summary, ok, schema, sorted(set(statuses)), STATUS_TEXT)}
    path_params = [{"name": name, "in": "path", "required": True, "schema": ID} for name in names]
    if path_params or params:
        operation["parameters"] = [*path_params, *(params or [])]
    if body:
        # a PATCH without a body changes nothing, as one with {} (the portal reads both alike); a
        # body of defaults only may be left out too
        required = endpoint.method != "PATCH" and body not in OPTIONAL_BODIES
        operation["requestBody"] = {"required": required, "content": {JSON: {"schema": ref(body)}}}
    if endpoint.needs == PUBLIC:
        operation["security"] = []
    elif endpoint.method not in SAFE_METHODS:
        operation["security"] = [{"session": [], "csrf": []}]
    return operation


def _bodies(cfg: Config) -> dict[str, Any]:
    schemas = body_schemas(BODIES)
    configure_key_input(schemas, cfg)
    key = copy.deepcopy(schemas.pop("KeyInput"))
    for name in SET_BY_PORTAL:
        key["properties"].pop(name, None)
    key["required"] = [name for name in key.get("required", []) if name not in SET_BY_PORTAL]
    key["description"] = "A new key of the caller's tenant, owned by the caller (the portal sets " + \
        ", ".join(SET_BY_PORTAL) + ": sending them is a 422)."
    schemas["PortalKeyInput"] = key
    return schemas


def document(tables: tuple[Endpoints, ...], cfg: Config | None = None) -> dict[str, Any]:
    """The document of these endpoint tables for this configuration (the defaults when None)."""
    cfg = cfg or default_config()
    prefix = cfg.portal.path.rstrip("/") + "/api"
    paths: dict[str, dict[str, Any]] = {}
    for table in tables:
        for endpoint in table.all:
            if (endpoint.method, endpoint.path) in UNDOCUMENTED:
                continue
            paths.setdefault(prefix + endpoint.path, {})[endpoint.method.lower()] = _operation(endpoint)
    return envelope(
        "gateway tenant portal API",
        "A tenant's own keys, people, audit trail, call log, usage and webhooks, for its signed-in owners, admins, "
        "members and viewers (on the proxy listener).",
        "session", paths, {**_bodies(cfg), **copy.deepcopy(RESPONSES), **copy.deepcopy(PORTAL_RESPONSES)},
        {
            "session": {"type": "apiKey", "in": "cookie", "name": "gw_session",
                        "description": "Set by POST /session (HttpOnly; Secure; SameSite=Strict)"},
            "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token",
                     "description": "The session's csrf_token, on every state-changing request"},
        },
    )


UNDOCUMENTED = {("GET", "/openapi.json")}  # the document itself


def takes_query(endpoint: Endpoint) -> bool:
    """Whether the endpoint reads query parameters: those its operation states (the others refuse
    any, `authz.py`); the document itself is not held to it."""
    key = (endpoint.method, endpoint.path)
    return key in UNDOCUMENTED or OPERATIONS[key][5] is not None
OPTIONAL_BODIES = {"SecretRotationInput"}
