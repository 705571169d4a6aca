"""What every part of the accounts service shares: the store, the config, the clock, the audit
sink, and how a change leaves this process (this instance's caches dropped, the other instances
told). The parts (`tenants.py`, `keys.py`, `leaks.py`, `notices.py`) build on it and
`service.Accounts` joins them.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway.accounts.actors import Actor, AuditSink, Propagator, no_audit
from gateway.config import Config
from gateway.errors import NotFound
from gateway.keystore.base import KeyStore
from gateway.keystore.cache import Invalidator
from gateway.keystore.models import ApiKey, Tenant


@dataclass(frozen=True, slots=True)
class TenantDefaults:
    """The gates a new tenant starts with (`tenants.api_enabled_default`, `write_enabled_default`)."""

    api_enabled: bool = True
    write_enabled: bool = True


class AccountsBase:
    def __init__(
        self,
        store: KeyStore,
        cfg: Config,
        *,
        invalidators: tuple[Invalidator, ...] = (),
        propagator: Propagator | None = None,
        audit: AuditSink = no_audit,
        clock: Callable[[], float] = time.time,
        tenant_defaults: TenantDefaults = TenantDefaults(),
    ) -> None:
        self.store = store
        self.cfg = cfg
        self.tenant_defaults = tenant_defaults
        self._invalidators = invalidators
        self._propagator = propagator
        self._audit = audit
        self._clock = clock

    def record(self, actor: Actor, action: str, target_type: str, target_id: str, *,
               tenant_id: str | None = None) -> None:
        """An audit entry for an action outside this service (a config reload, an invitation)."""
        self._audit(actor, action, target_type, target_id, tenant_id=tenant_id)

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._clock(), dt.UTC)

    async def tenant(self, tenant_id: str) -> Tenant:
        tenant = await self.store.get_tenant(tenant_id)
        if tenant is None:
            raise NotFound(f"no tenant {tenant_id}")
        return tenant

    async def key(self, key_id: str) -> ApiKey:
        key = await self.store.get_key(key_id)
        if key is None:
            raise NotFound(f"no key {key_id}")
        return key

    def _forget_key(self, key_id: str) -> None:
        self._changed("key", key_id)

    def _changed(self, kind: str, target: str) -> None:
        """Drop the object from this instance's caches now, and tell the other instances."""
        for cache in self._invalidators:
            cache.invalidate(kind, target)
        if self._propagator is not None:
            self._propagator.announce(kind, target)

    async def propagate(self, kind: str, target: str, *, wait: float) -> Any:
        """Announce a change again and wait until every other instance confirms it (or `wait`
        passes); None without a propagator (a single instance: its own cache is already clean)."""
        if self._propagator is None:
            return None
        return await self._propagator.publish(kind, target, wait=wait)
