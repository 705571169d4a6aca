"""Leased permits (gateway/ratelimit/leased.py) against the real Redis: decided in the worker,
yet exact — no window over the limit, the whole limit to a key whose permits sit elsewhere."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from gateway.ratelimit.leased import LeasedRedisRateLimiter
from tests.conftest import require_service
from tests.ratelimit.test_limiters import REDIS_URL, redis_reachable
from tests.services import private_redis_server


@pytest.fixture
async def redis_url(tmp_path: Path) -> AsyncIterator[str]:
    """A Redis of this test alone: another test's CLIENT KILL or PAUSE on the shared one would
    turn decisions into `on_backend_error`'s, which prove nothing here."""
    if shutil.which("redis-server") is None:
        require_service("redis", redis_reachable(), "nothing answers on 127.0.0.1:6379")
        yield REDIS_URL
        return
    async with private_redis_server(tmp_path) as url:
        yield url


@pytest.fixture
async def workers(redis_url: str) -> AsyncIterator[Callable[[int], list[LeasedRedisRateLimiter]]]:
    """Limiters on one prefix, as the workers of several instances are."""
    prefix = f"gwtest:{uuid.uuid4().hex}:"
    made: list[LeasedRedisRateLimiter] = []
    errors: list[Exception] = []

    def make(n: int) -> list[LeasedRedisRateLimiter]:
        new = [LeasedRedisRateLimiter(redis_url, prefix=prefix, on_error_callback=errors.append) for _ in range(n)]
        made.extend(new)
        return new

    yield make
    for limiter in made:
        await limiter.close()
    assert not errors, errors  # a decision Redis did not make (on_backend_error's) proves nothing


async def members(url: str, prefix_key: str) -> list[tuple[bytes, float]]:
    client = aioredis.from_url(url)
    try:
        return [(m, s) for m, s in await client.zrange(prefix_key, 0, -1, withscores=True)]
    finally:
        await client.aclose()


async def warm(limiter: LeasedRedisRateLimiter, bucket: str, limit: int, n: int) -> int:
    """`n` decisions one after another: from the second on, the worker leases permits."""
    await limiter.listening()
    return sum([(await limiter.hit([(bucket, limit)])).allowed for _ in range(n)])


async def test_a_busy_key_is_decided_in_the_worker(workers) -> None:
    (limiter,) = workers(1)
    results = [r.allowed for r in [await limiter.hit([("k", 100_000)]) for _ in range(2)]]
    await limiter.listening()
    results += [(await limiter.hit([("k", 100_000)])).allowed for _ in range(500)]
    assert all(results)
    assert limiter.lease_stats["local"] > 450, limiter.lease_stats
    assert limiter.lease_stats["remote"] < 20, limiter.lease_stats


async def test_remaining_counts_down_through_leased_permits(workers) -> None:
    (limiter,) = workers(1)
    await limiter.listening()
    remaining = [(await limiter.hit([("k", 1000)])).remaining for _ in range(60)]
    assert limiter.lease_stats["local"] > 30
    assert remaining == list(range(999, 939, -1))


async def test_permits_held_by_an_idle_worker_are_recalled_for_the_busy_one(workers) -> None:
    """The idle worker's leased permits would strand: the busy one is refused only once the
    window holds the limit in admitted requests."""
    idle, busy = workers(2)
    admitted_idle = await warm(idle, "k", 100, 3)
    assert idle.lease_stats["local"] >= 1 and idle._leases, "the idle worker holds no lease"
    await busy.listening()
    results = [(await busy.hit([("k", 100)])).allowed for _ in range(120)]
    assert admitted_idle + sum(results) == 100
    assert results == [True] * (100 - admitted_idle) + [False] * (20 + admitted_idle)
    assert busy.lease_stats["waits"] >= 1  # it did meet the idle worker's permits
    assert not idle._leases  # given back


