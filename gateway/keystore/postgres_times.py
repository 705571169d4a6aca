"""Timestamps in the PostgreSQL stores: `timestamptz` comes back from asyncpg in the session's
zone, and every model carries UTC. Its own module because the pool (`database_postgres`) imports
the outbox's queries, which convert rows too."""

from __future__ import annotations

import datetime as dt


def utc(value: dt.datetime | None) -> dt.datetime | None:
    """A `timestamptz` as asyncpg returns it, in UTC."""
    return value.astimezone(dt.UTC) if value is not None else None
