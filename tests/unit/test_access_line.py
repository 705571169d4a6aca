"""The access-log line rendered field by field is the JSON a generic encoder would give,
whatever a client puts in the path."""

from __future__ import annotations

import json

import pytest

from gateway.observability.accesslog import AccessLog
from gateway.observability.request_record import RequestRecord
from tests.unit.test_authorize import identity as make_identity

FIELDS = ("request_id", "route", "method", "path", "status", "code", "key_id", "tenant", "auth_method", "client_ip")


@pytest.mark.parametrize("values, timing, expected_ms", [
    (("a1b2", "api", "GET", "/api/v1/x", 200, None, "key_1", "acme", "api_key", "127.0.0.1"),
     (100.0, 100.0004, 100.0012345), (1.234, 0.834)),
    (("r", None, "POST", '/a"b\\c\x00\x1f\u00e4\u2028\U0001F600', 401, "INVALID_CREDENTIALS", None, None, None,
      "::1"), (5.0, None, 5.0), (0.0, None)),
    (("r", "x", "GET", "/", 504, "UPSTREAM_TIMEOUT", "k", "t\nx", "jwt", ""), (0.5, 0.5, 30.5), (30000.0, 30000.0)),
])
async def test_line_is_the_json_of_its_fields(values: tuple, timing: tuple, expected_ms: tuple) -> None:
    written: list[str] = []
    log = AccessLog(written.append)
    request_id, route, method, path, status, code, key_id, tenant, auth_method, client_ip = values
    started, upstream_started, done = timing
    # a real Identity, never a stand-in: a compiled RequestRecord checks the type it is given
    identity = None if key_id is None else make_identity(id=key_id, tenant={"id": tenant})
    log.request(RequestRecord(1_800_000_000.25, done, started, upstream_started, request_id, route, method, path,
                              status, code, identity, auth_method, client_ip, False))
    assert written == []  # rendered and written with its batch
    log.flush()
    (line,) = written[0].splitlines()
    parsed = json.loads(line)
    assert parsed.pop("ts").endswith("Z")
    assert parsed.pop("duration_ms") == pytest.approx(expected_ms[0])
    upstream_ms = parsed.pop("upstream_ms")
    assert upstream_ms == (None if expected_ms[1] is None else pytest.approx(expected_ms[1]))
    assert parsed == {"level": "info", "logger": "gateway.access", "msg": "request", **dict(zip(FIELDS, values, strict=True))}
    assert line.isascii()
