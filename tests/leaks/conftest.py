"""An accounts service on a real SQLite store with a webhook endpoint for every event, counting
what it asks of the store; its audit entries kept in a list."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.accounts.actors import Actor
from gateway.accounts.service import Accounts
from gateway.config import parse_config
from gateway.keystore.outbox import Endpoint
from gateway.keystore.sqlite import SQLiteKeyStore
from tests.conftest import FakeClock

ADMIN = Actor("admin", "127.0.0.1")


class AuditTrail(list[tuple[str, str, str]]):
    """(actor, action, target) of each entry; `entries`: the same with every field."""

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[dict[str, Any]] = []


class CountingStore(SQLiteKeyStore):
    """The real SQLite store, counting what a report of exposure asks of it."""

    reads = 0
    writes = 0

    async def get_key(self, key_id: str) -> Any:
        self.reads += 1
        return await super().get_key(key_id)

    async def expose_key(self, *args: Any, **kwargs: Any) -> bool:
        self.writes += 1
        return await super().expose_key(*args, **kwargs)


async def _accounts(tmp_path: Path, on_exposure: str) -> tuple[Accounts, CountingStore, AuditTrail]:
    store = CountingStore(str(tmp_path / "gateway.db"))
    await store.open()
    cfg = parse_config({"server": {"tls": {"self_signed": True}}, "data_dir": str(tmp_path / "data"),
                        "keys": {"on_exposure": on_exposure}}, env={})
    audit = AuditTrail()

    def record(actor: Actor, action: str, target_type: str, target_id: str, **fields: Any) -> None:
        audit.append((actor.name, action, target_id))
        audit.entries.append({"actor": actor.name, "action": action, "target_id": target_id,
                              "source_ip": actor.source_ip, **fields})

    accounts = Accounts(store, cfg, audit=record, clock=FakeClock())
    now = accounts.now()
    # an endpoint for every event: the outbox keeps events only when someone is to receive them
    await store.create_endpoint(Endpoint("wh_all", "https://hooks.example.com/", None, None, ("*",), "whsec_x",
                                         False, None, None, now, now))
    await accounts.create_tenant({"id": "acme", "name": "Acme", "plan": "starter"}, ADMIN)
    return accounts, store, audit


@pytest.fixture
async def made(tmp_path: Path) -> AsyncIterator[Any]:
    stores: list[SQLiteKeyStore] = []

    async def make(on_exposure: str = "revoke") -> tuple[Accounts, CountingStore, AuditTrail]:
        accounts, store, audit = await _accounts(tmp_path, on_exposure)
        stores.append(store)
        return accounts, store, audit

    yield make
    for store in stores:
        await store.close()


async def events(store: SQLiteKeyStore) -> list[dict[str, Any]]:
    rows = await store._all("SELECT payload FROM webhook_events ORDER BY created_at, rowid")
    return [json.loads(row[0]) for row in rows]


