"""The access decision per request: disabled tenant or owner, the tenant's gates, read-only scope
or role, custom permissions, resources. Each refusal with the contract's code and a message saying
why. Identities are derived from a key, its tenant and owner, as the access step derives them."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from gateway.access.authorize import authorize, authorize_identity
from gateway.access.identity import derive
from gateway.errors import GatewayError, InsufficientScope
from gateway.exchange import Identity
from gateway.keystore.models import ApiKey, Permission, Principal, Tenant, User
from gateway.routing import Match
from tests.unit.test_routing import table

ROUTES = table([
    {"name": "visitors", "path": "/api/v1/visitors", "upstream": "http://127.0.0.1:1"},
    {"name": "location", "path": "/v1/locations/{location}/shelves/{shelf}", "upstream": "http://127.0.0.1:1"},
])
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def identity(*, tenant: dict[str, Any] | None = None, user: dict[str, Any] | None = None, **key: Any) -> Identity:
    """An identity as the access step derives it from a key, its tenant and its owner."""
    key_fields: dict[str, Any] = dict(
        id="key_1", tenant_id="acme", user_id=None, name="k", display_prefix="gw_live_AAAA", last4="AAAA",
        secret_hash="0" * 64, scope="read_write", permissions=(), resources={}, environment="live",
        rate_limit_per_minute=None, created_at=T0, expires_at=None, last_used_at=None, revoked_at=None,
        replaced_by=None,
    )
    key_fields.update(key)
    owner = None
    if user is not None:
        owner = User(**{"id": "usr_1", "tenant_id": "acme", "name": "u", "email": None, "role": "member",
                        "disabled": False, "created_at": T0, "updated_at": T0, **user})
        key_fields["user_id"] = owner.id
    the_tenant = Tenant(**{"id": "acme", "name": "Acme", "plan": "starter", "disabled": False, "created_at": T0,
                           "updated_at": T0, **(tenant or {})})
    return derive(Principal(ApiKey(**key_fields), the_tenant, owner), {"starter": 100}, 60)


def match(path: str) -> Match:
    return ROUTES.match("GET", path)


def refusal(who: Identity, method: str, path: str) -> tuple[str, str] | None:
    try:
        authorize(who, method, match(path))
    except GatewayError as err:
        return err.code, str(err.message)
    return None


def test_a_read_write_key_may_do_anything_on_its_routes() -> None:
    for method in ("GET", "POST", "DELETE"):
        assert refusal(identity(), method, "/api/v1/visitors/1") is None


def test_a_disabled_tenant_or_owner_or_one_without_api_access_is_refused_whatever_it_asks() -> None:
    assert refusal(identity(tenant={"disabled": True}), "GET", "/api/v1/visitors") == (
        "INSUFFICIENT_SCOPE", "the key's tenant is disabled")
    assert refusal(identity(user={"disabled": True}), "GET", "/api/v1/visitors") == (
        "INSUFFICIENT_SCOPE", "the key's owner is disabled")
    assert refusal(identity(tenant={"api_enabled": False}), "GET", "/api/v1/visitors")[0] == "API_ACCESS_DISABLED"
    with pytest.raises(InsufficientScope, match="tenant is disabled"):  # the tenant first
        authorize_identity(identity(tenant={"disabled": True, "api_enabled": False}, user={"disabled": True}))
    with pytest.raises(InsufficientScope, match="owner is disabled"):
        authorize_identity(identity(tenant={"api_enabled": False}, user={"disabled": True}))
    authorize_identity(identity(user={}))


def test_read_only_allows_safe_methods_only() -> None:
    limited = "INSUFFICIENT_SCOPE", "this key is limited to read-only methods"
    for ro in (identity(scope="read_only"), identity(user={"role": "viewer"})):
        for method in ("GET", "HEAD", "OPTIONS"):
            assert refusal(ro, method, "/api/v1/visitors") is None
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            assert refusal(ro, method, "/api/v1/visitors") == limited
    assert refusal(identity(user={"role": "member"}), "POST", "/api/v1/visitors") is None
    no_writes = identity(tenant={"write_enabled": False})
    assert refusal(no_writes, "GET", "/api/v1/visitors") is None
    assert refusal(no_writes, "DELETE", "/api/v1/visitors")[0] == "WRITE_DISABLED"
    assert refusal(identity(scope="read_only", tenant={"write_enabled": False}), "POST", "/api/v1/visitors")[0] == (
        "WRITE_DISABLED")


def test_custom_permissions_allow_only_what_they_list() -> None:
    custom = identity(scope="custom", permissions=(Permission(("GET",), "/api/v1/visitors/*"),
                                                   Permission(("*",), "/v1/locations/a/shelves/1")))
    assert refusal(custom, "GET", "/api/v1/visitors/7") is None
    assert refusal(custom, "DELETE", "/v1/locations/a/shelves/1") is None
    denied = ("INSUFFICIENT_SCOPE", "the key's permissions do not include this method and path")
    assert refusal(custom, "POST", "/api/v1/visitors/7") == denied
    assert refusal(custom, "GET", "/v1/locations/a/shelves/2") == denied
    assert refusal(identity(scope="custom"), "GET", "/api/v1/visitors") == denied  # no rule, nothing
    # rules are read only for the custom scope
    assert refusal(identity(permissions=(Permission(("GET",), "/x"),)), "POST", "/api/v1/visitors") is None


def test_resources_limit_each_named_segment() -> None:
    limited = identity(resources={"location": ("loc_1",), "shelf": ("s1", "s2")})
    assert refusal(limited, "GET", "/v1/locations/loc_1/shelves/s2") is None
    assert refusal(limited, "GET", "/v1/locations/loc_2/shelves/s1") == (
        "RESOURCE_FORBIDDEN", "the key may not access this location")
    assert refusal(limited, "GET", "/v1/locations/loc_1/shelves/s3") == (
        "RESOURCE_FORBIDDEN", "the key may not access this shelf")
    # a segment the key's resources do not name is not limited; a route without segments is not either
    assert refusal(identity(resources={"location": ("loc_1",)}), "GET", "/v1/locations/loc_1/shelves/x") is None
    assert refusal(limited, "GET", "/api/v1/visitors") is None
    assert refusal(identity(resources={"location": ()}), "GET", "/v1/locations/loc_1/shelves/1") == (
        "RESOURCE_FORBIDDEN", "the key may not access this location")


SANDBOXES = table([
    {"name": "plain", "path": "/plain", "upstream": "http://127.0.0.1:1"},
    {"name": "sandboxed", "path": "/sandboxed", "upstream": "http://127.0.0.1:1", "sandbox_upstream": "http://127.0.0.1:2"},
    {"name": "open", "path": "/open", "upstream": "http://127.0.0.1:1", "test_keys": "allow"},
    {"name": "both", "path": "/both", "upstream": "http://127.0.0.1:1", "sandbox_upstream": "http://127.0.0.1:2",
     "test_keys": "allow"},
])


def on(who: Identity, method: str, path: str) -> tuple[str, str] | None:
    try:
        authorize(who, method, SANDBOXES.match(method, path))
    except GatewayError as err:
        return err.code, str(err.message)
    return None


def test_a_test_key_is_refused_where_no_sandbox_takes_it_unless_the_route_allows_it() -> None:
    refused = ("SANDBOX_UNAVAILABLE", "test keys are not accepted on this route: it has no sandbox upstream")
    paths = ("/plain", "/sandboxed", "/open", "/both")
    assert {p: on(identity(environment="test"), "GET", p) for p in paths} == {
        "/plain": refused, "/sandboxed": None, "/open": None, "/both": None}
    assert {p: on(identity(), "GET", p) for p in paths} == dict.fromkeys(paths)  # live keys: anywhere
    # the tenant's own gates come first; then the route's stance, before the key's scope
    assert on(identity(environment="test", tenant={"disabled": True}), "GET", "/plain") == (
        "INSUFFICIENT_SCOPE", "the key's tenant is disabled")
    assert on(identity(environment="test", scope="read_only"), "POST", "/plain") == refused
    assert on(identity(environment="test", scope="read_only"), "POST", "/open") == (
        "INSUFFICIENT_SCOPE", "this key is limited to read-only methods")
