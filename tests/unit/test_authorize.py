"""The access decision per request: disabled tenant or owner, read-only scope or role, custom
permissions, resources. Each refusal with the contract's code and a message saying why."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.access.authorize import authorize, authorize_identity
from gateway.access.identity import Identity, PathRule
from gateway.errors import InsufficientScope, ResourceForbidden
from gateway.routing import Match
from tests.unit.test_routing import table

ROUTES = table([
    {"name": "visitors", "path": "/api/v1/visitors", "upstream": "http://127.0.0.1:1"},
    {"name": "location", "path": "/v1/locations/{location}/shelves/{shelf}", "upstream": "http://127.0.0.1:1"},
])


def identity(**changes: Any) -> Identity:
    fields: dict[str, Any] = dict(
        key_id="key_1", tenant_id="acme", user_id=None, key_name="k", environment="live", scope="read_write",
        rules=(), resources={}, limit_per_minute=100, expires_at=None, revoked=False, tenant_disabled=False,
        user_disabled=False, read_only=False, bucket="k:key_1", headers=(),
    )
    fields.update(changes)
    return Identity(**fields)


def match(path: str) -> Match:
    return ROUTES.match("GET", path)


def refusal(who: Identity, method: str, path: str) -> tuple[str, str] | None:
    try:
        authorize(who, method, match(path))
    except (InsufficientScope, ResourceForbidden) as err:
        return err.code, str(err.message)
    return None


def test_a_read_write_key_may_do_anything_on_its_routes() -> None:
    for method in ("GET", "POST", "DELETE"):
        assert refusal(identity(), method, "/api/v1/visitors/1") is None


def test_a_disabled_tenant_or_owner_is_refused_whatever_it_asks() -> None:
    assert refusal(identity(tenant_disabled=True), "GET", "/api/v1/visitors") == (
        "INSUFFICIENT_SCOPE", "the key's tenant is disabled")
    assert refusal(identity(user_disabled=True), "GET", "/api/v1/visitors") == (
        "INSUFFICIENT_SCOPE", "the key's owner is disabled")
    with pytest.raises(InsufficientScope, match="tenant is disabled"):  # the tenant first
        authorize_identity(identity(tenant_disabled=True, user_disabled=True))
    authorize_identity(identity())


def test_read_only_allows_safe_methods_only() -> None:
    ro = identity(read_only=True, scope="read_only")
    for method in ("GET", "HEAD", "OPTIONS"):
        assert refusal(ro, method, "/api/v1/visitors") is None
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert refusal(ro, method, "/api/v1/visitors") == (
            "INSUFFICIENT_SCOPE", "this key is limited to read-only methods")


def test_custom_permissions_allow_only_what_they_list() -> None:
    custom = identity(scope="custom", rules=(PathRule(frozenset({"GET"}), "/api/v1/visitors", True),
                                            PathRule(frozenset(), "/v1/locations/a/shelves/1", False)))
    assert refusal(custom, "GET", "/api/v1/visitors/7") is None
    assert refusal(custom, "DELETE", "/v1/locations/a/shelves/1") is None
    denied = ("INSUFFICIENT_SCOPE", "the key's permissions do not include this method and path")
    assert refusal(custom, "POST", "/api/v1/visitors/7") == denied
    assert refusal(custom, "GET", "/v1/locations/a/shelves/2") == denied
    assert refusal(identity(scope="custom"), "GET", "/api/v1/visitors") == denied  # no rule, nothing
    # rules are read only for the custom scope
    assert refusal(identity(rules=custom.rules), "POST", "/api/v1/visitors") is None


def test_resources_limit_each_named_segment() -> None:
    limited = identity(resources={"location": frozenset({"loc_1"}), "shelf": frozenset({"s1", "s2"})})
    assert refusal(limited, "GET", "/v1/locations/loc_1/shelves/s2") is None
    assert refusal(limited, "GET", "/v1/locations/loc_2/shelves/s1") == (
        "RESOURCE_FORBIDDEN", "the key may not access this location")
    assert refusal(limited, "GET", "/v1/locations/loc_1/shelves/s3") == (
        "RESOURCE_FORBIDDEN", "the key may not access this shelf")
    # a segment the key's resources do not name is not limited; a route without segments is not either
    assert refusal(identity(resources={"location": frozenset({"loc_1"})}), "GET", "/v1/locations/loc_1/shelves/x") is None
    assert refusal(limited, "GET", "/api/v1/visitors") is None
    assert refusal(identity(resources={"location": frozenset()}), "GET", "/v1/locations/loc_1/shelves/1") == (
        "RESOURCE_FORBIDDEN", "the key may not access this location")
