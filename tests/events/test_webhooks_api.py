"""Webhooks through the admin API of a running gateway: what an operator and a receiver see."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from standardwebhooks.webhooks import Webhook

from tests.admin.test_api import AUTH, Admin
from tests.conftest import admin_url
from tests.events.receiver import Receiver, start_receiver

ROOT = Path(__file__).resolve().parents[2]
# timeout: an attempt given up on is made again (a second delivery of the event), so 30 s, out of
# reach of a receiver in this process on a loaded machine (no test here is about the timeout)
LOOPBACK_ALLOWED = {"allowed_networks": ["127.0.0.0/8"], "allow_http": True, "timeout": 30}


@pytest.fixture
async def admin(start_gateway: Any) -> Any:
    gw = await start_gateway(webhooks=LOOPBACK_ALLOWED)
    async with aiohttp.ClientSession() as session:
        yield Admin(gw, session)


async def register(admin: Admin, receiver: Receiver, **body: Any) -> dict[str, Any]:
    status, made = await admin("POST", "/admin/webhooks", {"url": receiver.url, "events": ["*"], **body})
    assert status == 201, made
    receiver.secret = made["secret"]
    return made


async def recorded(admin: Admin, hook_id: str, done: Any, timeout: float = 20.0) -> list[dict[str, Any]]:
    """The endpoint's delivery log once `done(deliveries)` holds: an attempt's outcome is recorded
    after the receiver has answered, so the receiver's side alone cannot tell."""
    async def until() -> list[dict[str, Any]]:
        while True:
            _, log = await admin("GET", f"/admin/webhooks/{hook_id}/deliveries")
            if done(log["data"]):
                return log["data"]  # type: ignore[no-any-return]
            await asyncio.sleep(0.02)  # polling the recorded state, not standing in for an event

    return await asyncio.wait_for(until(), timeout)


async def test_an_endpoint_is_created_shown_changed_and_deleted(admin: Admin, aiohttp_server: Any) -> None:
    receiver = await start_receiver(aiohttp_server)
    await admin("POST", "/admin/tenants", {"id": "acme", "name": "Acme", "plan": "starter"})
    made = await register(admin, receiver, events=["key.revoked", "key.created"], tenant_id="acme",
                          description="ops pager")
    assert made["secret"].startswith("whsec_") and made["id"].startswith("whk_")
    assert (made["url"], made["events"], made["tenant_id"], made["description"], made["disabled"]) == (
        receiver.url, ["key.created", "key.revoked"], "acme", "ops pager", False)
    status, shown = await admin("GET", f"/admin/webhooks/{made['id']}")
    assert status == 200 and "secret" not in shown and shown == {k: v for k, v in made.items() if k != "secret"}
    status, listed = await admin("GET", "/admin/webhooks")
    assert status == 200 and [w["id"] for w in listed["data"]] == [made["id"]] and listed["meta"]["total"] == 1
    assert "secret" not in listed["data"][0]
    status, only = await admin("GET", "/admin/webhooks?tenant_id=beta")
    assert status == 200 and only["data"] == []
    status, changed = await admin("PATCH", f"/admin/webhooks/{made['id']}", {"events": ["*"], "disabled": True})
    assert status == 200 and changed["events"] == ["*"] and changed["disabled"] and changed["disabled_reason"] == "admin"
    status, refused = await admin("POST", f"/admin/webhooks/{made['id']}/test")
    assert status == 409 and refused["error"]["code"] == "CONFLICT"
    status, _ = await admin("PATCH", f"/admin/webhooks/{made['id']}", {"disabled": False})
    assert status == 200
    async with admin.session.delete(admin_url(admin.gw, f"/admin/webhooks/{made['id']}"), headers=AUTH) as resp:
        assert resp.status == 204 and await resp.read() == b""
    status, gone = await admin("GET", f"/admin/webhooks/{made['id']}")
    assert status == 404 and gone["error"]["code"] == "NOT_FOUND"
    status, audit = await admin("GET", "/admin/audit?limit=100")
    actions = [(e["action"], e["target_id"]) for e in audit["data"] if e["target_type"] == "webhook"]
    assert actions == [("webhook.created", made["id"]), ("webhook.updated", made["id"]),
                       ("webhook.updated", made["id"]), ("webhook.deleted", made["id"])]


