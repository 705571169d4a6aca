"""The in-process cache that keeps the store off the request path.

Bounded LRU of resolved identities with a TTL (`store.cache_ttl`: how long a change made by
another instance may go unseen), plus a separate, smaller negative cache of unknown hashes with
a short TTL, so a flood of random keys can neither fill memory nor reach the store for repeats.
Changes made by this process invalidate at once. Concurrent misses for one hash share one
store lookup.

An identity that must pass for an unknown key (a canary: `looks_unknown`) is kept in the negative
cache, with its TTL and its bound: kept for the longer TTL of the valid keys, a canary asked
again after the negative TTL was answered without the store lookup an unknown key makes, a
difference in time a client can measure.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

CHANGE_KINDS = frozenset({"key", "tenant", "user"})  # what a change to the accounts can be about


class Invalidator(Protocol):
    """What a change to a key, tenant or user must reach at once: this process's identity caches."""

    def invalidate(self, kind: str, target: str) -> object: ...
    def clear(self) -> None: ...


class Owned(Protocol):
    """What invalidation needs to know about a cached value."""

    @property
    def key_id(self) -> str: ...
    @property
    def tenant_id(self) -> str: ...
    @property
    def user_id(self) -> str | None: ...


V = TypeVar("V", bound=Owned)


@dataclass(slots=True)
class CacheStats:
    hits: int = 0
    misses: int = 0
    negative_hits: int = 0
    evictions: int = 0


class IdentityCache(Generic[V]):
    """LRU + TTL cache from a lookup key (secret hash, or key id) to a resolved identity."""

    def __init__(
        self,
        *,
        ttl: float,
        size: int,
        negative_ttl: float,
        negative_size: int,
        clock: Callable[[], float] = time.monotonic,
        looks_unknown: Callable[[V], bool] | None = None,
    ) -> None:
        self._ttl = ttl
        self._size = max(1, size)
        self._negative_ttl = negative_ttl
        self._negative_size = max(1, negative_size)
        self._clock = clock
        self._looks_unknown = looks_unknown
        self._entries: OrderedDict[str, tuple[V, float]] = OrderedDict()
        self._negative: OrderedDict[str, tuple[float, V | None]] = OrderedDict()  # expiry, and a decoy's identity
        self._decoys: set[str] = set()  # the lookups of the negative cache that hold an identity
        self._inflight: dict[str, asyncio.Future[V | None]] = {}
        self.stats = CacheStats()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def negative_size(self) -> int:
        return len(self._negative)

    def peek(self, lookup: str) -> tuple[bool, V | None]:
        """Without awaiting anything: (True, identity) for a cached one, (True, None) for a key
        known not to exist, (False, None) when only the store can tell (then `get`)."""
        now = self._clock()
        entry = self._entries.get(lookup)
        if entry is not None:
            if entry[1] > now:
                self._entries.move_to_end(lookup)
                self.stats.hits += 1
                return True, entry[0]
            del self._entries[lookup]
        unknown = self._negative.get(lookup)
        if unknown is not None:
            if unknown[0] > now:
                self.stats.negative_hits += 1
                return True, unknown[1]
            del self._negative[lookup]
            self._decoys.discard(lookup)
        return False, None

    async def get(self, lookup: str, load: Callable[[], Awaitable[V | None]]) -> V | None:
        """The cached identity, or the loaded one; None when the store does not know it."""
        found, value = self.peek(lookup)
        if found:
            return value
        return await self.fetch(lookup, load)

    async def fetch(self, lookup: str, load: Callable[[], Awaitable[V | None]]) -> V | None:
        """After a `peek` that found nothing: one load per lookup, shared by concurrent callers."""
        self.stats.misses += 1
        pending = self._inflight.get(lookup)
        if pending is not None:
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if pending.cancelled() and task is not None and not task.cancelling():
                    return await self.get(lookup, load)  # the caller loading it went away: load anew
                raise
        future: asyncio.Future[V | None] = asyncio.get_running_loop().create_future()
        self._inflight[lookup] = future
        try:
            value = await load()
        except asyncio.CancelledError:
            future.cancel()  # only this caller was cancelled: waiters load again themselves
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters, if any, re-raise it themselves
            raise
        finally:
            del self._inflight[lookup]
        if not future.done():
            future.set_result(value)
        self.put(lookup, value)
        return value

    def put(self, lookup: str, value: V | None) -> None:
        now = self._clock()
        if value is None or self._looks_unknown is not None and self._looks_unknown(value):
            self._entries.pop(lookup, None)
            self._negative[lookup] = (now + self._negative_ttl, value)
            self._negative.move_to_end(lookup)
            if value is not None:
                self._decoys.add(lookup)
            else:
                self._decoys.discard(lookup)
            while len(self._negative) > self._negative_size:
                self._decoys.discard(self._negative.popitem(last=False)[0])
                self.stats.evictions += 1
            return
        self._negative.pop(lookup, None)
        self._decoys.discard(lookup)
        self._entries[lookup] = (value, now + self._ttl)
        self._entries.move_to_end(lookup)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)
            self.stats.evictions += 1

    def _drop(self, match: Callable[[V], bool]) -> int:
        doomed = [k for k, (v, _) in self._entries.items() if match(v)]
        for k in doomed:
            del self._entries[k]
        decoys = [k for k in self._decoys if (v := self._negative[k][1]) is not None and match(v)]
        for k in decoys:
            del self._negative[k]
            self._decoys.discard(k)
        return len(doomed) + len(decoys)

    def invalidate(self, kind: str, target: str) -> int:
        """Drop what a change to one key, tenant or user (`kind`, one of CHANGE_KINDS) made stale."""
        if kind == "key":
            return self.invalidate_key(target)
        if kind == "tenant":
            return self.invalidate_tenant(target)
        if kind == "user":
            return self.invalidate_user(target)
        raise ValueError(f"no such kind of change: {kind!r}")

    def invalidate_key(self, key_id: str) -> int:
        return self._drop(lambda v: v.key_id == key_id)

    def invalidate_tenant(self, tenant_id: str) -> int:
        return self._drop(lambda v: v.tenant_id == tenant_id)

    def invalidate_user(self, user_id: str) -> int:
        return self._drop(lambda v: v.user_id == user_id)

    def clear(self) -> None:
        """Forget everything, e.g. after missing invalidation messages from other instances."""
        self._entries.clear()
        self._negative.clear()
        self._decoys.clear()
