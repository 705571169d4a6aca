"""What the key views add from outside the key store: the mark of unusual usage (`anomaly`).

`anomaly` is the key's latest anomaly of the last `usage.anomalies.mark_hours` (what, when, how far
above its baseline; see observability/usage_anomaly.py), or null. Read for a page of keys in one
query, when the listing is answered; never on the proxy's path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from aiohttp import web

from gateway.observability.usage_anomaly import Anomaly


class Marks(Protocol):
    async def marks(self, key_ids: Sequence[str]) -> dict[str, Anomaly]: ...


USAGE: web.AppKey[Marks] = web.AppKey("usage marks", Marks)


async def mark(source: Marks | None, views: Sequence[dict[str, Any]]) -> None:
    """Sets each key view's `anomaly`."""
    found = await source.marks([v["id"] for v in views]) if source is not None and views else {}
    for view in views:
        anomaly = found.get(view["id"])
        view["anomaly"] = anomaly.json() if anomaly is not None else None


def marks_of(app: web.Application) -> Marks | None:
    return app.get(USAGE)