async def test_a_burst_over_eight_workers_admits_exactly_the_limit(workers, redis_url) -> None:
    limit = 400
    eight = workers(8)
    admitted = sum([await warm(w, "k", limit, 3) for w in eight])  # each holds a lease, permits left
    assert all(w._leases and all(lease.left > 0 for lease in w._leases.values()) for w in eight)
    burst = [eight[i % 8].hit([("k", limit)]) for i in range(limit + 20 - admitted)]
    results = await asyncio.gather(*burst)
    assert admitted + sum(r.allowed for r in results) == limit
    assert all(r.retry_after >= 1 for r in results if not r.allowed)
    assert sum(w.lease_stats["local"] for w in eight) > 8 * 4
    for w in eight:
        await w.close()
    # Settled: no permit left leased, each admission at its own moment, and exactly the limit.
    stored = await members(redis_url, eight[0]._prefix + "k")
    assert len(stored) == limit
    assert all(b":" not in m or b":u" in m for m, _ in stored)


async def test_leased_and_exact_decisions_of_two_buckets_stay_atomic(workers) -> None:
    """A key permit leased in the worker, a route bucket decided in Redis: the route's refusal
    spends nothing of the key's quota."""
    (limiter,) = workers(1)
    await warm(limiter, "key", 1000, 5)
    assert limiter._leases
    results = [await limiter.hit([("key", 1000), ("route", 2)]) for _ in range(4)]
    assert [r.allowed for r in results] == [True, True, False, False]
    assert results[2].limit == 2
    before = (await limiter.hit([("key", 1000)])).remaining
    assert before == 1000 - 5 - 2 - 1


async def test_used_permits_are_recorded_at_their_moment_and_unused_ones_return(workers, redis_url) -> None:
    (limiter,) = workers(1)
    admitted = await warm(limiter, "k", 10_000, 40)
    assert limiter.lease_stats["local"] > 10
    client = aioredis.from_url(redis_url)
    try:
        seconds, micros = await client.time()
    finally:
        await client.aclose()
    await limiter.close()
    stored = await members(redis_url, limiter._prefix + "k")
    assert len(stored) == admitted == 40
    now = seconds * 1_000_000 + micros
    # none left at a lease's end (2 s after its grant): a use is recorded at its moment, at most a round
    # trip late, which a loaded machine stretches past a millisecond
    assert all(score <= now + 250_000 for _, score in stored), (now, stored)


async def test_a_recall_that_overtakes_its_grant_gives_the_lease_back(workers, redis_url) -> None:
    """The recall comes on the pub/sub connection, the grant on another: a recall for a key
    whose lease is still on its way applies to that lease when it arrives."""
    (limiter,) = workers(1)
    await limiter.listening()
    assert (await limiter.hit([("k", 1000)])).allowed  # first sight: decided in Redis, no lease
    asking = asyncio.create_task(limiter.hit([("k", 1000)]))
    key = limiter._prefix + "k"
    while key not in limiter._asking:
        await asyncio.sleep(0)  # until the request has asked (a turn of the loop, no time)
    limiter._on_message(b"r" + key.encode())  # as the listener hands it over
    assert (await asyncio.wait_for(asking, 5)).allowed
    assert not limiter._leases  # not kept: nothing of it is spent after the recall
    await limiter.close()
    assert len(await members(redis_url, key)) == 2  # the two admissions, no leased permit left


async def test_a_lease_granted_to_a_request_gone_meanwhile_is_given_back(workers, redis_url) -> None:
    """A client that goes away while its request waits on Redis: the script still runs, and the
    permits it leased must not stay counted for a minute."""
    (limiter,) = workers(1)
    await limiter.listening()
    assert (await limiter.hit([("k", 1000)])).allowed
    gone = asyncio.create_task(limiter.hit([("k", 1000)]))
    key = limiter._prefix + "k"
    while key not in limiter._asking:
        await asyncio.sleep(0)  # until the request has asked (a turn of the loop, no time)
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    await limiter.close()
    stored = [member for member, _ in await members(redis_url, key)]
    assert len(stored) == 2 and not [m for m in stored if b":" in m], stored  # two admissions, no lease
