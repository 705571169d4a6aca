"""Parsing a scanner's report (after its signature held): any bytes are either GitHub's shape or a
400, never another error (hypothesis)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.access.secret_scanning import Finding, parse_report
from gateway.errors import BadRequest

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                              max_size=4), max_leaves=12)
findings = st.fixed_dictionaries(
    {"token": st.text(max_size=60), "type": st.text(max_size=20)},
    optional={"url": st.none() | st.text(max_size=40), "source": st.none() | st.text(max_size=10),
              "extra": values})


def parsed_or_refused(body: bytes) -> list[Finding] | None:
    try:
        return parse_report(body)
    except BadRequest:
        return None


@given(st.binary(max_size=200))
def test_any_bytes_parse_or_are_refused(body: bytes) -> None:
    parsed_or_refused(body)


@given(values)
def test_any_json_parses_only_in_githubs_shape(value: Any) -> None:
    result = parsed_or_refused(json.dumps(value).encode())
    shaped = isinstance(value, list) and all(
        isinstance(v, dict) and isinstance(v.get("token"), str) and isinstance(v.get("type"), str)
        and all(v.get(k) is None or isinstance(v.get(k), str) for k in ("url", "source")) for v in value)
    assert (result is not None) == shaped


@given(st.lists(findings, max_size=5))
def test_reports_in_githubs_shape_are_read_whole(report: list[dict[str, Any]]) -> None:
    assert parse_report(json.dumps(report).encode()) == [
        Finding(item["token"], item["type"], item.get("url")) for item in report]


@pytest.mark.parametrize("body", [
    b'[{"token": "a", "type": "t", "token": "b"}]',
    b'[{"token": "a", "type": "t", "url": {"x": 1, "x": 2}}]',
    b'[{"token": "a", "type": "t"}, Infinity]',
    b'[{"token": "a", "type": "t"}] []',
    b'[{"token": "\xed\xa0\x80", "type": "t"}]',
])
def test_duplicates_constants_trailing_data_and_bad_utf8_are_refused(body: bytes) -> None:
    assert parsed_or_refused(body) is None
