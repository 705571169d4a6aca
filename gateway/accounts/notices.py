"""What the gateway tells about keys on its own, not asked by anyone: expiry reached or near,
unusual usage, a canary key used. Each once per key across instances (the store decides)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from typing import Any

from gateway.accounts.actors import SYSTEM, Actor
from gateway.accounts.base import AccountsBase
from gateway.accounts.events import key_event

_EXPIRY_MARGIN = dt.timedelta(minutes=10)


class KeyNotices(AccountsBase):
    _expiries_since: dt.datetime | None = None  # where the next look at expiries starts; the first covers all time

    async def note_expired(self, *, batch: int = 500) -> int:
        """`key.expired` in the audit trail for each key whose validity ran out since the last
        look; several instances may look at once, and each key is noted by exactly one."""
        noted = 0
        while True:
            now = self.now()
            found = await self.store.expired_unnoted(now, batch, self._expiries_since)
            for key_id in found:
                key = await self.store.get_key(key_id)
                if key is None:
                    continue
                event = key_event("key.expired", key, at=now, actor=None)
                if not await self.store.note_expiry(key_id, events=[event]):
                    continue  # another instance (or worker) got there first
                self._audit(SYSTEM, "key.expired", "key", key_id, tenant_id=key.tenant_id, key_name=key.name)
                noted += 1
            if len(found) < batch:
                # later looks start a margin before this one (clocks of instances differ a little),
                # not at the beginning of time: the keys table is not scanned every period
                self._expiries_since = now - _EXPIRY_MARGIN
                return noted

    async def note_anomaly(self, key_id: str, anomaly: Mapping[str, Any]) -> bool:
        """A key's unusual usage (`anomaly`: what the usage check found, as the key's `anomaly`
        field shows it): the `key.anomaly` event with it, and its audit entry by `system`. The
        caller reports each anomaly once across instances; False if the key is gone."""
        key = await self.store.get_key(key_id)
        if key is None:
            return False
        await self.store.add_events([key_event("key.anomaly", key, at=self.now(), actor=None, anomaly=dict(anomaly))])
        self._audit(SYSTEM, "key.anomaly", "key", key_id, tenant_id=key.tenant_id, key_name=key.name)
        return True

    async def note_expiring(self, thresholds: Sequence[int], *, batch: int = 500) -> int:
        """`key.expiring` for each live key that came within a threshold (days) of its expiry: once
        per key and threshold, across instances. A key that crossed several thresholds since the
        last look (a short validity, or a long pause) gets one event, for the nearest."""
        sent = 0
        for days in sorted(set(thresholds)):
            wider = sorted(d for d in set(thresholds) if d > days)
            while True:
                now = self.now()
                found = await self.store.expiring_unnoted(now, dt.timedelta(days=days), days, batch)
                for key in found:
                    left = (key.expires_at - now).total_seconds() / 86400 if key.expires_at else 0.0
                    event = key_event("key.expiring", key, at=now, actor=None, days_left=math.ceil(left),
                                      threshold_days=days)
                    if await self.store.note_expiring(key.id, [days, *wider], now, events=[event]):
                        sent += 1
                if len(found) < batch:
                    break
        return sent

    async def note_canary_use(self, key_id: str, *, client_ip: str, user_agent: str | None, path: str,
                              method: str) -> bool:
        """A request made with a canary key (answered 401 as an unknown key): the `key.canary_used`
        event and audit entry, naming where it came from. False if the key is gone."""
        key = await self.store.get_key(key_id)
        if key is None:
            return False
        use = {"client_ip": client_ip, "user_agent": user_agent or "", "method": method, "path": path}
        actor = Actor(SYSTEM.name, client_ip)
        await self.store.add_events([key_event("key.canary_used", key, at=self.now(), actor=actor.name, **use)])
        self._audit(actor, "key.canary_used", "key", key_id, tenant_id=key.tenant_id, key_name=key.name,
                    details={"user_agent": use["user_agent"], "method": method, "path": path})
        return True
