"""The shapes of webhook requests, declared once: they validate every request (admin API and,
scoped to a tenant, the portal) and are the request bodies of the admin OpenAPI document.

What depends on the configuration or the network (https only unless `webhooks.allow_http`, the
host's addresses against the SSRF policy) and on stored state (the tenant exists) is checked by
the service (`service.py`) after these.
"""

from __future__ import annotations

from typing import Annotated, Any

from gateway.accounts.events import ALL_EVENTS, EVENT_TYPES
from gateway.accounts.requests import NOT_PRINTABLE, Flag, Id, Request, name_rule
from gateway.config.fields import Invalid, Rule
from gateway.events.addresses import MAX_URL

DEFAULT_GRACE = 86400  # seconds a rotated-away secret keeps signing, unless the request says otherwise
MAX_GRACE = 7 * 86400

_TYPES = frozenset((*EVENT_TYPES, ALL_EVENTS))


def _event_type(value: Any) -> str:
    if value not in _TYPES:
        raise Invalid()
    return str(value)


EventType = Annotated[str, Rule("must be one of " + ", ".join(EVENT_TYPES) + ", or *", {"strict": True},
                                check=_event_type, json={"enum": [*EVENT_TYPES, ALL_EVENTS]})]
Events = Annotated[list[EventType], Rule('must be a non-empty list of event types, or ["*"] for all',
                                         {"min_length": 1})]
Url = Annotated[str, Rule(f"must be a URL of at most {MAX_URL} characters",
                          {"strict": True, "min_length": 1, "max_length": MAX_URL})]
Description = Annotated[str, name_rule("must be a string of 1 to 512 printable characters, not only spaces", 512,
                                        NOT_PRINTABLE)]


def _grace(value: Any) -> int:
    """A JSON integer (`5` or `5.0`, never `true` or `"5"`) of seconds within the bounds."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_GRACE:
        raise Invalid()
    return value


GraceSeconds = Annotated[int, Rule(f"must be an integer from 0 to {MAX_GRACE} (seconds)", {"ge": 0, "le": MAX_GRACE},
                                   check=_grace, native=False)]


def subscription(events: list[str]) -> tuple[str, ...]:
    """The event types an endpoint takes, once each; `*` alone stands for all of them."""
    return (ALL_EVENTS,) if ALL_EVENTS in events else tuple(sorted(set(events)))


class WebhookInput(Request):
    """A new webhook endpoint; its signing secret is in the answer, that once."""

    url: Url
    """Where events are POSTed: `https://` (`http://` too with `webhooks.allow_http`), and no host
    that is or resolves to a loopback, private, link-local, multicast or reserved address."""
    events: Events
    """The event types sent to it, or `["*"]` for all."""
    tenant_id: Id | None = None
    """Only this tenant's events; absent or null: every tenant's."""
    description: Description | None = None


class WebhookPatch(Request):
    """What changes on an endpoint (absent: unchanged; `description: null` clears it)."""

    url: Url | None = None
    events: Events | None = None
    description: Description | None = None
    disabled: Flag | None = None
    """true: nothing more is sent to it (its pending deliveries fail); false: enabled again."""


class SecretRotationInput(Request):
    """A new signing secret for an endpoint, shown in the answer only (the body may be left out)."""

    expires_in: GraceSeconds = DEFAULT_GRACE
    """Seconds the secret it replaces keeps signing deliveries beside the new one (each delivery
    then carries both signatures), so a receiver can switch without a delivery it cannot verify:
    default 86400 (24 hours), at most 604800 (7 days); 0 stops the old secret at once."""
