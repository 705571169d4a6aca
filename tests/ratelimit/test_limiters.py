"""The sliding log's maths with an injected clock, and one conformance suite for every backend."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.ratelimit import create_rate_limiter
from gateway.ratelimit.leased import LeasedRedisRateLimiter
from gateway.ratelimit.memory import MemoryRateLimiter
from gateway.ratelimit.redis import RedisRateLimiter
from tests.conftest import FakeClock, require_service
from tests.services import private_redis_server

REDIS_URL = "redis://127.0.0.1:6379/0"
REDIS_KINDS = pytest.mark.parametrize("kind", [RedisRateLimiter, LeasedRedisRateLimiter], ids=["redis", "redis-leased"])


def redis_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


# --- window maths (memory backend, injected clock) ---------------------------------------


def test_steady_rate_at_the_limit_is_never_refused_early() -> None:
    clock = FakeClock(1000.0)
    limiter = MemoryRateLimiter(clock=clock)
    for _ in range(600):  # ten minutes at exactly 10 per minute
        assert limiter.hit_sync([("k", 10)]).allowed
        clock.advance(6.0)


def test_no_60s_span_ever_holds_more_than_the_limit() -> None:
    clock = FakeClock(0.0)
    limiter = MemoryRateLimiter(clock=clock)
    admitted: list[float] = []
    # bursts at window edges, then a steady trickle, then bursts again
    pattern = [0.0] * 20 + [59.9, 59.99, 60.0, 60.0, 60.01] + [0.5] * 200 + [0.0] * 30 + [119.0] + [0.0] * 30
    for step in pattern:
        clock.advance(step)
        if limiter.hit_sync([("k", 10)]).allowed:
            admitted.append(clock.now)
    for i, start in enumerate(admitted):
        in_span = [t for t in admitted[i:] if t < start + 60.0]
        assert len(in_span) <= 10, (start, in_span)
    assert len(admitted) > 20


def test_headers_and_retry_after_are_honest() -> None:
    clock = FakeClock(1000.0)
    limiter = MemoryRateLimiter(clock=clock)
    first = limiter.hit_sync([("k", 3)])
    assert (first.allowed, first.limit, first.remaining, first.reset_at) == (True, 3, 2, 1060.0)
    clock.advance(10)
    limiter.hit_sync([("k", 3)])
    clock.advance(10)
    assert limiter.hit_sync([("k", 3)]).remaining == 0
    refused = limiter.hit_sync([("k", 3)])
    assert not refused.allowed and refused.retry_after == 40 and refused.reset_at == 1060.0
    clock.advance(refused.retry_after - 1)
    assert not limiter.hit_sync([("k", 3)]).allowed
    clock.advance(1)
    assert limiter.hit_sync([("k", 3)]).allowed


def test_refusals_do_not_consume_and_two_limits_are_atomic() -> None:
    clock = FakeClock(0.0)
    limiter = MemoryRateLimiter(clock=clock)
    for _ in range(2):
        assert limiter.hit_sync([("key", 5), ("route", 2)]).allowed
    refused = limiter.hit_sync([("key", 5), ("route", 2)])
    assert not refused.allowed and refused.limit == 2
    # the route refusal spent nothing of the key's quota: 3 left of 5
    assert [limiter.hit_sync([("key", 5)]).allowed for _ in range(4)] == [True, True, True, False]


def test_idle_buckets_are_reclaimed() -> None:
    clock = FakeClock(0.0)
    limiter = MemoryRateLimiter(clock=clock)
    for i in range(5000):
        limiter.hit_sync([(f"k{i}", 10)])
    assert len(limiter) == 5000
    clock.advance(61)
    for _ in range(256 * 100):
        limiter.hit_sync([("busy", 10**9)])
    assert len(limiter) < 100


def test_each_decision_exactly() -> None:
    from gateway.ratelimit.base import Decision

    clock = FakeClock(1000.0)
    limiter = MemoryRateLimiter(clock=clock)
    assert limiter.hit_sync([("k", 3)]) == Decision(True, 3, 2, 1060.0, 0)       # a fresh window
    clock.advance(10)
    assert limiter.hit_sync([("k", 3)]) == Decision(True, 3, 1, 1060.0, 0)       # reset: the oldest frees
    assert limiter.hit_sync([("k", 3)]) == Decision(True, 3, 0, 1060.0, 0)
    clock.advance(49.5)                                                           # 0.5 s before the oldest frees
    assert limiter.hit_sync([("k", 3)]) == Decision(False, 3, 0, 1060.0, 1)
    clock.advance(-30)
    assert limiter.hit_sync([("k", 3)]) == Decision(False, 3, 0, 1060.0, 31)
    with pytest.raises(AssertionError, match="^no bucket to check$"):
        limiter.hit_sync([])


def test_an_entry_leaves_the_window_exactly_when_it_is_a_window_old() -> None:
    from gateway.ratelimit.base import TOLERANCE, WINDOW

    later = 5000.0
    clock = FakeClock((later - WINDOW) + TOLERANCE)  # the horizon, computed as the limiter computes it
    limiter = MemoryRateLimiter(clock=clock)
    limiter.hit_sync([("k", 5)])
    clock.now = later
    assert limiter.hit_sync([("k", 5)]).remaining == 4  # the first hit no longer counts
    clock.now = later + 1
    assert limiter.hit_sync([("k", 5)]).remaining == 3


def test_the_strictest_bucket_answers_whichever_order() -> None:
    for checks in ([("route", 1), ("key", 100)], [("key", 100), ("route", 1)]):
        limiter = MemoryRateLimiter(clock=FakeClock(0.0))
        assert limiter.hit_sync(checks).allowed
        refused = limiter.hit_sync(checks)
        assert (refused.allowed, refused.limit, refused.remaining) == (False, 1, 0)
        assert limiter.hit_sync([("key", 100)]).remaining == 98  # the refusal spent nothing


def test_idle_buckets_are_looked_at_every_256th_decision() -> None:
    from gateway.ratelimit.memory import islice_keys

    clock = FakeClock(0.0)
    limiter = MemoryRateLimiter(clock=clock)
    for round_ in range(2):
        limiter.hit_sync([(f"idle{round_}", 10)])   # the round's first decision
        clock.advance(60)                            # exactly a window later: idle
        for _ in range(254):
            limiter.hit_sync([("busy", 10**9)])
        assert len(limiter) == 2, round_             # 255 decisions: not looked at yet
        limiter.hit_sync([("busy", 10**9)])
        assert len(limiter) == 1, round_             # the 256th drops it
    assert islice_keys({"a": None, "b": None, "c": None}, 2) == ["a", "b"]  # type: ignore[dict-item]
    assert islice_keys({"a": None}, 2) == ["a"]  # type: ignore[dict-item]


# --- conformance: every backend --------------------------------------------------------


@pytest.fixture
async def own_redis(tmp_path: Path) -> AsyncIterator[str]:
    """A Redis of this test alone: the tests that kill its connections or pause it would reach every
    other test (and another run of the suite) on the shared one, and an exact count taken there can
    meet theirs."""
    if shutil.which("redis-server") is None:
        require_service("redis", redis_reachable(), "nothing answers on 127.0.0.1:6379")
        yield REDIS_URL
        return
    async with private_redis_server(tmp_path) as url:
        yield url


@pytest.fixture(params=["memory", "redis", "redis-leased"])
async def limiter(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[object]:
    if request.param == "memory":
        made = create_rate_limiter("memory")
        yield made
        await made.close()
        return
    # a Redis of the test's own: an exact count proves nothing once a pause made it a fallback
    async with contextlib.AsyncExitStack() as stack:
        if shutil.which("redis-server") is None:
            require_service("redis", redis_reachable(), "nothing answers on 127.0.0.1:6379")
            url = REDIS_URL
        else:
            url = await stack.enter_async_context(private_redis_server(tmp_path))
        made = create_rate_limiter(request.param, url=url, prefix=f"gwtest:{uuid.uuid4().hex}:")
        yield made
        await made.close()


async def test_admits_up_to_the_limit_then_refuses(limiter) -> None:
    results = [await limiter.hit([("k", 5)]) for _ in range(7)]
    assert [r.allowed for r in results] == [True] * 5 + [False] * 2
    assert [r.remaining for r in results[:5]] == [4, 3, 2, 1, 0]
    assert all(1 <= r.retry_after <= 60 for r in results[5:])
    assert all(r.limit == 5 for r in results)


async def test_route_refusal_spends_no_key_quota(limiter) -> None:
    assert (await limiter.hit([("key", 3), ("route", 1)])).allowed
    refused = await limiter.hit([("key", 3), ("route", 1)])
    assert not refused.allowed and refused.limit == 1
    assert [(await limiter.hit([("key", 3)])).allowed for _ in range(3)] == [True, True, False]


async def test_200_concurrent_requests_admit_exactly_100(limiter) -> None:
    results = await asyncio.gather(*(limiter.hit([("hot", 100)]) for _ in range(200)))
    assert sum(r.allowed for r in results) == 100


async def test_a_refunded_admission_is_no_longer_counted(limiter) -> None:
    """What the portal's sign-in doors rest on: a place taken, then handed back, frees the place
    (and only in its own bucket); leased permits are not refunded at all."""
    if isinstance(limiter, LeasedRedisRateLimiter):
        with pytest.raises(NotImplementedError):
            await limiter.refund("k")
        return
    assert [(await limiter.hit([("k", 3), ("other", 10)])).allowed for _ in range(3)] == [True] * 3
    await limiter.refund("k")
    await limiter.refund("never-hit")  # nothing to hand back: no error, nothing changes
    assert (await limiter.hit([("k", 3)])).allowed
    assert not (await limiter.hit([("k", 3)])).allowed
    assert [(await limiter.hit([("other", 10)])).allowed for _ in range(8)] == [True] * 7 + [False]


@REDIS_KINDS
async def test_two_redis_clients_share_one_exact_limit(kind, own_redis) -> None:
    prefix = f"gwtest:{uuid.uuid4().hex}:"
    a = kind(own_redis, prefix=prefix)
    b = kind(own_redis, prefix=prefix)
    try:
        results = await asyncio.gather(*(x.hit([("shared", 100)]) for x in [a, b] * 100))
        assert sum(r.allowed for r in results) == 100
    finally:
        await a.close()
        await b.close()


@REDIS_KINDS
async def test_redis_window_slides_on_server_time(kind, own_redis) -> None:
    limiter = kind(own_redis, prefix=f"gwtest:{uuid.uuid4().hex}:", window=1.5)  # a loaded machine's pause stays inside
    try:
        assert (await limiter.hit([("w", 1)])).allowed
        refused = await limiter.hit([("w", 1)])
        assert not refused.allowed
        await asyncio.sleep(1.55)  # the window itself is what is under test here
        assert (await limiter.hit([("w", 1)])).allowed
    finally:
        await limiter.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@REDIS_KINDS
@pytest.mark.parametrize("mode", ["allow", "deny"])
async def test_redis_down_follows_on_backend_error_and_logs_once(kind, mode, caplog) -> None:
    errors: list[Exception] = []
    limiter = kind(
        f"redis://127.0.0.1:{closed_port()}/0", on_backend_error=mode, on_error_callback=errors.append
    )
    caplog.set_level(logging.INFO, logger="gateway.ratelimit")
    try:
        results = [await limiter.hit([("k", 5)]) for _ in range(20)]
    finally:
        await limiter.close()
    assert all(r.allowed == (mode == "allow") for r in results)
    if mode == "deny":
        assert all(r.retry_after >= 1 for r in results)
    assert len(errors) == 20
    assert sum("unreachable" in r.getMessage() for r in caplog.records) == 1


@REDIS_KINDS
async def test_redis_recovers_after_its_connections_are_killed(kind, caplog, own_redis) -> None:
    import redis.asyncio as aioredis

    limiter = kind(own_redis, prefix=f"gwtest:{uuid.uuid4().hex}:")
    admin = aioredis.from_url(own_redis)
    try:
        assert (await limiter.hit([("r", 100)])).allowed
        await admin.client_kill_filter(_type="normal", skipme=True)
        outcomes = [await limiter.hit([("r", 100)]) for _ in range(3)]
        assert outcomes[-1].allowed and outcomes[-1].remaining < 99
    finally:
        await admin.aclose()
        await limiter.close()


@REDIS_KINDS
@pytest.mark.parametrize("mode", ["allow", "deny"])
async def test_a_slow_redis_is_answered_by_the_timeout_and_recovers_by_itself(kind, mode, own_redis) -> None:
    import time

    import redis.asyncio as aioredis

    limiter = kind(own_redis, prefix=f"gwtest:{uuid.uuid4().hex}:", on_backend_error=mode)
    admin = aioredis.from_url(own_redis)
    try:
        assert (await limiter.hit([("s", 100)])).allowed
        await admin.execute_command("CLIENT", "PAUSE", "3000", "ALL")  # Redis stops answering anyone
        started = time.monotonic()
        during = await limiter.hit([("s", 100)])
        assert time.monotonic() - started < 2.5  # the limiter's own timeout (0.5 s) answered, not the pause's end
        assert during.allowed == (mode == "allow")
        recovered_by = time.monotonic() + 15  # the pause ends on its own; the limiter needs no restart
        while not ((after := await limiter.hit([("s", 100)])).allowed and after.remaining < 99):
            assert time.monotonic() < recovered_by, "the limiter did not come back after Redis did"
    finally:
        await admin.execute_command("CLIENT", "UNPAUSE")
        await admin.aclose()
        await limiter.close()
