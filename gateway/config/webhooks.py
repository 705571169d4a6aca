"""The `webhooks` section: how signed event deliveries are retried, limited and where they may go."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from gateway.config.fields import (
    NETWORK,
    Int,
    List,
    Network,
    Number,
)
from gateway.config.keytypes import SECTION, Count, Flag, Seconds


@dataclass(frozen=True, slots=True)
class WebhooksConfig:
    """Signed webhook deliveries of key, tenant and user events (the README's Webhooks section)."""

    __pydantic_config__ = SECTION
    retry_for: Seconds = 86400
    """A delivery that keeps failing is retried this long (from its event, or from a manual retry),
    then marked failed."""
    timeout: Annotated[float, Number(0, 60)] = 10
    """An attempt's limit, from connecting to the answer's head; a slower receiver is retried."""
    backoff_base: Seconds = 10
    """The wait after a first failed attempt; each later one doubles (drawn from its upper half)."""
    backoff_max: Seconds = 21600
    """The longest wait between two attempts (at least `backoff_base`)."""
    expiring_days: Annotated[tuple[Annotated[int, Int(1, 36500)], ...], List("must be a list of whole days")] = (20, 7, 1)
    """`key.expiring` is sent once as a key comes within each of these numbers of days of its expiry."""
    allowed_networks: Annotated[tuple[Annotated[Network, NETWORK], ...], List("must be a list of CIDRs")] = ()
    """Networks a webhook may reach although they are loopback, private, link-local or otherwise not
    public (refused by default, at creation and at every delivery)."""
    allow_http: Flag = False
    """true: `http://` URLs too (a receiver on the same host, tests); otherwise `https://` only."""
    disable_after: Annotated[float, Number(0, 1e9, open_lo=False)] = 432000
    """An endpoint whose attempts have all failed for this long is disabled, with an audit entry (0: never)."""
    retention_days: Count = 30
    """Delivered and failed events, with their delivery log, are kept this long."""
    concurrency: Annotated[int, Int(1, 1000)] = 16
    """Attempts in flight at once, per gateway process; one tenant's endpoints take at most a quarter
    of them (endpoints for every tenant's events are not capped)."""
    poll_interval: Annotated[float, Number(0, 60)] = 2
    """The longest wait before looking for due deliveries (changes made by this process start them at
    once; other instances' within this)."""
    max_per_tenant: Annotated[int, Int(1, 100000)] = 20
    """Endpoints a tenant may have (the admin API's and the portal's together; every-tenant endpoints
    aside): each takes a delivery of every event it subscribes to, from the attempts all tenants
    share, so one tenant's thousands of endpoints would hold back everyone's deliveries."""
