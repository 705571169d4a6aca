"""Delivers the outbox: claims due deliveries, signs and sends each, records the outcome.

At least once: a delivery leaves `pending` only when an attempt's outcome is recorded, and a
claim is a lease, so an instance that dies (or stops) mid-attempt leaves the delivery to the
next claim. Any 2xx is delivered; anything else is retried after a growing delay with jitter
until `retry_for` has passed since the delivery was made (or manually retried), then `failed`.
Every attempt of one event carries the same `webhook-id` (the event's id) and the same body.

Tenants share the attempts in flight: the running loop gives one tenant's endpoints at most a
quarter of them (`tenant_share`), so a tenant whose receivers hang, or who makes events by the
thousand (test events, key rotations), slows its own deliveries and nobody else's. Claimed
strictly by due time, such a backlog took every slot and the others' deliveries waited behind
it for as long as it lasted. Endpoints for every tenant's events (the operator's) are not capped.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from gateway.accounts.actors import SYSTEM, AuditSink
from gateway.config import WebhooksConfig
from gateway.events.metrics import WebhookMetrics
from gateway.events.sender import Outcome
from gateway.events.settings import lease
from gateway.events.signing import signed_headers
from gateway.keystore.base import StoreError
from gateway.keystore.outbox import Claim, WebhookStore
from gateway.tasks import cancel_and_wait

log = logging.getLogger("gateway.webhooks")
STOP_GRACE = 5.0  # seconds a stopping instance waits for its attempts in flight
MAINTENANCE_PERIOD = 30.0  # seconds between backlog figures and the check for failing endpoints
PRUNE_PERIOD = 3600.0


class Sender(Protocol):
    async def send(self, url: str, headers: Mapping[str, str], body: bytes) -> Outcome: ...


def retry_delay(attempt: int, base: float, cap: float, rnd: Callable[[], float] = random.random) -> float:
    """The wait after failed attempt number `attempt` (from 1): base, 2 x base, 4 x base... up to
    `cap`, each drawn from its upper half, so receivers coming back are not hit by every
    sender at the same instant."""
    ceiling = min(cap, base * 2.0 ** min(attempt - 1, 40))
    return ceiling / 2 + rnd() * ceiling / 2


class Dispatcher:
    def __init__(
        self,
        store: WebhookStore,
        sender: Sender,
        settings: WebhooksConfig,
        *,
        clock: Callable[[], float] = time.time,
        audit: AuditSink | None = None,
        metrics: WebhookMetrics | None = None,
        rnd: Callable[[], float] = random.random,
    ) -> None:
        self.store = store
        self.sender = sender
        self.settings = settings
        self._clock = clock
        self._audit = audit
        self._metrics = metrics
        self._rnd = rnd
        self._wake = asyncio.Event()
        self._inflight: dict[asyncio.Task[None], Claim] = {}
        self._task: asyncio.Task[None] | None = None
        self._maintained = self._pruned = -float("inf")
        self._store_failing = False  # logged once when the store fails, once when it is back

    def _now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._clock(), dt.UTC)

    def wake(self) -> None:
        """Events were just written here: look now rather than at the next poll."""
        self._wake.set()

    async def run_once(self) -> int:
        """Claim what is due (up to `concurrency`), attempt it all and record the outcomes."""
        claims = await self._claim(self.settings.concurrency)
        await asyncio.gather(*(self._attempt(claim) for claim in claims))
        return len(claims)

    async def _claim(self, limit: int, skip_tenants: set[str] | None = None) -> list[Claim]:
        now = self._now()
        until = now + dt.timedelta(seconds=lease(self.settings))
        return await self.store.claim_deliveries(now, lease_until=until, limit=limit, skip_tenants=skip_tenants or ())

    @property
    def tenant_share(self) -> int:
        """Attempts one tenant's endpoints may have in flight in this process."""
        return max(1, self.settings.concurrency // 4)

    def _busy_tenants(self) -> set[str]:
        counts: dict[str, int] = {}
        for claim in self._inflight.values():
            if claim.tenant_id is not None:
                counts[claim.tenant_id] = counts.get(claim.tenant_id, 0) + 1
        return {tenant for tenant, count in counts.items() if count >= self.tenant_share}

    async def _attempt(self, claim: Claim) -> None:
        # both secrets while a rotated-away one's grace period lasts, judged at the attempt itself
        headers = signed_headers(claim.signing_secrets(self._now()), claim.event_id, int(self._clock()), claim.body)
        outcome = await self.sender.send(claim.url, headers, claim.body)
        now = self._now()
        next_at: dt.datetime | None = None
        if outcome.delivered:
            status = "delivered"
        else:
            deadline = claim.retry_from + dt.timedelta(seconds=self.settings.retry_for)
            if now >= deadline:
                status = "failed"
            else:
                status = "pending"
                delay = retry_delay(claim.attempt, self.settings.backoff_base, self.settings.backoff_max, self._rnd)
                next_at = min(now + dt.timedelta(seconds=delay), deadline)  # the last attempt at the deadline
        recorded = await self.store.finish_delivery(
            claim, at=now, status=status, response_status=outcome.response_status, error=outcome.error,
            next_attempt_at=next_at)
        if self._metrics is not None:
            self._metrics.attempt_seconds.observe(outcome.seconds)
            self._metrics.deliveries.labels({"pending": "retrying"}.get(status, status)).inc()
        extra = {"event_id": claim.event_id, "event_type": claim.event_type, "webhook_id": claim.endpoint_id,
                 "attempt": claim.attempt, "status": status, "response_status": outcome.response_status}
        if not recorded:
            log.warning("webhook delivery outcome not recorded: its lease had passed", extra=extra)
        elif outcome.delivered:
            log.debug("webhook delivered", extra=extra)
        else:
            log.info("webhook delivery failed", extra={**extra, "error": outcome.error})

    # the loop

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self, grace: float | None = None) -> None:
        """Stop claiming; let attempts in flight end (up to `grace`: the attempt timeout, at most
        STOP_GRACE by default), then cancel the rest and give their deliveries back, due at once,
        to the next claim (here after a restart, or another instance)."""
        await cancel_and_wait(self._task)
        self._task = None
        if not self._inflight:
            return
        await asyncio.wait(set(self._inflight), timeout=min(self.settings.timeout, STOP_GRACE) if grace is None else grace)
        unfinished = [claim for task, claim in self._inflight.items() if not task.done()]
        for task in list(self._inflight):
            await cancel_and_wait(task)
        if unfinished:
            try:
                await self.store.release_claims(unfinished)
            except StoreError as exc:  # their leases run out instead
                log.warning("could not give webhook deliveries back", extra={"error": str(exc)})

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            delay = self.settings.poll_interval
            try:
                free = self.settings.concurrency - len(self._inflight)
                # a tenant's share at a time, none for a tenant that has its share in flight
                ask, busy = min(free, self.tenant_share), self._busy_tenants()
                # a read first: an idle gateway never takes the store's write lock to find nothing
                due = await self.store.next_due() if free > 0 else None
                claimed = await self._claim(ask, busy) if due is not None and due <= self._now() else []
                for claim in claimed:
                    task = asyncio.get_running_loop().create_task(self._attempt(claim))
                    self._inflight[task] = claim
                    task.add_done_callback(self._attempt_done)
                await self._maintain()
                if claimed and len(claimed) == ask < free:
                    delay = 0.0  # more free slots: claim again, without the tenants now at their share
                elif len(claimed) < ask:
                    # nothing else is due now (until the next one is), or what is due is busy
                    # tenants' (until one of their attempts ends, which wakes this loop)
                    delay = self.settings.poll_interval if busy else await self._idle_delay()
                if self._store_failing:
                    self._store_failing = False
                    log.info("webhook dispatch reaches the store again")
            except StoreError as exc:
                if not self._store_failing:  # once, not every poll of an outage
                    self._store_failing = True
                    log.warning("webhook dispatch cannot reach the store", extra={"error": str(exc)})
            except Exception:  # the loop must not die; the next turn tries again
                log.exception("webhook dispatch failed")
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except TimeoutError:
                pass

    def _attempt_done(self, task: asyncio.Task[None]) -> None:
        self._inflight.pop(task, None)
        self._wake.set()
        if task.cancelled():
            return
        error = task.exception()
        if isinstance(error, StoreError):
            log.warning("webhook delivery outcome not recorded", extra={"error": str(error)})
        elif error is not None:
            log.error("webhook delivery attempt failed", exc_info=error)

    async def _idle_delay(self) -> float:
        due = await self.store.next_due()
        if due is None:
            return self.settings.poll_interval
        return max(0.0, min(self.settings.poll_interval, (due - self._now()).total_seconds()))

    async def _maintain(self) -> None:
        mark = self._clock()
        if mark - self._maintained < MAINTENANCE_PERIOD:
            return
        self._maintained = mark
        await self.maintain()
        if mark - self._pruned >= PRUNE_PERIOD:
            self._pruned = mark
            cutoff = self._now() - dt.timedelta(days=self.settings.retention_days)
            while await self.store.prune_events(cutoff, 1000) == 1000:
                pass

    async def maintain(self) -> None:
        """The backlog's figures, rotated-away secrets past their grace period forgotten, and
        endpoints failing for `disable_after` disabled (each by one instance, with one audit entry)."""
        now = self._now()
        if self._metrics is not None:
            pending, oldest = await self.store.backlog()
            self._metrics.backlog.set(pending)
            self._metrics.oldest.set(max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)
        await self.store.forget_expired_secrets(now)
        if self.settings.disable_after <= 0:
            return
        since = now - dt.timedelta(seconds=self.settings.disable_after)
        for endpoint in await self.store.disable_failing_endpoints(since, now):
            log.warning("webhook endpoint disabled: it has failed for too long",
                        extra={"webhook_id": endpoint.id, "failing_since": str(endpoint.failing_since)})
            if self._audit is not None:
                self._audit(SYSTEM, "webhook.disabled", "webhook", endpoint.id, tenant_id=endpoint.tenant_id)
