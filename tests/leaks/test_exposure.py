"""Marking a key exposed (`Accounts.mark_exposed`), on a real store: once per key however many
report it, revoked or only flagged as `keys.on_exposure` says, with its event and audit entries,
and through a running gateway: refused at once, shown in the admin API, counted in the metric."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.accounts.actors import SYSTEM
from gateway.accounts.service import Accounts
from gateway.errors import NotFound
from tests.conftest import ADMIN_TOKEN, FakeClock, admin_url, proxy_url, read_json
from tests.leaks.conftest import ADMIN, events


async def test_a_flood_of_reports_writes_one_exposure(made) -> None:
    accounts, store, audit = await made()
    key, _ = await accounts.create_key({"tenant_id": "acme", "name": "server", "scope": "read_write"}, ADMIN)
    reads = store.reads
    results = await asyncio.gather(*(accounts.mark_exposed(key.id, "query_string") for _ in range(1000)))
    results += [await accounts.mark_exposed(key.id, "plain_http") for _ in range(1000)]
    assert results.count(True) == 1
    assert (store.writes, store.reads - reads) == (1, 1)  # the store is asked once, not 2,000 times
    got = await accounts.key(key.id)
    assert got.exposed_at is not None and got.revoked_at == got.exposed_at  # revoke, the default
    assert got.exposure == {"reason": "query_string", "at": got.exposure["at"]} if got.exposure else False
    kinds = [e["type"] for e in await events(store)]
    assert kinds == ["tenant.created", "key.created", "key.exposed", "key.revoked"]
    exposed = (await events(store))[2]["data"]
    assert exposed["exposure"]["reason"] == "query_string" and exposed["actor"] == "system"
    assert exposed["key"]["id"] == key.id and exposed["key"]["revoked_at"] is not None
    assert [a for a in audit if a[2] == key.id][1:] == [("system", "key.exposed", key.id),
                                                        ("system", "key.revoked", key.id)]


async def test_flag_marks_without_revoking(made) -> None:
    accounts, store, audit = await made("flag")
    key, _ = await accounts.create_key({"tenant_id": "acme", "name": "server", "scope": "read_write"}, ADMIN)
    seen: list[str] = []
    accounts.on_exposed = seen.append
    url = "https://github.com/acme/app/blob/main/.env"
    assert await accounts.mark_exposed(key.id, "secret_scanning", url=url, actor=ADMIN)
    got = await accounts.key(key.id)
    assert got.revoked_at is None and got.status(accounts.now()) == "active"
    assert got.exposure is not None and (got.exposure["reason"], got.exposure["url"]) == ("secret_scanning", url)
    assert [e["type"] for e in await events(store)][-1] == "key.exposed"  # no key.revoked
    assert audit[-1] == ("admin", "key.exposed", key.id)
    assert seen == ["secret_scanning"]


async def test_another_process_recorded_it_first(made, tmp_path: Path) -> None:
    """Two processes on one store: the second's report changes nothing and makes no event."""
    accounts, store, _ = await made()
    key, _ = await accounts.create_key({"tenant_id": "acme", "name": "server", "scope": "read_write"}, ADMIN)
    other = Accounts(store, accounts.cfg, clock=FakeClock())
    assert await other.mark_exposed(key.id, "plain_http")
    before = len(await events(store))
    assert not await accounts.mark_exposed(key.id, "query_string")
    assert len(await events(store)) == before
    assert (await accounts.key(key.id)).exposure["reason"] == "plain_http"  # type: ignore[index]


async def test_unknown_keys_and_reasons_are_refused(made) -> None:
    accounts, _, _ = await made()
    with pytest.raises(NotFound):
        await accounts.mark_exposed("key_unknown", "query_string")
    with pytest.raises(NotFound):  # not remembered as marked: asked again, it is looked up again
        await accounts.mark_exposed("key_unknown", "query_string")
    with pytest.raises(ValueError):
        await accounts.mark_exposed("key_unknown", "pastebin", actor=SYSTEM)


async def test_an_exposed_key_is_refused_at_once_and_shown(start_gateway, upstream, https) -> None:
    url, _ = upstream
    gw = await start_gateway(routes=[{"name": "api", "path": "/api", "upstream": url}])
    await gw.accounts.create_tenant({"id": "acme", "name": "Acme", "plan": "starter"}, ADMIN)
    key, secret = await gw.accounts.create_key({"tenant_id": "acme", "name": "server", "scope": "read_write"}, ADMIN)
    async with https.get(proxy_url(gw, "/api/x"), headers={"X-API-Key": secret}) as resp:
        assert resp.status == 200  # its identity is cached now
    assert await gw.accounts.mark_exposed(key.id, "plain_http")
    async with https.get(proxy_url(gw, "/api/x"), headers={"X-API-Key": secret}) as resp:
        assert resp.status == 401 and (await read_json(resp))["error"]["code"] == "REVOKED_CREDENTIALS"
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with https.get(admin_url(gw, f"/admin/keys/{key.id}"), headers=auth) as resp:
        view = await read_json(resp)
    assert view["exposed_at"] is not None and view["exposure"]["reason"] == "plain_http"
    assert view["canary"] is False and view["status"] == "revoked"
    assert gw.registry.get_sample_value("gateway_key_exposures_total", {"reason": "plain_http"}) == 1.0
