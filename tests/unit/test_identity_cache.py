"""The key cache: bounded under a flood of unknown keys, one load per miss, TTLs, invalidation."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

import pytest

from gateway.keystore.cache import IdentityCache


@dataclass(frozen=True)
class Who:
    key_id: str
    tenant_id: str
    user_id: str | None = None


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def cache(clock: Clock, **kw: int) -> IdentityCache[Who]:
    return IdentityCache(ttl=5, size=kw.get("size", 100), negative_ttl=2,
                         negative_size=kw.get("negative_size", 1000), clock=clock)


async def test_a_flood_of_unknown_keys_stays_bounded_and_spares_known_ones() -> None:
    c = cache(Clock())
    loads = 0

    async def known() -> Who:
        nonlocal loads
        loads += 1
        return Who("key_1", "acme")

    async def unknown() -> None:
        return None

    assert await c.get("valid", known) == Who("key_1", "acme")
    for _ in range(20_000):
        assert await c.get(os.urandom(16).hex(), unknown) is None
    assert c.negative_size == 1000
    assert len(c) == 1
    assert await c.get("valid", known) == Who("key_1", "acme")
    assert loads == 1  # the flood never pushed the valid key out


async def test_unknown_keys_are_remembered_for_the_negative_ttl() -> None:
    clock = Clock()
    c = cache(clock)
    loads = 0

    async def unknown() -> None:
        nonlocal loads
        loads += 1

    for _ in range(5):
        await c.get("nope", unknown)
    assert loads == 1 and c.stats.negative_hits == 4
    clock.now += 2.5
    await c.get("nope", unknown)
    assert loads == 2


async def test_concurrent_misses_share_one_load() -> None:
    c = cache(Clock())
    loads = 0
    gate, entered = asyncio.Event(), asyncio.Event()

    async def slow() -> Who:
        nonlocal loads
        loads += 1
        entered.set()
        await gate.wait()
        return Who("key_1", "acme")

    waiting = [asyncio.ensure_future(c.get("k", slow)) for _ in range(50)]
    await entered.wait()  # the other 49 were queued before this wake-up and now wait on the load
    assert c.stats.misses == 50
    gate.set()
    assert {w.key_id for w in await asyncio.gather(*waiting)} == {"key_1"}
    assert loads == 1


async def test_entries_expire_and_invalidation_drops_what_it_names() -> None:
    clock = Clock()
    c = cache(clock)

    async def load_a() -> Who:
        return Who("key_a", "acme", "usr_1")

    async def load_b() -> Who:
        return Who("key_b", "beta")

    await c.get("a", load_a)
    await c.get("b", load_b)
    assert c.invalidate_user("usr_1") == 1 and len(c) == 1
    await c.get("a", load_a)
    assert c.invalidate_tenant("beta") == 1 and len(c) == 1
    assert c.invalidate_key("key_a") == 1 and len(c) == 0
    await c.get("a", load_a)
    clock.now += 6
    misses = c.stats.misses
    await c.get("a", load_a)
    assert c.stats.misses == misses + 1  # past the TTL: loaded again


async def test_a_waiter_loads_anew_when_the_caller_loading_its_key_goes_away() -> None:
    c = cache(Clock())
    release = asyncio.Event()
    loads = 0

    async def slow() -> Who:
        nonlocal loads
        loads += 1
        await release.wait()
        return Who("key_1", "acme")

    first = asyncio.ensure_future(c.get("h1", slow))
    await asyncio.sleep(0)  # the first caller is loading
    second = asyncio.ensure_future(c.get("h1", slow))
    await asyncio.sleep(0)  # the second waits on the first's load
    first.cancel()          # its client disconnected
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.wait_for(second, 5) == Who("key_1", "acme")
    assert first.cancelled() and loads == 2


async def test_a_change_names_its_kind_and_drops_what_that_kind_names() -> None:
    c = cache(Clock())

    async def load_a() -> Who:
        return Who("key_a", "acme", "usr_1")

    async def load_b() -> Who:
        return Who("key_b", "beta")

    for kind, target, left in (("user", "usr_1", {"b"}), ("tenant", "beta", {"a"}), ("key", "key_a", {"b"})):
        c.clear()
        await c.get("a", load_a)
        await c.get("b", load_b)
        assert c.invalidate(kind, target) == 1
        assert {name for name in ("a", "b") if c.peek(name)[0]} == left
    with pytest.raises(ValueError):
        c.invalidate("plan", "pro")  # a kind nobody handles is an error, not a silent no-op


@dataclass(frozen=True)
class Decoy(Who):
    canary: bool = True


async def test_a_canary_is_kept_as_an_unknown_key_is_ttl_and_bound_alike() -> None:
    """A canary must pass for an unknown key: cached for the valid keys' longer TTL, it was
    answered from the cache while an unknown key asked as late went to the store again, a
    difference in time a client could measure. Both now expire and are pushed out alike."""
    clock = Clock()
    c: IdentityCache[Who] = IdentityCache(ttl=5, size=100, negative_ttl=2, negative_size=3, clock=clock,
                                          looks_unknown=lambda who: isinstance(who, Decoy))
    loads: dict[str, int] = {"canary": 0, "unknown": 0}

    async def canary() -> Who:
        loads["canary"] += 1
        return Decoy("key_c", "acme")

    async def unknown() -> None:
        loads["unknown"] += 1

    for _ in range(3):
        assert await c.get("canary", canary) == Decoy("key_c", "acme")  # still its identity, for the alarm
        assert await c.get("unknown", unknown) is None
    assert loads == {"canary": 1, "unknown": 1}
    clock.now += 2.5  # past the negative TTL, within the valid keys'
    await c.get("canary", canary)
    await c.get("unknown", unknown)
    assert loads == {"canary": 2, "unknown": 2}
    for i in range(3):  # a flood of unknown keys pushes both out of the negative cache's bound
        await c.get(f"flood{i}", unknown)
    assert c.peek("canary") == (False, None) and c.peek("unknown") == (False, None)
    assert len(c) == 0  # never among the valid keys


async def test_a_cached_canary_is_dropped_by_a_change_to_its_key() -> None:
    c: IdentityCache[Who] = IdentityCache(ttl=5, size=100, negative_ttl=2, negative_size=100, clock=Clock(),
                                          looks_unknown=lambda who: isinstance(who, Decoy))

    async def canary() -> Who:
        return Decoy("key_c", "acme")

    await c.get("canary", canary)
    assert c.invalidate_key("key_c") == 1
    assert c.peek("canary") == (False, None)
