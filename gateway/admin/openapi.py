"""The OpenAPI 3.1 document of the admin API and the token exchange, generated.

Request bodies and query parameters are the JSON schemas of the models that validate them
(`accounts/requests.py`, `admin/queries.py`), so the document states every rule those models
check and cannot drift from them; the values that come from the configuration (plan names, key
validity bounds) are filled in from the running configuration. Each operation lists every status
it can answer. A test checks that every admin route is here; schemathesis checks the running API
against it with positive and negative data.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from gateway import __version__
from gateway.accounts.requests import (
    InvitationInput,
    KeyInput,
    TenantInput,
    TenantPatch,
    UserInput,
    UserPatch,
)
from gateway.admin import queries
from gateway.admin.responses import RESPONSES, ref
from gateway.config import Config, parse_config
from gateway.events.requests import SecretRotationInput, WebhookInput, WebhookPatch

JSON = "application/json"
BODIES: tuple[type[BaseModel], ...] = (TenantInput, TenantPatch, UserInput, UserPatch, KeyInput, WebhookInput,
                                       WebhookPatch, SecretRotationInput, InvitationInput)
STATUS_TEXT = {
    "400": "Malformed request, JSON or cursor", "401": "Missing or wrong admin token", "404": "No such object",
    "409": "Conflict with the current state", "413": "Body over 64 KiB",
    "422": "A rule is broken; `details` names each field", "503": "The store cannot be reached; retry",
}
STORE = ("401", "503")


def strip_titles(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: strip_titles(v) for k, v in node.items() if k != "title" or not isinstance(v, str)}
    if isinstance(node, list):
        return [strip_titles(v) for v in node]
    return node


def body_schemas(models: tuple[type[BaseModel], ...]) -> dict[str, Any]:
    """The components' schemas of these request models (and the models they refer to)."""
    _, top = models_json_schema([(m, "validation") for m in models], ref_template="#/components/schemas/{model}")
    return dict(strip_titles(top.get("$defs", {})))


def query_parameters(model: type[queries.Query], names: Collection[str] | None = None) -> list[dict[str, Any]]:
    """The query parameters of a query model, or of those of its fields named (the portal reads fewer)."""
    schema = strip_titles(model.model_json_schema(by_alias=True))
    params = []
    for name, prop in schema["properties"].items():
        if names is not None and name not in names:
            continue
        description = prop.pop("description", None)
        param = {"name": name, "in": "query", "required": False, "schema": prop}
        if description:
            param["description"] = description
        params.append(param)
    return params


def answers(summary: str, ok: str, schema: str | None, statuses: Iterable[str],
            text: Mapping[str, str]) -> dict[str, Any]:
    """An operation's responses: the success (with its schema, if it has a body), then each error
    status in the order given, an `Error` described by `text` (the admin API's or the portal's)."""
    responses: dict[str, Any] = {ok: {"description": summary}}
    if schema:
        responses[ok]["content"] = {JSON: {"schema": ref(schema)}}
    for code in statuses:
        responses[code] = {"description": text[code], "content": {JSON: {"schema": ref("Error")}}}
    return responses


def op(summary: str, ok: str, schema: str | None, statuses: tuple[str, ...], *, body: str | None = None,
       query: type[queries.Query] | None = None, path_id: bool = False, body_optional: bool = False) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": summary, "responses": answers(summary, ok, schema, statuses, STATUS_TEXT)}
    params = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}] if path_id else []
    if query is not None:
        params += query_parameters(query)
    if params:
        operation["parameters"] = params
    if body:
        operation["requestBody"] = {"required": not body_optional, "content": {JSON: {"schema": ref(body)}}}
    return operation


