"""Several instances on one PostgreSQL outbox: each event reaches each endpoint once per
attempt, not once per instance, and `key.expiring` goes out once per key and threshold."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from typing import Any

import pytest

from tests.events.conftest import ADMIN, TEST_SETTINGS, MakeOutbox, WallClock
from tests.events.receiver import start_receiver

DAY = 86400.0


async def test_two_instances_deliver_each_of_500_events_exactly_once(make_outbox: MakeOutbox,
                                                                     aiohttp_server: Any) -> None:
    # a delivery given up on at its timeout is attempted again: 30 s, out of a loaded machine's reach
    settings = dataclasses.replace(TEST_SETTINGS, concurrency=8, timeout=30.0)
    writer = await make_outbox(settings, backend="postgres", clock=WallClock())  # where the changes are made
    receiver = await start_receiver(aiohttp_server)
    _, receiver.secret = await writer.webhooks.create({"url": receiver.url, "events": ["tenant.updated"]}, ADMIN)
    await writer.accounts.create_tenant({"id": "acme", "name": "Acme", "plan": "starter"}, ADMIN)
    for i in range(500):
        await writer.accounts.update_tenant("acme", {"name": f"Acme {i}"}, ADMIN)
    # two instances start on a full outbox at once: every claim races the other's
    one = await make_outbox(settings, backend="postgres", clock=WallClock())
    two = await make_outbox(settings, backend="postgres", clock=WallClock())
    one.dispatcher.start()
    two.dispatcher.start()
    await receiver.wait_for(lambda r: len({g.id for g in r.got}) >= 500, timeout=180)  # a loaded machine is slow
    while (await writer.store.backlog())[0]:  # every attempt recorded, none left to repeat
        await asyncio.sleep(0.05)  # polling the database's state, not standing in for an event
    counts = Counter(r.id for r in receiver.got)
    assert len(counts) == 500 and set(counts.values()) == {1}, counts.most_common(3)
    assert all(r.verified and r.status == 200 for r in receiver.got)
    by_instance = [o.metric("gateway_webhook_deliveries_total", result="delivered") for o in (one, two)]
    assert sum(by_instance) == 500
    print(f"\n500 events delivered by two instances: {by_instance[0]:.0f} + {by_instance[1]:.0f}")


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_key_expiring_goes_out_once_per_threshold_across_instances(
        make_outbox: MakeOutbox, aiohttp_server: Any, backend: str) -> None:
    one = await make_outbox(backend=backend)
    two = await make_outbox(backend=backend, clock=one.clock)
    receiver = await start_receiver(aiohttp_server)
    _, receiver.secret = await one.webhooks.create({"url": receiver.url, "events": ["key.expiring"]}, ADMIN)
    await one.accounts.create_tenant({"id": "acme", "name": "Acme", "plan": "starter"}, ADMIN)
    one.clock.advance(-40 * DAY)  # made 40 days ago, for 40 days (signatures are made at today's time)
    key, _ = await one.accounts.create_key({"tenant_id": "acme", "name": "batch", "scope": "read_only",
                                            "validity_days": 40}, ADMIN)
    sent = []
    for day in (0, 5, 19.5, 20.5, 25, 33.5, 35, 39.5, 40.5):  # days after creation
        one.clock.now = key.created_at.timestamp() + day * DAY
        counts = await asyncio.gather(one.accounts.note_expiring([20, 7, 1]), two.accounts.note_expiring([20, 7, 1]),
                                      one.accounts.note_expiring([20, 7, 1]))
        sent.append(sum(counts))
    one.clock.now = key.created_at.timestamp() + 40 * DAY
    while await one.dispatcher.run_once():
        pass
    assert sent == [0, 0, 0, 1, 0, 1, 0, 1, 0]
    assert [r.payload["data"]["days_left"] for r in receiver.got] == [20, 7, 1]
    assert [r.payload["data"]["threshold_days"] for r in receiver.got] == [20, 7, 1]
    assert all(r.verified and r.payload["data"]["key"]["id"] == key.id for r in receiver.got)
