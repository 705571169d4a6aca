"""Tenant, user and key operations with their rules, cache invalidation and audit, in one place.

The admin API and the CLI both call this, so a key created either way obeys the same rules, and
every change drops the affected identities from this process's cache before it returns, so a
revoked key fails on its very next request here. Each change writes its webhook event in its own
store transaction (the outbox), so an event is never lost nor sent for a change that failed.

`Accounts` joins the parts, one concern each: `base.py` (what they share), `tenants.py`, `keys.py`,
`leaks.py` (keys seen leaked) and `notices.py` (expiry, anomaly and canary events).
"""

from __future__ import annotations

from gateway.accounts.keys import KeyLifecycle
from gateway.accounts.leaks import Exposures
from gateway.accounts.notices import KeyNotices
from gateway.accounts.tenants import TenantsAndUsers


class Accounts(TenantsAndUsers, KeyLifecycle, Exposures, KeyNotices):
    """The accounts service: every operation on tenants, users and keys."""