BODY = ("400", "413", "422")
PATHS: dict[str, Any] = {
    "/admin/version": {"get": op("Gateway version", "200", "Version", ("401",))},
    "/admin/plans": {"get": op("The configured plans (as the running configuration has them, reloads included), "
                               "in the configuration's order", "200", "PlanPage", ("401",))},
    "/admin/tenants": {
        "post": op("Create a tenant", "201", "Tenant", (*BODY, "409", *STORE), body="TenantInput"),
        "get": op("List tenants", "200", "TenantPage", ("422", *STORE), query=queries.TenantList),
    },
    "/admin/tenants/{id}": {
        "get": op("A tenant with plan, limit, key count and users", "200", "Tenant", ("404", *STORE), path_id=True),
        "patch": op("Change name, plan, disabled, or the gates api_enabled and write_enabled", "200", "Tenant",
                    (*BODY, "404", *STORE), body="TenantPatch", path_id=True),
    },
    "/admin/tenants/{id}/users": {
        "post": op("Create a user of the tenant", "201", "User", (*BODY, "404", *STORE), body="UserInput",
                   path_id=True),
        "get": op("The tenant's users", "200", "UserPage", ("404", *STORE), path_id=True),
    },
    "/admin/tenants/{id}/invitations": {
        "post": op("Invite someone to the tenant portal: a new user of the tenant and the invitation URL, shown "
                   "in this answer only (mailed too when portal.smtp is set); 409: the email signs in already",
                   "201", "Invitation", (*BODY, "404", "409", *STORE), body="InvitationInput", path_id=True),
    },
    "/admin/users/{id}": {"patch": op("Change role, name or disabled", "200", "User", (*BODY, "404", *STORE),
                                      body="UserPatch", path_id=True)},
    "/admin/keys": {
        "post": op("Create a key (the secret is in this answer only). 404: no such tenant, or no such user in it; "
                   "422 also when the tenant has keys.max_per_tenant active keys, is disabled, has no API access, "
                   "or no write access for a key that writes", "201", "KeyWithSecret",
                   (*BODY, "404", *STORE), body="KeyInput"),
        "get": op("List keys", "200", "KeyPage", ("422", *STORE), query=queries.KeyList),
    },
    "/admin/keys/{id}": {"get": op("A key (never its secret)", "200", "Key", ("404", *STORE), path_id=True)},
    "/admin/keys/{id}/rotate": {
        "post": op("New secret, same settings; the old key stops at once (409: it is revoked; 422: the tenant's "
                   "gates no longer allow it)", "201", "KeyWithSecret", ("404", "409", "422", *STORE), path_id=True)},
    "/admin/keys/{id}/revoke": {
        "post": op("Revoke; the key fails on its next request. wait=true: answer once every other instance has "
                   "dropped it from its cache (at most 5 s; see propagation)", "200", "RevokedKey",
                   ("404", "422", *STORE), query=queries.Revoke, path_id=True)},
    "/admin/reload": {"post": op("Re-read routes and plans from the config file (as SIGHUP does); a broken file "
                                 "is a 422 with every problem and changes nothing", "200", "Reloaded",
                                 ("401", "422"))},
    "/admin/audit": {"get": op("Audit entries after a cursor, oldest first (order=desc: before it, newest first)",
                               "200", "AuditPage", ("400", "422", *STORE), query=queries.AuditPage)},
    "/admin/calls": {"get": op("Call log after a cursor", "200", "CallPage", ("400", "422", *STORE),
                               query=queries.CallPage)},
    "/admin/usage": {"get": op(
        "A tenant's or a key's usage from its rollups (not the call log): every bucket of [from, to), aligned to "
        "the granularity, with requests by status class, rate-limited requests and p50/p99 latency (null in an "
        "empty bucket). 404: no such tenant or key, or a key of another tenant than tenant_id; 422 also when "
        "neither tenant_id nor key_id is given, from is not before to, or the range has over 3000 buckets",
        "200", "UsageSeries", ("404", "422", *STORE), query=queries.Usage)},
    "/admin/webhooks": {
        "post": {**op("Register a webhook endpoint (its signing secret is in this answer only). 422 also for a "
                      "URL that is not https:// or whose host is, or resolves to, an address inside the network",
                      "201", "WebhookWithSecret", (*BODY, *STORE), body="WebhookInput"),
                 "operationId": "createWebhook"},
        "get": op("List webhook endpoints", "200", "WebhookPage", ("422", *STORE), query=queries.WebhookList),
    },
    "/admin/webhooks/{id}": {
        "get": op("A webhook endpoint (never its secret)", "200", "Webhook", ("404", *STORE), path_id=True),
        "patch": op("Change url, events, description or disabled (disabling fails its pending deliveries)", "200",
                    "Webhook", (*BODY, "404", *STORE), body="WebhookPatch", path_id=True),
        "delete": op("Delete the endpoint and its delivery log", "204", None, ("404", *STORE), path_id=True),
    },
    "/admin/webhooks/{id}/test": {
        "post": op("Send a webhook.test event to this endpoint (409: it is disabled)", "202", "WebhookTest",
                   ("404", "409", *STORE), path_id=True)},
    "/admin/webhooks/{id}/rotate-secret": {
        "post": op("A new signing secret (in this answer only); the one it replaces keeps signing deliveries beside "
                   "it for expires_in seconds (default 24 hours; 0: it stops at once), so receivers can switch "
                   "without missing one", "200", "WebhookWithSecret", (*BODY, "404", *STORE), body="SecretRotationInput",
                   path_id=True, body_optional=True)},
    "/admin/webhooks/{id}/deliveries": {
        "get": op("The endpoint's deliveries after a cursor, oldest first (order=desc: before it, newest first)",
                  "200", "DeliveryPage", ("400", "404", "422", *STORE), query=queries.DeliveryLog, path_id=True)},
    "/admin/deliveries/{id}/retry": {
        "post": op("Attempt a delivery again now, retried for webhooks.retry_for anew if it fails (409: its "
                   "endpoint is disabled)", "202", "Delivery", ("404", "409", *STORE), path_id=True)},
}

