"""What the portal's handlers work with, built once and handed to the app under one key."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from gateway.accounts.people import People
from gateway.accounts.service import Accounts
from gateway.accounts.views import key_view, plain
from gateway.events.service import Webhooks
from gateway.keystore.models import ApiKey, Tenant
from gateway.observability.recorder import Recorder
from gateway.portal.http import Origins
from gateway.portal.sessions import Sessions
from gateway.portal.throttle import DoorThrottle


@dataclass
class Portal:
    accounts: Accounts
    people: People
    sessions: Sessions
    throttle: DoorThrottle
    origins: Origins
    webhooks: Webhooks                # the tenant's own endpoints (`api_webhooks.py`)
    recorder: Recorder | None = None
    path: str = "/portal"
    background: set[asyncio.Task[Any]] = field(default_factory=set)

    def later(self, work: Coroutine[Any, Any, Any]) -> None:
        """Work the answer must not wait for (nor its timing reveal)."""
        task = asyncio.get_running_loop().create_task(work)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def close(self) -> None:
        if self.background:
            await asyncio.wait(self.background, timeout=10.0)

    # the admin API's shapes, with what the portal adds

    def key(self, key: ApiKey, secret: str | None = None) -> dict[str, Any]:
        view = key_view(key, self.accounts.now(), self.accounts.cfg.keys.expiring_soon_days)
        if secret is not None:
            view["key"] = secret
        return view

    def tenant(self, tenant: Tenant) -> dict[str, Any]:
        view = dict(plain(tenant))
        view["requests_per_minute"] = self.accounts.plan_limit(tenant)
        view["max_keys"] = self.accounts.cfg.keys.max_per_tenant
        return view


PORTAL: web.AppKey[Portal] = web.AppKey("portal", Portal)
