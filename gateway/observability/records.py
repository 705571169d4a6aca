"""What the gateway keeps of what happened: the audit trail and the call log, with cursors.

Both are append-only and read by "entries after this cursor", the pattern integrations poll.
A cursor is opaque to clients (base64 of the last id seen), so its encoding can change later.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol

from gateway.errors import BadRequest

if TYPE_CHECKING:
    from gateway.observability.usage import Granularity, Rollup, UsageRow
    from gateway.observability.usage_anomaly import Anomaly


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: dt.datetime
    actor: str
    action: str
    target_type: str
    target_id: str
    tenant_id: str | None = None
    key_name: str | None = None
    source_ip: str | None = None
    id: int | None = None
    actor_email: str | None = None  # the person behind a `user:<id>` actor
    details: dict[str, str] | None = None  # what else the action names (a canary key's user agent and path)


@dataclass(slots=True)
class CallEntry:
    """A call-log row as read back (admin API, console, migration)."""

    at: dt.datetime
    request_id: str
    tenant_id: str | None
    key_id: str | None
    key_name: str | None
    method: str
    route: str | None
    path: str
    status: int
    latency_ms: float
    upstream_latency_ms: float | None
    rate_limited: bool
    client_ip: str | None = None    # the address the gateway decided the request came from
    error: str | None = None        # the contract code of a refusal, or of what cut an answer's body
    id: int | None = None


# A call-log row as written: a plain tuple in column order, `at` in seconds since the epoch (UTC).
# One is written per proxied request; the stores turn the time into their own column type while
# binding, so nothing per row is built twice (an entry object and a datetime per row cost more
# than SQLite's insert of it).
CallRow = tuple[float, str, str | None, str | None, str | None, str, str | None, str, int, float, float | None, bool,
                str | None, str | None]


def call_row(entry: CallEntry) -> CallRow:
    """The row that writes an entry read from another store again (`gateway store migrate`)."""
    return (entry.at.timestamp(), entry.request_id, entry.tenant_id, entry.key_id, entry.key_name, entry.method,
            entry.route, entry.path, entry.status, entry.latency_ms, entry.upstream_latency_ms, entry.rate_limited,
            entry.client_ip, entry.error)


class RecordStore(Protocol):
    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def append_audit(self, entries: Sequence[AuditEntry]) -> None: ...
    async def list_audit(self, *, after: int | None, limit: int, newest_first: bool = False,
                         tenant_id: str | None = None, action: str | None = None) -> list[AuditEntry]: ...
    async def append_calls(self, rows: Sequence[CallRow], usage: Rollup | None = None) -> None: ...
    async def list_calls(
        self, *, cursor: int | None, newest_first: bool, limit: int, key_id: str | None, status: int | None,
        tenant_id: str | None = None,
    ) -> list[CallEntry]: ...
    async def prune_calls(self, *, older_than: dt.datetime, max_rows: int) -> int: ...
    # usage rollups (usage_sqlite.py, usage_postgres.py)
    async def add_usage(self, granularity: Granularity, rows: Sequence[UsageRow]) -> None: ...
    async def usage_series(self, granularity: Granularity, *, start: int, end: int, tenant_id: str | None,
                           key_id: str | None) -> list[UsageRow]: ...
    async def usage_rows(self, granularity: Granularity, *, after: UsageRow | None, limit: int) -> list[UsageRow]: ...
    async def usage_totals(self, granularity: Granularity, *, start: int, end: int, min_requests: int,
                           key_ids: Sequence[str] | None = None) -> list[UsageRow]: ...
    async def prune_usage(self, granularity: Granularity, *, before: int) -> int: ...
    async def add_anomaly(self, anomaly: Anomaly) -> bool: ...
    async def latest_anomalies(self, key_ids: Sequence[str], *, since: float) -> dict[str, Anomaly]: ...
    async def prune_anomalies(self, *, before: float) -> int: ...


def details_text(details: dict[str, str] | None) -> str | None:
    """An audit entry's details as stored (JSON text), None without."""
    return json.dumps(details, separators=(",", ":"), ensure_ascii=False) if details else None


def details_of(text: str | None) -> dict[str, str] | None:
    return json.loads(text) if text else None


def encode_cursor(entry_id: int) -> str:
    return base64.urlsafe_b64encode(f"c1:{entry_id}".encode()).decode().rstrip("=")


# Exactly the cursors encode_cursor makes for ids of 1 to 18 digits, or none: `c1:` is `YzE6`, then
# each three digits are four characters, a last one or two digits two or three (unpadded).
_DIGITS2 = "(?:M[DTjz]|N[DTjz]|O[DT])"
_GROUP = _DIGITS2 + "[AEIMQUYcgk][w-z0-5]"
CURSOR_PATTERN = f"^(?:YzE6(?:{_GROUP}){{0,5}}(?:{_GROUP}|{_DIGITS2}[AEIMQUYcgk]|(?:M|N)[AQgw]|O[AQ]))?$"
_CURSOR = re.compile(CURSOR_PATTERN)


def decode_cursor(cursor: str | None) -> int | None:
    """The id behind a cursor; None for no cursor; a garbage cursor is a 400."""
    if cursor is None or cursor == "":
        return None
    if not _CURSOR.fullmatch(cursor):
        raise BadRequest("invalid cursor")
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    return int(raw.partition(":")[2])


def iso(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def entry_json(entry: AuditEntry | CallEntry) -> dict[str, Any]:
    data = asdict(entry)
    data["at"] = iso(entry.at)
    if isinstance(entry, AuditEntry):
        return {k: v for k, v in data.items() if v is not None or k in ("id", "at", "actor", "action")}
    return data
