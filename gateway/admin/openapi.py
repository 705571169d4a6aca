"""The OpenAPI 3.1 document of the admin API and the token exchange, kept in this one place.

A test checks that every route registered on the admin app is documented here and validates the
document; schemathesis checks the running API against it.
"""

from __future__ import annotations

import copy
from typing import Any

from gateway import __version__

JSON = "application/json"


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


STR = {"type": "string"}
BOOL = {"type": "boolean"}
INT = {"type": "integer"}
TIME = {"type": "string", "format": "date-time"}


def obj(properties: dict[str, Any], required: list[str] | None = None, *, closed: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    if closed:
        schema["additionalProperties"] = False
    return schema


def page_of(item: str) -> dict[str, Any]:
    meta = obj({"total": INT, "page": INT, "per_page": INT, "total_pages": INT},
               ["total", "page", "per_page", "total_pages"])
    return obj({"data": {"type": "array", "items": ref(item)}, "meta": meta}, ["data", "meta"])


def cursor_page(item: str) -> dict[str, Any]:
    return obj({"data": {"type": "array", "items": ref(item)}, "next_cursor": nullable(STR)}, ["data", "next_cursor"])


PERMISSION = obj({"methods": {"type": "array", "items": STR, "minItems": 1}, "path": STR}, ["methods", "path"])
SCHEMAS: dict[str, Any] = {
    "Error": obj({"error": obj({
        "code": STR, "message": STR,
        "details": {"type": "array", "items": obj({"field": STR, "issue": STR}, ["field", "issue"])},
    }, ["code", "message", "details"])}, ["error"]),
    "Version": obj({"version": STR}, ["version"]),
    "User": obj({"id": STR, "tenant_id": STR, "name": STR, "email": nullable(STR),
                 "role": {"enum": ["owner", "admin", "member", "viewer"]}, "disabled": BOOL,
                 "created_at": TIME, "updated_at": TIME},
                ["id", "tenant_id", "name", "email", "role", "disabled"]),
    "Tenant": obj({"id": STR, "name": STR, "plan": STR, "disabled": BOOL, "created_at": TIME, "updated_at": TIME,
                   "api_enabled": BOOL, "write_enabled": BOOL,
                   "requests_per_minute": nullable(INT), "active_keys": INT, "max_keys": INT,
                   "users": {"type": "array", "items": ref("User")}},
                  ["id", "name", "plan", "disabled", "requests_per_minute", "active_keys"]),
    "TenantInput": obj({"id": STR, "name": STR, "plan": STR, "api_enabled": BOOL, "write_enabled": BOOL},
                       ["name", "plan"], closed=True),
    "TenantPatch": obj({"name": STR, "plan": STR, "disabled": BOOL, "api_enabled": BOOL, "write_enabled": BOOL},
                       closed=True),
    "UserInput": obj({"name": STR, "email": nullable(STR), "role": {"enum": ["owner", "admin", "member", "viewer"]}},
                     ["name", "role"], closed=True),
    "UserPatch": obj({"role": {"enum": ["owner", "admin", "member", "viewer"]}, "disabled": BOOL, "name": STR},
                     closed=True),
    "Permission": PERMISSION,
    "KeyInput": obj({
        "tenant_id": STR, "name": {"type": "string", "minLength": 1, "maxLength": 256},
        "scope": {"enum": ["read_only", "read_write", "custom"]},
        "permissions": {"type": "array", "items": ref("Permission")},
        "validity_days": nullable(INT), "environment": {"enum": ["live", "test"]},
        "resources": {"type": "object", "additionalProperties": {"type": "array", "items": STR}},
        "user_id": nullable(STR), "rate_limit_per_minute": nullable(INT),
    }, ["tenant_id", "name", "scope"], closed=True),
    "Key": obj({
        "id": STR, "name": STR, "tenant_id": STR, "user_id": nullable(STR), "masked": STR, "last4": STR,
        "scope": {"enum": ["read_only", "read_write", "custom"]},
        "permissions": {"type": "array", "items": ref("Permission")},
        "resources": {"type": "object", "additionalProperties": {"type": "array", "items": STR}},
        "environment": {"enum": ["live", "test"]}, "rate_limit_per_minute": nullable(INT),
        "created_at": TIME, "last_used_at": nullable(TIME), "expires_at": nullable(TIME),
        "expires_in_days": nullable(INT), "expiring_soon": BOOL,
        "status": {"enum": ["active", "expired", "revoked"]}, "revoked_at": nullable(TIME),
        "replaced_by": nullable(STR),
    }, ["id", "name", "tenant_id", "masked", "last4", "scope", "permissions", "environment", "created_at",
        "last_used_at", "expires_at", "expires_in_days", "expiring_soon", "status"]),
    "KeyWithSecret": {"allOf": [ref("Key"), obj({"key": STR}, ["key"])]},
    "RevokedKey": {"allOf": [ref("Key"), obj({"propagation": obj(
        {"instances": INT, "confirmed": INT, "complete": BOOL, "seconds": {"type": "number"}},
        ["instances", "confirmed", "complete", "seconds"])}, [])]},
    "AuditEntry": obj({"id": INT, "at": TIME, "actor": STR, "action": STR, "target_type": STR, "target_id": STR,
                       "key_name": STR, "tenant_id": STR, "source_ip": STR, "actor_email": STR},
                      ["id", "at", "actor", "action", "target_type", "target_id"]),
    "CallEntry": obj({"id": INT, "at": TIME, "request_id": STR, "tenant_id": nullable(STR), "key_id": nullable(STR),
                      "key_name": nullable(STR), "method": STR, "route": nullable(STR), "path": STR, "status": INT,
                      "latency_ms": {"type": "number"}, "upstream_latency_ms": nullable({"type": "number"}),
                      "rate_limited": BOOL},
                     ["id", "at", "request_id", "method", "path", "status", "latency_ms", "rate_limited"]),
    "Reloaded": obj({"routes": INT, "plans": {"type": "array", "items": STR},
                     "not_applied": {"type": "array", "items": STR}}, ["routes", "plans", "not_applied"]),
    "TenantPage": page_of("Tenant"),
    "KeyPage": page_of("Key"),
    "UserPage": page_of("User"),
    "AuditPage": cursor_page("AuditEntry"),
    "CallPage": cursor_page("CallEntry"),
    "TokenRequest": obj({"api_key": STR}, ["api_key"], closed=True),
    "TokenResponse": obj({"token": STR, "expires_at": TIME, "token_type": {"const": "Bearer"}},
                         ["token", "expires_at", "token_type"]),
}

ERRORS = {
    code: {"description": text, "content": {JSON: {"schema": ref("Error")}}}
    for code, text in {
        "400": "Malformed request or JSON", "401": "Missing or wrong admin token", "404": "No such object",
        "405": "Method not allowed", "409": "Conflict", "413": "Body too large", "422": "A rule is broken",
    }.items()
}


def op(summary: str, ok: str, schema: str | None, *, body: str | None = None, params: list[Any] | None = None,
       errors: tuple[str, ...] = ("400", "401", "404", "422")) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": summary, "responses": {}}
    ok_response: dict[str, Any] = {"description": summary}
    if schema:
        ok_response["content"] = {JSON: {"schema": ref(schema)}}
    operation["responses"][ok] = ok_response
    for code in errors:
        operation["responses"][code] = ERRORS[code]
    if body:
        operation["requestBody"] = {"required": True, "content": {JSON: {"schema": ref(body)}}}
        operation["responses"].setdefault("413", ERRORS["413"])
    if params:
        operation["parameters"] = params
    return operation


def q(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


ID = [{"name": "id", "in": "path", "required": True, "schema": STR}]
PAGING = [q("page", {"type": "integer", "minimum": 1}), q("per_page", {"type": "integer", "minimum": 1, "maximum": 100})]
CURSOR = [q("after", STR), q("limit", {"type": "integer", "minimum": 1, "maximum": 1000})]

PATHS: dict[str, Any] = {
    "/admin/version": {"get": op("Gateway version", "200", "Version", errors=("401",))},
    "/admin/tenants": {
        "post": op("Create a tenant", "201", "Tenant", body="TenantInput", errors=("400", "401", "409", "422")),
        "get": op("List tenants", "200", "TenantPage", params=PAGING + [q("sort", STR)], errors=("401", "422")),
    },
    "/admin/tenants/{id}": {
        "get": op("A tenant with plan, limit, key count and users", "200", "Tenant", params=ID, errors=("401", "404")),
        "patch": op("Change name, plan, disabled, or the gates api_enabled and write_enabled", "200", "Tenant",
                    body="TenantPatch", params=ID),
    },
    "/admin/tenants/{id}/users": {
        "post": op("Create a user of the tenant", "201", "User", body="UserInput", params=ID),
        "get": op("The tenant's users", "200", "UserPage", params=ID, errors=("401", "404")),
    },
    "/admin/users/{id}": {"patch": op("Change role or disabled", "200", "User", body="UserPatch", params=ID)},
    "/admin/keys": {
        "post": op("Create a key (the secret is in this answer only)", "201", "KeyWithSecret", body="KeyInput",
                   errors=("400", "401", "422")),
        "get": op("List keys", "200", "KeyPage",
                  params=PAGING + [q("sort", STR), q("tenant_id", STR), q("status", {"enum": ["active", "expired", "revoked"]})],
                  errors=("401", "422")),
    },
    "/admin/keys/{id}": {"get": op("A key (never its secret)", "200", "Key", params=ID, errors=("401", "404"))},
    "/admin/keys/{id}/rotate": {
        "post": op("New secret, same settings; the old key stops at once", "201", "KeyWithSecret", params=ID,
                   errors=("401", "404", "409"))},
    "/admin/keys/{id}/revoke": {
        "post": op("Revoke; the key fails on its next request. wait=true: answer once every other "
                   "instance has dropped it from its cache (at most 5 s; see propagation)", "200", "RevokedKey",
                   params=ID + [q("wait", BOOL)], errors=("401", "404", "422"))},
    "/admin/reload": {"post": op("Re-read routes and plans from the config file (as SIGHUP does); a broken file "
                                 "is a 422 with every problem and changes nothing", "200", "Reloaded",
                                 errors=("401", "422"))},
    "/admin/audit": {"get": op("Audit entries after a cursor, oldest first (order=desc: before it, newest first)",
                               "200", "AuditPage", params=CURSOR + [q("order", {"enum": ["asc", "desc"]})],
                               errors=("400", "401", "422"))},
    "/admin/calls": {"get": op("Call log after a cursor", "200", "CallPage",
                               params=CURSOR + [q("key_id", STR), q("status", INT), q("order", {"enum": ["asc", "desc"]})],
                               errors=("400", "401", "422"))},
}

TOKEN_PATHS: dict[str, Any] = {
    "/api/v1/auth/token": {"post": {
        "summary": "Exchange an API key for a short-lived JWT (on the proxy listener)",
        "servers": [{"url": "https://gateway.example.com:8443"}],
        "security": [],
        "requestBody": {"required": False, "content": {JSON: {"schema": ref("TokenRequest")}}},
        "responses": {
            "200": {"description": "A token", "content": {JSON: {"schema": ref("TokenResponse")}}},
            "400": ERRORS["400"],
            "401": {"description": "Missing, invalid, expired or revoked key", "content": {JSON: {"schema": ref("Error")}}},
            "429": {"description": "Rate limited", "content": {JSON: {"schema": ref("Error")}}},
        },
    }},
}


def document(token_path: str = "/api/v1/auth/token", *, include_token: bool = True) -> dict[str, Any]:
    paths = dict(PATHS)
    if include_token:
        paths[token_path] = TOKEN_PATHS["/api/v1/auth/token"]
    return {
        "openapi": "3.1.0",
        "info": {"title": "gateway admin API", "version": __version__,
                 "description": "Tenants, users and API keys; audit trail and call log; the token exchange."},
        "servers": [{"url": "/"}],
        "security": [{"adminToken": []}],
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"adminToken": {"type": "http", "scheme": "bearer",
                                               "description": "The token from admin.token_env"}},
        },
    }


def for_swagger_ui_4(doc: dict[str, Any]) -> dict[str, Any]:
    """The same document in OpenAPI 3.0 terms, for the bundled Swagger UI 4 (no 3.1 support)."""
    doc = copy.deepcopy(doc)
    doc["openapi"] = "3.0.3"

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            options = node.get("anyOf")
            if isinstance(options, list) and len(options) == 2 and {"type": "null"} in options:
                other = next(o for o in options if o != {"type": "null"})
                return {**walk(other), "nullable": True}
            if "const" in node:
                node = {**node, "enum": [node["const"]]}
                node.pop("const")
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(doc)
