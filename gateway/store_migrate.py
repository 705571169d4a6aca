"""`gateway store migrate --from URL --to URL`: move a gateway's data to another store, once.

Typically from the embedded SQLite file to PostgreSQL when a second instance is added. Tenants,
users and their portal sign-ins (email and password hash), keys (their hashes: secrets were never
stored), the audit trail, the call log and the usage rollups are copied through the stores' own
interfaces, so every backend pair works; portal sessions, unused links and the anomaly marks of
keys are not (people sign in again; a mark is an hour's news). The
destination must be empty; the source must exist (a mistyped SQLite path is an error, not an
empty store) and is only read. A long copy reports its rate and the time left about once a second.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from gateway.config import WebhooksConfig
from gateway.keystore.base import KeyStore, StoreError
from gateway.keystore.factory import is_postgres
from gateway.observability.records import AuditEntry, CallEntry, RecordStore, call_row
from gateway.observability.usage import GRANULARITIES, UsageRow

_PAGE = 500
T = TypeVar("T")


@dataclass
class Copied:
    tenants: int = 0
    users: int = 0
    keys: int = 0
    audit: int = 0
    calls: int = 0
    webhooks: int = 0
    usage: int = 0


def counted(n: int, one: str, many: str | None = None) -> str:
    """`1 tenant`, `2 tenants`: the summary and progress lines read as sentences."""
    return f"{n} {one if n == 1 else (many or one + 's')}"


async def _all(fetch: Callable[[int], Awaitable[tuple[list[T], int]]]) -> AsyncIterator[T]:
    """Every item of a paged listing (`page` from 1, `_PAGE` a page), in the listing's order."""
    page = 1
    while True:
        items, _ = await fetch(page)
        for item in items:
            yield item
        if len(items) < _PAGE:
            return
        page += 1


class Progress:
    """One kind of row being copied: a line at most every `every` seconds with the count, the rate
    and, when the total is known, the share done and the time left."""

    def __init__(self, what: str, total: int | None, report: Callable[[str], None],
                 clock: Callable[[], float] = time.monotonic, every: float = 1.0) -> None:
        self.what, self.total, self._report, self._clock, self._every = what, total, report, clock, every
        self.done = 0
        self._started = self._last = clock()

    def add(self, rows: int) -> None:
        self.done += rows
        now = self._clock()
        if now - self._last >= self._every:
            self._last = now
            self._report(self.line(now))

    def line(self, now: float) -> str:
        elapsed = now - self._started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        text = f"{self.what}: {self.done:,}"
        if self.total:
            text += f" of ~{self.total:,} ({min(100, 100 * self.done // self.total)} %)"
        if rate > 0:
            text += f", {rate:,.0f} rows/s"
            if self.total:
                text += f", ETA {max(0, round((self.total - self.done) / rate))} s"
        return text


def _source_must_exist(url: str) -> None:
    """SQLite makes a missing file on open: a mistyped source would be copied as an empty store."""
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).is_file():
        raise StoreError(f"source store not found: {url[len('sqlite:///'):]} is not a file")


def _id_span(first: Sequence[AuditEntry | CallEntry], last: Sequence[AuditEntry | CallEntry]) -> int | None:
    """About how many rows lie from the oldest to the newest (ids only grow; pruning leaves gaps)."""
    if not first or not last or first[0].id is None or last[0].id is None:
        return None
    return last[0].id - first[0].id + 1


def open_pair(url: str) -> tuple[KeyStore, RecordStore]:
    if url.startswith("sqlite:///"):
        from gateway.keystore.sqlite import SQLiteKeyStore
        from gateway.observability.records_sqlite import SQLiteRecordStore

        path = url[len("sqlite:///"):]
        return SQLiteKeyStore(path), SQLiteRecordStore(path)
    if is_postgres(url):
        from gateway.keystore.postgres import PostgresKeyStore
        from gateway.observability.records_postgres import PostgresRecordStore

        return PostgresKeyStore(url), PostgresRecordStore(url)
    raise StoreError(f"unsupported store URL {url.split(':', 1)[0]}: use sqlite:///PATH or postgresql://...")


