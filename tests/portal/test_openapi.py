"""The portal API's OpenAPI document: valid, complete for the endpoint table, served, and true of
the running API with a signed-in owner (schemathesis, positive and negative data)."""

from __future__ import annotations

import json
from pathlib import Path

from openapi_spec_validator import validate

from gateway.portal.app import TABLES
from gateway.portal.authz import PUBLIC
from gateway.portal.openapi import OPERATIONS, UNDOCUMENTED, document
from tests.portal.harness import PortalClient
from tests.schemathesis_run import finds_nothing, state_dependent


def test_the_document_is_valid_and_covers_every_endpoint_of_the_table() -> None:
    doc = document(TABLES)
    validate(doc)
    declared = {(e.method.lower(), "/portal/api" + e.path) for t in TABLES for e in t.all
                if (e.method, e.path) not in UNDOCUMENTED}
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert documented == declared
    assert set(OPERATIONS) == {(m.upper(), p.removeprefix("/portal/api")) for m, p in declared}
    for table in TABLES:
        for e in table.all:
            if (e.method, e.path) in UNDOCUMENTED:
                continue
            op = doc["paths"]["/portal/api" + e.path][e.method.lower()]
            if e.needs == PUBLIC:
                assert op["security"] == []
            else:
                assert {"401", "403"} <= set(op["responses"]), (e.method, e.path)
    key = doc["components"]["schemas"]["PortalKeyInput"]
    assert not {"tenant_id", "user_id", "rate_limit_per_minute"} & set(key["properties"])
    assert doc["paths"]["/portal/api/keys"]["post"]["security"] == [{"session": [], "csrf": []}]


async def test_the_document_is_served_without_a_session_for_the_running_configuration(start_gateway,
                                                                                     client_ssl) -> None:
    gw = await start_gateway(portal={"enabled": True, "path": "/self-service"}, keys={"max_validity_days": 200})
    browser = PortalClient(f"https://127.0.0.1:{gw.proxy_port}", "/self-service", client_ssl)
    try:
        status, doc = await browser.api("GET", "/openapi.json")
    finally:
        await browser.close()
    assert status == 200 and doc == json.loads(json.dumps(document(TABLES, gw.cfg)))
    assert "/self-service/api/keys" in doc["paths"]
    days = doc["components"]["schemas"]["PortalKeyInput"]["properties"]["validity_days"]
    assert any(o.get("maximum") == 200 for o in days["anyOf"])


async def test_schemathesis_finds_nothing_with_a_signed_in_owner(start_portal, tmp_path: Path) -> None:
    """Every check (schema-valid requests accepted, invalid ones refused, every status and answer as
    documented), with positive and negative data, as the tenant's owner."""
    site = await start_portal(keys={"max_per_tenant": 100000})
    await site.tenant("acme")
    owner: PortalClient = await site.member("acme", "owner@acme.example")
    assert (await owner.api("POST", "/keys", {"name": "one", "scope": "read_only"}))[0] == 201
    # The tenant's gates and a person's state (already invited, the tenant's last owner) are state, not schema.
    (tmp_path / "schemathesis.toml").write_text(
        f'[auth.openapi.session]\napi_key = "{owner.cookie()}"\n\n[auth.openapi.csrf]\napi_key = "{owner.csrf}"\n\n'
        + state_dependent(tuple((f"/portal/api{path}", method) for path, method in (
            ("/keys", "POST"), ("/users", "POST"), ("/users/{user_id}", "PATCH"), ("/usage", "GET"),
            ("/password-reset", "POST")))))
    await finds_nothing(
        f"{site.base}/portal/api/openapi.json", tmp_path, "--tls-verify", "false", "-H", f"Origin: {owner.origin}",
        # signing in again or out would end the session the run uses; registering webhooks at hosts
        # a fuzzer makes up would resolve and post to them (their rules are tried in test_webhooks.py)
        "--exclude-operation-id", "sign_in", "--exclude-operation-id", "sign_out",
        "--exclude-operation-id", "create_webhook", timeout=500)


async def test_a_patch_with_role_null_leaves_the_last_owner_an_owner(start_portal) -> None:
    """Found by the schemathesis run: null is "unchanged" (UserPatch), not a demotion."""
    site = await start_portal()
    await site.tenant("acme")
    owner = await site.member("acme", "owner@acme.example")
    me = (await owner.api("GET", "/me"))[1]["user"]
    status, body = await owner.api("PATCH", f"/users/{me['id']}", {"role": None, "name": "Ada"})
    assert status == 200 and (body["role"], body["name"]) == ("owner", "Ada"), body
    status, body = await owner.api("PATCH", f"/users/{me['id']}", {"role": "admin"})
    assert status == 422 and body["error"]["details"][0]["issue"] == "this is the tenant's last owner"
