"""Bodies made to break a parser or the store reach no 500 and no 503: nesting deeper than the JSON
parser recurses is malformed JSON (400), a NUL in a filter is a 422
(PostgreSQL cannot hold one: it was the store's 503), and an email no one can have (a lone surrogate, a NUL)
signs no one in, with the 401 of any unknown email."""

from __future__ import annotations

import json


async def test_json_nested_past_the_parsers_depth_is_a_400_on_every_door(start_portal) -> None:
    site = await start_portal()
    await site.tenant()
    owner = await site.member("acme", "owner@acme.example")
    stranger = site.client()
    for browser, path in ((stranger, "/session"), (owner, "/keys"), (owner, "/users"), (owner, "/webhooks")):
        for deep in (b"[" * 5000, b'{"a":' * 5000):
            async with browser.session.post(browser.url("/api" + path), data=deep, headers={
                    "Origin": browser.origin, "X-CSRF-Token": browser.csrf or "", "Content-Type": "application/json"}) as resp:
                body = json.loads(await resp.read())
            assert (resp.status, body["error"]["code"]) == (400, "BAD_REQUEST"), (path, body)


async def test_an_email_the_store_cannot_hold_is_an_unknown_email(start_portal) -> None:
    site = await start_portal()
    await site.tenant()
    stranger = site.client()
    for email in ("\ud800@acme.example", "own\x00er@acme.example", "\udcff"):
        status, body = await stranger.api("POST", "/session", {"email": email, "password": "a wrong password"})
        assert (status, body["error"]["code"]) == (401, "INVALID_CREDENTIALS"), (email, body)
        status, body = await stranger.api("POST", "/password-reset", {"email": email})
        assert status == 202, body


async def test_a_nul_in_a_filter_is_refused_before_the_store(start_portal) -> None:
    site = await start_portal()
    await site.tenant()
    owner = await site.member("acme", "owner@acme.example")
    for path in ("/calls?key_id=%00", "/usage?key_id=%00"):
        status, body = await owner.api("GET", path)
        assert (status, body["error"]["code"]) == (422, "VALIDATION_ERROR"), (path, body)


async def test_a_keys_resources_are_printable_text(start_portal) -> None:
    """A NUL or a lone surrogate in a resource's name or value matches no route segment, and the
    PostgreSQL store cannot hold it (it was a 503): 422 like any other bad field."""
    site = await start_portal()
    await site.tenant()
    owner = await site.member("acme", "owner@acme.example")
    for resources in ({"\ud800": ["loc_1"]}, {"location": ["loc\x00"]}, {"location": ["\udcff"]}, {"loc\x00": ["a"]}):
        status, body = await owner.api("POST", "/keys", {"name": "k", "scope": "read_only", "resources": resources})
        assert (status, body["error"]["code"]) == (422, "VALIDATION_ERROR"), (resources, body)
    status, body = await owner.api("POST", "/keys", {"name": "k", "scope": "read_only", "resources": {"location": ["loc_1"]}})
    assert status == 201, body