async def migrate(source_url: str, target_url: str, progress: Callable[[str], None] = lambda _: None,
                  *, clock: Callable[[], float] = time.monotonic, every: float = 1.0) -> Copied:
    copied = Copied()
    _source_must_exist(source_url)
    async with AsyncExitStack() as stack:
        stores = []
        for url in (source_url, target_url):
            key_store, records = open_pair(url)
            await key_store.open()
            stack.push_async_callback(key_store.close)
            await records.open()
            stack.push_async_callback(records.close)
            stores.append((key_store, records))
        (src, src_records), (dst, dst_records) = stores
        _, existing = await dst.list_tenants(page=1, per_page=1)
        if existing:
            raise StoreError("the destination store already holds tenants; migrate into an empty store")
        far_past = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        _, tenants = await src.list_tenants(page=1, per_page=1)
        rows = Progress("tenants", tenants, progress, clock, every)
        async for tenant in _all(lambda page: src.list_tenants(page=page, per_page=_PAGE, sort="created_at")):
            await dst.create_tenant(tenant)
            copied.tenants += 1
            for user in await src.list_users(tenant.id):
                await dst.create_user(user)
                copied.users += 1
                login = await src.login_of(user.id)  # portal sign-ins (sessions and pending links are not copied)
                if login is not None:
                    await dst.put_login(user.id, login.email, login.password_hash)
            rows.add(1)
        progress(f"{counted(copied.tenants, 'tenant')}, {counted(copied.users, 'user')}")
        _, keys = await src.list_keys(now=far_past, page=1, per_page=1, sort="created_at")
        rows = Progress("keys", keys, progress, clock, every)
        async for key in _all(lambda page: src.list_keys(now=far_past, page=page, per_page=_PAGE, sort="created_at")):
            await dst.create_key(key)
            copied.keys += 1
            rows.add(1)
        # keys whose expiry the source has already put in the audit trail are not noted again
        now = dt.datetime.now(dt.UTC)
        pending = set(await src.expired_unnoted(now, 2**31))
        for key_id in await dst.expired_unnoted(now, 2**31):
            if key_id not in pending:
                await dst.note_expiry(key_id)
        progress(counted(copied.keys, "key"))
        # webhook endpoints (with their signing secrets: receivers keep verifying); keys already
        # inside a key.expiring threshold are noted as announced, and deliveries still pending in
        # the source are not copied (the gateway is stopped to migrate: say so, not silently)
        async for endpoint in _all(lambda page: src.list_endpoints(page=page, per_page=_PAGE)):
            await dst.create_endpoint(endpoint)
            copied.webhooks += 1
        for days in WebhooksConfig().expiring_days:
            for near in await dst.expiring_unnoted(now, dt.timedelta(days=days), days, 2**31):
                await dst.note_expiring(near.id, [days], now)
        waiting, _ = await src.backlog()
        progress(counted(copied.webhooks, "webhook endpoint") + (
            f" ({waiting} deliveries pending in the source were not copied)" if waiting else ""))
        span = _id_span(await src_records.list_audit(after=None, limit=1),
                        await src_records.list_audit(after=None, limit=1, newest_first=True))
        rows = Progress("audit entries", span, progress, clock, every)
        after = 0
        while entries := await src_records.list_audit(after=after, limit=_PAGE):
            await dst_records.append_audit(entries)
            copied.audit += len(entries)
            after = entries[-1].id or after
            rows.add(len(entries))
        span = _id_span(
            await src_records.list_calls(cursor=None, newest_first=False, limit=1, key_id=None, status=None),
            await src_records.list_calls(cursor=None, newest_first=True, limit=1, key_id=None, status=None))
        rows = Progress("call log rows", span, progress, clock, every)
        cursor: int | None = None
        while calls := await src_records.list_calls(cursor=cursor, newest_first=False, limit=_PAGE * 4,
                                                    key_id=None, status=None):
            await dst_records.append_calls([call_row(call) for call in calls])
            copied.calls += len(calls)
            cursor = calls[-1].id
            rows.add(len(calls))
        for granularity in GRANULARITIES:
            last: UsageRow | None = None
            while usage := await src_records.usage_rows(granularity, after=last, limit=_PAGE * 4):
                await dst_records.add_usage(granularity, usage)
                copied.usage += len(usage)
                last = usage[-1]
        progress(f"{counted(copied.audit, 'audit entry', 'audit entries')}, {counted(copied.calls, 'call log row')}, "
                 f"{counted(copied.usage, 'usage row')}")
    return copied
