"""A usage series as the API answers it: the query's parameters checked, the range aligned to
the granularity, the rollups read and every bucket of the range given, empty ones as zeros.

Shared by `GET /admin/usage` and the portal's `GET <portal.path>/api/usage`: each decides which
tenant and key the caller may see, this reads them.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, cast

from gateway.errors import ValidationError
from gateway.observability.records import iso
from gateway.observability.usage import GRANULARITIES, STEP, Granularity, UsageRow, dense

MAX_POINTS = 3000  # two days by minute, four months by hour, eight years by day
DEFAULT_SPAN: dict[Granularity, int] = {"minute": 3600, "hour": 86400, "day": 30 * 86400}


@dataclass(frozen=True, slots=True)
class UsageQuery:
    granularity: Granularity
    start: int  # aligned to the granularity: the first bucket
    end: int    # aligned: the bucket after the last
    tenant_id: str | None
    key_id: str | None


class SeriesReader(Protocol):
    async def usage_series(self, granularity: Granularity, *, start: int, end: int, tenant_id: str | None,
                           key_id: str | None) -> list[UsageRow]: ...


def _time(value: str, field: str, problems: list[dict[str, str]]) -> float | None:
    """RFC 3339 with a zone (`2026-03-01T00:00:00Z`), or Unix seconds."""
    try:
        seconds = float(value)
    except ValueError:
        try:
            at = dt.datetime.fromisoformat(value)
        except ValueError:
            at = None
        if at is None or at.tzinfo is None:
            problems.append({"field": field, "issue": "must be an RFC 3339 time with its zone, or Unix seconds"})
            return None
        seconds = at.timestamp()
    if not math.isfinite(seconds) or not 0 <= seconds < 253402300800:  # through the year 9999
        problems.append({"field": field, "issue": "out of range"})
        return None
    return seconds


def parse_query(params: Mapping[str, str], *, now: float, tenant_id: str | None = None) -> UsageQuery:
    """The query string's `granularity`, `from`, `to`, `tenant_id` and `key_id`; every problem
    at once as a 422. `tenant_id` given by the caller (the portal's own tenant) replaces the
    query's."""
    problems: list[dict[str, str]] = []
    raw = params.get("granularity") or "hour"
    if raw not in GRANULARITIES:
        problems.append({"field": "granularity", "issue": "must be minute, hour or day"})
        raw = "hour"
    granularity = cast(Granularity, raw)
    step = STEP[granularity]
    to = _time(params["to"], "to", problems) if params.get("to") else now
    start = _time(params["from"], "from", problems) if params.get("from") else None
    key_id = params.get("key_id") or None
    if tenant_id is None:
        tenant_id = params.get("tenant_id") or None
        if tenant_id is None and key_id is None:
            problems.append({"field": "tenant_id", "issue": "give tenant_id or key_id"})
    for field, value in (("tenant_id", tenant_id), ("key_id", key_id)):
        if value is not None and (len(value) > 128 or not value.isprintable()):
            problems.append({"field": field, "issue": "is not an id"})
    if to is not None and start is None and "from" not in {p["field"] for p in problems}:
        start = to - DEFAULT_SPAN[granularity]
    if start is not None and to is not None:
        first, end = int(start // step) * step, int(-(-to // step)) * step
        if to <= start:
            problems.append({"field": "from", "issue": "must be before to"})
        elif (end - first) // step > MAX_POINTS:
            problems.append({"field": "from", "issue": f"at most {MAX_POINTS} points: a shorter range or a coarser "
                                                       "granularity"})
    if problems:
        raise ValidationError(details=problems)
    assert start is not None and to is not None
    return UsageQuery(granularity, first, end, tenant_id, key_id)


async def series(store: SeriesReader, query: UsageQuery) -> dict[str, Any]:
    """`{"data": [...], "meta": {...}}`: every bucket of the query's range."""
    rows = await store.usage_series(query.granularity, start=query.start, end=query.end,
                                    tenant_id=query.tenant_id, key_id=query.key_id)
    utc = dt.timezone.utc
    return {
        "data": [point.json() for point in dense(rows, query.start, query.end, query.granularity)],
        "meta": {
            "granularity": query.granularity,
            "from": iso(dt.datetime.fromtimestamp(query.start, utc)),
            "to": iso(dt.datetime.fromtimestamp(query.end, utc)),
            "tenant_id": query.tenant_id,
            "key_id": query.key_id,
        },
    }
