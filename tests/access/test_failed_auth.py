"""A client past its failed-credential budget gets its 401s late; its valid key does not wait."""

from __future__ import annotations

import asyncio

from gateway.credentials.keyformat import generate_key
from tests.access.test_keys_e2e import routes, tenant_and_key
from tests.conftest import proxy_url, read_json
from tests.observability.test_metrics import scrape
from tests.proxy.test_stream_faults import call_log, connect

HOLD = 8.0  # held at least 4 s: the three valid requests meanwhile finish well within it on a loaded machine


async def test_wrong_keys_past_the_budget_are_answered_late_and_valid_keys_are_not(start_gateway, upstream, https) -> None:
    gw = await start_gateway(routes=routes(upstream[0]),
                             ratelimit={"failed_auth_per_minute": 2, "failed_auth_delay": HOLD})
    _, valid = await tenant_and_key(gw)
    url = proxy_url(gw, "/api/v1/visitors")
    loop = asyncio.get_running_loop()

    async def get(headers: dict[str, str]) -> tuple[int, str, float]:
        started = loop.time()
        async with https.get(url, headers=headers) as resp:
            body = await read_json(resp)
            return resp.status, body["error"]["code"] if resp.status != 200 else "", loop.time() - started

    for _ in range(2):  # within the budget: answered at once
        status, code, _ = await get({"X-API-Key": generate_key("gw", "live")})
        assert (status, code) == (401, "INVALID_CREDENTIALS")
    for _ in range(5):  # a missing credential is not a wrong one: never held
        assert (await get({}))[:2] == (401, "MISSING_CREDENTIALS")

    held = asyncio.create_task(get({"X-API-Key": generate_key("gw", "live")}))
    for _ in range(3):  # meanwhile, the same address's valid key, on other connections
        status, _, _ = await get({"X-API-Key": valid})
        assert status == 200
        assert not held.done()
    status, code, took = await held
    assert (status, code) == (401, "INVALID_CREDENTIALS")  # the same answer, late
    assert took >= HOLD / 2  # held 0.5-1.5 × the delay
    metrics = await scrape(gw)
    assert "gateway_auth_failures_held_total 1.0" in metrics


async def one_answered_one_held(gw, client_ssl) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Two wrong keys pipelined on one connection, with a budget of one: the first answered, the
    second held (returned once the gateway holds it)."""
    reader, writer = await connect(gw, client_ssl)
    for _ in range(2):
        key = generate_key("gw", "live")
        writer.write(f"GET /api/v1/visitors HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\r\n\r\n".encode())
    await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)  # the first, within the budget
    assert gw.auth_failures is not None

    async def until_held() -> None:
        while gw.auth_failures.held == 0:
            await asyncio.sleep(0.01)  # polling for the second to be held: state, not time

    await asyncio.wait_for(until_held(), 10)
    return reader, writer


async def test_a_client_that_leaves_while_held_is_counted_as_gone(start_gateway, upstream, client_ssl) -> None:
    gw = await start_gateway(routes=routes(upstream[0]),
                             ratelimit={"failed_auth_per_minute": 1, "failed_auth_delay": 30})
    _, writer = await one_answered_one_held(gw, client_ssl)

    async def until_two_rows() -> list:
        while len(rows := await call_log(gw)) < 2:
            await asyncio.sleep(0.01)
        return rows

    writer.transport.abort()
    rows = await asyncio.wait_for(until_two_rows(), 10)
    assert [row.status for row in rows] == [401, 499]  # not held for the 30 s, not lost


async def test_a_graceful_stop_sends_held_answers_at_once(start_gateway, upstream, client_ssl) -> None:
    gw = await start_gateway(routes=routes(upstream[0]),
                             ratelimit={"failed_auth_per_minute": 1, "failed_auth_delay": 60})
    reader, _ = await one_answered_one_held(gw, client_ssl)
    stopping = asyncio.create_task(gw.stop())
    rest = await asyncio.wait_for(reader.read(), 10)  # everything until the gateway closes
    await stopping
    second = rest[rest.index(b"HTTP/1.1 "):]
    assert second.startswith(b"HTTP/1.1 401 ") and b"connection: close" in second.lower()
    assert b"INVALID_CREDENTIALS" in second
