"""What each event says: `{"type", "timestamp", "data"}`, built once when the change is made.

`data` names the objects involved (a key by id, name, tenant and last four characters), never a
key's secret or hash, nor a webhook's signing secret.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from gateway.credentials.keyformat import new_id
from gateway.keystore.models import ApiKey, Tenant, User
from gateway.keystore.outbox import NewEvent

KEY_EVENTS = ("key.created", "key.rotated", "key.revoked", "key.expiring", "key.expired", "key.exposed",
              "key.canary_used", "key.anomaly")
EVENT_TYPES = (*KEY_EVENTS, "tenant.created", "tenant.updated", "user.created", "user.updated", "webhook.test")
ALL_EVENTS = "*"

_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def iso(at: dt.datetime | None) -> str | None:
    if at is None:
        return None
    return at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def new_event(
    type: str, data: dict[str, Any], *, at: dt.datetime, tenant_id: str | None, endpoint_id: str | None = None
) -> NewEvent:
    event_id = new_id("evt")
    body = _encode({"type": type, "timestamp": iso(at), "data": data}).encode()
    return NewEvent(id=event_id, type=type, tenant_id=tenant_id, at=at, body=body, endpoint_id=endpoint_id)


def key_data(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "tenant_id": key.tenant_id,
        "user_id": key.user_id,
        "last4": key.last4,
        "scope": key.scope,
        "environment": key.environment,
        "created_at": iso(key.created_at),
        "expires_at": iso(key.expires_at),
        "revoked_at": iso(key.revoked_at),
    }


def tenant_data(tenant: Tenant) -> dict[str, Any]:
    return {"id": tenant.id, "name": tenant.name, "plan": tenant.plan, "disabled": tenant.disabled,
            "api_enabled": tenant.api_enabled, "write_enabled": tenant.write_enabled}


def user_data(user: User) -> dict[str, Any]:
    return {"id": user.id, "tenant_id": user.tenant_id, "name": user.name, "email": user.email,
            "role": user.role, "disabled": user.disabled}


def key_event(type: str, key: ApiKey, *, at: dt.datetime, actor: str | None, **extra: Any) -> NewEvent:
    """`key.*`: `data.key` names the key; `extra` adds the event's own facts (`days_left`,
    `new_key`, `exposure`...)."""
    data: dict[str, Any] = {"key": key_data(key), **extra}
    if actor is not None:
        data["actor"] = actor
    return new_event(type, data, at=at, tenant_id=key.tenant_id)


def tenant_event(type: str, tenant: Tenant, *, at: dt.datetime, actor: str | None,
                 changes: list[str] | None = None) -> NewEvent:
    data: dict[str, Any] = {"tenant": tenant_data(tenant)}
    if changes is not None:
        data["changes"] = changes
    if actor is not None:
        data["actor"] = actor
    return new_event(type, data, at=at, tenant_id=tenant.id)


def user_event(type: str, user: User, *, at: dt.datetime, actor: str | None,
               changes: list[str] | None = None, **extra: Any) -> NewEvent:
    """`user.*`: `data.user` names the user; `extra` adds the event's own facts (a portal
    person's `status`: invited, active)."""
    data: dict[str, Any] = {"user": user_data(user), **extra}
    if changes is not None:
        data["changes"] = changes
    if actor is not None:
        data["actor"] = actor
    return new_event(type, data, at=at, tenant_id=user.tenant_id)


def webhook_test_event(endpoint_id: str, tenant_id: str | None, *, at: dt.datetime, actor: str | None) -> NewEvent:
    """`webhook.test`: to one endpoint only, whatever it subscribes to."""
    data: dict[str, Any] = {"webhook_id": endpoint_id, "message": "a test event from the gateway"}
    if actor is not None:
        data["actor"] = actor
    return new_event("webhook.test", data, at=at, tenant_id=tenant_id, endpoint_id=endpoint_id)