@pytest.mark.parametrize("body, field", [
    ({"events": ["*"]}, "url"),
    ({"url": "https://hooks.example.com/x"}, "events"),
    ({"url": "https://hooks.example.com/x", "events": []}, "events"),
    ({"url": "https://hooks.example.com/x", "events": ["key.made"]}, "events"),
    ({"url": 5, "events": ["*"]}, "url"),
    ({"url": "https://hooks.example.com/x", "events": ["*"], "description": ""}, "description"),
    ({"url": "https://hooks.example.com/x", "events": ["*"], "description": "   "}, "description"),
    ({"url": "https://hooks.example.com/x", "events": ["*"], "tenant_id": "nope"}, "tenant_id"),
    ({"url": "https://hooks.example.com/x", "events": ["*"], "colour": "red"}, "colour"),
    ({"url": "ftp://hooks.example.com/x", "events": ["*"]}, "url"),
])
async def test_invalid_endpoints_are_refused_with_the_field_named(admin: Admin, body: Any, field: str) -> None:
    status, error = await admin("POST", "/admin/webhooks", body)
    assert status == 422 and error["error"]["code"] == "VALIDATION_ERROR"
    assert field in [d["field"] for d in error["error"]["details"]], error


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/hook", "https://10.0.0.1/hook", "https://[::1]/hook", "https://[::ffff:127.0.0.1]/hook",
    "https://localhost/hook", "https://169.254.169.254/latest/meta-data",
])
async def test_internal_urls_are_refused_without_the_allow_list(start_gateway: Any, url: str) -> None:
    gw = await start_gateway()
    async with aiohttp.ClientSession() as session:
        status, error = await Admin(gw, session)("POST", "/admin/webhooks", {"url": url, "events": ["*"]})
    assert status == 422 and error["error"]["details"][0]["field"] == "url", error


async def test_every_admin_change_reaches_the_receiver_signed(admin: Admin, aiohttp_server: Any) -> None:
    receiver = await start_receiver(aiohttp_server)
    hook = await register(admin, receiver)
    await admin("POST", "/admin/tenants", {"id": "acme", "name": "Acme", "plan": "starter"})
    await admin("PATCH", "/admin/tenants/acme", {"plan": "enterprise"})
    _, user = await admin("POST", "/admin/tenants/acme/users", {"name": "Ada", "role": "admin"})
    await admin("PATCH", f"/admin/users/{user['id']}", {"disabled": True})
    _, key = await admin("POST", "/admin/keys", {"tenant_id": "acme", "name": "ci", "scope": "read_only"})
    _, rotated = await admin("POST", f"/admin/keys/{key['id']}/rotate")
    await admin("POST", f"/admin/keys/{rotated['id']}/revoke")
    status, sent = await admin("POST", f"/admin/webhooks/{hook['id']}/test")
    assert status == 202
    expected = ["tenant.created", "tenant.updated", "user.created", "user.updated", "key.created", "key.rotated",
                "key.revoked", "webhook.test"]
    await receiver.wait_count(len(expected))
    assert sorted(r.payload["type"] for r in receiver.got) == sorted(expected)
    assert all(r.verified and r.status == 200 for r in receiver.got)
    assert sent["event_id"] in {r.id for r in receiver.got}
    revoked = next(r.payload for r in receiver.got if r.payload["type"] == "key.revoked")
    assert revoked["data"]["key"]["id"] == rotated["id"] and revoked["data"]["key"]["last4"] == rotated["last4"]
    assert rotated["key"] not in b"".join(r.body for r in receiver.got).decode()
    await recorded(admin, hook["id"], lambda log: len(log) == len(expected) and
                   all(d["status"] == "delivered" for d in log))
    status, log = await admin("GET", f"/admin/webhooks/{hook['id']}/deliveries?limit=3")
    assert status == 200 and len(log["data"]) == 3
    first = log["data"][0]
    assert set(first) >= {"id", "event_id", "event_type", "attempts", "status", "response_status", "error",
                          "last_attempt_at", "next_attempt_at"}
    assert (first["event_type"], first["status"], first["attempts"], first["response_status"]) == (
        "tenant.created", "delivered", 1, 200)
    status, rest = await admin("GET", f"/admin/webhooks/{hook['id']}/deliveries?after={log['next_cursor']}")
    assert status == 200 and len(rest["data"]) == len(expected) - 3
    status, newest = await admin("GET", f"/admin/webhooks/{hook['id']}/deliveries?order=desc&limit=1")
    assert newest["data"][0]["event_type"] == "webhook.test"
    status, again = await admin("POST", f"/admin/deliveries/{first['id']}/retry")
    assert status == 202 and again["status"] == "pending"
    await receiver.wait_count(len(expected) + 1)
    assert receiver.got[-1].id == first["event_id"]  # the same event, the same webhook-id


