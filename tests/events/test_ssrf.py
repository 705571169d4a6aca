"""SSRF: without `allowed_networks`, no webhook reaches loopback, private or otherwise internal
addresses, at creation (422) nor at delivery (the address actually connected to), whatever the
URL's spelling, its name's DNS answers (then or later), or a redirect says."""

from __future__ import annotations

import dataclasses
import ssl
from typing import Any

import pytest
import trustme

from gateway.config import WebhooksConfig
from gateway.credentials.keyformat import new_id
from gateway.errors import ValidationError
from gateway.events.signing import new_secret
from gateway.keystore.outbox import Endpoint
from tests.events.conftest import ADMIN, TEST_SETTINGS, MakeOutbox, Outbox
from tests.events.receiver import Receiver, start_receiver
from tests.events.test_addresses import FixedResolver

NO_ALLOW_LIST = WebhooksConfig(allow_http=True, timeout=5.0)  # http so that the address is what refuses


def targets(port: int) -> list[str]:
    return [f"http://127.0.0.1:{port}/hooks", "https://10.0.0.1/hooks", f"https://[::1]:{port}/hooks",
            f"https://[::ffff:127.0.0.1]:{port}/hooks", f"http://localhost:{port}/hooks",
            f"http://inside.example:{port}/hooks", "http://169.254.169.254/latest/meta-data/"]


async def insert(outbox: Outbox, url: str) -> str:
    """An endpoint put straight in the store, as if the check at creation had been passed (an
    older allow list, or DNS that answered differently then)."""
    now = outbox.accounts.now()
    endpoint = Endpoint(id=new_id("whk"), url=url, tenant_id=None, description=None, events=("*",),
                        secret=new_secret(), disabled=False, disabled_reason=None, failing_since=None,
                        created_at=now, updated_at=now)
    await outbox.store.create_endpoint(endpoint)
    return endpoint.id


async def test_creation_refuses_internal_destinations(make_outbox: MakeOutbox, aiohttp_server: Any) -> None:
    dns = FixedResolver({"localhost": ["127.0.0.1", "::1"], "inside.example": ["127.0.0.1"]})
    outbox = await make_outbox(NO_ALLOW_LIST, resolver=dns)
    receiver = await start_receiver(aiohttp_server)
    for url in targets(int(receiver.url.split(":")[2].split("/")[0])):
        with pytest.raises(ValidationError) as refused:
            await outbox.webhooks.create({"url": url, "events": ["*"]}, ADMIN)
        assert refused.value.status == 422
        assert [d["field"] for d in refused.value.details] == ["url"], url
        assert "address refused" in refused.value.details[0]["issue"], (url, refused.value.details)
    strict = await make_outbox(dataclasses.replace(NO_ALLOW_LIST, allow_http=False), resolver=dns)
    with pytest.raises(ValidationError) as refused:
        await strict.webhooks.create({"url": "http://hooks.example.com/x", "events": ["*"]}, ADMIN)
    assert refused.value.details == [{"field": "url", "issue": "must start with https://"}]
    assert (await outbox.store.list_endpoints(page=1, per_page=10))[1] == 0


async def test_delivery_refuses_internal_destinations(make_outbox: MakeOutbox, aiohttp_server: Any) -> None:
    dns = FixedResolver({"localhost": ["127.0.0.1", "::1"], "inside.example": ["127.0.0.1"]})
    outbox = await make_outbox(NO_ALLOW_LIST, resolver=dns)
    receiver = await start_receiver(aiohttp_server)
    port = int(receiver.url.split(":")[2].split("/")[0])
    hooks = {await insert(outbox, url): url for url in targets(port)}
    await outbox.accounts.create_tenant({"id": "acme", "name": "Acme", "plan": "starter"}, ADMIN)
    assert await outbox.dispatcher.run_once() == len(hooks)
    assert receiver.got == []  # nothing reached it, under any spelling
    for hook, url in hooks.items():
        (delivery,) = await outbox.store.list_deliveries(hook, after=None, limit=5)
        assert delivery.status == "pending" and delivery.response_status is None
        assert delivery.error is not None and delivery.error.startswith("address refused"), (url, delivery.error)


