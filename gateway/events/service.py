"""Webhook endpoints and their deliveries, with their rules and audit, for every caller.

The admin API calls this with no tenant (every endpoint); a tenant's own people (the portal)
call it with their tenant, which confines them to that tenant's endpoints: another tenant's ids
answer 404 exactly as ids that do not exist, and their endpoints receive their tenant's events
only.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from typing import Any

from aiohttp.abc import AbstractResolver

from gateway.accounts import rules
from gateway.accounts.actors import Actor, AuditSink
from gateway.accounts.events import iso, webhook_test_event
from gateway.accounts.requests import parse
from gateway.config import WebhooksConfig
from gateway.credentials.keyformat import new_id
from gateway.errors import Conflict, NotFound, ValidationError
from gateway.events.dns import WebhookResolver
from gateway.events.requests import SecretRotationInput, WebhookInput, WebhookPatch, subscription
from gateway.events.settings import address_policy
from gateway.events.signing import new_secret
from gateway.keystore.base import KeyStore
from gateway.keystore.outbox import Delivery, Endpoint, delivery_public_id, parse_delivery_id

MAX_DELIVERIES_PAGE = 1000
# What a tenant's people are told when a URL's host fails the SSRF policy: one answer whether the
# name does not resolve or resolves inside, and never the address. The operator's DNS answers
# internal names (and follows a public name's CNAME into internal zones), so "db.corp resolves
# to 10.1.2.3 is private" and "cannot be resolved" told anyone with a portal account which
# internal names exist and where they point.
TENANT_REFUSAL = ("must reach a public address: its host does not resolve, or resolves to a loopback, private, "
                  "link-local, multicast or reserved address")
_ADDRESS_ERRORS = ("address refused", "cannot resolve the host")  # the sender's words for such a failure


def endpoint_view(endpoint: Endpoint) -> dict[str, Any]:
    """An endpoint as the API shows it: never its secret (that is shown once, at creation)."""
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "events": list(endpoint.events),
        "tenant_id": endpoint.tenant_id,
        "description": endpoint.description,
        "disabled": endpoint.disabled,
        "disabled_reason": endpoint.disabled_reason,
        "failing_since": iso(endpoint.failing_since),
        "created_at": iso(endpoint.created_at),
        "updated_at": iso(endpoint.updated_at),
        # after a rotation: until when the secret it replaced signs deliveries too (null: none does)
        "previous_secret_expires_at": iso(endpoint.previous_secret_expires_at),
    }


def delivery_view(delivery: Delivery, *, for_tenant: bool = False) -> dict[str, Any]:
    """`for_tenant`: the portal's view, whose errors never name what the host resolved to."""
    error = delivery.error
    if for_tenant and error is not None and error.startswith(_ADDRESS_ERRORS):
        error = f"address refused: the URL {TENANT_REFUSAL}"
    return {
        "id": delivery_public_id(delivery.id),
        "event_id": delivery.event_id,
        "event_type": delivery.event_type,
        "webhook_id": delivery.endpoint_id,
        "attempts": delivery.attempts,
        "status": delivery.status,
        "response_status": delivery.response_status,
        "error": error,
        "last_attempt_at": iso(delivery.last_attempt_at),
        "next_attempt_at": iso(delivery.next_attempt_at),
        "created_at": iso(delivery.created_at),
        "delivered_at": iso(delivery.delivered_at),
    }


