"""The console's usage view in Chromium: a key's charts hold the traffic the test sent through the
real proxy, read back from each chart's table view; the key table marks the key the anomaly check
found. The key's last hour is kept as a screenshot in test-artifacts/usage/ (docs/usage.png, in
the README, is a copy of it)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from playwright.async_api import expect

from tests.access.test_keys_e2e import ADMIN, call
from tests.console.conftest import sign_in

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "usage"
HOUR = 3600.0
ROUNDS = [6, 9, 14, 8, 11, 16, 10, 7, 13, 15, 9, 12]  # GETs every 5 minutes of the last hour; 12 a minute pass
LIMIT = 12

# Each table view's rows as {column: text}, empty cells as "—".
TABLE = """(id) => {
  const table = document.getElementById(id);
  const heads = [...table.querySelectorAll("thead th")].map((th) => th.textContent);
  return [...table.querySelectorAll("tbody tr")].map((tr) => Object.fromEntries([...tr.cells].map((c, i) => [heads[i], c.textContent])));
}"""


async def traffic(gw: Any, https: Any, clock: list[float]) -> tuple[Any, Any]:
    """Through the real proxy, the gateway's clock moved forward as it goes: a request an hour
    for a day, then the last hour's rounds (some over the key's limit, some refused for scope)."""
    clock[0] = -26 * HOUR
    key, secret = await gw.accounts.create_key({"tenant_id": "acme", "name": "backend", "scope": "read_only",
                                                "rate_limit_per_minute": LIMIT}, ADMIN)
    quiet, quiet_secret = await gw.accounts.create_key({"tenant_id": "acme", "name": "batch jobs",
                                                        "scope": "read_only"}, ADMIN)
    for hour in range(25):
        clock[0] = -26 * HOUR + hour * HOUR
        assert (await call(https, gw, "/api/v1/visitors", **{"X-API-Key": secret}))[0] == 200
        assert (await call(https, gw, "/api/v1/visitors", **{"X-API-Key": quiet_secret}))[0] == 200
    # Each round at one moment, the middle of its minute, however long its requests take: a round
    # whose requests straddled a minute (a second on a loaded machine) would make two busy points.
    minute = time.time() // 60 * 60

    async def at(moment: float, *args: Any, **headers: str) -> int:
        clock[0] = moment - time.time()
        return (await call(https, gw, "/api/v1/visitors", *args, **headers))[0]

    for n, gets in enumerate(ROUNDS):
        moment = minute - HOUR + (n + 1) * 300 - 30
        statuses = [await at(moment, **{"X-API-Key": secret}) for _ in range(gets)]
        assert statuses == [200] * min(gets, LIMIT) + [429] * max(0, gets - LIMIT)
        assert await at(moment, "POST", **{"X-API-Key": secret}) == 403
        assert await at(moment, **{"X-API-Key": quiet_secret}) == 200
    clock[0] = 0.0
    await gw.recorder.call_buffer.flush()  # as the buffer would within a fifth of a second
    [anomaly] = await gw.usage.check()  # as the periodic check would within a minute
    assert (anomaly.key_id, anomaly.kind) == (key.id, "traffic")
    return key, quiet


def column_sum(rows: list[dict[str, str]], column: str) -> int:
    return sum(int(r[column].replace(",", "")) for r in rows if r[column] != "—")


async def test_a_keys_usage_view_charts_the_traffic_sent_through_the_proxy(console, console_clock, https) -> None:
    gw, page = console
    key, quiet = await traffic(gw, https, console_clock)
    await sign_in(page)
    keys = page.get_by_role("table", name="API keys")
    await keys.wait_for()
    row = keys.locator(f"tr[data-key-id='{key.id}']")
    mark = await row.locator("[data-anomaly=traffic]").get_attribute("aria-label")
    assert mark and mark.startswith("Unusual usage: 142 requests in an hour, "), mark
    assert await keys.locator(f"tr[data-key-id='{quiet.id}'] [data-anomaly]").count() == 0

    await row.get_by_role("link", name="backend").click()
    await page.get_by_role("heading", name="Usage of backend").wait_for()
    await page.get_by_role("status").filter(has_text="Unusual usage").wait_for()
    await page.get_by_label("Last hour").check()
    await expect(page.locator("#usage-requests-table tbody tr")).to_have_count(61)
    for chart in ("usage-requests", "usage-limited", "usage-latency"):
        canvas = page.locator(f"#{chart} canvas")
        await canvas.wait_for()
        assert (await canvas.bounding_box() or {}).get("width", 0) > 300
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "key-usage-1280.png"), full_page=True)

    for summary in await page.get_by_text("Table view", exact=True).all():
        await summary.click()
    requests = await page.evaluate(TABLE, "usage-requests-table")
    busy = [r for r in requests if r["2xx"] != "0" or r["4xx"] != "0"]
    assert len(busy) == len(ROUNDS)  # a point for each round's minute
    assert {c: column_sum(requests, c) for c in ("2xx", "3xx", "4xx", "5xx")} == {
        "2xx": sum(min(g, LIMIT) for g in ROUNDS), "3xx": 0,
        "4xx": sum(max(0, g - LIMIT) for g in ROUNDS) + len(ROUNDS), "5xx": 0}
    limited = await page.evaluate(TABLE, "usage-limited-table")
    assert column_sum(limited, "429") == sum(max(0, g - LIMIT) for g in ROUNDS) == 10
    latency = await page.evaluate(TABLE, "usage-latency-table")
    timed = [r for r in latency if r["p99"] != "—"]
    assert [r["Time (UTC)"] for r in timed] == [r["Time (UTC)"] for r in busy]
    assert all(0 < float(r["p50"]) <= float(r["p99"]) for r in timed)
    figures = await page.locator("dl.figures").inner_text()
    assert "142" in figures and "Rate-limited\n10" in figures

    # the last 30 days by day hold the baseline too; the tenant's usage holds both keys
    await page.get_by_label("Last 30 days").check()
    await expect(page.locator("#usage-requests-table tbody tr")).to_have_count(31)
    month = await page.evaluate(TABLE, "usage-requests-table")
    assert sum(column_sum(month, c) for c in ("2xx", "4xx")) == 25 + 142
    await page.get_by_label("Key", exact=True).select_option("")
    await page.get_by_role("heading", name="Usage of Acme Corp").wait_for()
    await expect(page.locator("#usage-requests-table tbody tr")).to_have_count(31)
    tenant = await page.evaluate(TABLE, "usage-requests-table")
    assert sum(column_sum(tenant, c) for c in ("2xx", "4xx")) == 2 * 25 + 142 + len(ROUNDS)
