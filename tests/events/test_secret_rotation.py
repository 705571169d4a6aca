"""Rotating a webhook endpoint's signing secret, as Stripe and Standard Webhooks do it: the new
secret is shown once; for the grace period (`expires_in`) every delivery is signed with the new
and the old secret, so a receiver still holding the old one and one already holding the new one
both verify it (with the `standardwebhooks` library); after it, only the new one verifies."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gateway.events.signing import new_secret
from gateway.keystore.outbox import Endpoint
from tests.admin.test_api import Admin
from tests.events.conftest import MakeOutbox
from tests.events.receiver import Receiver
from tests.events.test_webhooks_api import LOOPBACK_ALLOWED


class Clock:
    """The real time plus an offset a test moves (within the receivers' 5-minute tolerance)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture
async def rotating(start_gateway: Any, aiohttp_server: Any) -> Any:
    clock = Clock()
    gw = await start_gateway(clock, webhooks=LOOPBACK_ALLOWED)
    # two receivers behind one URL (say, two replicas of the customer's service mid-way through
    # switching secrets): one verifies with the secret it was first given, one with the new one
    old, new = Receiver(), Receiver()

    async def both(request: web.Request) -> web.StreamResponse:
        await old.handle(request)
        await new.handle(request)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hooks", both)
    server = await aiohttp_server(app)
    async with aiohttp.ClientSession() as session:
        yield Admin(gw, session), clock, old, new, f"http://127.0.0.1:{server.port}/hooks"


async def test_both_secrets_verify_during_the_grace_period_and_only_the_new_one_after(rotating: Any) -> None:
    admin, clock, old, new, url = rotating
    status, made = await admin("POST", "/admin/webhooks", {"url": url, "events": ["*"]})
    assert status == 201, made
    old.secret = made["secret"]
    assert made["previous_secret_expires_at"] is None

    status, rotated = await admin("POST", f"/admin/webhooks/{made['id']}/rotate-secret", {"expires_in": 120})
    assert status == 200, rotated
    new.secret = rotated["secret"]
    assert new.secret.startswith("whsec_") and new.secret != old.secret
    until = dt.datetime.fromisoformat(rotated["previous_secret_expires_at"])
    assert 110 <= (until - dt.datetime.now(dt.UTC)).total_seconds() <= 121
    status, shown = await admin("GET", f"/admin/webhooks/{made['id']}")
    assert status == 200 and "secret" not in shown  # shown once: in the rotation's answer only
    assert shown == {k: v for k, v in rotated.items() if k != "secret"}

    status, sent = await admin("POST", f"/admin/webhooks/{made['id']}/test")
    assert status == 202
    await new.wait_count(1)
    assert [(r.id, r.verified) for r in old.got] == [(sent["event_id"], True)]
    assert [(r.id, r.verified) for r in new.got] == [(sent["event_id"], True)]
    assert len(new.got[0].signature.split(" ")) == 2 and all(s.startswith("v1,") for s in new.got[0].signature.split())

    clock.offset = 121.0  # the grace period is over (the attempt's timestamp stays within the tolerance)
    status, sent = await admin("POST", f"/admin/webhooks/{made['id']}/test")
    assert status == 202
    await new.wait_count(2)
    assert (new.got[1].id, new.got[1].verified) == (sent["event_id"], True)
    assert (old.got[1].id, old.got[1].verified) == (sent["event_id"], False)
    assert len(new.got[1].signature.split(" ")) == 1

    status, audit = await admin("GET", "/admin/audit?action=webhook.secret_rotated")
    assert status == 200
    [entry] = audit["data"]
    assert (entry["actor"], entry["target_id"]) == ("admin", made["id"])
    assert entry["details"] == {"previous_secret_expires_at": rotated["previous_secret_expires_at"]}
    everything = json.dumps((await admin("GET", "/admin/audit?limit=100"))[1])
    assert old.secret not in everything and new.secret not in everything


async def test_expires_in_zero_stops_the_old_secret_at_once_and_the_body_may_be_left_out(rotating: Any) -> None:
    admin, _, old, new, url = rotating
    _, made = await admin("POST", "/admin/webhooks", {"url": url, "events": ["*"]})
    old.secret = made["secret"]
    status, rotated = await admin("POST", f"/admin/webhooks/{made['id']}/rotate-secret", {"expires_in": 0})
    assert status == 200 and rotated["previous_secret_expires_at"] is None
    new.secret = rotated["secret"]
    await admin("POST", f"/admin/webhooks/{made['id']}/test")
    await new.wait_count(1)
    assert (old.got[0].verified, new.got[0].verified) == (False, True)

    status, again = await admin("POST", f"/admin/webhooks/{made['id']}/rotate-secret")  # no body: 24 hours
    assert status == 200
    left = dt.datetime.fromisoformat(again["previous_secret_expires_at"]) - dt.datetime.now(dt.UTC)
    assert dt.timedelta(hours=23, minutes=59) < left <= dt.timedelta(hours=24)
    old.secret, new.secret = new.secret, again["secret"]  # the one just replaced, and its successor
    await admin("POST", f"/admin/webhooks/{made['id']}/test")
    await new.wait_count(2)
    assert (old.got[1].verified, new.got[1].verified) == (True, True)


@pytest.mark.parametrize("body", [{"expires_in": -1}, {"expires_in": 604801}, {"expires_in": "60"},
                                  {"expires_in": True}, {"expires_in": 1.5}, {"grace": 60}, [60]])
async def test_a_bad_rotation_is_a_422_naming_the_field_and_changes_nothing(rotating: Any, body: Any) -> None:
    admin, _, _, _, url = rotating
    _, made = await admin("POST", "/admin/webhooks", {"url": url, "events": ["*"]})
    status, refused = await admin("POST", f"/admin/webhooks/{made['id']}/rotate-secret", body)
    assert status == 422 and refused["error"]["code"] == "VALIDATION_ERROR", refused
    assert refused["error"]["details"][0]["field"] in ("expires_in", "grace", "")
    status, shown = await admin("GET", f"/admin/webhooks/{made['id']}")
    assert shown["updated_at"] == made["updated_at"] and shown["previous_secret_expires_at"] is None
    status, missing = await admin("POST", "/admin/webhooks/whk_nope/rotate-secret", {"expires_in": 60})
    assert (status, missing["error"]["code"]) == (404, "NOT_FOUND")
    status, bad = await admin("POST", f"/admin/webhooks/{made['id']}/rotate-secret", raw=b"{", headers={
        "Content-Type": "application/json"})
    assert (status, bad["error"]["code"]) == (400, "BAD_REQUEST")


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_the_store_keeps_one_previous_secret_for_its_grace_period(make_outbox: MakeOutbox, backend: str) -> None:
    outbox = await make_outbox(backend=backend)
    store, now = outbox.store, dt.datetime.now(dt.UTC).replace(microsecond=0)
    first, second, third = new_secret(), new_secret(), new_secret()
    await store.create_endpoint(Endpoint(
        id="whk_1", url="https://hooks.example.com/x", tenant_id=None, description=None, events=("*",),
        secret=first, disabled=False, disabled_reason=None, failing_since=None, created_at=now, updated_at=now))
    until = now + dt.timedelta(hours=1)
    rotated = await store.rotate_endpoint_secret("whk_1", second, previous_until=until, at=now)
    assert rotated is not None and (rotated.secret, rotated.previous_secret) == (second, first)
    assert rotated.previous_secret_expires_at == until
    assert rotated.signing_secrets(now) == (second, first) and rotated.signing_secrets(until) == (second,)
    # a second rotation inside the grace period: the first secret stops at once
    again = await store.rotate_endpoint_secret("whk_1", third, previous_until=until, at=now)
    assert again is not None and again.signing_secrets(now) == (third, second)
    assert await store.forget_expired_secrets(now) == 0
    assert await store.forget_expired_secrets(until) == 1
    kept = await store.get_endpoint("whk_1")
    assert kept is not None and (kept.secret, kept.previous_secret, kept.previous_secret_expires_at) == (third, None, None)
    assert await store.rotate_endpoint_secret("whk_nope", first, previous_until=None, at=now) is None
