"""Two gateway instances on one PostgreSQL store, both delivering webhooks: every one of 500
events reaches the receiver exactly once (each delivery attempted by one instance)."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

from tests.admin.test_api import Admin
from tests.events.receiver import start_receiver
from tests.services import postgres_url, require_postgres

# a delivery given up on at its timeout is attempted again (the same event twice): 30 s, which a
# loaded machine's receiver in this process does not reach, not the 5 s it might
WEBHOOKS = {"allowed_networks": ["127.0.0.0/8"], "allow_http": True, "timeout": 30}


async def test_two_instances_deliver_each_of_500_events_once(start_gateway: Any, aiohttp_server: Any,
                                                             tmp_path: Path) -> None:
    require_postgres()
    shared = dict(store={"url": postgres_url(tmp_path)}, webhooks=WEBHOOKS)
    first, second = await start_gateway(**shared), await start_gateway(**shared)
    receiver = await start_receiver(aiohttp_server)
    async with aiohttp.ClientSession() as session:
        one, two = Admin(first, session), Admin(second, session)
        status, hook = await one("POST", "/admin/webhooks", {"url": receiver.url, "events": ["tenant.updated"]})
        assert status == 201
        receiver.secret = hook["secret"]
        await one("POST", "/admin/tenants", {"id": "acme", "name": "Acme", "plan": "starter"})
        for i in range(250):  # changes on both instances at once
            answers = await asyncio.gather(one("PATCH", "/admin/tenants/acme", {"name": f"Acme {i}"}),
                                           two("PATCH", "/admin/tenants/acme", {"name": f"Acme {i}b"}))
            assert [a[0] for a in answers] == [200, 200]
        await receiver.wait_for(lambda r: len({g.id for g in r.got}) >= 500, timeout=180)  # a loaded machine is slow
        while True:  # until every attempt is recorded: none is left to be made again
            status, log = await one("GET", f"/admin/webhooks/{hook['id']}/deliveries?limit=1000")
            if all(d["status"] == "delivered" for d in log["data"]) and len(log["data"]) == 500:
                break
            await asyncio.sleep(0.05)  # polling the recorded state, not standing in for an event
    counts = Counter(r.id for r in receiver.got)
    assert len(counts) == 500 and set(counts.values()) == {1}, counts.most_common(3)
    assert all(r.verified for r in receiver.got)
    assert {d["attempts"] for d in log["data"]} == {1}
