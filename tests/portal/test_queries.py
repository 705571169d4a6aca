"""The portal's lists read the admin API's query models (gateway/admin/queries.py): an unknown
parameter is a 422 naming it, as on the admin API (a misspelt filter would otherwise list
everything), and the parameters its OpenAPI document states are the ones read."""

from __future__ import annotations

import re
from typing import Any

from gateway.portal.app import TABLES
from gateway.portal.openapi import UNDOCUMENTED, document
from tests.events.test_webhooks_api import LOOPBACK_ALLOWED

OWNER = "owner@acme.example"


def _stated(doc: dict[str, Any], method: str, path: str) -> list[str]:
    return [p["name"] for p in doc["paths"][f"/portal/api{path}"][method.lower()].get("parameters", ())
            if p["in"] == "query"]


async def test_every_list_refuses_an_unknown_parameter_with_a_422_naming_it(start_portal) -> None:
    """Each list the portal has, its people too (which reads no parameter at all)."""
    site = await start_portal(webhooks=LOOPBACK_ALLOWED)
    await site.tenant()
    owner = await site.member("acme", OWNER)
    status, hook = await owner.api("POST", "/webhooks", {"url": "http://127.0.0.1:9/hooks", "events": ["*"]})
    assert status == 201, hook
    doc = document(TABLES)
    lists = {"/keys": "page=1", "/users": "", "/audit": "limit=5", "/calls": "limit=5", "/usage": "granularity=day",
             "/webhooks": "per_page=5", "/webhooks/{webhook_id}/deliveries": "limit=5"}
    answered = {path.removeprefix("/portal/api"): ops["get"]["responses"]["200"]["content"]["application/json"]
                ["schema"]["$ref"] for path, ops in doc["paths"].items() if "get" in ops}
    assert set(lists) == {path for path, schema in answered.items() if schema.endswith(("Page", "Series"))}
    for path, known in lists.items():
        stated = _stated(doc, "GET", path)
        issue = f"unknown parameter (known: {', '.join(stated)})" if stated else \
            "unknown parameter (this operation takes none)"
        # a misspelling, and the admin API's tenant filter (the tenant is the caller's)
        for wrong in ("stauts", "tenant_id"):
            target = path.replace("{webhook_id}", hook["id"]) + f"?{wrong}=globex" + (f"&{known}" if known else "")
            status, body = await owner.api("GET", target)
            assert status == 422 and body["error"]["code"] == "VALIDATION_ERROR", (path, body)
            assert body["error"]["details"] == [{"field": wrong, "issue": issue}], (path, body)
        assert (await owner.api("GET", path.replace("{webhook_id}", hook["id"]) + (f"?{known}" if known else "")))[0] == 200
    assert (await owner.api("GET", "/audit?limit=0"))[1]["error"]["details"][0]["field"] == "limit"
    assert (await owner.api("GET", "/calls?status=99"))[1]["error"]["details"][0]["field"] == "status"


async def test_an_operation_stating_no_parameter_refuses_any_and_does_nothing(start_portal) -> None:
    """As on the admin API: every operation of the table whose document states no query parameter
    answers one with a 422 naming it, before it does anything (here, with ids of real objects)."""
    site = await start_portal(webhooks=LOOPBACK_ALLOWED)
    await site.tenant()
    owner = await site.member("acme", OWNER)
    _, key = await owner.api("POST", "/keys", {"name": "backend", "scope": "read_only"})
    _, person = await owner.api("POST", "/users", {"email": "new@acme.example", "role": "viewer"})
    _, hook = await owner.api("POST", "/webhooks", {"url": "http://127.0.0.1:9/hooks", "events": ["*"]})
    ids = {"key_id": key["id"], "user_id": person["id"], "webhook_id": hook["id"], "token": "A" * 43,
           "delivery_id": "dlv_1"}
    doc = document(TABLES)
    walked = []
    for endpoint in (e for t in TABLES for e in t.all if (e.method, e.path) not in UNDOCUMENTED):
        if _stated(doc, endpoint.method, endpoint.path):
            continue
        path = re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], endpoint.path)
        body = None if endpoint.method in ("GET", "DELETE") else {}
        status, answer = await owner.api(endpoint.method, f"{path}?dry_run=1&dry_run=2", body)
        assert status == 422, (endpoint.method, endpoint.path, answer)
        assert answer["error"]["details"] == [{"field": "dry_run", "issue": "unknown parameter (this operation takes none)"}]
        walked.append((endpoint.method, endpoint.path))
    assert {("GET", "/users"), ("GET", "/me"), ("POST", "/keys"), ("DELETE", "/session"), ("POST", "/session"),
            ("POST", "/keys/{key_id}/rotate"), ("DELETE", "/webhooks/{webhook_id}")} <= set(walked)
    # nothing was done: still signed in, one key still active, the webhook still there
    status, keys = await owner.api("GET", "/keys")
    assert status == 200 and [(k["id"], k["status"]) for k in keys["data"]] == [(key["id"], "active")]
    assert (await owner.api("GET", f"/webhooks/{hook['id']}"))[0] == 200


async def test_every_parameter_the_document_states_is_read(start_portal) -> None:
    site = await start_portal()
    await site.tenant()
    owner = await site.member("acme", OWNER)
    status, key = await owner.api("POST", "/keys", {"name": "backend", "scope": "read_only"})
    assert status == 201, key
    assert (await owner.api("POST", "/users", {"email": "new@acme.example", "role": "viewer"}))[0] == 201
    # the audit trail's action filter (the portal's audit view sends it)
    status, body = await owner.api("GET", "/audit?action=key.created&order=desc&limit=10")
    assert status == 200 and [e["action"] for e in body["data"]] == ["key.created"], body
    status, body = await owner.api("GET", "/audit?limit=10")
    assert {"key.created", "user.invited"} <= {e["action"] for e in body["data"]}, body
    status, body = await owner.api("GET", "/keys?status=revoked&sort=name&per_page=5")
    assert status == 200 and body["data"] == [] and body["meta"]["per_page"] == 5
    assert (await owner.api("GET", f"/calls?key_id={key['id']}&status=200&order=desc&limit=5"))[0] == 200
    assert (await owner.api("GET", f"/usage?key_id={key['id']}&granularity=day"))[0] == 200
