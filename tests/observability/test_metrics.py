"""/metrics after real traffic: the counters moved by the right amounts, and promtool agrees."""

from __future__ import annotations

import json
import shutil
import subprocess

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.access.test_keys_e2e import call, routes, tenant_and_key
from tests.conftest import admin_url, require_service


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def scrape(gw) -> str:
    async with aiohttp.ClientSession() as client, client.get(admin_url(gw, "/metrics")) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        return await resp.text()


async def test_counters_move_with_traffic(start_gateway, upstream, https, tmp_path) -> None:
    # one miss and three hits: the cache must not expire between them (5 s by default)
    gw = await start_gateway(routes=routes(upstream[0]), store={"cache_ttl": 3600})
    key, secret = await tenant_and_key(gw, rate_limit_per_minute=3, scope="read_only")
    h = {"X-API-Key": secret}
    for _ in range(4):
        await call(https, gw, "/api/v1/visitors", **h)          # 3 x 200, 1 x 429
    await call(https, gw, "/api/v1/visitors")                    # 401 missing
    await call(https, gw, "/api/v1/visitors", **{"X-API-Key": "gw_live_bad"})  # 401 invalid
    await call(https, gw, "/nowhere")                            # 404, no route
    text = await scrape(gw)
    m = samples(text)
    req = lambda cls, code: m.get(("gateway_requests_total", (("code", code), ("method", "GET"), ("route", "visitors"),  # noqa: E731
                                                              ("status_class", cls))), 0)
    assert req("2xx", "200") == 3 and req("4xx", "429") == 1 and req("4xx", "401") == 2
    assert m[("gateway_requests_total", (("code", "404"), ("method", "GET"), ("route", "(none)"),
                                         ("status_class", "4xx")))] == 1
    assert m[("gateway_auth_total", (("method", "api_key"), ("result", "ok")))] == 4
    assert m[("gateway_auth_total", (("method", "none"), ("result", "missing")))] == 1
    assert m[("gateway_auth_total", (("method", "api_key"), ("result", "invalid")))] == 1
    assert m[("gateway_ratelimit_decisions_total", (("result", "allowed"),))] == 3
    assert m[("gateway_ratelimit_decisions_total", (("result", "limited"),))] == 1
    assert m[("gateway_request_duration_seconds_count", (("route", "visitors"),))] == 6
    assert m[("gateway_upstream_duration_seconds_count", (("route", "visitors"),))] == 3
    assert m[("gateway_key_cache_misses_total", ())] == 1
    assert m[("gateway_key_cache_hits_total", ())] == 3
    assert m[("gateway_requests_in_flight", ())] == 0
    assert ("gateway_build_info", (("version", "0.1.0"),)) in m
    assert key.id not in text and "acme" not in text and secret not in text
    require_service("promtool", shutil.which("promtool") is not None, "install Debian's prometheus package")
    if shutil.which("promtool"):
        result = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


async def test_upstream_errors_counted(start_gateway, https, unused_tcp_port_factory) -> None:
    dead = f"http://127.0.0.1:{unused_tcp_port_factory()}"
    gw = await start_gateway(routes=[{"name": "dead", "path": "/dead", "upstream": dead, "auth": []}])
    async with https.get(f"https://127.0.0.1:{gw.proxy_port}/dead") as resp:
        assert resp.status == 502
    m = samples(await scrape(gw))
    assert m[("gateway_upstream_errors_total", (("kind", "unavailable"), ("route", "dead")))] == 1


def access_lines(gw, capsys) -> list[dict]:
    gw.access_log.flush()  # lines leave in batches; a test reads them now
    err = capsys.readouterr().err
    return [json.loads(line) for line in err.splitlines() if '"logger":"gateway.access"' in line]


