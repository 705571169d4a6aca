"""The portal's lists read the admin API's query models (gateway/admin/queries.py): an unknown
parameter is a 422 naming it, as on the admin API (a misspelt filter would otherwise list
everything), and the parameters its OpenAPI document states are the ones read."""

from __future__ import annotations

from gateway.portal.app import TABLES
from gateway.portal.openapi import document

OWNER = "owner@acme.example"


async def test_an_unknown_parameter_is_a_422_naming_it(start_portal) -> None:
    site = await start_portal()
    await site.tenant()
    owner = await site.member("acme", OWNER)
    doc = document(TABLES)
    for path, known in (("/keys", "page=1"), ("/audit", "limit=5"), ("/calls", "limit=5"), ("/usage", "granularity=day")):
        stated = [p["name"] for p in doc["paths"][f"/portal/api{path}"]["get"]["parameters"]]
        # a misspelling, and the admin API's tenant filter (the tenant is the caller's)
        for wrong in ("stauts", "tenant_id"):
            status, body = await owner.api("GET", f"{path}?{wrong}=globex&{known}")
            assert status == 422 and body["error"]["code"] == "VALIDATION_ERROR", (path, body)
            assert body["error"]["details"] == [
                {"field": wrong, "issue": f"unknown parameter (known: {', '.join(stated)})"}], (path, body)
    assert (await owner.api("GET", "/audit?limit=0"))[1]["error"]["details"][0]["field"] == "limit"
    assert (await owner.api("GET", "/calls?status=99"))[1]["error"]["details"][0]["field"] == "status"


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
