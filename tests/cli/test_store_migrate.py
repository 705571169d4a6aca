"""`gateway store migrate`: a source that does not exist is an error, and a long copy says how far
it is (SQLite to SQLite here; SQLite to PostgreSQL is in test_accounts.py)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from gateway.observability.records import AuditEntry, CallRow
from gateway.observability.records_sqlite import SQLiteRecordStore
from gateway.observability.usage import WIDTH, UsageRow, with_tenant_totals
from gateway.store_migrate import Progress, migrate
from tests.cli.test_run import gateway


def test_a_missing_source_is_one_line_and_exit_2_and_creates_nothing(tmp_path: Path) -> None:
    (tmp_path / "there").mkdir()
    for source in ("nope/x.db", "there/x.db"):
        result = gateway("store", "migrate", "--from", f"sqlite:///{source}", "--to", "sqlite:///copy.db", cwd=tmp_path)
        assert result.returncode == 2, result.stdout + result.stderr
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
        assert f"source store not found: {source}" in result.stderr
        assert result.stdout == ""
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["there"]  # neither the source nor the copy made


async def seed(path: Path, calls: int) -> None:
    records = SQLiteRecordStore(str(path))
    await records.open()
    try:
        start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp()
        await records.append_audit([AuditEntry(at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), actor="cli",
                                               action="tenant.created", target_type="tenant", target_id=f"t{i}")
                                    for i in range(10)])
        rows: list[CallRow] = [(start + i, f"req{i}", None, None, None, "GET", "api", "/api/x", 200, 1.5, 1.0, False,
                                f"10.0.{i // 256 % 256}.{i % 256}", "UPSTREAM_TIMEOUT" if i % 2 else None)
                               for i in range(calls)]
        await records.append_calls(rows)
        for granularity, step in (("minute", 60), ("hour", 3600), ("day", 86400)):
            await records.add_usage(granularity, with_tenant_totals(  # type: ignore[arg-type]
                UsageRow(int(start) + i * step, "acme", f"key_{k}", (i + k + 1,) + (0,) * (WIDTH - 1))
                for i in range(700) for k in range(2)))
    finally:
        await records.close()


async def test_a_long_copy_reports_rows_per_second_and_time_left(tmp_path: Path) -> None:
    await seed(tmp_path / "source.db", 20000)
    ticks = iter(range(10**6))
    lines: list[str] = []
    copied = await migrate(f"sqlite:///{tmp_path}/source.db", f"sqlite:///{tmp_path}/copy.db", lines.append,
                           clock=lambda: float(next(ticks)), every=1.0)  # each read of the clock: a second on
    assert (copied.audit, copied.calls) == (10, 20000)
    copy = SQLiteRecordStore(f"{tmp_path}/copy.db")
    await copy.open()
    try:
        first = await copy.list_calls(cursor=None, newest_first=False, limit=2, key_id=None, status=None)
    finally:
        await copy.close()
    assert [(c.client_ip, c.error) for c in first] == [("10.0.0.0", None), ("10.0.0.1", "UPSTREAM_TIMEOUT")]
    reports = [line for line in lines if line.startswith("call log rows: ")]
    assert len(reports) >= 5, lines
    pattern = r"call log rows: ([\d,]+) of ~20,000 \((\d+) %\), ([\d,]+) rows/s, ETA (\d+) s"
    parsed = [re.fullmatch(pattern, line) for line in reports]
    assert all(parsed), reports
    done = [int(m.group(1).replace(",", "")) for m in parsed if m]
    assert done == sorted(done) and done[-1] <= 20000
    etas = [int(m.group(4)) for m in parsed if m]
    assert etas == sorted(etas, reverse=True)  # the time left shrinks as the copy goes on
    assert reports[0] == "call log rows: 2,000 of ~20,000 (10 %), 2,000 rows/s, ETA 9 s"
    assert lines[-1] == "10 audit entries, 20000 call log rows, 6300 usage rows"  # 3 x 700 x (2 keys + tenant)
    copy = SQLiteRecordStore(str(tmp_path / "copy.db"))
    await copy.open()
    try:
        start = int(dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp())
        series = await copy.usage_series("hour", start=start, end=start + 700 * 3600, tenant_id="acme", key_id=None)
        assert [row.requests for row in series] == [2 * i + 3 for i in range(700)]
    finally:
        await copy.close()


def test_progress_line_without_a_known_total() -> None:
    now = [0.0]
    lines: list[str] = []
    rows = Progress("keys", None, lines.append, clock=lambda: now[0], every=1.0)
    rows.add(10)
    assert lines == []  # within the first second: nothing to say yet
    now[0] = 2.0
    rows.add(1990)
    assert lines == ["keys: 2,000, 1,000 rows/s"]
    done = Progress("calls", 4000, lines.append, clock=lambda: now[0], every=1.0)
    now[0] = 4.0
    done.add(1000)
    assert lines[-1] == "calls: 1,000 of ~4,000 (25 %), 500 rows/s, ETA 6 s"