TOKEN_OPERATION: dict[str, Any] = {"post": {
    "summary": "Exchange an API key for a short-lived JWT (on the proxy listener)",
    "servers": [{"url": "https://gateway.example.com:8443"}],
    "security": [],
    "requestBody": {"required": False, "content": {JSON: {"schema": ref("TokenRequest")}}},
    "responses": {
        "200": {"description": "A token", "content": {JSON: {"schema": ref("TokenResponse")}}},
        "400": {"description": STATUS_TEXT["400"], "content": {JSON: {"schema": ref("Error")}}},
        "401": {"description": "Missing, invalid, expired or revoked key", "content": {JSON: {"schema": ref("Error")}}},
        "429": {"description": "Rate limited", "content": {JSON: {"schema": ref("Error")}}},
    },
}}


def _caller_operation(summary: str, schema: str) -> dict[str, Any]:
    """One of the caller's own endpoints (contract section 10), on the proxy listener."""
    def error(text: str) -> dict[str, Any]:
        return {"description": text, "content": {JSON: {"schema": ref("Error")}}}

    return {"get": {
        "summary": summary,
        "servers": [{"url": "https://gateway.example.com:8443"}],
        "security": [{"callerKey": []}, {"callerBearer": []}],
        "responses": {
            "200": {"description": summary, "content": {JSON: {"schema": ref(schema)}}},
            "401": error("Missing, invalid, expired or revoked key or token"),
            "403": error("The key's tenant or owner is disabled, or the tenant has no API access"),
            "429": error("Over the key's rate limit (each call counts)"),
            "503": error(STATUS_TEXT["503"]),
        },
    }}


def caller_paths(cfg: Config) -> dict[str, Any]:
    """`<self_api.path>/version` and `/me`, when they are served."""
    if not cfg.self_api.enabled:
        return {}
    return {
        cfg.self_api.path + "/version": _caller_operation("The gateway's version and your API's (self_api.api_version)",
                                                          "CallerVersion"),
        cfg.self_api.path + "/me": _caller_operation(
            "The calling key: its tenant, its settings and expiry, its limit and what is left of it now "
            "(answers to a key expiring within keys.expiring_soon_days carry Sunset)", "CallerMe"),
    }


