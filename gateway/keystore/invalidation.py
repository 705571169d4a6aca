"""Cache invalidation pushed to every instance through Redis pub/sub.

When an instance revokes, rotates or changes a key, tenant or user, it drops the entry from its
own cache and publishes the change; every other instance drops it on receipt, so a revoked key
stops everywhere within about a millisecond instead of within `store.cache_ttl`. Pub/sub does
not queue: a message sent while an instance is disconnected is lost, so an instance that
reconnects clears its whole cache, and the TTL still bounds anything missed. Receivers
acknowledge each message, so a caller can wait until every instance listening has applied it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from gateway.keystore.cache import CHANGE_KINDS, Invalidator
from gateway.tasks import cancel_and_wait

log = logging.getLogger("gateway.invalidation")


class _Pending:
    """Acknowledgements of one message; acks may arrive before PUBLISH says how many to expect."""

    def __init__(self, done: asyncio.Future[None]) -> None:
        self.done = done
        self.expected: int | None = None
        self.confirmed = 0

    def expect(self, listeners: int) -> None:
        self.expected = listeners
        self._settle()

    def confirm(self) -> None:
        self.confirmed += 1
        self._settle()

    def _settle(self) -> None:
        if self.expected is not None and self.confirmed >= self.expected and not self.done.done():
            self.done.set_result(None)


@dataclass
class Propagation:
    """How far one change got: how many other instances were listening, how many applied it."""

    listeners: int
    confirmed: int
    seconds: float

    @property
    def complete(self) -> bool:
        return self.confirmed >= self.listeners


class InvalidationBus:
    def __init__(
        self,
        url: str,
        caches: tuple[Invalidator, ...],
        *,
        channel: str = "gw:invalidate",
        on_lag: Callable[[float], None] | None = None,
    ) -> None:
        import redis.asyncio as aioredis

        self._redis = aioredis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=2.0)
        self._errors: tuple[type[Exception], ...] = (aioredis.RedisError, OSError, asyncio.TimeoutError)
        self._caches = caches
        self._channel = channel
        self._acks = channel + ":ack"
        self._on_lag = on_lag
        self.instance = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._pending: dict[str, _Pending] = {}
        self._announcing: set[asyncio.Task[Propagation]] = set()
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self.resubscribed = asyncio.Event()  # set after every reconnection (and its cache flush)
        self._down = False
        self.received = 0

    def announce(self, kind: str, target: str) -> None:
        """Publish in the background; the caller's own cache is already clean."""
        task = asyncio.get_running_loop().create_task(self.publish(kind, target))
        self._announcing.add(task)
        task.add_done_callback(self._announcing.discard)

    async def publish(self, kind: str, target: str, *, wait: float = 0.0) -> Propagation:
        """Tell the other instances; with `wait`, until they confirm (or `wait` seconds pass)."""
        message_id = uuid.uuid4().hex
        started = time.monotonic()
        pending = _Pending(asyncio.get_running_loop().create_future())
        self._pending[message_id] = pending
        try:
            body = json.dumps({"id": message_id, "kind": kind, "target": target, "from": self.instance,
                               "at": time.time()})
            try:
                receivers = int(await self._redis.publish(self._channel, body))
            except self._errors as exc:
                self._went_down(exc)
                return Propagation(0, 0, 0.0)
            # PUBLISH counts every subscriber, this instance's own listener included.
            pending.expect(max(0, receivers - (1 if self._subscribed.is_set() else 0)))
            if wait > 0 and not pending.done.done():
                try:
                    await asyncio.wait_for(asyncio.shield(pending.done), wait)
                except TimeoutError:
                    pass
            return Propagation(pending.expected or 0, pending.confirmed, time.monotonic() - started)
        finally:
            self._pending.pop(message_id, None)

    # -- receiving ------------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._listen())

    async def wait_subscribed(self, timeout: float = 5.0) -> None:
        await asyncio.wait_for(self._subscribed.wait(), timeout)

    async def _listen(self) -> None:
        delay = 0.2
        first = True
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel, self._acks)
                if not first:
                    # Messages sent while we were away are lost: forget everything cached.
                    for cache in self._caches:
                        cache.clear()
                    self.resubscribed.set()
                if self._down:
                    log.info("invalidation channel back; key cache cleared")
                    self._down = False
                first = False
                delay = 0.2
                self._subscribed.set()
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        await self._handle(message["channel"], message["data"])
            except asyncio.CancelledError:
                raise
            except self._errors as exc:
                self._went_down(exc)
            finally:
                self._subscribed.clear()
                try:
                    await pubsub.aclose()
                except self._errors:
                    pass
            await asyncio.sleep(delay)  # reconnect backoff, not synchronisation
            delay = min(delay * 2, 5.0)

    async def _handle(self, channel: bytes, data: bytes) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            return
        if not isinstance(message, dict):
            return
        if channel.decode() == self._acks:
            pending = self._pending.get(str(message.get("id")))
            if pending is not None:
                pending.confirm()
            return
        if message.get("from") == self.instance or message.get("kind") not in CHANGE_KINDS:
            return
        kind, target = message["kind"], str(message.get("target"))
        for cache in self._caches:
            cache.invalidate(kind, target)
        self.received += 1
        at = message.get("at")
        if self._on_lag is not None and isinstance(at, (int, float)):
            self._on_lag(max(0.0, time.time() - at))
        try:
            await self._redis.publish(self._acks, json.dumps({"id": message.get("id"), "from": self.instance}))
        except self._errors as exc:
            self._went_down(exc)

    def _went_down(self, exc: BaseException) -> None:
        if not self._down:
            self._down = True
            log.warning("invalidation channel unavailable; other instances' changes apply within "
                        "store.cache_ttl until it is back", extra={"error": str(exc)})

    async def close(self) -> None:
        if self._announcing:
            await asyncio.wait(self._announcing, timeout=2.0)  # changes made just before shutdown still go out
        await cancel_and_wait(self._task)
        self._task = None
        await self._redis.aclose()

