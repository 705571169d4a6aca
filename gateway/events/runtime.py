"""Webhook delivery in a serving gateway process: the dispatcher that empties the outbox, its
delivery client and its metrics, started and stopped together (the endpoint service, which the
CLI has too, is in `gateway/services.py`)."""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable

from aiohttp.abc import AbstractResolver
from prometheus_client import CollectorRegistry

from gateway.accounts.actors import AuditSink
from gateway.config import WebhooksConfig
from gateway.events.dispatcher import Dispatcher
from gateway.events.metrics import WebhookMetrics
from gateway.events.sender import WebhookSender
from gateway.events.settings import address_policy
from gateway.keystore.base import KeyStore


class WebhookDelivery:
    def __init__(
        self,
        store: KeyStore,
        settings: WebhooksConfig,
        *,
        audit: AuditSink,
        registry: CollectorRegistry,
        clock: Callable[[], float] = time.time,
        resolver: AbstractResolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.store = store
        self.metrics = WebhookMetrics(registry)
        self.sender = WebhookSender(address_policy(settings), timeout=settings.timeout, resolver=resolver,
                                    ssl_context=ssl_context)
        self.dispatcher = Dispatcher(store, self.sender, settings, clock=clock, audit=audit, metrics=self.metrics)

    async def start(self) -> None:
        await self.sender.open()
        self.store.on_events = self.dispatcher.wake  # an event committed here is delivered at once
        self.dispatcher.start()

    async def stop(self) -> None:
        """Before the store closes: attempts in flight end, or are given back for the next claim."""
        self.store.on_events = None
        try:
            await self.dispatcher.stop()
        finally:
            await self.sender.close()
