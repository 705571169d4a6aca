"""The webhook outbox's values and the `WebhookStore` protocol, beside the key store.

Both key store backends implement it on their own connection (outbox_sqlite.py,
outbox_postgres.py), because an event is written in the transaction of the change that makes
it: every mutating `KeyStore` method takes `events=`, and `add_events` writes events that
accompany no other change. What the events say is gateway/accounts/events.py's business,
delivering them gateway/events/'.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

DeliveryStatus = Literal["pending", "delivered", "failed"]


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event as the change that makes it writes it, in that change's transaction.

    `body` is the JSON document delivered, fixed once: every retry sends the same bytes under
    the same `webhook-id` (the event's id). An event goes to every enabled endpoint subscribed
    to its type (and to its tenant, or to all), or to `endpoint_id` alone (a test event); with
    no such endpoint it is not stored at all."""

    id: str
    type: str
    tenant_id: str | None
    at: dt.datetime
    body: bytes
    endpoint_id: str | None = None


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: str
    url: str
    tenant_id: str | None  # None: every tenant's events
    description: str | None
    events: tuple[str, ...]  # event types, or ("*",)
    secret: str  # whsec_...: signs deliveries; shown once, at creation
    disabled: bool
    disabled_reason: str | None  # "admin" or "failing"
    failing_since: dt.datetime | None  # first failed attempt since the last delivered one
    created_at: dt.datetime
    updated_at: dt.datetime
    # after a rotation, the secret it replaced: deliveries are signed with it too until then
    previous_secret: str | None = None
    previous_secret_expires_at: dt.datetime | None = None

    def signing_secrets(self, now: dt.datetime) -> tuple[str, ...]:
        return signing_secrets(self.secret, self.previous_secret, self.previous_secret_expires_at, now)


def signing_secrets(secret: str, previous: str | None, previous_until: dt.datetime | None,
                    now: dt.datetime) -> tuple[str, ...]:
    """The secrets an attempt made `now` is signed with: the current one, and the one it replaced
    while its grace period lasts (a receiver still holding it keeps verifying)."""
    if previous is not None and previous_until is not None and now < previous_until:
        return (secret, previous)
    return (secret,)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event on its way to one endpoint, with the outcome of its latest attempt."""

    id: int
    event_id: str
    event_type: str
    endpoint_id: str
    tenant_id: str | None
    status: DeliveryStatus
    attempts: int
    response_status: int | None
    error: str | None
    last_attempt_at: dt.datetime | None
    next_attempt_at: dt.datetime | None  # None once delivered or failed
    created_at: dt.datetime
    delivered_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class Claim:
    """A delivery this instance holds a lease on, with what it takes to attempt it."""

    delivery_id: int
    token: str  # the lease: only its holder may record the outcome
    attempt: int  # 1 for the first
    retry_from: dt.datetime  # the start of its retry window (creation, or a manual retry)
    event_id: str
    event_type: str
    body: bytes
    endpoint_id: str
    url: str
    secret: str
    previous_secret: str | None = None
    previous_secret_expires_at: dt.datetime | None = None
    tenant_id: str | None = None  # the endpoint's (None: every tenant's events, the operator's)

    def signing_secrets(self, now: dt.datetime) -> tuple[str, ...]:
        return signing_secrets(self.secret, self.previous_secret, self.previous_secret_expires_at, now)


ENDPOINT_CHANGES = frozenset({"url", "description", "disabled", "disabled_reason"})


class WebhookStore(Protocol):
    # called after a commit that stored events, so this instance's dispatcher starts at once
    on_events: Callable[[], None] | None

    async def add_events(self, events: Sequence[NewEvent]) -> None: ...

    async def create_endpoint(self, endpoint: Endpoint) -> Endpoint: ...
    async def get_endpoint(self, endpoint_id: str) -> Endpoint | None: ...
    async def list_endpoints(self, *, tenant_id: str | None = None, page: int,
                             per_page: int) -> tuple[list[Endpoint], int]: ...
    async def update_endpoint(self, endpoint_id: str, *, changes: Mapping[str, Any],
                              events: Sequence[str] | None = None, at: dt.datetime) -> Endpoint | None:
        """`changes` among ENDPOINT_CHANGES. Disabling fails its pending deliveries; enabling
        forgets its failures."""
    async def delete_endpoint(self, endpoint_id: str) -> bool: ...
    async def rotate_endpoint_secret(self, endpoint_id: str, secret: str, *, previous_until: dt.datetime | None,
                                     at: dt.datetime) -> Endpoint | None:
        """`secret` signs from now on; the one it replaces signs too until `previous_until` (None:
        it stops at once). A secret replaced by an earlier rotation is forgotten."""
    async def forget_expired_secrets(self, now: dt.datetime) -> int:
        """Drop replaced secrets whose grace period has passed (they sign nothing any more)."""

    async def get_delivery(self, delivery_id: int) -> Delivery | None: ...
    async def list_deliveries(self, endpoint_id: str, *, after: int | None, limit: int,
                              newest_first: bool = False) -> list[Delivery]: ...
    async def retry_delivery(self, delivery_id: int, at: dt.datetime) -> Delivery | None:
        """Pending again, due at once, with a fresh retry window (a delivery being attempted
        right now is left to that attempt)."""

    async def claim_deliveries(self, now: dt.datetime, *, lease_until: dt.datetime, limit: int,
                               skip_tenants: Collection[str] = ()) -> list[Claim]:
        """Due deliveries of enabled endpoints, each leased to this caller alone until
        `lease_until` (a holder that dies leaves it to the next claim after that); none of
        the endpoints of `skip_tenants` (tenants with their share of attempts in flight)."""
    async def finish_delivery(self, claim: Claim, *, at: dt.datetime, status: str, response_status: int | None,
                              error: str | None, next_attempt_at: dt.datetime | None) -> bool:
        """Record an attempt's outcome; False when the lease was lost (nothing recorded)."""
    async def release_claims(self, claims: Sequence[Claim]) -> None:
        """Give leases back unused (a stopping instance), due at once."""
    async def next_due(self) -> dt.datetime | None: ...
    async def backlog(self) -> tuple[int, dt.datetime | None]:
        """Pending deliveries, and the creation time of the oldest."""
    async def disable_failing_endpoints(self, failing_since: dt.datetime, at: dt.datetime) -> list[Endpoint]:
        """Disable enabled endpoints with no delivery since `failing_since` or before; each is
        returned to exactly one caller."""
    async def prune_events(self, before: dt.datetime, limit: int) -> int:
        """Forget events older than `before` whose deliveries are all settled."""


def delivery_public_id(delivery_id: int) -> str:
    return f"dlv_{delivery_id}"


_DELIVERY_ID = re.compile(r"dlv_([1-9][0-9]{0,19})", re.ASCII)


def parse_delivery_id(text: str) -> int | None:
    """The number behind a delivery's public id, or None (then no delivery has it). ASCII digits
    only, as the ids are written: str.isdigit() took '²' and '①', which int() then refused (a
    500), and fullwidth digits, which named another id's delivery."""
    match = _DELIVERY_ID.fullmatch(text)
    return int(match.group(1)) if match else None
