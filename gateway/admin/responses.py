"""The admin API's answers as JSON schemas (the requests are models: accounts/requests.py,
admin/queries.py). schemathesis checks every answer of the running API against these.
"""

from __future__ import annotations

from typing import Any

STR = {"type": "string"}
BOOL = {"type": "boolean"}
INT = {"type": "integer"}
TIME = {"type": "string", "format": "date-time"}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def obj(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def page_of(item: str) -> dict[str, Any]:
    meta = obj({"total": INT, "page": INT, "per_page": INT, "total_pages": INT},
               ["total", "page", "per_page", "total_pages"])
    return obj({"data": {"type": "array", "items": ref(item)}, "meta": meta}, ["data", "meta"])


def cursor_page(item: str) -> dict[str, Any]:
    return obj({"data": {"type": "array", "items": ref(item)}, "next_cursor": nullable(STR)}, ["data", "next_cursor"])


PERMISSION = obj({"methods": {"type": "array", "items": STR, "minItems": 1}, "path": STR}, ["methods", "path"])

WEBHOOK = obj({
    "id": STR, "url": STR, "events": {"type": "array", "items": STR}, "tenant_id": nullable(STR),
    "description": nullable(STR), "disabled": BOOL, "disabled_reason": nullable({"enum": ["admin", "failing"]}),
    "failing_since": nullable(TIME), "created_at": TIME, "updated_at": TIME,
    "previous_secret_expires_at": nullable(TIME),
}, ["id", "url", "events", "tenant_id", "description", "disabled", "disabled_reason", "failing_since", "created_at",
    "updated_at", "previous_secret_expires_at"])
DELIVERY = obj({
    "id": STR, "event_id": STR, "event_type": STR, "webhook_id": STR, "attempts": INT,
    "status": {"enum": ["pending", "delivered", "failed"]}, "response_status": nullable(INT),
    "error": nullable(STR), "last_attempt_at": nullable(TIME), "next_attempt_at": nullable(TIME),
    "created_at": TIME, "delivered_at": nullable(TIME),
}, ["id", "event_id", "event_type", "webhook_id", "attempts", "status", "response_status", "error",
    "last_attempt_at", "next_attempt_at", "created_at", "delivered_at"])

RESPONSES: dict[str, Any] = {
    "Error": obj({"error": obj({
        "code": STR, "message": STR,
        "details": {"type": "array", "items": obj({"field": STR, "issue": STR}, ["field", "issue"])},
    }, ["code", "message", "details"])}, ["error"]),
    "Version": obj({"version": STR}, ["version"]),
    "User": obj({"id": STR, "tenant_id": STR, "name": STR, "email": nullable(STR),
                 "role": {"enum": ["owner", "admin", "member", "viewer"]}, "disabled": BOOL,
                 "status": {"enum": ["invited", "active", "disabled"]}, "signs_in": BOOL,
                 "created_at": TIME, "updated_at": TIME},
                ["id", "tenant_id", "name", "email", "role", "disabled"]),
    "Invitation": obj({"id": STR, "tenant_id": STR, "name": STR, "email": STR,
                       "role": {"enum": ["owner", "admin", "member", "viewer"]}, "disabled": BOOL,
                       "status": {"enum": ["invited"]}, "invitation_url": {"type": "string", "format": "uri"},
                       "created_at": TIME, "updated_at": TIME},
                      ["id", "tenant_id", "email", "role", "status", "invitation_url"]),
    "Tenant": obj({"id": STR, "name": STR, "plan": STR, "disabled": BOOL, "created_at": TIME, "updated_at": TIME,
                   "api_enabled": BOOL, "write_enabled": BOOL,
                   "requests_per_minute": nullable(INT), "active_keys": INT, "max_keys": INT,
                   "users": {"type": "array", "items": ref("User")}},
                  ["id", "name", "plan", "disabled", "requests_per_minute", "active_keys"]),
    "Key": obj({
        "id": STR, "name": STR, "tenant_id": STR, "user_id": nullable(STR), "masked": STR, "last4": STR,
        "scope": {"enum": ["read_only", "read_write", "custom"]},
        "permissions": {"type": "array", "items": PERMISSION},
        "resources": {"type": "object", "additionalProperties": {"type": "array", "items": STR}},
        "environment": {"enum": ["live", "test"]}, "rate_limit_per_minute": nullable(INT),
        "created_at": TIME, "last_used_at": nullable(TIME), "expires_at": nullable(TIME),
        "expires_in_days": nullable(INT), "expiring_soon": BOOL,
        "status": {"enum": ["active", "expired", "revoked"]}, "revoked_at": nullable(TIME),
        "replaced_by": nullable(STR),
        "exposed_at": nullable(TIME),
        "exposure": nullable(obj({
            "reason": {"enum": ["query_string", "plain_http", "secret_scanning"]}, "at": TIME, "url": STR,
        }, ["reason", "at"])),
        "canary": BOOL,
        "anomaly": nullable(obj({
            "kind": {"enum": ["traffic", "errors"]}, "at": TIME, "window_start": TIME, "requests": INT, "errors": INT,
            "baseline_requests_per_hour": {"type": "number"}, "baseline_errors_per_hour": {"type": "number"},
            "message": STR}, ["kind", "at", "window_start", "requests", "errors", "message"])),
    }, ["id", "name", "tenant_id", "masked", "last4", "scope", "permissions", "environment", "created_at",
        "last_used_at", "expires_at", "expires_in_days", "expiring_soon", "status"]),
    "KeyWithSecret": {"allOf": [ref("Key"), obj({"key": STR}, ["key"])]},
    "RevokedKey": {"allOf": [ref("Key"), obj({"propagation": obj(
        {"instances": INT, "confirmed": INT, "complete": BOOL, "seconds": {"type": "number"}},
        ["instances", "confirmed", "complete", "seconds"])}, [])]},
    "AuditEntry": obj({"id": INT, "at": TIME, "actor": STR, "action": STR, "target_type": STR, "target_id": STR,
                       "key_name": STR, "tenant_id": STR, "source_ip": STR, "actor_email": STR,
                       "details": {"type": "object", "additionalProperties": STR}},
                      ["id", "at", "actor", "action", "target_type", "target_id"]),
    "UsagePoint": obj({
        "t": TIME, "requests": INT,
        "status": obj({"2xx": INT, "3xx": INT, "4xx": INT, "5xx": INT}, ["2xx", "3xx", "4xx", "5xx"]),
        "rate_limited": INT, "p50_ms": nullable({"type": "number"}), "p99_ms": nullable({"type": "number"}),
    }, ["t", "requests", "status", "rate_limited", "p50_ms", "p99_ms"]),
    "UsageSeries": obj({
        "data": {"type": "array", "items": ref("UsagePoint")},
        "meta": obj({"granularity": {"enum": ["minute", "hour", "day"]}, "from": TIME, "to": TIME,
                     "tenant_id": nullable(STR), "key_id": nullable(STR)},
                    ["granularity", "from", "to", "tenant_id", "key_id"]),
    }, ["data", "meta"]),
    "CallEntry": obj({"id": INT, "at": TIME, "request_id": STR, "tenant_id": nullable(STR), "key_id": nullable(STR),
                      "key_name": nullable(STR), "method": STR, "route": nullable(STR), "path": STR, "status": INT,
                      "latency_ms": {"type": "number"}, "upstream_latency_ms": nullable({"type": "number"}),
                      "rate_limited": BOOL, "client_ip": nullable(STR), "error": nullable(STR)},
                     ["id", "at", "request_id", "method", "path", "status", "latency_ms", "rate_limited"]),
    "Reloaded": obj({"routes": INT, "plans": {"type": "array", "items": STR},
                     "not_applied": {"type": "array", "items": STR}}, ["routes", "plans", "not_applied"]),
    "Plan": obj({"name": STR, "requests_per_minute": INT}, ["name", "requests_per_minute"]),
    "PlanPage": page_of("Plan"),
    "TenantPage": page_of("Tenant"),
    "KeyPage": page_of("Key"),
    "UserPage": page_of("User"),
    "AuditPage": cursor_page("AuditEntry"),
    "CallPage": cursor_page("CallEntry"),
    "TokenRequest": {**obj({"api_key": STR}, ["api_key"]), "additionalProperties": False},
    "TokenResponse": obj({"token": STR, "expires_at": TIME, "token_type": {"const": "Bearer"}},
                         ["token", "expires_at", "token_type"]),
    "Webhook": WEBHOOK,
    "WebhookWithSecret": {"allOf": [ref("Webhook"), obj({"secret": {"type": "string", "pattern": "^whsec_"}},
                                                        ["secret"])]},
    "WebhookPage": page_of("Webhook"),
    "WebhookTest": obj({"event_id": STR, "type": {"const": "webhook.test"}}, ["event_id", "type"]),
    "CallerMe": obj({
        "tenant": obj({"id": STR, "name": STR, "plan": STR}, ["id", "name", "plan"]),
        "key": obj({"id": STR, "name": STR, "scope": {"enum": ["read_only", "read_write", "custom"]},
                    "environment": {"enum": ["live", "test"]}, "expires_at": nullable(TIME), "expiring_soon": BOOL},
                   ["id", "name", "scope", "environment", "expires_at", "expiring_soon"]),
        "limits": obj({"requests_per_minute": INT, "remaining": nullable(INT)}, ["requests_per_minute", "remaining"]),
    }, ["tenant", "key", "limits"]),
    "CallerVersion": obj({"gateway_version": STR, "api_version": STR}, ["gateway_version", "api_version"]),
    "Delivery": DELIVERY,
    "DeliveryPage": cursor_page("Delivery"),
}
