"""Timestamps in the SQLite store: fixed-width UTC text, so they sort as they compare."""

from __future__ import annotations

import datetime as dt


def ts(at: dt.datetime | None) -> str | None:
    if at is None:
        return None
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ts(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