async def test_access_log_is_one_json_line_without_secrets(start_gateway, upstream, https, capsys) -> None:
    gw = await start_gateway(routes=routes(upstream[0]))
    key, secret = await tenant_and_key(gw)
    await call(https, gw, "/api/v1/visitors/7", **{"X-API-Key": secret, "X-Request-Id": "req-access-1"})
    gw.access_log.flush()
    raw = capsys.readouterr().err
    assert secret not in raw
    lines = [json.loads(line) for line in raw.splitlines() if '"logger":"gateway.access"' in line]
    assert len(lines) == 1
    entry = lines[0]
    assert entry["request_id"] == "req-access-1" and entry["status"] == 200 and entry["route"] == "visitors"
    assert entry["key_id"] == key.id and entry["tenant"] == "acme" and entry["client_ip"] == "127.0.0.1"
    assert entry["level"] == "info" and entry["msg"] == "request" and entry["ts"].endswith("Z")
    assert entry["duration_ms"] >= entry["upstream_ms"] >= 0


async def test_buffered_access_lines_are_written_on_shutdown(start_gateway, upstream, https, capsys) -> None:
    gw = await start_gateway(routes=routes(upstream[0]))
    _, secret = await tenant_and_key(gw)
    for i in range(3):
        await call(https, gw, "/api/v1/visitors", **{"X-API-Key": secret, "X-Request-Id": f"req-batch-{i}"})
    await gw.stop()  # shutdown writes what is buffered
    ids = [e["request_id"] for e in access_lines(gw, capsys)]
    assert ids == ["req-batch-0", "req-batch-1", "req-batch-2"]


async def test_access_log_can_be_switched_off(start_gateway, upstream, https, capsys) -> None:
    gw = await start_gateway(routes=routes(upstream[0]), logging={"access_log": False})
    _, secret = await tenant_and_key(gw)
    await call(https, gw, "/api/v1/visitors", **{"X-API-Key": secret})
    assert access_lines(gw, capsys) == []


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
async def test_health_endpoints_need_no_token(start_gateway, path) -> None:
    gw = await start_gateway()
    async with aiohttp.ClientSession() as client, client.get(admin_url(gw, path)) as resp:
        assert resp.status == 200


async def test_readyz_names_a_failing_store(start_gateway) -> None:
    gw = await start_gateway()
    await gw.store.close()
    async with aiohttp.ClientSession() as client, client.get(admin_url(gw, "/readyz")) as resp:
        assert resp.status == 503
        body = await resp.json()
    assert body["checks"]["store"] != "ok" and body["checks"]["ratelimit"] == "ok"
    assert body["error"]["details"][0]["field"] == "store"


async def test_request_metrics_can_be_switched_off(start_gateway, upstream, https) -> None:
    gw = await start_gateway(routes=routes(upstream[0]), metrics={"enabled": False})
    _, secret = await tenant_and_key(gw)
    assert (await call(https, gw, "/api/v1/visitors", **{"X-API-Key": secret}))[0] == 200
    text = await scrape(gw)
    assert "gateway_requests_total{" not in text
    assert "gateway_key_cache_hits_total" in text  # the cache's own figures are still there


async def test_no_created_series_are_exported(start_gateway, https, unused_tcp_port_factory) -> None:
    """The README says so: prometheus-client's `*_created` start times are off for every family,
    those it keeps itself (counters and histograms, with and without labels) included."""
    dead = f"http://127.0.0.1:{unused_tcp_port_factory()}"
    gw = await start_gateway(routes=[{"name": "dead", "path": "/dead", "upstream": dead, "auth": []}])
    async with https.get(f"https://127.0.0.1:{gw.proxy_port}/dead") as resp:
        assert resp.status == 502  # a labelled child of gateway_upstream_errors_total now exists
    text = await scrape(gw)
    families = {f.name: f.type for f in text_string_to_metric_families(text)}
    assert families["gateway_upstream_errors"] == "counter" and families["gateway_invalidation_lag_seconds"] == "histogram"
    assert [line for line in text.splitlines() if "_created" in line] == []
