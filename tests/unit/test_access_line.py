"""The access-log line rendered field by field is the JSON a generic encoder would give,
whatever a client puts in the path."""

from __future__ import annotations

import json

import pytest

from gateway.observability.accesslog import AccessLog

FIELDS = ("request_id", "route", "method", "path", "status", "code", "duration_ms", "upstream_ms", "key_id",
          "tenant", "auth_method", "client_ip")


@pytest.mark.parametrize("values", [
    ("a1b2", "api", "GET", "/api/v1/x", 200, None, 1.234, 0.5, "key_1", "acme", "api_key", "127.0.0.1"),
    ("r", None, "POST", '/a"b\\c\x00\x1f\u00e4\u2028\U0001F600', 401, "INVALID_CREDENTIALS", 0.0, None, None, None,
     None, "::1"),
    ("r", "x", "GET", "/", 599, "UPSTREAM_TIMEOUT", 30000.125, 29999.999, "k", "t\nx", "jwt", ""),
])
async def test_line_is_the_json_of_its_fields(values: tuple) -> None:
    written: list[str] = []
    log = AccessLog(written.append)
    log.request(*values)
    log.flush()
    (line,) = written[0].splitlines()
    parsed = json.loads(line)
    assert parsed.pop("ts").endswith("Z")
    assert parsed == {"level": "info", "logger": "gateway.access", "msg": "request", **dict(zip(FIELDS, values))}
    assert line.isascii()