async def test_a_name_that_turns_internal_after_creation_is_refused_at_delivery(
        make_outbox: MakeOutbox, aiohttp_server: Any) -> None:
    dns = FixedResolver({"hooks.example.com": ["93.184.216.34"]})
    outbox = await make_outbox(NO_ALLOW_LIST, resolver=dns)
    receiver = await start_receiver(aiohttp_server)
    port = receiver.url.split(":")[2].split("/")[0]
    endpoint, _ = await outbox.webhooks.create({"url": f"http://hooks.example.com:{port}/hooks", "events": ["*"]},
                                               ADMIN)  # public at creation
    dns.names["hooks.example.com"] = ["127.0.0.1"]  # ... and rebound to loopback afterwards
    await outbox.accounts.create_tenant({"id": "acme", "name": "Acme", "plan": "starter"}, ADMIN)
    assert await outbox.dispatcher.run_once() == 1
    (delivery,) = await outbox.store.list_deliveries(endpoint.id, after=None, limit=5)
    assert delivery.error == "address refused: hooks.example.com resolves to 127.0.0.1 is loopback"
    assert receiver.got == [] and dns.asked.count("hooks.example.com") == 2  # resolved again to connect


async def test_redirects_are_not_followed(make_outbox: MakeOutbox, aiohttp_server: Any) -> None:
    outbox = await make_outbox(TEST_SETTINGS)  # loopback allowed: only the redirect is in question
    target = await start_receiver(aiohttp_server)
    bouncer = await start_receiver(aiohttp_server, Receiver(redirect_to=target.url))
    endpoint, _ = await outbox.webhooks.create({"url": bouncer.url, "events": ["*"]}, ADMIN)
    await outbox.accounts.create_tenant({"id": "acme", "name": "Acme", "plan": "starter"}, ADMIN)
    assert await outbox.dispatcher.run_once() == 1
    assert len(bouncer.got) == 1 and target.got == []
    (delivery,) = await outbox.store.list_deliveries(endpoint.id, after=None, limit=5)
    assert (delivery.status, delivery.response_status, delivery.error) == ("pending", 307, "redirect (307) not followed")


async def test_https_delivery_verifies_the_receivers_certificate(make_outbox: MakeOutbox, aiohttp_server: Any,
                                                                 ca: trustme.CA) -> None:
    cert = ca.issue_cert("localhost")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    receiver = Receiver()
    server = await aiohttp_server(receiver.app(), ssl=server_ctx)
    url = f"https://localhost:{server.port}/hooks"
    settings = dataclasses.replace(TEST_SETTINGS, allow_http=False)
    untrusting = await make_outbox(settings)
    endpoint, secret = await untrusting.webhooks.create({"url": url, "events": ["*"]}, ADMIN)
    receiver.secret = secret
    await untrusting.accounts.create_tenant({"id": "acme", "name": "Acme", "plan": "starter"}, ADMIN)
    assert await untrusting.dispatcher.run_once() == 1
    (refused,) = await untrusting.store.list_deliveries(endpoint.id, after=None, limit=5)
    assert refused.error is not None and refused.error.startswith("TLS certificate refused") and receiver.got == []
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    trusting = await make_outbox(settings, ssl_context=client_ctx, clock=untrusting.clock)
    untrusting.clock.advance(60)
    assert await trusting.dispatcher.run_once() == 1
    assert [(r.status, r.verified) for r in receiver.got] == [(200, True)]


async def test_an_answer_is_read_only_a_little(make_outbox: MakeOutbox, aiohttp_server: Any) -> None:
    from aiohttp import web

    async def flood(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=500)
        await response.prepare(request)
        for _ in range(10_000):  # 640 MB if anyone read it all
            await response.write(b"x" * 65536)
        return response

    app = web.Application()
    app.router.add_post("/hooks", flood)
    server = await aiohttp_server(app)
    outbox = await make_outbox()
    endpoint, _ = await outbox.webhooks.create({"url": f"http://127.0.0.1:{server.port}/hooks", "events": ["*"]}, ADMIN)
    await outbox.accounts.create_tenant({"id": "acme", "name": "Acme", "plan": "starter"}, ADMIN)
    assert await outbox.dispatcher.run_once() == 1  # not a timeout: the rest was never read
    (delivery,) = await outbox.store.list_deliveries(endpoint.id, after=None, limit=5)
    assert delivery.response_status == 500 and delivery.error == "HTTP 500: " + "x" * 200
