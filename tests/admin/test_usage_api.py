"""`GET /admin/usage` over real HTTP, with traffic sent through the real proxy."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from gateway.accounts.actors import Actor
from gateway.keystore.outbox import Endpoint
from tests.admin.test_api import Admin
from tests.conftest import FakeClock, proxy_url

OPERATOR = Actor("test")


@pytest.fixture
async def admin(start_gateway, upstream):
    gw = await start_gateway(routes=[{"name": "api", "path": "/api", "upstream": upstream[0]}])
    async with aiohttp.ClientSession() as session:
        yield Admin(gw, session)


async def send(https: Any, gw: Any, secret: str, count: int, method: str = "GET") -> list[int]:
    statuses = []
    for _ in range(count):
        async with https.request(method, proxy_url(gw, "/api/things"), headers={"X-API-Key": secret}) as resp:
            await resp.read()
            statuses.append(resp.status)
    return statuses


def totals(points: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "requests": sum(p["requests"] for p in points),
        "status": {c: sum(p["status"][c] for p in points) for c in ("2xx", "3xx", "4xx", "5xx")},
        "rate_limited": sum(p["rate_limited"] for p in points),
    }


async def test_usage_of_a_key_and_its_tenant_counts_what_the_proxy_served(admin, https) -> None:
    accounts = admin.gw.accounts
    for tenant in ("acme", "globex"):
        await accounts.create_tenant({"id": tenant, "name": tenant, "plan": "starter"}, OPERATOR)
    limited, limited_secret = await accounts.create_key(
        {"tenant_id": "acme", "name": "limited", "scope": "read_write", "rate_limit_per_minute": 3}, OPERATOR)
    reader, reader_secret = await accounts.create_key(
        {"tenant_id": "acme", "name": "reader", "scope": "read_only"}, OPERATOR)
    other, other_secret = await accounts.create_key(
        {"tenant_id": "globex", "name": "other", "scope": "read_write"}, OPERATOR)
    assert await send(https, admin.gw, limited_secret, 5) == [200, 200, 200, 429, 429]
    assert await send(https, admin.gw, reader_secret, 2) + await send(https, admin.gw, reader_secret, 2, "POST") == [
        200, 200, 403, 403]
    assert await send(https, admin.gw, other_secret, 1) == [200]

    status, body = await admin("GET", f"/admin/usage?key_id={limited.id}&granularity=minute")
    assert status == 200, body
    assert len(body["data"]) == 61 and body["meta"]["granularity"] == "minute"  # the last hour, by minute
    assert totals(body["data"]) == {"requests": 5, "status": {"2xx": 3, "3xx": 0, "4xx": 2, "5xx": 0},
                                    "rate_limited": 2}
    busy = [p for p in body["data"] if p["requests"]]
    assert all(0 < p["p50_ms"] <= p["p99_ms"] for p in busy)
    assert all(p["p50_ms"] is None and p["p99_ms"] is None for p in body["data"] if not p["requests"])

    status, body = await admin("GET", "/admin/usage?tenant_id=acme")  # by hour, the last day
    assert status == 200 and len(body["data"]) == 25
    assert totals(body["data"]) == {"requests": 9, "status": {"2xx": 5, "3xx": 0, "4xx": 4, "5xx": 0},
                                    "rate_limited": 2}
    status, body = await admin("GET", f"/admin/usage?tenant_id=acme&key_id={reader.id}&granularity=day")
    assert status == 200 and len(body["data"]) == 31  # the last 30 days and today, by day
    assert totals(body["data"])["requests"] == 4

    # a key asked for under another tenant, or that does not exist, or a tenant that does not
    status, body = await admin("GET", f"/admin/usage?tenant_id=acme&key_id={other.id}")
    assert (status, body["error"]["code"]) == (404, "NOT_FOUND")
    status, body = await admin("GET", "/admin/usage?key_id=key_nope")
    assert (status, body["error"]["code"]) == (404, "NOT_FOUND")
    status, body = await admin("GET", "/admin/usage?tenant_id=nope")
    assert (status, body["error"]["code"]) == (404, "NOT_FOUND")


@pytest.mark.parametrize(("query", "fields"), [
    ("", {"tenant_id"}),
    ("tenant_id=acme&granularity=week", {"granularity"}),
    ("tenant_id=acme&from=yesterday&to=2026-03-01T00:00:00", {"from", "to"}),
    ("tenant_id=acme&from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z", {"from"}),
    ("tenant_id=acme&granularity=minute&from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z", {"from"}),
    ("tenant_id=acme&from=nan", {"from"}),
    ("tenant_id=acme&to=1e300", {"to"}),
    # what Python's parsers read but the documented pattern does not allow
    ("tenant_id=acme&from=" + quote("１７６４９０００００") + "&to=1764903600", {"from"}),  # fullwidth digits
    ("tenant_id=acme&from=2026-W49-1T00:00:00Z", {"from"}),           # an ISO week date
    ("tenant_id=acme&from=20261205T010000Z", {"from"}),               # the basic format
    ("tenant_id=acme&from=2026-12-05T01:00Z", {"from"}),              # no seconds
])
async def test_bad_parameters_are_422_naming_each_field(admin, query: str, fields: set[str]) -> None:
    status, body = await admin("GET", f"/admin/usage?{query}")
    assert (status, body["error"]["code"]) == (422, "VALIDATION_ERROR"), body
    assert {d["field"] for d in body["error"]["details"]} == fields


@pytest.mark.parametrize("query", [
    "granularity=minute&from=9999-12-31T23:58:00Z&to=9999-12-31T23:59:59.5Z",
    "granularity=day&from=9999-12-30T00:00:00Z&to=9999-12-31T12:00:00Z",
])
async def test_a_range_that_ends_past_the_year_9999_once_rounded_up_is_a_422(admin, query: str) -> None:
    """Each bound is a valid time, but rounded up to the granularity the range would end at
    10000-01-01, which no date can hold: that was a 500 INTERNAL_ERROR."""
    await admin.gw.accounts.create_tenant({"id": "acme", "name": "acme", "plan": "starter"}, OPERATOR)
    status, body = await admin("GET", f"/admin/usage?tenant_id=acme&{query}")
    assert (status, body["error"]["code"]) == (422, "VALIDATION_ERROR"), body
    assert [d["field"] for d in body["error"]["details"]] == ["to"]


async def test_a_range_is_aligned_to_its_granularity(admin) -> None:
    await admin.gw.accounts.create_tenant({"id": "acme", "name": "acme", "plan": "starter"}, OPERATOR)
    status, body = await admin("GET", "/admin/usage?tenant_id=acme&granularity=hour"
                                      "&from=2026-03-01T10:30:00Z&to=1772366400")  # 2026-03-01T12:00:00Z
    assert status == 200
    assert [p["t"] for p in body["data"]] == ["2026-03-01T10:00:00Z", "2026-03-01T11:00:00Z"]
    assert body["meta"]["from"] == "2026-03-01T10:00:00Z" and body["meta"]["to"] == "2026-03-01T12:00:00Z"


async def test_a_revoked_keys_401s_count_in_its_usage_and_call_log(admin, https) -> None:
    # a burst of them is what the anomaly check looks for: a leaked or forgotten key still in use
    accounts = admin.gw.accounts
    await accounts.create_tenant({"id": "acme", "name": "acme", "plan": "starter"}, OPERATOR)
    key, secret = await accounts.create_key({"tenant_id": "acme", "name": "old", "scope": "read_only"}, OPERATOR)
    assert await send(https, admin.gw, secret, 1) == [200]
    await accounts.revoke_key(key.id, OPERATOR)
    assert await send(https, admin.gw, secret, 3) == [401, 401, 401]
    status, body = await admin("GET", f"/admin/usage?key_id={key.id}&granularity=minute")
    assert status == 200 and totals(body["data"])["status"] == {"2xx": 1, "3xx": 0, "4xx": 3, "5xx": 0}
    status, body = await admin("GET", f"/admin/calls?key_id={key.id}")
    assert [c["status"] for c in body["data"]] == [200, 401, 401, 401]


async def test_a_traffic_jump_marks_the_key_and_is_audited_once(start_gateway, upstream, https) -> None:
    clock = FakeClock()
    gw = await start_gateway(clock=clock, routes=[{"name": "api", "path": "/api", "upstream": upstream[0]}])
    await gw.accounts.create_tenant({"id": "acme", "name": "acme", "plan": "starter"}, OPERATOR)
    jumpy, jumpy_secret = await gw.accounts.create_key({"tenant_id": "acme", "name": "jumpy", "scope": "read_only"},
                                                       OPERATOR)
    steady, steady_secret = await gw.accounts.create_key({"tenant_id": "acme", "name": "steady",
                                                          "scope": "read_only"}, OPERATOR)
    for _ in range(25):  # a day of one request an hour each: the baseline
        await send(https, gw, jumpy_secret, 1)
        await send(https, gw, steady_secret, 1)
        clock.advance(3600)
    for _ in range(12):  # then 120 requests in the last hour for one of them
        clock.advance(300)
        await send(https, gw, jumpy_secret, 10)
        await send(https, gw, steady_secret, 1)
    await gw.webhook_delivery.stop()  # this test reads the outbox itself, instead of the dispatcher
    hook = Endpoint(id="whk_anomalies", url="https://hooks.example.com/x", tenant_id=None, description=None,
                    events=("key.anomaly",), secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", disabled=False,
                    disabled_reason=None, failing_since=None, created_at=gw.accounts.now(), updated_at=gw.accounts.now())
    await gw.store.create_endpoint(hook)
    await gw.recorder.call_buffer.flush()
    [found] = await gw.usage.check()
    assert (found.key_id, found.kind, found.requests) == (jumpy.id, "traffic", 120)
    assert await gw.usage.check() == []  # once per key, kind and hour

    async with aiohttp.ClientSession() as session:
        admin = Admin(gw, session)
        status, key = await admin("GET", f"/admin/keys/{jumpy.id}")
        assert status == 200 and key["anomaly"]["kind"] == "traffic" and key["anomaly"]["requests"] == 120
        assert "120 requests in an hour" in key["anomaly"]["message"]
        status, page = await admin("GET", "/admin/keys?tenant_id=acme")
        assert {k["name"]: (k["anomaly"] or {}).get("kind") for k in page["data"]} == {"jumpy": "traffic",
                                                                                        "steady": None}
        status, audit = await admin("GET", "/admin/audit")
        marked = [e for e in audit["data"] if e["action"] == "key.anomaly"]
        assert [(e["actor"], e["target_id"], e["key_name"], e["tenant_id"]) for e in marked] == [
            ("system", jumpy.id, "jumpy", "acme")]
    # and the webhooks' key.anomaly event, in the outbox for the endpoints subscribed to it
    now = gw.accounts.now()
    [claim] = await gw.store.claim_deliveries(now, lease_until=now + dt.timedelta(minutes=1), limit=10)
    event = json.loads(claim.body)
    assert (claim.event_type, event["type"], event["data"]["key"]["id"]) == ("key.anomaly", "key.anomaly", jumpy.id)
    assert event["data"]["anomaly"] == key["anomaly"]
