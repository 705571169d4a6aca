"""A usage series as the API answers it: the query's rules, the range aligned to the
granularity, the rollups read and every bucket of the range given, empty ones as zeros.

Shared by `GET /admin/usage` and the portal's `GET <portal.path>/api/usage`: each decides which
tenant and key the caller may see, this reads them.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.errors import ValidationError
from gateway.observability.records import iso
from gateway.observability.usage import STEP, Granularity, UsageRow, dense

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


# RFC 3339 with a zone, or Unix seconds (the JSON schema's pattern; `parse_time` reads them).
TIME_PATTERN = (r"^(-?[0-9]{1,15}(\.[0-9]{1,9})?|[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}"
                r"(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2}))$")
TIME_RULE = "must be an RFC 3339 time with its zone, or Unix seconds, from 1970 to 9999"
_TIME = re.compile(TIME_PATTERN, re.ASCII)
LAST = 253402300800  # 10000-01-01T00:00:00Z: a range must end by then, once rounded up (no datetime holds it)


def parse_time(value: str) -> float:
    """Epoch seconds of a query's time, or ValueError. Only what the pattern says: `float` and
    `fromisoformat` also read fullwidth digits, ISO week dates and the basic format."""
    if _TIME.fullmatch(value) is None:
        raise ValueError("not an RFC 3339 time or Unix seconds")
    try:
        seconds = float(value)
    except ValueError:
        at = dt.datetime.fromisoformat(value.upper())  # ValueError when it is not one (RFC 3339 allows t, z)
        if at.tzinfo is None:
            raise ValueError("no zone") from None
        seconds = at.timestamp()
    if not math.isfinite(seconds) or not 0 <= seconds < LAST:  # through the year 9999
        raise ValueError("out of range")
    return seconds


def plan_query(*, granularity: Granularity, start: float | None, to: float | None, tenant_id: str | None,
               key_id: str | None, now: float) -> UsageQuery:
    """The checked parameters (`queries.Usage`: each alone) as a query: the rules between them
    (a tenant or a key; from before to; at most MAX_POINTS buckets), all at once as a 422, and
    the range aligned to the granularity. No `to`: now; no `from`: the granularity's usual span."""
    problems: list[dict[str, str]] = []
    if tenant_id is None and key_id is None:
        problems.append({"field": "tenant_id", "issue": "give tenant_id or key_id"})
    step = STEP[granularity]
    end_at = now if to is None else to
    start_at = end_at - DEFAULT_SPAN[granularity] if start is None else start
    first, end = int(start_at // step) * step, int(-(-end_at // step)) * step
    if end_at <= start_at:
        problems.append({"field": "from", "issue": "must be before to"})
    elif end >= LAST:
        problems.append({"field": "to" if to is not None else "from",
                         "issue": f"rounded up to the {granularity}, the range would end after the year 9999"})
    elif (end - first) // step > MAX_POINTS:
        problems.append({"field": "from", "issue": f"at most {MAX_POINTS} points: a shorter range or a coarser "
                                                   "granularity"})
    if problems:
        raise ValidationError(details=problems)
    return UsageQuery(granularity, max(0, first), end, tenant_id, key_id)


async def series(store: SeriesReader, query: UsageQuery) -> dict[str, Any]:
    """`{"data": [...], "meta": {...}}`: every bucket of the query's range."""
    rows = await store.usage_series(query.granularity, start=query.start, end=query.end,
                                    tenant_id=query.tenant_id, key_id=query.key_id)
    utc = dt.UTC
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
