"""A tenant always keeps an active owner, even when its owners take each other's role away at
the same moment: the store decides it in the write, on SQLite and on PostgreSQL alike."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.services import drop_schema, postgres_url, require_postgres

TENANTS = 4


@pytest.fixture(params=["sqlite", "postgres"])
async def store_config(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    """The store section for the gateway: set up before it and torn down after it has stopped."""
    if request.param == "sqlite":
        yield {}
        return
    require_postgres()
    yield {"store": {"url": postgres_url(tmp_path)}}
    await drop_schema(postgres_url(tmp_path))


async def test_two_owners_demoting_each_other_at_once_leave_the_tenant_one(store_config, start_portal) -> None:
    site = await start_portal(**store_config)
    pairs = []
    for i in range(TENANTS):
        await site.tenant(f"t{i}", f"Tenant {i}")
        first = await site.member(f"t{i}", f"one@t{i}.example")
        second = await site.member(f"t{i}", f"two@t{i}.example")
        ids = [(await browser.api("GET", "/me"))[1]["user"]["id"] for browser in (first, second)]
        pairs.append((first, second, ids))
    # every owner takes the other owner of their tenant away, all requests in flight together
    requests = []
    for first, second, (one, two) in pairs:
        requests.append(first.api("PATCH", f"/users/{two}", {"role": "admin"}))
        requests.append(second.api("PATCH", f"/users/{one}", {"disabled": True}))
    answers = await asyncio.gather(*requests)
    for i in range(TENANTS):
        statuses = sorted(status for status, _ in answers[2 * i:2 * i + 2])
        # the one that came second is refused: the tenant's last owner (422), or, when it was
        # the refused one's own session that went with its demotion, 401 / 403
        assert statuses[0] == 200 and statuses[1] in (401, 403, 422), answers[2 * i:2 * i + 2]
        users = site.gateway.accounts.store
        owners = [u for u in await users.list_users(f"t{i}") if u.role == "owner" and not u.disabled]
        assert len(owners) == 1, (f"t{i}", answers[2 * i:2 * i + 2])
