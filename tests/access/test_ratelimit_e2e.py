"""Rate limits seen from a client: headers on every response, honest 429s, upstream untouched."""

from __future__ import annotations

import asyncio
import time

from tests.access.test_keys_e2e import call, routes, tenant_and_key
from tests.conftest import FakeClock


async def test_headers_on_every_response_and_429_never_reaches_upstream(start_gateway, upstream, https) -> None:
    url, state = upstream
    clock = FakeClock(time.time())
    gw = await start_gateway(clock=clock, routes=routes(url))
    _, secret = await tenant_and_key(gw, rate_limit_per_minute=3)
    h = {"X-API-Key": secret}
    remaining = []
    for _ in range(3):
        status, _, headers = await call(https, gw, "/api/v1/visitors", **h)
        assert status == 200
        assert headers["X-RateLimit-Limit"] == "3"
        assert int(headers["X-RateLimit-Reset"]) >= int(clock.now)
        remaining.append(int(headers["X-RateLimit-Remaining"]))
    assert remaining == [2, 1, 0]
    status, body, headers = await call(https, gw, "/api/v1/visitors", **h)
    assert status == 429
    assert body["error"]["code"] == "RATE_LIMITED"
    assert headers["X-RateLimit-Remaining"] == "0"
    retry = int(headers["Retry-After"])
    assert 1 <= retry <= 60
    assert state.hits == 3
    clock.advance(retry)
    status, _, _ = await call(https, gw, "/api/v1/visitors", **h)
    assert status == 200
    assert state.hits == 4


async def test_route_limit_on_top_of_plan(start_gateway, upstream, https) -> None:
    url, state = upstream
    rs = routes(url)
    rs[0]["rate_limit_per_minute"] = 2
    gw = await start_gateway(routes=rs)
    _, secret = await tenant_and_key(gw)
    h = {"X-API-Key": secret}
    statuses = [(await call(https, gw, "/api/v1/visitors", **h))[0] for _ in range(3)]
    assert statuses == [200, 200, 429]
    # the key's plan quota is untouched by the route refusal and still serves other routes
    status, _, headers = await call(https, gw, "/keyonly", **h)
    assert status == 200
    assert headers["X-RateLimit-Remaining"] == "97"


async def test_concurrent_requests_admit_exactly_the_limit(start_gateway, upstream, https) -> None:
    url, state = upstream
    gw = await start_gateway(routes=routes(url))
    _, secret = await tenant_and_key(gw, rate_limit_per_minute=100)
    results = await asyncio.gather(
        *(call(https, gw, "/api/v1/visitors", **{"X-API-Key": secret}) for _ in range(200))
    )
    statuses = [r[0] for r in results]
    assert statuses.count(200) == 100
    assert statuses.count(429) == 100
    assert state.hits == 100


async def test_limits_disabled_by_config_count_nothing(start_gateway, upstream, https) -> None:
    url, state = upstream
    gw = await start_gateway(routes=routes(url), ratelimit={"enabled": False})
    _, secret = await tenant_and_key(gw, rate_limit_per_minute=1)
    statuses = []
    for _ in range(3):
        status, _, headers = await call(https, gw, "/api/v1/visitors", **{"X-API-Key": secret})
        statuses.append(status)
        assert "X-RateLimit-Limit" not in headers
    assert statuses == [200, 200, 200]
    assert state.hits == 3


async def test_ietf_headers_are_sent_when_configured_and_only_then(start_gateway, upstream, https) -> None:
    url, state = upstream
    gw = await start_gateway(routes=routes(url), ratelimit={"ietf_headers": True})
    _, secret = await tenant_and_key(gw, rate_limit_per_minute=2)
    h = {"X-API-Key": secret}
    seen = []
    for _ in range(3):
        sent = time.time()
        status, _, headers = await call(https, gw, "/api/v1/visitors", **h)
        answered = time.time()  # the answer was made in between, however long a loaded machine took
        assert headers["RateLimit-Policy"] == '"key";q=2;w=60'
        remaining, _, delta = headers["RateLimit"].removeprefix('"key";r=').partition(";t=")
        assert remaining == headers["X-RateLimit-Remaining"]
        # seconds until the window frees one: within the window, and what X-RateLimit-Reset says
        assert 1 <= int(delta) <= 60
        assert sent - 2 < int(headers["X-RateLimit-Reset"]) - int(delta) < answered + 2
        seen.append((status, int(remaining)))
    assert seen == [(200, 1), (200, 0), (429, 0)]
    assert abs(int(delta) - int(headers["Retry-After"])) <= 1
    assert state.hits == 2

    plain = await start_gateway(routes=routes(url))
    _, secret = await tenant_and_key(plain, rate_limit_per_minute=2)
    status, _, headers = await call(https, plain, "/api/v1/visitors", **{"X-API-Key": secret})
    assert status == 200 and headers["X-RateLimit-Limit"] == "2"
    assert "RateLimit" not in headers and "RateLimit-Policy" not in headers


async def test_a_key_whose_plan_left_the_config_gets_the_smallest_plan(start_gateway, upstream, https, tmp_path,
                                                                        server_cert) -> None:
    from gateway.config import parse_config
    from tests.conftest import base_config

    url, state = upstream
    plans = {"starter": {"requests_per_minute": 100}, "basic": {"requests_per_minute": 7},
             "pro": {"requests_per_minute": 50}}
    gw = await start_gateway(routes=routes(url), plans=plans)
    _, secret = await tenant_and_key(gw)  # on the starter plan
    h = {"X-API-Key": secret}
    status, _, headers = await call(https, gw, "/api/v1/visitors", **h)
    assert status == 200 and headers["X-RateLimit-Limit"] == "100"
    del plans["starter"]
    gw.apply_config(parse_config(base_config(tmp_path, server_cert, routes=routes(url), plans=plans), env={}))
    status, _, headers = await call(https, gw, "/api/v1/visitors", **h)
    assert status == 200 and headers["X-RateLimit-Limit"] == "7"  # never unlimited, never an error
    assert state.hits == 2
