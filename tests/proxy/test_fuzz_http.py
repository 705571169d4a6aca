"""Mutation fuzzing of the proxy listener's HTTP parsing: valid requests with bytes flipped,
inserted, deleted and lines repeated, each sent on its own connection.

Whatever arrives, every answer is a well-formed HTTP response; none is a 5xx the upstream did not
cause; the gateway logs no error; and nothing it forwards is refused by the upstream (an aiohttp
server answering JSON to everything: a plain-text answer would be its parser refusing what the
gateway sent on). A few hundred cases run in CI; `GATEWAY_FUZZ_CASES=100000` for a long run.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import re
from typing import Any

from tests.proxy.test_client_limits import HTTPS_HOP, behind_proxy, plain
from tests.proxy.test_forwarding import public_route

CASES = int(os.environ.get("GATEWAY_FUZZ_CASES", "300"))
SEED = int(os.environ.get("GATEWAY_FUZZ_SEED", "20261129"))

HOP = HTTPS_HOP.encode()
CORPUS = [
    b"GET /api/v1/visitors/1?x=1 HTTP/1.1\r\nHost: x\r\n" + HOP + b"\r\nAccept: */*\r\n\r\n",
    b"POST /api/v1/visitors HTTP/1.1\r\nHost: x\r\n" + HOP + b"\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /api/v1/visitors HTTP/1.1\r\nHost: x\r\n" + HOP + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\nX-Trailer: t\r\n\r\n",
    b"GET /api/v1/visitors HTTP/1.0\r\n" + HOP + b"\r\nConnection: keep-alive\r\n\r\n",
    b"HEAD /api/v1/visitors HTTP/1.1\r\nHost: x\r\n" + HOP + b"\r\n\r\n"
    b"PUT /api/v1/visitors/2 HTTP/1.1\r\nHost: x\r\n" + HOP + b"\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nok",
]
INTERESTING = [b"\r\n", b"\n", b"\r", b"\x00", b" ", b":", b"\t", b"0", b"-1", b"ffffffffffffffff", b"%2e%2e/",
               b"Content-Length: 3\r\n", b"Transfer-Encoding: chunked\r\n", b"\xff", b"\xc0\xae", b"HTTP/1.1",
               b"Connection: close\r\n", b"Upgrade: h2c\r\nConnection: upgrade\r\n", b"?", b"#", b"/.."]


def mutate(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(5)
        at = rng.randrange(len(out) + 1)
        if op == 0 and out:      # flip a byte
            out[min(at, len(out) - 1)] = rng.randrange(256)
        elif op == 1:            # insert something parsers care about
            out[at:at] = rng.choice(INTERESTING)
        elif op == 2 and out:    # delete a run
            del out[at : at + rng.randint(1, 8)]
        elif op == 3:            # repeat a line
            lines = bytes(out).split(b"\r\n")
            i = rng.randrange(len(lines))
            lines.insert(i, lines[i])
            out = bytearray(b"\r\n".join(lines))
        else:                    # truncate
            del out[at:]
    return bytes(out)


STATUS = re.compile(rb"HTTP/1\.1 (\d{3}) [^\r\n]*\r\n")


async def answers(gw: Any, raw: bytes) -> bytes:
    reader, writer = await plain(gw)
    try:
        writer.write(raw)
        writer.write_eof()  # what was sent is all there is: an incomplete request ends here
        return await asyncio.wait_for(reader.read(), 10)
    except ConnectionError:
        return b""
    finally:
        writer.close()


async def test_mutated_requests_get_well_formed_answers_and_nothing_malformed_goes_on(
    start_gateway, upstream, caplog
) -> None:
    url, _ = upstream
    caplog.set_level(logging.ERROR, logger="gateway")
    gw = await start_gateway(routes=[public_route(url)], server=behind_proxy())
    rng = random.Random(SEED)
    statuses: dict[int, int] = {}
    for case in range(CASES):
        raw = mutate(rng, rng.choice(CORPUS))
        answer = await answers(gw, raw)
        found = STATUS.findall(answer)
        assert answer == b"" or found, (case, raw, answer[:200])
        for head in re.finditer(rb"HTTP/1\.1 (\d{3})[^\r\n]*\r\n(.*?)\r\n\r\n", answer, re.S):
            status = int(head.group(1))
            statuses[status] = statuses.get(status, 0) + 1
            fields = head.group(2).lower()
            assert status < 500, (case, raw, answer[:300])
            if status >= 400 or status == 200:  # ours are JSON, and so is everything the echo says
                assert b"content-type: application/json" in fields, (case, raw, answer[:300])
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("gateway")]
    assert not errors, [r.getMessage() for r in errors]
    assert statuses.get(200, 0) > 0 and sum(statuses.values()) >= CASES // 2, statuses
    print(f"{CASES} cases, seed {SEED}: {dict(sorted(statuses.items()))}")