class Webhooks:
    def __init__(
        self,
        store: KeyStore,
        settings: WebhooksConfig,
        *,
        audit: AuditSink,
        clock: Callable[[], float] = time.time,
        resolver: AbstractResolver | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self._audit = audit
        self._clock = clock
        self._resolver = resolver if resolver is not None else WebhookResolver()  # never the loop's own threads

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._clock(), dt.UTC)

    async def _url_problem(self, url: str, tenant: str | None) -> str | None:
        """What the SSRF policy says of a URL now (its form, and every address its host has);
        to a tenant (the portal), what its host resolved to never, see TENANT_REFUSAL."""
        policy = address_policy(self.settings)
        if (problem := policy.url_problem(url)) is not None:
            return problem  # the URL as typed: nothing looked up
        try:
            async with asyncio.timeout(self.settings.timeout):  # a resolver that never answers
                await policy.check_url(url, self._resolver)
        except ValueError as exc:
            return str(exc) if tenant is None else TENANT_REFUSAL
        except TimeoutError:
            return f"its host could not be resolved within {self.settings.timeout:g} s" if tenant is None else TENANT_REFUSAL
        return None

    async def create(self, body: Any, actor: Actor, *, tenant: str | None = None) -> tuple[Endpoint, str]:
        """A new endpoint and its signing secret, which only this return value carries. `tenant`:
        the caller's own tenant (the portal), which the endpoint then belongs to."""
        request = parse(WebhookInput, body)
        problems = rules.Problems()
        if (issue := await self._url_problem(request.url, tenant)) is not None:
            problems.add("url", issue)
        tenant_id = request.tenant_id
        if tenant is not None and tenant_id not in (None, tenant):
            problems.add("tenant_id", "must be your own tenant")
        elif tenant_id is not None and await self.store.get_tenant(tenant_id) is None:
            problems.add("tenant_id", "no such tenant")
        owner = tenant if tenant is not None else tenant_id
        if owner is not None and not problems.details:
            _, count = await self.store.list_endpoints(tenant_id=owner, page=1, per_page=1)
            if count >= self.settings.max_per_tenant:
                problems.add("tenant_id", f"the tenant has {count} webhook endpoints, the most "
                                          f"webhooks.max_per_tenant ({self.settings.max_per_tenant}) allows")
        problems.raise_if_any()
        now = self.now()
        endpoint = Endpoint(
            id=new_id("whk"), url=request.url, tenant_id=owner,
            description=request.description, events=subscription(request.events), secret=new_secret(),
            disabled=False, disabled_reason=None, failing_since=None, created_at=now, updated_at=now,
        )
        await self.store.create_endpoint(endpoint)
        self._audit(actor, "webhook.created", "webhook", endpoint.id, tenant_id=endpoint.tenant_id)
        return endpoint, endpoint.secret

    async def get(self, endpoint_id: str, *, tenant: str | None = None) -> Endpoint:
        endpoint = await self.store.get_endpoint(endpoint_id)
        if endpoint is None or (tenant is not None and endpoint.tenant_id != tenant):
            raise NotFound(f"no webhook {endpoint_id}")
        return endpoint

    async def list_endpoints(self, *, tenant: str | None = None, tenant_filter: str | None = None,
                   page: int = 1, per_page: int = 25) -> tuple[list[Endpoint], int]:
        return await self.store.list_endpoints(tenant_id=tenant if tenant is not None else tenant_filter,
                                               page=page, per_page=per_page)

    async def update(self, endpoint_id: str, body: Any, actor: Actor, *, tenant: str | None = None) -> Endpoint:
        await self.get(endpoint_id, tenant=tenant)
        patch = parse(WebhookPatch, body)
        given = patch.model_fields_set
        changes: dict[str, Any] = {}
        if patch.url is not None:
            if (issue := await self._url_problem(patch.url, tenant)) is not None:
                raise ValidationError(details=[{"field": "url", "issue": issue}])
            changes["url"] = patch.url
        if "description" in given:
            changes["description"] = patch.description  # null clears it
        if patch.disabled is not None:
            changes["disabled"] = patch.disabled
            changes["disabled_reason"] = "admin" if patch.disabled else None
        events = subscription(patch.events) if patch.events is not None else None
        updated = await self.store.update_endpoint(endpoint_id, changes=changes, events=events, at=self.now())
        if updated is None:
            raise NotFound(f"no webhook {endpoint_id}")
        self._audit(actor, "webhook.updated", "webhook", endpoint_id, tenant_id=updated.tenant_id)
        return updated

    async def rotate_secret(self, endpoint_id: str, body: Any, actor: Actor, *,
                            tenant: str | None = None) -> tuple[Endpoint, str]:
        """A new signing secret, which only this return value carries; the one it replaces keeps
        signing beside it for `expires_in` seconds (both signatures in `webhook-signature`), then
        stops. A secret replaced by an earlier rotation stops at once."""
        request = parse(SecretRotationInput, body if body is not None else {})
        await self.get(endpoint_id, tenant=tenant)
        now = self.now()
        until = now + dt.timedelta(seconds=request.expires_in) if request.expires_in else None
        secret = new_secret()
        rotated = await self.store.rotate_endpoint_secret(endpoint_id, secret, previous_until=until, at=now)
        if rotated is None:
            raise NotFound(f"no webhook {endpoint_id}")
        self._audit(actor, "webhook.secret_rotated", "webhook", endpoint_id, tenant_id=rotated.tenant_id,
                    details={"previous_secret_expires_at": iso(until or now) or ""})
        return rotated, secret

    async def delete(self, endpoint_id: str, actor: Actor, *, tenant: str | None = None) -> None:
        endpoint = await self.get(endpoint_id, tenant=tenant)
        if not await self.store.delete_endpoint(endpoint_id):
            raise NotFound(f"no webhook {endpoint_id}")
        self._audit(actor, "webhook.deleted", "webhook", endpoint_id, tenant_id=endpoint.tenant_id)

    async def send_test(self, endpoint_id: str, actor: Actor, *, tenant: str | None = None) -> str:
        """A `webhook.test` event to this endpoint alone; its id."""
        endpoint = await self.get(endpoint_id, tenant=tenant)
        if endpoint.disabled:
            raise Conflict(f"webhook {endpoint_id} is disabled")
        event = webhook_test_event(endpoint.id, endpoint.tenant_id, at=self.now(), actor=actor.name)
        await self.store.add_events([event])
        return event.id

    async def deliveries(self, endpoint_id: str, *, after: int | None, limit: int, newest_first: bool = False,
                         tenant: str | None = None) -> list[Delivery]:
        await self.get(endpoint_id, tenant=tenant)
        if not 1 <= limit <= MAX_DELIVERIES_PAGE:
            raise ValidationError(details=[{"field": "limit", "issue": f"must be from 1 to {MAX_DELIVERIES_PAGE}"}])
        return await self.store.list_deliveries(endpoint_id, after=after, limit=limit, newest_first=newest_first)

    async def retry(self, delivery_id: str, actor: Actor, *, tenant: str | None = None) -> Delivery:
        """Pending again at once, retried for `retry_for` anew if it keeps failing."""
        number = parse_delivery_id(delivery_id)
        delivery = await self.store.get_delivery(number) if number is not None else None
        endpoint = await self.store.get_endpoint(delivery.endpoint_id) if delivery is not None else None
        if delivery is None or endpoint is None or (tenant is not None and endpoint.tenant_id != tenant):
            raise NotFound(f"no delivery {delivery_id}")
        if endpoint.disabled:
            raise Conflict(f"webhook {endpoint.id} is disabled: enable it first")
        retried = await self.store.retry_delivery(delivery.id, self.now())
        if retried is None:
            raise NotFound(f"no delivery {delivery_id}")
        self._audit(actor, "webhook.delivery_retried", "delivery", delivery_id, tenant_id=endpoint.tenant_id)
        return retried
