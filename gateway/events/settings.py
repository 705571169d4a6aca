"""The webhook settings the events package works with (the `webhooks` section of the config)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from gateway.events.addresses import AddressPolicy, Network


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    retry_for: float = 86400.0  # seconds a failing delivery is retried before it is marked failed
    timeout: float = 10.0  # seconds an attempt may take, connect to the answer's head
    backoff_base: float = 10.0  # the first retry's delay; each later one doubles, with jitter
    backoff_max: float = 21600.0  # the longest delay between two attempts
    expiring_days: tuple[int, ...] = (20, 7, 1)
    allowed_networks: tuple[Network, ...] = ()
    allow_http: bool = False
    disable_after: float = 432000.0  # an endpoint failing this long (no delivery) is disabled; 0: never
    retention_days: float = 30.0  # settled events (and their deliveries) are kept this long
    concurrency: int = 16  # attempts in flight at once per instance
    poll_interval: float = 2.0  # the longest wait before looking for due deliveries again

    @property
    def lease(self) -> float:
        """How long a claim holds a delivery: past the attempt's timeout, so a live holder
        always finishes first, and short, so a dead holder's delivery is taken over soon."""
        return self.timeout + 5.0

    def policy(self) -> AddressPolicy:
        return AddressPolicy(self.allowed_networks, self.allow_http)


def webhook_settings(section: Any) -> WebhookSettings:
    """The settings of the config's `webhooks` section (fields of the same names)."""
    return WebhookSettings(**{f.name: getattr(section, f.name) for f in fields(WebhookSettings)})
