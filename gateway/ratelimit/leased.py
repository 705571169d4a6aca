"""Redis sliding log with leased permits: a busy key is decided in the worker, still exactly.

The per-request limiter (redis.py) waits on Redis for every decision, which costs a worker about
half its throughput. Here a worker that sees a key again within a lease's time asks Redis for a
few permits along with its decision (a *lease*, sized from the key's rate in this worker, at
most a quarter of the key's room left and 1,024); requests that find a permit in a live lease
are decided in the worker, with no round trip and no coroutine (`hit_local`).

Why it stays exact (lease_script.py holds the Redis side):

- A leased permit is in the key's sorted set from its grant, scored at the lease's end, so it
  counts in every window its use could fall in. When the lease is settled (exhausted, at its
  end, recalled, or on close), unused permits are removed and used ones rescored to their
  moment of use: server time at the grant plus the time since the lease was *asked for* (an
  upper bound of the true moment, by at most one round trip). A worker uses a permit only
  before its lease's end measured the same way, so no use falls after the end Redis counts.
  Redis therefore never holds fewer than the admitted requests of any window, plus the permits
  still held, and grants nothing past the limit: no 60 s span admits more than the limit.
- A refusal happens only when the window holds the limit *and no other worker holds permits of
  it*. When a decision finds the window full but leases live, the script marks the key (no new
  leases for a lease's time: every worker is back to one decision per request), publishes a
  recall, and the worker waits until a holder has settled (its message on the same channel)
  or the holders' leases end, then decides again. Holders settle at once on a recall, so the
  key gets its whole limit: a burst of limit + 20 over any number of workers and instances gets
  exactly `limit` admitted.
- Leases are only asked for while this worker is subscribed to the recall channel, and dropped
  when it stops hearing it (then, with Redis unreachable, every decision follows
  `on_backend_error`, as in redis.py). A lease that cannot be settled (its holder died, Redis
  went away) keeps its permits counted as used, the safe side, until a window after its end;
  other workers wait for its holder at most its end plus a grace period.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from collections.abc import Callable, Sequence

from gateway.ratelimit.base import WINDOW, Decision, stricter, strictest
from gateway.ratelimit.lease_script import SCRIPT
from gateway.ratelimit.redis import RedisRateLimiter
from gateway.tasks import cancel_and_wait

log = logging.getLogger("gateway.ratelimit")

LEASE = 2.0          # seconds a lease lives: bounds a dead holder's hold and a slow key's lease
GRACE = 0.5          # after its end, how long a lease's holder is waited for before it is given up
FIRST_ASK = 4        # the fewest permits a lease is asked for
FIRST_MAX = 64       # the most a key's first lease is asked for (its rate is a guess then)
MAX_ASK = 1024
_PRUNE_EVERY = 4096  # Redis decisions between sweeps of the per-key rate memory


class _Lease:
    """Permits of one bucket held by this worker; `used` are their moments of use (server µs)."""

    __slots__ = ("deadline", "granted", "id", "left", "limit", "reset_at", "room", "sent", "start_us", "used")

    def __init__(self, lease_id: str, limit: int, granted: int, start_us: int, sent: float, room: int,
                 reset_at: float) -> None:
        self.id = lease_id
        self.limit = limit
        self.granted = granted
        self.left = granted
        self.used: list[int] = []
        self.start_us = start_us
        self.sent = sent
        self.deadline = sent + LEASE
        self.room = room          # the key's room left (limit - count) when granted, this lease counted
        self.reset_at = reset_at

    def take(self, now: float) -> int:
        self.left -= 1
        self.used.append(self.start_us + int((now - self.sent) * 1_000_000) + 1)
        return self.room + self.left


class LeasedRedisRateLimiter(RedisRateLimiter):
    script = SCRIPT

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "gw:rl:",
        on_backend_error: str = "allow",
        window: float = WINDOW,
        on_error_callback: Callable[[Exception], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(url, prefix=prefix, on_backend_error=on_backend_error, window=window,
                         on_error_callback=on_error_callback)
        self._url = url
        self._mono = clock
        self._channel = prefix + "lease"
        self._head = f"{self._window_us} {int(LEASE * 1_000_000)} {int(GRACE * 1_000_000)}"
        self._tag = f"{os.getpid():x}.{os.urandom(4).hex()}."
        self._serial = 0
        self._leases: dict[str, _Lease] = {}       # redis key -> this worker's live lease
        self._asking: dict[str, asyncio.Future[None]] = {}  # redis key -> its lease asked for, in flight
        self._recalled: set[str] = set()                     # of those, recalled meanwhile
        self._seen: dict[str, tuple[float, int]] = {}  # redis key -> (last remote decision, ask hint)
        self._remote_calls = 0
        self._settled = 0                          # settle messages seen: waiters compare it
        self._settle_event = asyncio.Event()
        self._settling: set[asyncio.Task[None]] = set()
        self._subscribed = False
        self._on_channel = asyncio.Event()
        self._listener: asyncio.Task[None] | None = None
        self._closing = False
        self.lease_stats = {"local": 0, "remote": 0, "waits": 0}

    # -- deciding in the worker ------------------------------------------------------------------

    def hit_local(self, checks: Sequence[tuple[str, int]]) -> Decision | None:
        """The decision from leased permits, or None when Redis must be asked (`hit`)."""
        leases = self._leases
        prefix = self._prefix
        now = self._mono()
        if len(checks) == 1:
            bucket, limit = checks[0]
            lease = leases.get(prefix + bucket)
            if lease is None or lease.left <= 0 or lease.limit != limit or now >= lease.deadline:
                return None
            self.lease_stats["local"] += 1
            return Decision(True, limit, lease.take(now), lease.reset_at, 0)
        found = []
        for bucket, limit in checks:
            lease = leases.get(prefix + bucket)
            if lease is None or lease.left <= 0 or lease.limit != limit or now >= lease.deadline:
                return None
            found.append(lease)
        decision: Decision | None = None
        for lease in found:
            this = Decision(True, lease.limit, lease.take(now), lease.reset_at, 0)
            decision = this if decision is None else stricter(decision, this)
        self.lease_stats["local"] += 1
        return decision

    async def hit(self, checks: Sequence[tuple[str, int]]) -> Decision:
        decision = self.hit_local(checks)
        if decision is not None:
            return decision
        asking = self._asking
        if asking:
            # A lease for this key is on its way: its permits may well decide this request too
            # (a burst's requests arrive together; one asks, the others need not).
            prefix = self._prefix
            for bucket, _ in checks:
                if (coming := asking.get(prefix + bucket)) is not None:
                    await asyncio.shield(coming)
                    if (decision := self.hit_local(checks)) is not None:
                        return decision
                    break
        if self._listener is None and not self._closing:
            self._listener = asyncio.get_running_loop().create_task(self._listen())
        waited_until: float | None = None
        while True:
            settled = self._settled
            decision, wait = await self._remote(checks)
            if wait <= 0:
                return decision
            # Refused while other workers hold permits of the key: they were recalled; decide
            # again once one has settled (or their leases are over).
            loop = asyncio.get_running_loop()
            if waited_until is None:
                waited_until = loop.time() + min(wait, LEASE + GRACE)
                self.lease_stats["waits"] += 1
            left = waited_until - loop.time()
            if left <= 0:
                return decision
            if self._settled == settled:
                try:
                    await asyncio.wait_for(self._settle_event.wait(), left)
                except TimeoutError:
                    pass
            local = self.hit_local(checks)
            if local is not None:
                return local

    async def refund(self, bucket: str) -> None:
        """Not offered: a leased key's newest entries are permits held for their lease's end, not
        admissions (the portal's doors, which refund, use redis.py)."""
        raise NotImplementedError("leased permits are not refunded")

    async def _remote(self, checks: Sequence[tuple[str, int]]) -> tuple[Decision, float]:
        """One script: this request decided in Redis, exhausted leases settled, new ones asked for."""
        now = self._mono()
        keys: list[str] = []
        args: list[int | str] = [self._head, self._channel]
        taken: dict[int, tuple[str, _Lease, int]] = {}   # bucket index -> a permit taken here
        asked: dict[int, str] = {}                       # bucket index -> the lease id asked for
        for i, (bucket, limit) in enumerate(checks):
            key = self._prefix + bucket
            keys.append(key)
            lease = self._leases.get(key)
            if lease is not None and lease.left > 0 and lease.limit == limit and now < lease.deadline:
                lease.take(now)  # covered here; given back if another bucket refuses
                taken[i] = (key, lease, lease.used[-1])
                args.append(f"{limit} 0 0 - - 0 0")
                continue
            old = self._leases.pop(key, None)
            ask, lease_id = self._ask(key, old, now), ""
            if ask:
                self._serial += 1
                lease_id = asked[i] = self._tag + str(self._serial)
                self._asking[key] = asyncio.get_running_loop().create_future()
                self._recalled.discard(key)
            args.append(f"{limit} 1 {ask} {lease_id or '-'} {self._settle_args(old)}")
        self._remote_calls += 1
        self.lease_stats["remote"] += 1
        if self._remote_calls % _PRUNE_EVERY == 0:
            self._prune(now)
        reply = self._submit(keys, args)
        try:
            raw = await (asyncio.shield(reply) if asked else reply)  # shielded: a lease may come
        except asyncio.CancelledError:
            # The request went away (its client did); the script still runs, and any lease it
            # grants must not sit counted for a minute: given back, unused, when the reply comes.
            self._give_back(taken)
            reply.add_done_callback(lambda done: self._orphaned(done, keys, asked))
            raise
        except self._errors as exc:
            self._give_back(taken)
            return self._fallback(checks, exc), 0.0
        finally:
            for i in asked:
                if (coming := self._asking.pop(keys[i], None)) is not None:
                    coming.set_result(None)
        if self._down:
            self._came_back()
        now_us, wait, admitted = int(raw[0]), int(raw[1]), bool(int(raw[2]))
        decisions = []
        for i, (_, limit) in enumerate(checks):
            j = 3 + 4 * i
            count, oldest, granted = int(raw[j]), int(raw[j + 1]), int(raw[j + 2])
            reset = (oldest + self._window_us) / 1_000_000
            if granted:
                lease = _Lease(asked[i], limit, granted, now_us, now, limit - count, reset)
                if keys[i] in self._recalled:  # recalled before its grant reached us: given back unused
                    self._settle_soon(keys[i], lease)
                else:
                    self._start_lease(keys[i], lease)
            if i in asked:
                self._recalled.discard(keys[i])
            if i in taken:
                lease = taken[i][1]
                decisions.append(Decision(True, limit, lease.room + lease.left, lease.reset_at, 0))
            elif admitted:
                decisions.append(Decision(True, limit, max(0, limit - count + granted), reset, 0))
            else:
                decisions.append(self._not_admitted(limit, count, oldest, now_us, reset))
        if not admitted:
            self._give_back(taken)
        return (decisions[0] if len(decisions) == 1 else strictest(decisions)), wait / 1_000_000

    def _orphaned(self, reply: asyncio.Future[list[int]], keys: list[str], asked: dict[int, str]) -> None:
        if reply.cancelled() or reply.exception() is not None:
            return
        raw = reply.result()
        for i, lease_id in asked.items():
            if granted := int(raw[5 + 4 * i]):
                self._settle_soon(keys[i], _Lease(lease_id, 0, granted, int(raw[0]), self._mono(), 0, 0.0))

    def _ask(self, key: str, old: _Lease | None, now: float) -> int:
        """How many permits to lease with this decision: about two leases' worth at the rate the
        last lease was used at, else (a first lease) from the gap since this key's last decision
        here; none for a key seen less often than four times a lease's time (not worth a lease)."""
        seen = self._seen.get(key)
        if not self._subscribed or key in self._asking:
            self._seen[key] = (now, seen[1] if seen is not None else 0)
            return 0
        if old is not None:
            ask = _next_ask(old, now)
        elif seen is None:
            ask = 0
        elif seen[1] and now - seen[0] < LEASE:
            ask = seen[1]  # the rate an expired lease was used at
        else:
            gap = now - seen[0]
            ask = 0 if gap >= LEASE / 4 else min(FIRST_MAX, max(FIRST_ASK, math.ceil(LEASE / max(gap, 0.001))))
        self._seen[key] = (now, 0)
        return ask

    def _settle_args(self, lease: _Lease | None) -> str:
        if lease is None:
            return "- 0 0"
        return " ".join((lease.id, str(lease.granted), str(len(lease.used)), *map(str, lease.used)))

    def _give_back(self, taken: dict[int, tuple[str, _Lease, int]]) -> None:
        """Permits taken for a request that was refused, while their lease is still unsettled."""
        for key, lease, moment in taken.values():
            if self._leases.get(key) is lease:
                lease.left += 1
                lease.used.remove(moment)

    def _start_lease(self, key: str, lease: _Lease) -> None:
        previous = self._leases.get(key)
        if previous is not None:
            self._settle_soon(key, previous)
        self._leases[key] = lease
        loop = asyncio.get_running_loop()
        loop.call_at(loop.time() + (lease.deadline - self._mono()), self._expire, key, lease)

    def _expire(self, key: str, lease: _Lease) -> None:
        if self._leases.get(key) is lease and not self._closing:
            del self._leases[key]
            now = self._mono()
            if ask := _next_ask(lease, now):
                self._seen[key] = (now, ask)  # the key's rate here, for its next lease
            self._settle_soon(key, lease)

    def _settle_soon(self, key: str, lease: _Lease) -> None:
        """Give the unused permits back and record the used ones at their moments, in the background."""
        task = asyncio.get_running_loop().create_task(self._settle(key, lease))
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)

    async def _settle(self, key: str, lease: _Lease) -> None:
        args = [self._head, self._channel, f"{lease.limit} 0 0 - {self._settle_args(lease)}"]
        try:
            await self._eval([key], args)
        except self._errors as exc:
            log.debug("lease not settled; its permits count as used until it expires", extra={"error": str(exc)})

    def _prune(self, now: float) -> None:
        self._seen = {key: seen for key, seen in self._seen.items() if now - seen[0] < LEASE}

    # -- the recall channel ----------------------------------------------------------------------

    async def listening(self, timeout: float = 5.0) -> None:
        """Until this worker hears recalls (it leases nothing before): for tests and benchmarks."""
        if self._listener is None:
            self._listener = asyncio.get_running_loop().create_task(self._listen())
        await asyncio.wait_for(self._on_channel.wait(), timeout)

    async def _listen(self) -> None:
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(self._url, socket_connect_timeout=0.5, socket_timeout=2.0)
        delay = 0.1
        try:
            while True:
                pubsub = client.pubsub()
                try:
                    await pubsub.subscribe(self._channel)
                    async for message in pubsub.listen():
                        kind = message.get("type")
                        if kind == "message":
                            self._on_message(message["data"])
                        elif kind == "subscribe":  # Redis confirms: recalls reach us from now on
                            self._subscribed = True
                            self._on_channel.set()
                            delay = 0.1
                except asyncio.CancelledError:
                    raise
                except self._errors:
                    pass
                finally:
                    self._subscribed = False
                    self._on_channel.clear()
                    self._recall_all()  # a recall may be missed while away: hold nothing
                    try:
                        await pubsub.aclose()
                    except self._errors:
                        pass
                await asyncio.sleep(delay)  # reconnect backoff, not synchronisation
                delay = min(delay * 2, 2.0)
        finally:
            await client.aclose()

    def _on_message(self, data: bytes) -> None:
        kind, key = data[:1], data[1:].decode()
        if kind == b"r":
            lease = self._leases.pop(key, None)
            if lease is not None:
                self._settle_soon(key, lease)
            if key in self._asking:
                # The recall may overtake the reply granting a lease (another connection).
                self._recalled.add(key)
        elif kind == b"s":
            self._settled += 1
            event, self._settle_event = self._settle_event, asyncio.Event()
            event.set()

    def _recall_all(self) -> None:
        leases, self._leases = self._leases, {}
        for key, lease in leases.items():
            self._settle_soon(key, lease)

    async def close(self) -> None:
        self._closing = True
        if self._sending:  # replies still to come may grant leases (of requests gone meanwhile too)
            await asyncio.wait(set(self._sending), timeout=2.0)
        if self._loop is not None:
            self._recall_all()
        if self._settling:
            await asyncio.wait(set(self._settling), timeout=2.0)
        await cancel_and_wait(self._listener)
        await super().close()


def _next_ask(lease: _Lease, now: float) -> int:
    """About two leases' worth at the rate this lease was used at (none if it was not)."""
    used = lease.granted - lease.left
    if used == 0:
        return 0
    per_lease = used * min(LEASE / max(now - lease.sent, 0.001), 64.0)
    return min(MAX_ASK, max(FIRST_ASK, math.ceil(2 * per_lease)))
