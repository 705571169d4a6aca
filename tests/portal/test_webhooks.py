"""A tenant's own webhooks in the portal: what its owner or admin registers, the events that reach
the receiver (its tenant's only, verified with `standardwebhooks`), the delivery log, and who may
see any of it."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from gateway.accounts.actors import Actor
from gateway.errors import ValidationError
from gateway.events.dns import THREADS
from gateway.events.service import TENANT_REFUSAL
from tests.conftest import proxy_url
from tests.events.receiver import start_receiver
from tests.events.test_webhooks_api import LOOPBACK_ALLOWED
from tests.portal.harness import PortalClient, cheap_passwords


async def deliveries(browser: PortalClient, hook_id: str, done: Any, timeout: float = 20.0) -> list[dict[str, Any]]:
    """The delivery log once `done(deliveries)` holds (an attempt is recorded after the receiver answered)."""
    async def until() -> list[dict[str, Any]]:
        while True:
            status, log = await browser.api("GET", f"/webhooks/{hook_id}/deliveries")
            assert status == 200, log
            if done(log["data"]):
                return log["data"]  # type: ignore[no-any-return]
            await asyncio.sleep(0.02)  # polling the recorded state, not standing in for an event

    return await asyncio.wait_for(until(), timeout)


async def test_an_owner_registers_an_endpoint_that_gets_the_tenants_events_only(start_portal, aiohttp_server) -> None:
    site = await start_portal(webhooks=LOOPBACK_ALLOWED)
    await site.tenant("acme")
    await site.tenant("globex", "Globex")
    owner = await site.member("acme", "owner@acme.example")
    other = await site.member("globex", "owner@globex.example")
    receiver = await start_receiver(aiohttp_server)
    status, made = await owner.api("POST", "/webhooks", {"url": receiver.url, "events": ["*"], "description": "ops"})
    assert status == 201, made
    assert made["secret"].startswith("whsec_") and made["tenant_id"] == "acme" and made["events"] == ["*"]
    receiver.secret = made["secret"]
    status, shown = await owner.api("GET", f"/webhooks/{made['id']}")
    assert status == 200 and shown == {k: v for k, v in made.items() if k != "secret"}
    status, listed = await owner.api("GET", "/webhooks")
    assert [w["id"] for w in listed["data"]] == [made["id"]] and "secret" not in listed["data"][0]

    assert (await other.api("POST", "/keys", {"name": "theirs", "scope": "read_only"}))[0] == 201
    status, key = await owner.api("POST", "/keys", {"name": "ours", "scope": "read_only"})
    assert status == 201
    await receiver.wait_for(lambda r: any(x.payload["type"] == "key.created" for x in r.got))
    created = [x for x in receiver.got if x.payload["type"] == "key.created"]
    assert [x.payload["data"]["key"]["id"] for x in created] == [key["id"]]  # not globex's
    assert all(x.verified for x in receiver.got)

    status, test = await owner.api("POST", f"/webhooks/{made['id']}/test")
    assert status == 202 and test["type"] == "webhook.test"
    await receiver.wait_for(lambda r: any(x.id == test["event_id"] for x in r.got))
    log = await deliveries(owner, made["id"], lambda d: any(x["event_id"] == test["event_id"]
                                                             and x["status"] == "delivered" for x in d))
    delivery = next(x for x in log if x["event_id"] == test["event_id"])
    status, retried = await owner.api("POST", f"/deliveries/{delivery['id']}/retry")
    assert status == 202 and retried["status"] == "pending"
    await receiver.wait_for(lambda r: [x.id for x in r.got].count(test["event_id"]) == 2)

    status, off = await owner.api("PATCH", f"/webhooks/{made['id']}", {"disabled": True})
    assert status == 200 and off["disabled"] is True
    status, body = await owner.api("POST", f"/webhooks/{made['id']}/test")
    assert (status, body["error"]["code"]) == (409, "CONFLICT")
    assert (await owner.api("PATCH", f"/webhooks/{made['id']}", {"disabled": False}))[1]["disabled"] is False
    assert (await owner.api("DELETE", f"/webhooks/{made['id']}"))[0] == 204
    assert (await owner.api("GET", f"/webhooks/{made['id']}"))[0] == 404

    status, audit = await owner.api("GET", "/audit")
    mine = [e for e in audit["data"] if e["target_type"] in ("webhook", "delivery")]
    assert [e["action"] for e in mine] == ["webhook.created", "webhook.delivery_retried", "webhook.updated",
                                           "webhook.updated", "webhook.deleted"]
    assert {(e["actor_email"], e["tenant_id"]) for e in mine} == {("owner@acme.example", "acme")}


async def test_only_owners_and_admins_see_or_change_webhooks(start_portal) -> None:
    site = await start_portal(webhooks=LOOPBACK_ALLOWED)
    await site.tenant("acme")
    admin = await site.member("acme", "admin@acme.example", "admin")
    status, made = await admin.api("POST", "/webhooks", {"url": "http://127.0.0.1:9/hooks", "events": ["key.revoked"]})
    assert status == 201, made
    for role in ("member", "viewer"):
        reader = await site.member("acme", f"{role}@acme.example", role)
        for method, path, body in (("GET", "/webhooks", None), ("GET", f"/webhooks/{made['id']}", None),
                                   ("GET", f"/webhooks/{made['id']}/deliveries", None),
                                   ("POST", "/webhooks", {"url": "http://127.0.0.1:9/x", "events": ["*"]}),
                                   ("PATCH", f"/webhooks/{made['id']}", {"disabled": True}),
                                   ("POST", f"/webhooks/{made['id']}/test", None),
                                   ("DELETE", f"/webhooks/{made['id']}", None)):
            status, answer = await reader.api(method, path, body)
            assert (status, answer["error"]["code"]) == (403, "INSUFFICIENT_SCOPE"), (role, method, path)
    assert (await admin.api("GET", f"/webhooks/{made['id']}"))[1]["disabled"] is False


async def test_the_admin_apis_rules_hold_and_the_tenant_is_the_callers(start_portal) -> None:
    site = await start_portal()  # no allowed networks: the SSRF rules as shipped
    await site.tenant("acme")
    await site.tenant("globex", "Globex")
    owner = await site.member("acme", "owner@acme.example")
    for url in ("http://127.0.0.1/x", "https://10.0.0.1/x", "https://[::1]/x", "https://[::ffff:127.0.0.1]/x",
                "https://localhost/x"):
        status, body = await owner.api("POST", "/webhooks", {"url": url, "events": ["*"]})
        assert status == 422 and body["error"]["details"][0]["field"] == "url", (url, body)
    status, body = await owner.api("POST", "/webhooks", {"url": "https://93.184.215.14/x", "events": ["*"],
                                                         "tenant_id": "globex"})
    assert status == 422 and body["error"]["details"][0]["field"] == "tenant_id"
    status, body = await owner.api("POST", "/webhooks", {"url": "https://93.184.215.14/x", "events": ["key.nope"]})
    assert status == 422 and body["error"]["details"][0]["field"].startswith("events")
    status, made = await owner.api("POST", "/webhooks", {"url": "https://93.184.215.14/x", "events": ["*"],
                                                         "tenant_id": "acme"})
    assert status == 201 and made["tenant_id"] == "acme"
    status, body = await owner.api("PATCH", f"/webhooks/{made['id']}", {"url": "https://192.168.1.1/x"})
    assert status == 422 and body["error"]["details"][0]["field"] == "url"
    status, body = await owner.api("POST", "/webhooks", {"url": "https://93.184.215.14/x", "events": ["*"]},
                                   csrf=False)
    assert (status, body["error"]["code"]) == (403, "CSRF_FAILED")


async def test_an_owner_rotates_the_secret_and_both_verify_for_the_grace_period(start_portal, aiohttp_server) -> None:
    site = await start_portal(webhooks=LOOPBACK_ALLOWED)
    await site.tenant("acme")
    await site.tenant("globex", "Globex")
    owner = await site.member("acme", "owner@acme.example")
    other = await site.member("globex", "owner@globex.example")
    viewer = await site.member("acme", "viewer@acme.example", "viewer")
    receiver = await start_receiver(aiohttp_server)
    status, made = await owner.api("POST", "/webhooks", {"url": receiver.url, "events": ["webhook.test"]})
    assert status == 201, made
    old = made["secret"]
    path = f"/webhooks/{made['id']}/rotate-secret"
    assert (await viewer.api("POST", path, {"expires_in": 60}))[1]["error"]["code"] == "INSUFFICIENT_SCOPE"
    assert (await other.api("POST", path, {"expires_in": 60}))[0] == 404  # another tenant's: as if none
    status, rotated = await owner.api("POST", path, {"expires_in": 3600})
    assert status == 200 and rotated["secret"] not in (None, old) and rotated["previous_secret_expires_at"]
    status, shown = await owner.api("GET", f"/webhooks/{made['id']}")
    assert "secret" not in shown and shown["previous_secret_expires_at"] == rotated["previous_secret_expires_at"]
    receiver.secret = old  # a receiver not switched yet still verifies
    status, test = await owner.api("POST", f"/webhooks/{made['id']}/test")
    await receiver.wait_for(lambda r: any(x.id == test["event_id"] for x in r.got))
    delivered = next(x for x in receiver.got if x.id == test["event_id"])
    assert delivered.verified
    Webhook(rotated["secret"]).verify(delivered.body, {"webhook-id": delivered.id, "webhook-timestamp": delivered.timestamp,
                                                       "webhook-signature": delivered.signature})
    status, audit = await owner.api("GET", "/audit?action=webhook.secret_rotated")
    assert [(e["actor_email"], e["target_id"]) for e in audit["data"]] == [("owner@acme.example", made["id"])]


async def test_a_person_accepting_an_invitation_reaches_the_receiver_as_user_updated(start_portal, aiohttp_server) -> None:
    """Invited: `user.created` (status invited); accepted: `user.updated` with `changes` and
    `status: active`, by the person themselves, verified with `standardwebhooks`; the audit trail
    names them too (`user.activated`)."""
    site = await start_portal(webhooks=LOOPBACK_ALLOWED)
    await site.tenant("acme")
    owner = await site.member("acme", "owner@acme.example")
    receiver = await start_receiver(aiohttp_server)
    status, made = await owner.api("POST", "/webhooks", {"url": receiver.url, "events": ["user.created", "user.updated"]})
    assert status == 201, made
    receiver.secret = made["secret"]
    status, invited = await owner.api("POST", "/users", {"email": "ada@acme.example", "role": "admin"})
    assert status == 201, invited
    ada = site.client()
    assert (await ada.accept(invited["invitation_url"], name="Ada Lovelace"))[0] == 200
    await receiver.wait_for(lambda r: any(x.payload["type"] == "user.updated" for x in r.got))
    assert all(x.verified for x in receiver.got)
    created, updated = (next(x.payload for x in receiver.got if x.payload["type"] == kind)
                        for kind in ("user.created", "user.updated"))
    assert created["data"]["user"]["id"] == invited["id"] and created["data"]["status"] == "invited"
    data = updated["data"]
    assert data["user"]["id"] == invited["id"] and data["user"]["name"] == "Ada Lovelace"
    assert data["user"]["tenant_id"] == "acme" and data["status"] == "active"
    assert data["changes"] == ["name", "status"] and data["actor"] == f"user:{invited['id']}"
    status, audit = await owner.api("GET", "/audit?action=user.activated")
    assert status == 200 and [e["actor"] for e in audit["data"] if e["target_id"] == invited["id"]] == [
        f"user:{invited['id']}"]


async def test_a_refused_url_never_tells_a_tenant_what_its_host_resolves_to(start_portal) -> None:
    """The gateway's DNS answers internal names: "vm resolves to 127.0.0.1 is loopback" for one
    that exists, "cannot be resolved" for one that does not, told a portal user which internal
    names exist and where they point. A tenant gets one answer for both, without the address,
    at creation, on a change, and in the delivery log; the operator still gets the details."""
    site = await start_portal()  # the SSRF rules as shipped
    await site.tenant("acme")
    owner = await site.member("acme", "owner@acme.example")
    issues = []
    for url in ("https://localhost/x", "https://no-such-host.invalid/x", "https://10.1.2.3/x"):
        status, body = await owner.api("POST", "/webhooks", {"url": url, "events": ["*"]})
        assert (status, body["error"]["details"][0]["field"]) == (422, "url"), body
        issues.append(body["error"]["details"][0]["issue"])
    assert issues == [TENANT_REFUSAL] * 3
    status, made = await owner.api("POST", "/webhooks", {"url": "https://93.184.215.14/x", "events": ["*"]})
    assert status == 201, made
    status, body = await owner.api("PATCH", f"/webhooks/{made['id']}", {"url": "https://localhost/y"})
    assert (status, body["error"]["details"]) == (422, [{"field": "url", "issue": TENANT_REFUSAL}])
    with pytest.raises(ValidationError) as operator:
        await site.gateway.services.webhooks.create({"url": "https://localhost/x", "events": ["*"]}, Actor("test"))
    assert "127.0.0.1" in operator.value.details[0]["issue"]

    # a name that passed at creation and resolves inside at delivery (DNS rebinding, a CNAME)
    await site.gateway.store.update_endpoint(made["id"], changes={"url": "https://localhost:9/x"}, events=None,
                                        at=site.gateway.accounts.now())
    status, sent = await owner.api("POST", f"/webhooks/{made['id']}/test")
    assert status == 202
    log = await deliveries(owner, made["id"], lambda d: any(x["error"] is not None for x in d))
    assert log[0]["error"] == f"address refused: the URL {TENANT_REFUSAL}", log
    operator_view = await site.gateway.services.webhooks.deliveries(made["id"], after=None, limit=10)
    assert operator_view[0].error is not None and "127.0.0.1" in operator_view[0].error


async def test_a_tenant_has_at_most_max_per_tenant_endpoints(start_portal) -> None:
    """Each endpoint gets a delivery of every event from the attempts all tenants share: with no
    bound, one tenant's admin made thousands (60 of 60 through the demo's portal) and held back
    every tenant's deliveries. 20 by default, the portal's and the admin API's together;
    endpoints for every tenant's events are the operator's and not counted."""
    site = await start_portal()
    await site.tenant("acme")
    await site.tenant("globex", "Globex")
    admin = await site.member("acme", "admin@acme.example", "admin")
    other = await site.member("globex", "owner@globex.example")
    webhooks = site.gateway.services.webhooks
    await webhooks.create({"url": "https://93.184.215.14/everyone", "events": ["*"]}, Actor("test"))
    await webhooks.create({"url": "https://93.184.215.14/ops", "events": ["*"], "tenant_id": "acme"}, Actor("test"))
    made = []
    for i in range(19):
        status, body = await admin.api("POST", "/webhooks", {"url": f"https://93.184.215.14/{i}", "events": ["*"]})
        assert status == 201, body
        made.append(body["id"])
    status, body = await admin.api("POST", "/webhooks", {"url": "https://93.184.215.14/21", "events": ["*"]})
    assert (status, body["error"]["code"]) == (422, "VALIDATION_ERROR")
    assert [d["field"] for d in body["error"]["details"]] == ["tenant_id"]
    assert "webhooks.max_per_tenant (20)" in body["error"]["details"][0]["issue"]
    with pytest.raises(ValidationError):
        await webhooks.create({"url": "https://93.184.215.14/x", "events": ["*"], "tenant_id": "acme"}, Actor("test"))
    assert (await other.api("POST", "/webhooks", {"url": "https://93.184.215.14/g", "events": ["*"]}))[0] == 201
    assert (await admin.api("DELETE", f"/webhooks/{made[0]}"))[0] == 204
    assert (await admin.api("POST", "/webhooks", {"url": "https://93.184.215.14/again", "events": ["*"]}))[0] == 201


async def test_a_webhook_hosts_slow_dns_never_holds_up_the_proxys_own_lookups(start_gateway, start_portal, upstream,
                                                                             https, monkeypatch) -> None:
    """A tenant's webhook URL names a host whose DNS never answers (its own domain, its name
    servers a black hole: each lookup takes the resolver's whole timeout). Looked up on the
    event loop's threads, a handful of registrations took them all, and every proxied request
    to an upstream named by host waited for one and got 504: seen through a real gateway with
    such a resolver (8 registrations, 504 for the next 40 s). Webhook lookups now run on
    threads of their own. The slow DNS is socket.getaddrinfo held for `.slow.test` names only
    (a black-hole name server cannot be set for one process)."""
    real_getaddrinfo = socket.getaddrinfo
    release = threading.Event()
    started: list[str] = []

    def black_hole_dns(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.endswith(".slow.test"):
            started.append(host)
            release.wait(30)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", black_hole_dns)
    port = upstream[0].rsplit(":", 1)[1]
    gw = await start_gateway(routes=[{"name": "api", "path": "/api", "upstream": f"http://localhost:{port}",
                                      "auth": []}],
                             portal={"enabled": True}, server={"upstream_connect_timeout": 2},
                             options={"passwords": cheap_passwords()})
    site = await start_portal(gateway=gw)
    await site.tenant("acme")
    owner = await site.member("acme", "owner@acme.example")
    loop_threads = min(32, (os.cpu_count() or 1) + 4)  # the default executor's (the test's loop is asyncio's)
    registrations = [asyncio.ensure_future(owner.api("POST", "/webhooks", {"url": f"https://h{i}.slow.test/x",
                                                                           "events": ["*"]}))
                     for i in range(loop_threads + 2)]
    try:
        async def stuck() -> None:
            while len(started) < min(THREADS, loop_threads):
                await asyncio.sleep(0.01)  # polling the lookups begun, not standing in for one

        await asyncio.wait_for(stuck(), 20)
        async with https.get(proxy_url(gw, "/api/things")) as resp:
            assert resp.status == 200, await resp.text()  # "localhost" looked up at once
        assert len(started) == THREADS  # the rest wait for a webhook thread, not the loop's
    finally:
        release.set()
    for status, body in await asyncio.gather(*registrations):
        assert (status, body["error"]["details"]) == (422, [{"field": "url", "issue": TENANT_REFUSAL}])