@pytest.mark.parametrize("method, path, body, status, code", [
    ("GET", "/admin/webhooks/whk_nope", None, 404, "NOT_FOUND"),
    ("PATCH", "/admin/webhooks/whk_nope", {"disabled": True}, 404, "NOT_FOUND"),
    ("DELETE", "/admin/webhooks/whk_nope", None, 404, "NOT_FOUND"),
    ("POST", "/admin/webhooks/whk_nope/test", None, 404, "NOT_FOUND"),
    ("GET", "/admin/webhooks/whk_nope/deliveries", None, 404, "NOT_FOUND"),
    ("POST", "/admin/deliveries/dlv_999/retry", None, 404, "NOT_FOUND"),
    ("POST", "/admin/deliveries/garbage/retry", None, 404, "NOT_FOUND"),
    # digits to str.isdigit() that int() refuses (each was a 500 with a traceback), and spellings
    # of another id (fullwidth digits, a leading zero)
    ("POST", "/admin/deliveries/dlv_%C2%B2/retry", None, 404, "NOT_FOUND"),
    ("POST", "/admin/deliveries/dlv_1%E2%91%A0/retry", None, 404, "NOT_FOUND"),
    ("POST", "/admin/deliveries/dlv_%EF%BC%91/retry", None, 404, "NOT_FOUND"),
    ("POST", "/admin/deliveries/dlv_01/retry", None, 404, "NOT_FOUND"),
    ("GET", "/admin/webhooks?per_page=500", None, 422, "VALIDATION_ERROR"),
])
async def test_unknown_ids_and_bad_queries(admin: Admin, method: str, path: str, body: Any, status: int,
                                           code: str) -> None:
    got, error = await admin(method, path, body)
    assert (got, error["error"]["code"]) == (status, code)


async def test_bad_delivery_queries(admin: Admin, aiohttp_server: Any) -> None:
    hook = await register(admin, await start_receiver(aiohttp_server))
    for query, status in (("limit=0", 422), ("limit=x", 422), ("order=sideways", 422), ("after=%%%", 400)):
        got, _ = await admin("GET", f"/admin/webhooks/{hook['id']}/deliveries?{query}")
        assert got == status, query


async def test_webhooks_need_the_admin_token(admin: Admin) -> None:
    async with admin.session.get(admin.gw.describe()["admin"] + "/admin/webhooks") as resp:
        assert resp.status == 401


async def test_the_readme_receiver_verifies_a_real_delivery(admin: Admin, aiohttp_server: Any,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's receiver snippet, run as printed against a delivery from the gateway."""
    readme = (ROOT / "README.md").read_text()
    snippet = next(block.split("```", 1)[0] for block in readme.split("```python\n")[1:]
                   if "standardwebhooks" in block.split("```", 1)[0])
    receiver = await start_receiver(aiohttp_server)
    hook = await register(admin, receiver, events=["key.revoked"])
    monkeypatch.setenv("GATEWAY_WEBHOOK_SECRET", hook["secret"])
    await admin("POST", "/admin/tenants", {"id": "acme", "name": "Acme", "plan": "starter"})
    _, key = await admin("POST", "/admin/keys", {"tenant_id": "acme", "name": "ci", "scope": "read_only"})
    await admin("POST", f"/admin/keys/{key['id']}/revoke")
    await receiver.wait_count(1)
    forgotten: list[str] = []
    namespace: dict[str, Any] = {"forget_key": forgotten.append}
    exec(compile(snippet, "README webhook receiver", "exec"), namespace)
    delivery = receiver.got[0]
    namespace["handle"](delivery.body, {"webhook-id": delivery.id, "webhook-timestamp": delivery.timestamp,
                                        "webhook-signature": delivery.signature})
    assert forgotten == [key["id"]]
    with pytest.raises(Exception, match="signature"):
        namespace["handle"](delivery.body.replace(b"ci", b"cj"), {
            "webhook-id": delivery.id, "webhook-timestamp": delivery.timestamp,
            "webhook-signature": delivery.signature})
    assert Webhook(hook["secret"]).verify(delivery.body, {"webhook-id": delivery.id, "webhook-timestamp": delivery.timestamp,
                                                          "webhook-signature": delivery.signature})


async def test_metrics_count_deliveries_and_the_backlog(admin: Admin, aiohttp_server: Any) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    up = await start_receiver(aiohttp_server)
    down = await start_receiver(aiohttp_server, Receiver(answers=[503] * 100))
    good = await register(admin, up, events=["tenant.created"])
    bad = await register(admin, down, events=["tenant.created"])
    await admin("POST", "/admin/tenants", {"id": "acme", "name": "Acme", "plan": "starter"})
    await recorded(admin, good["id"], lambda log: [d["status"] for d in log] == ["delivered"])
    await recorded(admin, bad["id"], lambda log: [(d["attempts"], d["response_status"]) for d in log] == [(1, 503)])
    await admin.gw.webhook_delivery.dispatcher.maintain()  # the backlog's figures (every 30 s on their own)
    async with admin.session.get(admin_url(admin.gw, "/metrics")) as resp:
        text = await resp.text()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    assert samples[("gateway_webhook_deliveries_total", (("result", "delivered"),))] == 1
    assert samples[("gateway_webhook_deliveries_total", (("result", "retrying"),))] >= 1
    assert samples[("gateway_webhook_attempt_duration_seconds_count", ())] >= 2
    assert samples[("gateway_webhook_backlog", ())] == 1
    assert samples[("gateway_webhook_oldest_pending_seconds", ())] >= 0
