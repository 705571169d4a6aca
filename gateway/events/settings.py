"""What the events package reads of the `webhooks` section (declared in gateway/config/webhooks.py)."""

from __future__ import annotations

from gateway.config import WebhooksConfig
from gateway.events.addresses import AddressPolicy

LEASE_MARGIN = 5.0  # seconds a claim outlives its attempt's timeout


def lease(settings: WebhooksConfig) -> float:
    """How long a claim holds a delivery: past the attempt's timeout, so a live holder always
    finishes first, and short, so a dead holder's delivery is taken over soon."""
    return settings.timeout + LEASE_MARGIN


def address_policy(settings: WebhooksConfig) -> AddressPolicy:
    return AddressPolicy(settings.allowed_networks, settings.allow_http)
