"""An outbox as one gateway instance has it (store, accounts, webhooks, sender, dispatcher), on a
real database, with a clock tests move and receivers on loopback."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp.abc import AbstractResolver
from prometheus_client import CollectorRegistry

from gateway.accounts.actors import Actor
from gateway.accounts.service import Accounts
from gateway.config import WebhooksConfig, parse_config
from gateway.events.dispatcher import Dispatcher
from gateway.events.metrics import WebhookMetrics
from gateway.events.sender import WebhookSender
from gateway.events.service import Webhooks
from gateway.events.settings import address_policy
from gateway.keystore.base import KeyStore
from gateway.keystore.postgres import PostgresKeyStore
from gateway.keystore.sqlite import SQLiteKeyStore
from tests.conftest import FakeClock
from tests.services import drop_schema, postgres_url, require_postgres

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)
TEST_SETTINGS = WebhooksConfig(allowed_networks=LOOPBACK, allow_http=True, timeout=5.0)
ADMIN = Actor("admin", "127.0.0.1")


class WallClock(FakeClock):
    """The real time, for a dispatcher running its own loop."""

    def __call__(self) -> float:
        return time.time()


@dataclass
class Outbox:
    store: KeyStore
    accounts: Accounts
    webhooks: Webhooks
    sender: WebhookSender
    dispatcher: Dispatcher
    clock: FakeClock
    registry: CollectorRegistry
    audit: list[tuple[str, str, str]] = field(default_factory=list)

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


MakeOutbox = Callable[..., Awaitable[Outbox]]


@pytest.fixture
async def make_outbox(tmp_path: Path) -> AsyncIterator[MakeOutbox]:
    made: list[Outbox] = []
    schemas: set[str] = set()

    async def make(settings: WebhooksConfig = TEST_SETTINGS, *, backend: str = "sqlite",
                   resolver: AbstractResolver | None = None, ssl_context: Any = None,
                   clock: FakeClock | None = None, start: bool = False) -> Outbox:
        if backend == "postgres":
            require_postgres()
            url = postgres_url(tmp_path)
            schemas.add(url)
            store: KeyStore = PostgresKeyStore(url)
        else:
            store = SQLiteKeyStore(str(tmp_path / "gateway.db"))
        await store.open()
        clock = clock or FakeClock(time.time())
        cfg = parse_config({"server": {"tls": {"self_signed": True}}, "data_dir": str(tmp_path / "data")}, env={})
        registry = CollectorRegistry()
        audit: list[tuple[str, str, str]] = []

        def record(actor: Actor, action: str, target_type: str, target_id: str, **_: Any) -> None:
            audit.append((actor.name, action, target_id))

        accounts = Accounts(store, cfg, audit=record, clock=clock)
        webhooks = Webhooks(store, settings, audit=record, clock=clock, resolver=resolver)
        sender = WebhookSender(address_policy(settings), timeout=settings.timeout, resolver=resolver, ssl_context=ssl_context)
        await sender.open()
        dispatcher = Dispatcher(store, sender, settings, clock=clock, audit=record,
                                metrics=WebhookMetrics(registry), rnd=lambda: 1.0)
        store.on_events = dispatcher.wake
        outbox = Outbox(store, accounts, webhooks, sender, dispatcher, clock, registry, audit)
        made.append(outbox)
        if start:
            dispatcher.start()
        return outbox

    yield make
    for outbox in made:
        await outbox.dispatcher.stop(grace=0)
        await outbox.sender.close()
        await outbox.store.close()
    for url in schemas:
        await drop_schema(url)
