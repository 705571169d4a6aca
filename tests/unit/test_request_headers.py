"""The client's headers towards the upstream: each name judged once and remembered, yet every
request filtered by its own `Connection` list, wherever that list stands and however split."""

from __future__ import annotations

from multidict import CIMultiDict, CIMultiDictProxy

from gateway.proxy.headers import upstream_request_headers


def forwarded(*pairs: tuple[str, str]) -> list[tuple[str, str]]:
    return upstream_request_headers(CIMultiDictProxy(CIMultiDict(pairs)), [("X-Gateway-Tenant", "acme")])


def test_connection_names_drop_headers_before_and_after_it_in_any_case() -> None:
    assert forwarded(("X-Early", "1"), ("Connection", "x-early"), ("Connection", "X-LATE, keep-alive"),
                     ("x-late", "2"), ("X-Kept", "3")) == [("X-Kept", "3"), ("X-Gateway-Tenant", "acme")]


def test_a_name_remembered_as_kept_is_still_dropped_when_listed() -> None:
    assert forwarded(("X-Trace", "a")) == [("X-Trace", "a"), ("X-Gateway-Tenant", "acme")]
    assert forwarded(("X-Trace", "a"), ("Connection", "X-Trace")) == [("X-Gateway-Tenant", "acme")]
    assert forwarded(("X-Trace", "b"), ("Connection", "keep-alive")) == [("X-Trace", "b"), ("X-Gateway-Tenant", "acme")]


def test_names_are_judged_in_every_spelling() -> None:
    for name in ("Authorization", "AUTHORIZATION", "x-api-key", "X_Forwarded_For", "x_gateway_tenant",
                 "X-Gateway-Key-Id", "Keep-Alive", "Connection", "Host"):
        assert forwarded((name, "v"), ("Accept", "*/*")) == [("Accept", "*/*"), ("X-Gateway-Tenant", "acme")], name
