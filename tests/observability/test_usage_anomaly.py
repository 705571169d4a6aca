"""Unusual key usage found in the rollups (SQLite and PostgreSQL): a traffic jump or an error
burst against the key's own baseline, reported once per key, kind and hour across instances."""

from __future__ import annotations

from pathlib import Path

from gateway.config import UsageConfig
from gateway.observability.records import RecordStore
from gateway.observability.usage import WIDTH, UsageRow
from gateway.observability.usage_anomaly import Anomaly
from gateway.observability.usage_monitor import UsageMonitor
from tests.observability.conftest import second_store

NOW = 1_772_323_200 + 10 * 86400 + 1800  # half past an hour
HOUR = NOW // 3600 * 3600


def counts(requests: int, *, s4xx: int = 0, s5xx: int = 0, limited: int = 0) -> tuple[int, ...]:
    c = [0] * WIDTH
    c[0], c[1], c[3], c[4], c[5] = requests, requests - s4xx - s5xx, s4xx, s5xx, limited
    c[6 + 10] = requests  # every latency in one bucket
    return tuple(c)


async def baseline(store: RecordStore, key: str, tenant: str, per_hour: int, *, errors: int = 0) -> None:
    """The key's 24 hours before the last one, and the earlier ones (outside the baseline)."""
    await store.add_usage("hour", [UsageRow(HOUR - h * 3600, tenant, key, counts(per_hour, s4xx=errors))
                                   for h in range(2, 30)])


async def last_hour(store: RecordStore, key: str, tenant: str, per_minute: tuple[int, ...], minutes: int = 60) -> None:
    start = NOW // 60 * 60 - (minutes - 1) * 60
    await store.add_usage("minute", [UsageRow(start + m * 60, tenant, key, per_minute) for m in range(minutes)])


class Reports:
    def __init__(self) -> None:
        self.seen: list[Anomaly] = []

    async def __call__(self, anomaly: Anomaly) -> None:
        self.seen.append(anomaly)


async def test_a_traffic_jump_and_an_error_burst_are_reported_once(records: RecordStore, tmp_path: Path) -> None:
    await baseline(records, "key_jump", "acme", 50)
    await last_hour(records, "key_jump", "acme", counts(10))            # 600 in the hour: 12x
    await baseline(records, "key_steady", "acme", 50)
    await last_hour(records, "key_steady", "acme", counts(2))           # 120: 2.4x
    await baseline(records, "key_401", "bolt", 40)
    await last_hour(records, "key_401", "bolt", counts(5, s4xx=4))      # 240 of 300 refused, none before
    await last_hour(records, "key_new", "bolt", counts(20))             # 1,200 with no history
    await baseline(records, "key_limited", "bolt", 100)
    await last_hour(records, "key_limited", "bolt", counts(5, s4xx=4, limited=4))  # its own limits: not errors
    await baseline(records, "key_flaky", "bolt", 100, errors=30)
    await last_hour(records, "key_flaky", "bolt", counts(2, s5xx=1))    # 60 errors, hourly 30 before: 2x
    reports = Reports()
    monitor = UsageMonitor(records, UsageConfig(), on_anomaly=reports, clock=lambda: NOW + 0.5)
    found = await monitor.check()
    assert sorted((a.key_id, a.kind) for a in found) == [("key_401", "errors"), ("key_jump", "traffic")]
    assert reports.seen == found
    jump = next(a for a in found if a.key_id == "key_jump")
    assert (jump.tenant_id, jump.requests, jump.baseline_requests, jump.window_t) == ("acme", 600, 50.0, HOUR)
    assert jump.json()["message"] == "600 requests in an hour, 12x its hourly average of 50.0"
    errors = next(a for a in found if a.key_id == "key_401")
    assert (errors.requests, errors.errors, errors.baseline_errors) == (300, 240, 0.0)

    # the same hour: not again, from this instance or another one
    assert await monitor.check() == []
    other = second_store(records, tmp_path)
    await other.open()
    try:
        assert await UsageMonitor(other, UsageConfig(), on_anomaly=reports, clock=lambda: NOW + 60).check() == []
    finally:
        await other.close()
    assert len(reports.seen) == 2

    # the mark on the keys, for `mark_hours`
    marks = await monitor.marks(["key_jump", "key_401", "key_steady"])
    assert {k: a.kind for k, a in marks.items()} == {"key_jump": "traffic", "key_401": "errors"}
    later = UsageMonitor(records, UsageConfig(), on_anomaly=reports, clock=lambda: NOW + 25 * 3600)
    assert await later.marks(["key_jump", "key_401"]) == {}


async def test_an_anomaly_that_goes_on_is_reported_again_the_next_hour(records: RecordStore) -> None:
    await baseline(records, "key_jump", "acme", 10)
    await last_hour(records, "key_jump", "acme", counts(10), minutes=90)
    reports = Reports()
    assert len(await UsageMonitor(records, UsageConfig(), on_anomaly=reports, clock=lambda: NOW).check()) == 1
    next_hour = UsageMonitor(records, UsageConfig(), on_anomaly=reports, clock=lambda: NOW + 1800)
    [again] = await next_hour.check()
    assert again.window_t == HOUR + 3600 and len(reports.seen) == 2


async def test_a_failing_report_does_not_hide_the_others(records: RecordStore) -> None:
    for key in ("key_1", "key_2"):
        await baseline(records, key, "acme", 10)
        await last_hour(records, key, "acme", counts(10))
    seen: list[str] = []

    async def flaky(anomaly: Anomaly) -> None:
        seen.append(anomaly.key_id)
        if len(seen) == 1:
            raise RuntimeError("webhook outbox unavailable")

    found = await UsageMonitor(records, UsageConfig(), on_anomaly=flaky, clock=lambda: NOW).check()
    assert len(found) == 2 and sorted(seen) == ["key_1", "key_2"]
