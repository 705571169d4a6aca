"""The webhook outbox on every key store backend, against real databases: events written in the
transaction of their change, fan-out to matching endpoints, exclusive leased claims, outcomes,
retries, disabling, paging, retention, and `key.expiring` noted once per key and threshold."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.accounts.events import key_event, new_event, tenant_event, webhook_test_event
from gateway.credentials.keyformat import new_id
from gateway.keystore.base import DuplicateError, KeyStore
from gateway.keystore.outbox import Claim, Endpoint, NewEvent
from tests.keystore.test_store_conformance import BACKENDS, DAY, T0, key, open_store, store, tenant  # noqa: F401
from tests.services import drop_schema, postgres_url, require_postgres

LEASE = dt.timedelta(seconds=30)


@pytest.fixture(params=BACKENDS)
async def pair(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[KeyStore, KeyStore]]:
    """Two connections to one database: two gateway instances (or workers)."""
    if request.param == "postgres":
        require_postgres()
    first = await open_store(request.param, tmp_path)
    second = await open_store(request.param, tmp_path)
    yield first, second
    await first.close()
    await second.close()
    if request.param == "postgres":
        await drop_schema(postgres_url(tmp_path))


def endpoint(tenant_id: str | None = None, events: tuple[str, ...] = ("*",), *, disabled: bool = False,
             url: str = "https://hooks.example.com/x") -> Endpoint:
    return Endpoint(id=new_id("whk"), url=url, tenant_id=tenant_id, description=None, events=events,
                    secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", disabled=disabled,
                    disabled_reason="admin" if disabled else None, failing_since=None, created_at=T0, updated_at=T0)


def event(type: str = "key.created", tenant_id: str | None = "acme", at: dt.datetime = T0) -> NewEvent:
    return new_event(type, {"n": 1}, at=at, tenant_id=tenant_id)


async def event_ids(store: KeyStore, endpoint_id: str) -> list[str]:
    return [d.event_id for d in await store.list_deliveries(endpoint_id, after=None, limit=1000)]


async def claim(store: KeyStore, at: dt.datetime, limit: int = 100) -> list[Claim]:
    return await store.claim_deliveries(at, lease_until=at + LEASE, limit=limit)


async def test_an_event_is_stored_with_its_change_or_not_at_all(store: KeyStore) -> None:
    hook = await store.create_endpoint(endpoint())
    acme = tenant()
    created = tenant_event("tenant.created", acme, at=T0, actor="admin")
    await store.create_tenant(acme, events=[created])
    duplicate = tenant_event("tenant.created", acme, at=T0, actor="admin")
    with pytest.raises(DuplicateError):
        await store.create_tenant(acme, events=[duplicate])  # rolled back: its event with it
    missing = tenant_event("tenant.updated", tenant("nope"), at=T0, actor="admin")
    assert await store.update_tenant("nope", name="x", at=T0, events=[missing]) is None
    made, _ = key()
    made_event = key_event("key.created", made, at=T0, actor="admin")
    await store.create_key(made, events=[made_event])
    first, second = (key_event("key.revoked", made, at=T0, actor="admin") for _ in range(2))
    await store.revoke_key(made.id, T0, events=[first])
    await store.revoke_key(made.id, T0 + DAY, events=[second])  # already revoked: no change, no event
    successor, _ = key()
    rotated = key_event("key.rotated", made, at=T0, actor="admin")
    assert await store.rotate_key(made.id, successor, T0, events=[rotated]) is None
    expired = [key_event("key.expired", made, at=T0, actor=None) for _ in range(2)]
    assert await store.note_expiry(made.id, events=[expired[0]]) is True
    assert await store.note_expiry(made.id, events=[expired[1]]) is False
    assert await event_ids(store, hook.id) == [created.id, made_event.id, first.id, expired[0].id]
    deliveries = await store.list_deliveries(hook.id, after=None, limit=10)
    assert [(d.event_type, d.status, d.attempts, d.tenant_id) for d in deliveries] == [
        ("tenant.created", "pending", 0, "acme"), ("key.created", "pending", 0, "acme"),
        ("key.revoked", "pending", 0, "acme"), ("key.expired", "pending", 0, "acme")]


async def test_events_reach_the_matching_enabled_endpoints_only(store: KeyStore) -> None:
    await store.create_tenant(tenant())
    everything = await store.create_endpoint(endpoint())
    acme_only = await store.create_endpoint(endpoint("acme"))
    revocations = await store.create_endpoint(endpoint(None, ("key.revoked", "key.rotated")))
    off = await store.create_endpoint(endpoint(disabled=True))
    await store.create_tenant(tenant("beta"))
    beta_only = await store.create_endpoint(endpoint("beta"))
    created, revoked, beta_revoked = event("key.created"), event("key.revoked"), event("key.revoked", "beta")
    await store.add_events([created, revoked, beta_revoked])
    assert await event_ids(store, everything.id) == [created.id, revoked.id, beta_revoked.id]
    assert await event_ids(store, acme_only.id) == [created.id, revoked.id]
    assert await event_ids(store, revocations.id) == [revoked.id, beta_revoked.id]
    assert await event_ids(store, off.id) == []
    assert await event_ids(store, beta_only.id) == [beta_revoked.id]
    test = webhook_test_event(acme_only.id, "acme", at=T0, actor="admin")  # to one endpoint, whatever it takes
    await store.add_events([test])
    assert await event_ids(store, acme_only.id) == [created.id, revoked.id, test.id]
    assert test.id not in await event_ids(store, everything.id)


async def test_claims_are_exclusive_and_a_dead_holders_lease_runs_out(pair: tuple[KeyStore, KeyStore]) -> None:
    one, two = pair
    hook = await one.create_endpoint(endpoint())
    events = [event() for _ in range(40)]
    await one.add_events(events)
    first, second = await asyncio.gather(claim(one, T0, 25), claim(two, T0, 25))
    ids = [c.delivery_id for c in first + second]
    assert len(ids) == 40 and len(set(ids)) == 40  # every delivery to exactly one claimer
    assert {c.event_id for c in first + second} == {e.id for e in events}
    assert all(c.attempt == 1 and c.url == hook.url and c.secret == hook.secret for c in first + second)
    assert {c.body for c in first} <= {e.body for e in events}
    assert await claim(one, T0 + LEASE - dt.timedelta(seconds=1)) == []  # leased
    again = await claim(two, T0 + LEASE)  # the holders died: their leases ran out
    assert sorted(c.delivery_id for c in again) == sorted(ids) and {c.attempt for c in again} == {2}
    stale = first[0]
    assert await one.finish_delivery(stale, at=T0 + LEASE, status="delivered", response_status=200, error=None,
                                     next_attempt_at=None) is False  # its lease is someone else's now
    current = next(c for c in again if c.delivery_id == stale.delivery_id)
    assert await two.finish_delivery(current, at=T0 + LEASE, status="delivered", response_status=200, error=None,
                                     next_attempt_at=None) is True


async def test_an_outcome_schedules_the_next_attempt_or_settles(store: KeyStore) -> None:
    hook = await store.create_endpoint(endpoint())
    await store.add_events([event(), event()])
    retried, failed = await claim(store, T0)
    later = T0 + dt.timedelta(seconds=60)
    assert await store.finish_delivery(retried, at=T0, status="pending", response_status=503, error="HTTP 503",
                                       next_attempt_at=later)
    assert await store.finish_delivery(failed, at=T0, status="failed", response_status=None, error="timeout",
                                       next_attempt_at=None)
    got = await store.get_delivery(retried.delivery_id)
    assert got is not None and (got.status, got.attempts, got.response_status, got.error) == ("pending", 1, 503, "HTTP 503")
    assert got.next_attempt_at == later and got.last_attempt_at == T0
    assert await store.next_due() == later
    assert await store.backlog() == (1, T0)
    failing = await store.get_endpoint(hook.id)
    assert failing is not None and failing.failing_since == T0
    assert await claim(store, later - dt.timedelta(seconds=1)) == []
    (second,) = await claim(store, later)
    assert second.attempt == 2 and second.event_id == retried.event_id
    assert await store.finish_delivery(second, at=later, status="delivered", response_status=204, error=None,
                                       next_attempt_at=None)
    done = await store.get_delivery(retried.delivery_id)
    assert done is not None and (done.status, done.delivered_at, done.next_attempt_at) == ("delivered", later, None)
    assert (await store.get_endpoint(hook.id)).failing_since is None  # type: ignore[union-attr]
    gone = await store.get_delivery(failed.delivery_id)
    assert gone is not None and gone.status == "failed" and gone.next_attempt_at is None
    assert await store.backlog() == (0, None) and await store.next_due() is None


async def test_a_manual_retry_makes_a_settled_delivery_due_now(store: KeyStore) -> None:
    await store.create_endpoint(endpoint())
    await store.add_events([event(), event()])
    settled, held = await claim(store, T0)
    await store.finish_delivery(settled, at=T0, status="failed", response_status=500, error="HTTP 500",
                                next_attempt_at=None)
    now = T0 + 3 * DAY
    retried = await store.retry_delivery(settled.delivery_id, now)
    assert retried is not None and (retried.status, retried.next_attempt_at) == ("pending", now)
    during = await store.retry_delivery(held.delivery_id, T0 + dt.timedelta(seconds=1))  # being attempted
    assert during is not None and during.next_attempt_at == T0
    await store.finish_delivery(held, at=T0, status="delivered", response_status=200, error=None, next_attempt_at=None)
    (again,) = await claim(store, now)
    assert again.delivery_id == settled.delivery_id and again.retry_from == now and again.attempt == 2
    assert await store.retry_delivery(10**9, now) is None


async def test_disabling_an_endpoint_fails_what_it_had_pending(store: KeyStore) -> None:
    hook = await store.create_endpoint(endpoint())
    await store.add_events([event(), event(), event()])
    in_flight, _ = await claim(store, T0, 2)  # two attempts under way
    off = await store.update_endpoint(hook.id, changes={"disabled": True, "disabled_reason": "admin"}, at=T0)
    assert off is not None and off.disabled and off.disabled_reason == "admin"
    statuses = [d.status for d in await store.list_deliveries(hook.id, after=None, limit=10)]
    assert statuses == ["failed"] * 3
    await store.finish_delivery(in_flight, at=T0, status="pending", response_status=503, error="HTTP 503",
                                next_attempt_at=T0 + DAY)  # an attempt that was in flight: failed, not rescheduled
    settled = await store.get_delivery(in_flight.delivery_id)
    assert settled is not None and (settled.status, settled.next_attempt_at) == ("failed", None)
    await store.add_events([event()])  # nothing new reaches a disabled endpoint
    assert len(await store.list_deliveries(hook.id, after=None, limit=10)) == 3
    on = await store.update_endpoint(hook.id, changes={"disabled": False}, at=T0)
    assert on is not None and not on.disabled and on.disabled_reason is None and on.failing_since is None
    assert await claim(store, T0 + 2 * DAY) == []


async def test_a_failing_endpoint_is_disabled_once_whoever_checks(pair: tuple[KeyStore, KeyStore]) -> None:
    one, two = pair
    hook = await one.create_endpoint(endpoint())
    healthy = await one.create_endpoint(endpoint(None, ("tenant.created",)))
    await one.add_events([event()])
    (attempt,) = await claim(one, T0)
    await one.finish_delivery(attempt, at=T0, status="pending", response_status=500, error="HTTP 500",
                              next_attempt_at=T0 + DAY)
    assert await one.disable_failing_endpoints(T0 - dt.timedelta(seconds=1), T0) == []  # not for long enough
    found = await asyncio.gather(one.disable_failing_endpoints(T0, T0 + 5 * DAY),
                                 two.disable_failing_endpoints(T0, T0 + 5 * DAY))
    assert sorted(len(f) for f in found) == [0, 1]
    (disabled,) = found[0] or found[1]
    assert disabled.id == hook.id and disabled.disabled and disabled.disabled_reason == "failing"
    assert (await one.get_delivery(attempt.delivery_id)).status == "failed"  # type: ignore[union-attr]
    assert not (await one.get_endpoint(healthy.id)).disabled  # type: ignore[union-attr]


async def test_deliveries_page_by_cursor_both_ways(store: KeyStore) -> None:
    hook = await store.create_endpoint(endpoint())
    await store.add_events([event() for _ in range(5)])
    every = [d.id for d in await store.list_deliveries(hook.id, after=None, limit=10)]
    assert every == sorted(every) and len(every) == 5
    assert [d.id for d in await store.list_deliveries(hook.id, after=None, limit=2)] == every[:2]
    assert [d.id for d in await store.list_deliveries(hook.id, after=every[1], limit=2)] == every[2:4]
    newest = [d.id for d in await store.list_deliveries(hook.id, after=None, limit=2, newest_first=True)]
    assert newest == every[::-1][:2]
    assert [d.id for d in await store.list_deliveries(hook.id, after=every[3], limit=9, newest_first=True)] == every[2::-1]


async def test_endpoints_update_list_and_delete(store: KeyStore) -> None:
    await store.create_tenant(tenant())
    hook = await store.create_endpoint(endpoint("acme", ("key.created", "key.revoked")))
    other = await store.create_endpoint(endpoint())
    assert await store.get_endpoint(hook.id) == hook
    changed = await store.update_endpoint(hook.id, changes={"url": "https://new.example.com/h", "description": "ops"},
                                          events=["*"], at=T0 + DAY)
    assert changed is not None and (changed.url, changed.description, changed.events) == (
        "https://new.example.com/h", "ops", ("*",))
    assert changed.updated_at == T0 + DAY and changed.secret == hook.secret
    assert await store.update_endpoint("whk_nope", changes={"url": "https://x.example"}, at=T0) is None
    page, total = await store.list_endpoints(page=1, per_page=10)
    assert total == 2 and {e.id for e in page} == {hook.id, other.id}
    mine, total = await store.list_endpoints(tenant_id="acme", page=1, per_page=10)
    assert total == 1 and [e.id for e in mine] == [hook.id]
    await store.add_events([event()])
    (delivery,) = await store.list_deliveries(hook.id, after=None, limit=10)
    assert await store.delete_endpoint(hook.id) is True
    assert await store.delete_endpoint(hook.id) is False
    assert await store.get_endpoint(hook.id) is None and await store.get_delivery(delivery.id) is None


async def test_retention_forgets_old_settled_events_only(store: KeyStore) -> None:
    hook = await store.create_endpoint(endpoint())
    old_done, old_waiting, recent = event(at=T0), event(at=T0), event(at=T0 + 40 * DAY)
    await store.add_events([old_done, old_waiting, recent])
    for c in await claim(store, T0 + 40 * DAY):
        if c.event_id != old_waiting.id:
            await store.finish_delivery(c, at=T0, status="delivered", response_status=200, error=None,
                                        next_attempt_at=None)
    assert await store.prune_events(T0 + 30 * DAY, 100) == 1
    assert await event_ids(store, hook.id) == [old_waiting.id, recent.id]


async def test_each_key_is_noted_expiring_once_per_threshold(pair: tuple[KeyStore, KeyStore]) -> None:
    one, two = pair
    await one.create_tenant(tenant())
    soon, _ = key(expires=T0 + 5 * DAY)
    later, _ = key(expires=T0 + 15 * DAY)
    gone, _ = key(expires=T0 + 3 * DAY)
    for made in (soon, later, gone):
        await one.create_key(made)
    await one.revoke_key(gone.id, T0)
    assert [k.id for k in await one.expiring_unnoted(T0, 7 * DAY, 7, 10)] == [soon.id]
    assert [k.id for k in await one.expiring_unnoted(T0, 20 * DAY, 20, 10)] == [soon.id, later.id]
    noted = await asyncio.gather(one.note_expiring(soon.id, [7, 20], T0), two.note_expiring(soon.id, [7, 20], T0))
    assert sorted(noted) == [False, True]
    assert [k.id for k in await two.expiring_unnoted(T0, 20 * DAY, 20, 10)] == [later.id]  # 20 noted with 7
    assert await one.expiring_unnoted(T0, DAY, 1, 10) == []
    assert [k.id for k in await one.expiring_unnoted(T0 + 4 * DAY + dt.timedelta(hours=1), DAY, 1, 10)] == [soon.id]
    assert await one.expiring_unnoted(T0 + 6 * DAY, DAY, 1, 10) == []  # expired: key.expired's business
