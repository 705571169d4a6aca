"""Deliveries as a receiver sees them: every event type signed and verified with
`standardwebhooks`, the same `webhook-id` on every retry, delivered after a receiver's outage,
given up after `retry_for`, never lost to an instance that dies or stops mid-attempt."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from typing import Any

import pytest

from gateway.accounts.events import EVENT_TYPES, key_event
from gateway.events.dispatcher import retry_delay
from gateway.events.settings import lease
from tests.events.conftest import ADMIN, TEST_SETTINGS, MakeOutbox, Outbox, WallClock
from tests.events.receiver import Receiver, start_receiver

DAY = 86400.0


async def subscribe(outbox: Outbox, receiver: Receiver, events: list[str] | None = None, **body: Any) -> str:
    endpoint, secret = await outbox.webhooks.create({"url": receiver.url, "events": events or ["*"], **body}, ADMIN)
    receiver.secret = secret
    return endpoint.id


async def drain(outbox: Outbox) -> int:
    """Attempt everything due now, until nothing is."""
    total = 0
    while n := await outbox.dispatcher.run_once():
        total += n
    return total


async def test_every_event_type_arrives_signed_and_verifies(make_outbox: MakeOutbox, aiohttp_server: Any) -> None:
    outbox = await make_outbox()
    receiver = await start_receiver(aiohttp_server)
    hook = await subscribe(outbox, receiver)
    accounts, clock = outbox.accounts, outbox.clock
    tenant = await accounts.create_tenant({"id": "acme", "name": "Acme", "plan": "starter"}, ADMIN)
    await accounts.update_tenant("acme", {"plan": "professional"}, ADMIN)
    user = await accounts.create_user("acme", {"name": "Ada", "email": "ada@example.com", "role": "admin"}, ADMIN)
    await accounts.update_user(user.id, {"role": "viewer"}, ADMIN)
    doomed, doomed_secret = await accounts.create_key({"tenant_id": "acme", "name": "ci", "scope": "read_only"}, ADMIN)
    rotated, rotated_secret = await accounts.rotate_key(doomed.id, ADMIN)
    await accounts.revoke_key(rotated.id, ADMIN)
    clock.advance(-10 * DAY - 60)  # a key made ten days ago for ten days (signatures stay current)
    await accounts.create_key({"tenant_id": "acme", "name": "old", "scope": "read_only", "validity_days": 10}, ADMIN)
    clock.advance(10 * DAY + 60)
    expiring, _ = await accounts.create_key({"tenant_id": "acme", "name": "batch", "scope": "read_only",
                                             "validity_days": 10}, ADMIN)
    assert await accounts.note_expiring([20, 7, 1]) == 1
    assert await accounts.note_expired() == 1
    # the events other parts of the gateway make, through the same outbox
    for kind in ("key.exposed", "key.canary_used", "key.anomaly"):
        await outbox.store.add_events([key_event(kind, expiring, at=outbox.accounts.now(), actor="system")])
    await outbox.webhooks.send_test(hook, ADMIN)
    await drain(outbox)
    got = receiver.delivered()
    types = [r.payload["type"] for r in got]
    assert sorted(set(types)) == sorted(EVENT_TYPES) and len(types) == len(EVENT_TYPES) + 2, " ".join(types)
    assert types.count("key.created") == 3  # ci, old and batch
    assert all(r.verified for r in got)
    by_type = {r.payload["type"]: r.payload for r in got}
    for name in ("key.created", "key.rotated", "key.revoked", "key.expiring", "key.expired"):
        data = by_type[name]["data"]
        assert {"id", "name", "tenant_id", "last4"} <= set(data["key"]), name
    assert doomed.id in [r.payload["data"]["key"]["id"] for r in got if r.payload["type"] == "key.created"]
    assert by_type["key.expired"]["data"]["key"]["name"] == "old"
    assert by_type["key.rotated"]["data"]["new_key"]["id"] == rotated.id
    assert by_type["key.revoked"]["data"]["key"]["revoked_at"] is not None
    assert by_type["key.expiring"]["data"]["days_left"] == 10
    assert by_type["tenant.updated"]["data"]["tenant"] == {**by_type["tenant.created"]["data"]["tenant"],
                                                           "plan": "professional"}
    assert by_type["tenant.updated"]["data"]["changes"] == ["plan"] and tenant.id == "acme"
    assert by_type["user.updated"]["data"]["user"]["role"] == "viewer"
    assert by_type["webhook.test"]["data"]["webhook_id"] == hook
    everything = b"".join(r.body for r in got)
    for secret in (doomed_secret, rotated_secret):  # never a key's secret, nor its hash
        assert secret.encode() not in everything and secret[-12:].encode() not in everything
    assert b"secret_hash" not in everything and receiver.secret.encode() not in everything  # type: ignore[union-attr]
    assert len({r.id for r in got}) == len(got)


async def test_the_same_id_and_body_on_every_retry_until_delivered(make_outbox: MakeOutbox, aiohttp_server: Any) -> None:
    outbox = await make_outbox()
    receiver = await start_receiver(aiohttp_server, Receiver(answers=[503, 500, 502]))  # down for three attempts
    await subscribe(outbox, receiver, ["tenant.created"])
    await outbox.accounts.create_tenant({"id": "acme", "name": "Acme", "plan": "starter"}, ADMIN)
    waits = []
    for attempt in range(1, 5):
        assert await outbox.dispatcher.run_once() == 1
        assert await outbox.dispatcher.run_once() == 0  # not due again yet
        wait = retry_delay(attempt, TEST_SETTINGS.backoff_base, TEST_SETTINGS.backoff_max, lambda: 1.0)
        waits.append(wait)
        outbox.clock.advance(wait)
    assert [r.status for r in receiver.got] == [503, 500, 502, 200]
    assert len({r.id for r in receiver.got}) == 1 and len({r.body for r in receiver.got}) == 1
    assert all(r.verified for r in receiver.got)
    assert waits[:3] == [10.0, 20.0, 40.0]  # growing delays
    (delivery,) = await outbox.store.list_deliveries((await outbox.store.list_endpoints(page=1, per_page=1))[0][0].id,
                                                      after=None, limit=5)
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("delivered", 4, 200)
    assert outbox.metric("gateway_webhook_deliveries_total", result="retrying") == 3
    assert outbox.metric("gateway_webhook_deliveries_total", result="delivered") == 1
    assert outbox.metric("gateway_webhook_attempt_duration_seconds_count") == 4


async def test_the_running_dispatcher_retries_on_its_own(make_outbox: MakeOutbox, aiohttp_server: Any) -> None:
    settings = dataclasses.replace(TEST_SETTINGS, backoff_base=0.02, backoff_max=0.1)  # no real minutes
    outbox = await make_outbox(settings, start=True, clock=WallClock())  # a running loop waits in real time
    receiver = await start_receiver(aiohttp_server, Receiver(answers=[503, 503, 503]))
    await subscribe(outbox, receiver)
    await outbox.accounts.create_tenant({"id": "acme", "name": "Acme", "plan": "starter"}, ADMIN)
    await receiver.wait_for(lambda r: len(r.delivered()) == 1)
    assert [r.status for r in receiver.got] == [503, 503, 503, 200] and len({r.id for r in receiver.got}) == 1


async def test_a_delivery_is_given_up_after_retry_for(make_outbox: MakeOutbox, aiohttp_server: Any) -> None:
    settings = dataclasses.replace(TEST_SETTINGS, retry_for=100.0, backoff_base=30.0)
    outbox = await make_outbox(settings)
    receiver = await start_receiver(aiohttp_server, Receiver(answers=[500] * 100))
    hook = await subscribe(outbox, receiver)
    await outbox.accounts.create_tenant({"id": "acme", "name": "Acme", "plan": "starter"}, ADMIN)
    started = outbox.clock.now
    for _ in range(10):
        await drain(outbox)
        due = await outbox.store.next_due()
        if due is None:
            break
        outbox.clock.now = due.timestamp()
    offsets = [round(outbox.clock.now - started)]
    (delivery,) = await outbox.store.list_deliveries(hook, after=None, limit=5)
    assert delivery.status == "failed" and delivery.next_attempt_at is None
    assert delivery.attempts == 4 and offsets == [100]  # at 0, 30, 90, and a last one at the deadline
    assert len(receiver.got) == 4 and len({r.id for r in receiver.got}) == 1
    assert outbox.metric("gateway_webhook_deliveries_total", result="failed") == 1
    retried = await outbox.webhooks.retry(f"dlv_{delivery.id}", ADMIN)  # by hand: one more window
    assert retried.status == "pending"
    assert ("admin", "webhook.delivery_retried", f"dlv_{delivery.id}") in outbox.audit
    receiver.answers.clear()
    await drain(outbox)
    assert (await outbox.store.get_delivery(delivery.id)).status == "delivered"  # type: ignore[union-attr]
    assert [r.id for r in receiver.got][-1] == receiver.got[0].id


async def test_an_instance_that_dies_mid_attempt_leaves_the_delivery_to_another(
        make_outbox: MakeOutbox, aiohttp_server: Any) -> None:
    first = await make_outbox()
    receiver = await start_receiver(aiohttp_server)
    await subscribe(first, receiver)
    await first.accounts.create_tenant({"id": "acme", "name": "Acme", "plan": "starter"}, ADMIN)
    now = first.accounts.now()
    (claimed,) = await first.store.claim_deliveries(
        now, lease_until=now + dt.timedelta(seconds=lease(TEST_SETTINGS)), limit=5)
    # ... and the instance dies here, its lease on the delivery held
    second = await make_outbox(clock=first.clock)
    assert await second.dispatcher.run_once() == 0
    first.clock.advance(lease(TEST_SETTINGS))
    assert await second.dispatcher.run_once() == 1
    assert [(r.id, r.status) for r in receiver.got] == [(claimed.event_id, 200)]


async def test_a_stopping_instance_gives_its_attempts_back(make_outbox: MakeOutbox, aiohttp_server: Any) -> None:
    first = await make_outbox(start=True)
    receiver = await start_receiver(aiohttp_server, Receiver(hang=True))
    await subscribe(first, receiver)
    await first.accounts.create_tenant({"id": "acme", "name": "Acme", "plan": "starter"}, ADMIN)
    await receiver.wait_count(1)
    await first.dispatcher.stop(grace=0)  # the attempt in flight is cancelled
    receiver.hang = False
    second = await make_outbox(clock=first.clock)
    assert await second.dispatcher.run_once() == 1  # at once, not after the lease
    assert [r.status for r in receiver.delivered()] == [200] and receiver.got[0].id == receiver.got[1].id
    receiver.release.set()


async def test_an_endpoint_failing_for_days_is_disabled_with_an_audit_entry(
        make_outbox: MakeOutbox, aiohttp_server: Any) -> None:
    settings = dataclasses.replace(TEST_SETTINGS, disable_after=3 * DAY, backoff_max=3600.0, retry_for=5 * DAY)
    outbox = await make_outbox(settings)
    receiver = await start_receiver(aiohttp_server, Receiver(answers=[500] * 1000))
    hook = await subscribe(outbox, receiver)
    await outbox.accounts.create_tenant({"id": "acme", "name": "Acme", "plan": "starter"}, ADMIN)
    for _ in range(3 * 24 + 2):
        await drain(outbox)
        await outbox.dispatcher.maintain()
        outbox.clock.advance(3600)
    endpoint = await outbox.store.get_endpoint(hook)
    assert endpoint is not None and endpoint.disabled and endpoint.disabled_reason == "failing"
    assert [a for a in outbox.audit if a[1] == "webhook.disabled"] == [("system", "webhook.disabled", hook)]
    (delivery,) = await outbox.store.list_deliveries(hook, after=None, limit=5)
    assert delivery.status == "failed"
    attempts = len(receiver.got)
    outbox.clock.advance(DAY)
    await drain(outbox)
    assert len(receiver.got) == attempts  # nothing more is sent to it


async def test_a_success_resets_the_failing_clock(make_outbox: MakeOutbox, aiohttp_server: Any) -> None:
    settings = dataclasses.replace(TEST_SETTINGS, disable_after=3 * DAY, backoff_max=3600.0, retry_for=5 * DAY)
    outbox = await make_outbox(settings)
    receiver = await start_receiver(aiohttp_server, Receiver(answers=[500] * 60))  # 2.5 days of failures
    hook = await subscribe(outbox, receiver)
    await outbox.accounts.create_tenant({"id": "acme", "name": "Acme", "plan": "starter"}, ADMIN)
    for _ in range(4 * 24):
        await drain(outbox)
        await outbox.dispatcher.maintain()
        outbox.clock.advance(3600)
    endpoint = await outbox.store.get_endpoint(hook)
    assert endpoint is not None and not endpoint.disabled and endpoint.failing_since is None
    assert [r.status for r in receiver.delivered()] == [200]


async def test_concurrent_attempts_do_not_wait_on_a_slow_receiver(make_outbox: MakeOutbox, aiohttp_server: Any) -> None:
    outbox = await make_outbox(start=True)
    slow = await start_receiver(aiohttp_server, Receiver(hang=True))
    quick = await start_receiver(aiohttp_server)
    await subscribe(outbox, slow, ["tenant.created"])
    await subscribe(outbox, quick, ["tenant.updated"])
    await outbox.accounts.create_tenant({"id": "acme", "name": "Acme", "plan": "starter"}, ADMIN)
    await slow.wait_count(1)
    await outbox.accounts.update_tenant("acme", {"name": "Acme Inc"}, ADMIN)
    await quick.wait_count(1)
    slow.release.set()
    await asyncio.sleep(0)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_tenant_whose_receiver_hangs_keeps_to_its_share_of_the_attempts(
        make_outbox: MakeOutbox, aiohttp_server: Any, backend: str) -> None:
    """A tenant's receiver that never answers, and events for it by the dozen (test events, key
    rotations: anyone with a portal admin account makes them): claimed by due time alone, they
    took every attempt in flight, and every other tenant's deliveries waited behind them until
    they timed out, for as long as the backlog lasted. A tenant's endpoints now have at most a
    quarter of the attempts in flight; another tenant's delivery goes out meanwhile."""
    settings = dataclasses.replace(TEST_SETTINGS, concurrency=4, timeout=60)  # a tenant's share: 1
    outbox = await make_outbox(settings, backend=backend, start=True)
    for tenant in ("hog", "acme"):
        await outbox.accounts.create_tenant({"id": tenant, "name": tenant, "plan": "starter"}, ADMIN)
    hanging = await start_receiver(aiohttp_server, Receiver(hang=True))
    quick = await start_receiver(aiohttp_server)
    hog = await subscribe(outbox, hanging, ["webhook.test"], tenant_id="hog")
    acme = await subscribe(outbox, quick, ["webhook.test"], tenant_id="acme")
    for _ in range(6):
        await outbox.webhooks.send_test(hog, ADMIN)
    await hanging.wait_count(1)
    await outbox.webhooks.send_test(acme, ADMIN)
    try:
        await asyncio.wait_for(quick.wait_count(1), 30)  # a liveness bound: the hanging attempts last 60 s
        assert len(hanging.got) == outbox.dispatcher.tenant_share == 1
    finally:
        hanging.release.set()