def _configure(schemas: dict[str, Any], cfg: Config) -> None:
    """The rules whose values come from the configuration, with the running values."""
    plans = list(cfg.plans)
    for name in ("TenantInput", "TenantPatch"):
        plan = schemas[name]["properties"]["plan"]
        for option in plan.get("anyOf", [plan]):
            if option.get("type") == "string":
                option["enum"] = plans
    configure_key_input(schemas, cfg)


def configure_key_input(schemas: dict[str, Any], cfg: Config) -> None:
    """KeyInput's validity bounds from the configuration (the portal's document too)."""
    days = schemas["KeyInput"]["properties"]["validity_days"]
    for option in days["anyOf"]:
        if option.get("type") == "integer":
            low, high = cfg.keys.min_validity_days, cfg.keys.max_validity_days
            option.update({"minimum": low, "maximum": high,
                           "x-rule": f"must be an integer from {low} to {high}, or null for a key that never expires"})
    days["default"] = cfg.keys.default_validity_days


def document(cfg: Config | None = None, *, include_token: bool = True) -> dict[str, Any]:
    """The document for this configuration (the defaults when None)."""
    cfg = cfg or default_config()
    schemas = {**body_schemas(BODIES), **copy.deepcopy(RESPONSES)}
    _configure(schemas, cfg)
    paths = dict(PATHS)
    if include_token:
        paths[cfg.tokens.path] = TOKEN_OPERATION
        paths.update(caller_paths(cfg))
    return envelope(
        "gateway admin API",
        "Tenants, users and API keys; webhooks; audit trail and call log; the token exchange and the caller's own "
        "endpoints.",
        "adminToken", paths, schemas,
        {
            "adminToken": {"type": "http", "scheme": "bearer", "description": "The token from admin.token_env"},
            "callerKey": {"type": "apiKey", "in": "header", "name": "X-API-Key",
                          "description": "An API key (proxy listener: the caller's own endpoints)"},
            "callerBearer": {"type": "http", "scheme": "bearer",
                             "description": "An API key or a token from the exchange (proxy listener)"},
        },
    )


def default_config() -> Config:
    """The configuration a document describes when it is given none: the defaults (a test, the docs)."""
    return parse_config({"server": {"tls": {"self_signed": True}}}, env={})


def envelope(title: str, description: str, security: str, paths: dict[str, Any], schemas: dict[str, Any],
             schemes: dict[str, Any]) -> dict[str, Any]:
    """An OpenAPI 3.1 document of this gateway's version (the admin API's and the portal's), served from
    the root of its listener, `security` its default scheme."""
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": __version__, "description": description},
        "servers": [{"url": "/"}],
        "security": [{security: []}],
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": schemes},
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
                rest = {k: v for k, v in node.items() if k != "anyOf"}
                return {**walk(other), **walk(rest), "nullable": True}
            if "const" in node:
                node = {**node, "enum": [node["const"]]}
                node.pop("const")
            if "if" in node:  # 3.0 has no conditionals: the UI shows the scope rule in the description
                return {}
            out = {k: walk(v) for k, v in node.items()}
            if isinstance(out.get("allOf"), list):
                out["allOf"] = [o for o in out["allOf"] if o]
                if not out["allOf"]:
                    del out["allOf"]
            return out
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    converted: dict[str, Any] = walk(doc)
    return converted


def takes_query(path: str, method: str) -> bool | None:
    """Whether the documented operation has query parameters; None for a path the document does
    not describe (the console, its assets, the document itself, health and metrics)."""
    operation = PATHS.get(path, {}).get(method.lower())
    if operation is None:
        return None
    return any(p["in"] == "query" for p in operation.get("parameters", ()))
