"""What every key store backend must do, run against each backend on a real database."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.credentials.keyformat import display_prefix, generate_key, hash_key, new_id
from gateway.keystore.base import DuplicateError, KeyStore, StoreError
from gateway.keystore.models import ApiKey, Permission, Tenant, User
from gateway.keystore.postgres import PostgresKeyStore
from gateway.keystore.sqlite import SQLiteKeyStore
from tests.services import drop_schema, postgres_url, require_postgres

T0 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)

BACKENDS = ["sqlite", "postgres"]


async def open_store(backend: str, tmp_path: Path) -> KeyStore:
    if backend == "sqlite":
        store: KeyStore = SQLiteKeyStore(str(tmp_path / "gateway.db"))
    else:
        store = PostgresKeyStore(postgres_url(tmp_path))
    await store.open()
    return store


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[KeyStore]:
    if request.param == "postgres":
        require_postgres()
    opened = await open_store(request.param, tmp_path)
    yield opened
    await opened.close()
    if request.param == "postgres":
        await drop_schema(postgres_url(tmp_path))


def tenant(tid: str = "acme", plan: str = "starter", at: dt.datetime = T0) -> Tenant:
    return Tenant(id=tid, name=tid.title(), plan=plan, disabled=False, created_at=at, updated_at=at)


def user(tenant_id: str = "acme", role: str = "member") -> User:
    return User(id=new_id("usr"), tenant_id=tenant_id, name="Ada", email="ada@example.com", role=role,  # type: ignore[arg-type]
                disabled=False, created_at=T0, updated_at=T0)


def key(tenant_id: str = "acme", *, user_id: str | None = None, name: str = "server", at: dt.datetime = T0,
        expires: dt.datetime | None = None, **fields) -> tuple[ApiKey, str]:
    secret = generate_key("gw", fields.pop("environment", "live"))
    made = ApiKey(
        id=new_id("key"), tenant_id=tenant_id, user_id=user_id, name=name, display_prefix=display_prefix(secret),
        last4=secret[-4:], secret_hash=hash_key(secret), scope=fields.pop("scope", "read_write"),
        permissions=fields.pop("permissions", ()), resources=fields.pop("resources", {}),
        environment="live" if secret.startswith("gw_live_") else "test",
        rate_limit_per_minute=fields.pop("rate_limit_per_minute", None), created_at=at,
        expires_at=expires, last_used_at=None, revoked_at=None, replaced_by=None,
    )
    assert not fields, fields
    return made, secret


async def test_tenants_round_trip_update_and_page(store: KeyStore) -> None:
    for i, tid in enumerate(["beta", "acme", "gamma"]):
        await store.create_tenant(tenant(tid, at=T0 + i * DAY))
    with pytest.raises(DuplicateError):
        await store.create_tenant(tenant("acme"))
    got = await store.get_tenant("acme")
    assert got == tenant("acme", at=T0 + DAY)
    assert got is not None and got.created_at.tzinfo is not None
    assert await store.get_tenant("nope") is None
    page, total = await store.list_tenants(page=1, per_page=2, sort="id")
    assert total == 3 and [t.id for t in page] == ["acme", "beta"]
    page, _ = await store.list_tenants(page=2, per_page=2, sort="id")
    assert [t.id for t in page] == ["gamma"]
    newest, _ = await store.list_tenants(page=1, per_page=3, sort="-created_at")
    assert [t.id for t in newest] == ["gamma", "acme", "beta"]
    updated = await store.update_tenant("acme", plan="enterprise", disabled=True, at=T0 + 5 * DAY)
    assert updated is not None and (updated.plan, updated.disabled, updated.name) == ("enterprise", True, "Acme")
    assert updated.updated_at == T0 + 5 * DAY
    assert await store.update_tenant("nope", plan="x", at=T0) is None


async def test_users_belong_to_a_tenant(store: KeyStore) -> None:
    await store.create_tenant(tenant())
    ada = await store.create_user(user(role="admin"))
    assert await store.get_user(ada.id) == ada
    assert [u.id for u in await store.list_users("acme")] == [ada.id]
    assert await store.list_users("other") == []
    changed = await store.update_user(ada.id, role="viewer", disabled=True, at=T0 + DAY)
    assert changed is not None and (changed.role, changed.disabled) == ("viewer", True)
    with pytest.raises(StoreError):
        await store.create_user(user(tenant_id="ghost"))


async def test_keys_resolve_by_hash_and_id_with_their_principal(store: KeyStore) -> None:
    await store.create_tenant(tenant())
    ada = await store.create_user(user())
    made, secret = key(user_id=ada.id, scope="custom", resources={"location": ("loc_1", "loc_2")},
                       permissions=(Permission(("GET", "POST"), "/api/v1/visitors/*"),),
                       rate_limit_per_minute=42, expires=T0 + 30 * DAY)
    await store.create_key(made)
    assert await store.get_key(made.id) == made
    by_hash = await store.get_principal_by_hash(hash_key(secret))
    assert by_hash is not None
    assert by_hash.key == made and by_hash.tenant.id == "acme" and by_hash.user == ada
    by_id = await store.get_principal_by_key_id(made.id)
    assert by_id == by_hash
    assert await store.get_principal_by_hash(hash_key(generate_key("gw", "live"))) is None
    assert await store.get_principal_by_key_id("key_unknown") is None


async def test_lookups_asked_together_each_get_their_own_answer(store: KeyStore) -> None:
    await store.create_tenant(tenant())
    made = [key(name=f"k{i}") for i in range(3)]
    for k, _ in made:
        await store.create_key(k)
    unknown = [hash_key(generate_key("gw", "live")) for _ in range(3)]
    asked = [hash_key(secret) for _, secret in made] + unknown + [hash_key(made[0][1])]
    answers = await asyncio.gather(*(store.get_principal_by_hash(h) for h in asked))
    assert [a.key.id if a else None for a in answers] == [k.id for k, _ in made] + [None] * 3 + [made[0][0].id]
    many = [hash_key(generate_key("gw", "live")) for _ in range(600)] + [hash_key(made[1][1])]  # > one batch
    answers = await asyncio.gather(*(store.get_principal_by_hash(h) for h in many))
    assert answers[:-1] == [None] * 600 and answers[-1] is not None and answers[-1].key.id == made[1][0].id



async def test_keys_list_filter_sort_and_count(store: KeyStore) -> None:
    await store.create_tenant(tenant())
    await store.create_tenant(tenant("other"))
    old, _ = key(name="old", at=T0, expires=T0 + 10 * DAY)
    live, _ = key(name="live", at=T0 + DAY, expires=T0 + 90 * DAY)
    gone, _ = key(name="gone", at=T0 + 2 * DAY)
    elsewhere, _ = key("other", name="elsewhere", at=T0 + 3 * DAY)
    for k in (old, live, gone, elsewhere):
        await store.create_key(k)
    await store.revoke_key(gone.id, T0 + 3 * DAY)
    now = T0 + 20 * DAY  # `old` has expired by now
    keys, total = await store.list_keys(tenant_id="acme", now=now, page=1, per_page=10)
    assert total == 3 and [k.name for k in keys] == ["gone", "live", "old"]
    active, total = await store.list_keys(tenant_id="acme", status="active", now=now, page=1, per_page=10)
    assert (total, [k.name for k in active]) == (1, ["live"])
    expired, _ = await store.list_keys(status="expired", now=now, page=1, per_page=10)
    assert [k.name for k in expired] == ["old"]
    revoked, _ = await store.list_keys(status="revoked", now=now, page=1, per_page=10)
    assert [k.name for k in revoked] == ["gone"]
    by_name, total = await store.list_keys(now=now, page=2, per_page=2, sort="name")
    assert total == 4 and [k.name for k in by_name] == ["live", "old"]
    assert await store.count_active_keys("acme", now) == 1
    assert await store.count_active_keys("acme", T0) == 2


async def test_revoke_and_rotate(store: KeyStore) -> None:
    await store.create_tenant(tenant())
    first, secret = key()
    await store.create_key(first)
    successor, new_secret = key(name=first.name, at=T0 + DAY)
    rotated = await store.rotate_key(first.id, successor, T0 + DAY)
    assert rotated == successor
    old = await store.get_key(first.id)
    assert old is not None and old.revoked_at == T0 + DAY and old.replaced_by == successor.id
    assert old.status(T0 + DAY) == "revoked"
    principal = await store.get_principal_by_hash(hash_key(secret))
    assert principal is not None and principal.key.revoked_at is not None  # known, and refused as revoked
    assert await store.rotate_key(first.id, key()[0], T0 + 2 * DAY) is None  # a revoked key cannot rotate again
    revoked = await store.revoke_key(successor.id, T0 + 2 * DAY)
    assert revoked is not None and revoked.revoked_at == T0 + 2 * DAY
    again = await store.revoke_key(successor.id, T0 + 3 * DAY)
    assert again is not None and again.revoked_at == T0 + 2 * DAY  # the first revocation time stands
    assert await store.revoke_key("key_unknown", T0) is None
    assert (await store.get_principal_by_hash(hash_key(new_secret))).key.revoked_at == T0 + 2 * DAY  # type: ignore[union-attr]


async def test_each_expired_key_is_noted_once_whoever_asks(store: KeyStore) -> None:
    await store.create_tenant(tenant())
    expiring, _ = key(expires=T0 + DAY)
    later, _ = key(expires=T0 + 5 * DAY)
    revoked, _ = key(expires=T0 + DAY)
    forever, _ = key()
    for made in (expiring, later, revoked, forever):
        await store.create_key(made)
    await store.revoke_key(revoked.id, T0)
    assert await store.expired_unnoted(T0, 10) == []
    assert await store.expired_unnoted(T0 + DAY, 10) == [expiring.id]  # revoked first: not an expiry
    results = await asyncio.gather(*(store.note_expiry(expiring.id) for _ in range(4)))
    assert sorted(results) == [False, False, False, True]  # concurrent noters: exactly one wins
    assert await store.expired_unnoted(T0 + 10 * DAY, 10) == [later.id]
    assert await store.expired_unnoted(T0 + 10 * DAY, 10, since=T0 + 6 * DAY) == []  # only what expired since


@pytest.mark.parametrize("backend", BACKENDS)
async def test_upgrading_notes_what_had_expired_already(tmp_path: Path, backend: str) -> None:
    """Keys that expired before the expiry notes existed are history: no key.expired flood on upgrade."""
    if backend == "postgres":
        require_postgres()
    store = await open_store(backend, tmp_path)
    now = dt.datetime.now(dt.UTC)
    await store.create_tenant(tenant())
    old, _ = key(expires=now - 300 * DAY)
    soon, _ = key(expires=now + DAY)
    for made in (old, soon):
        await store.create_key(made)
    # back to the first schema, as a store written by the previous version looks
    await store._write([("DROP TABLE key_expiry_notes", ()), ("DROP INDEX api_keys_expires", ()),  # type: ignore[attr-defined]
                        ("DELETE FROM schema_migrations WHERE version = 2", ())])
    await store.close()
    store = await open_store(backend, tmp_path)
    try:
        assert await store.expired_unnoted(now + 2 * DAY, 10) == [soon.id]
    finally:
        await store.close()
        if backend == "postgres":
            await drop_schema(postgres_url(tmp_path))


async def test_last_used_only_moves_forward(store: KeyStore) -> None:
    await store.create_tenant(tenant())
    made, _ = key()
    await store.create_key(made)
    await store.record_last_used({made.id: T0 + 2 * DAY, "key_unknown": T0})
    await store.record_last_used({made.id: T0 + DAY})  # a late, older batch from another instance
    got = await store.get_key(made.id)
    assert got is not None and got.last_used_at == T0 + 2 * DAY


async def test_concurrent_writers_do_not_lose_keys(store: KeyStore) -> None:
    await store.create_tenant(tenant())
    made = [key(name=f"k{i}")[0] for i in range(20)]
    await asyncio.gather(*(store.create_key(k) for k in made))
    _, total = await store.list_keys(tenant_id="acme", now=T0, page=1, per_page=100)
    assert total == 20


@pytest.mark.parametrize("backend", BACKENDS)
async def test_data_survives_reopening(tmp_path: Path, backend: str) -> None:
    if backend == "postgres":
        require_postgres()
    first = await open_store(backend, tmp_path)
    await first.create_tenant(tenant())
    made, secret = key()
    await first.create_key(made)
    await first.close()
    again = await open_store(backend, tmp_path)  # migrations run again without harm
    try:
        principal = await again.get_principal_by_hash(hash_key(secret))
        assert principal is not None and principal.key == made
    finally:
        await again.close()
        if backend == "postgres":
            await drop_schema(postgres_url(tmp_path))


async def test_concurrent_rotations_of_one_key_leave_one_successor(store: KeyStore) -> None:
    await store.create_tenant(tenant())
    first, _ = key()
    await store.create_key(first)
    successors = [key(name=first.name, at=T0 + DAY)[0] for _ in range(5)]
    results = await asyncio.gather(*(store.rotate_key(first.id, s, T0 + DAY) for s in successors))
    assert sum(r is not None for r in results) == 1
    assert await store.count_active_keys("acme", T0 + DAY) == 1


async def test_an_exposure_is_recorded_once_the_first_wins(store: KeyStore) -> None:
    await store.create_tenant(tenant())
    flagged, secret = key(name="flagged")
    revoked, _ = key(name="revoked")
    canary = dataclasses.replace(key(name="canary")[0], canary=True)
    for made in (flagged, revoked, canary):
        await store.create_key(made)
    first = {"reason": "query_string", "at": "2026-01-02T12:00:00Z"}
    results = await asyncio.gather(*(
        store.expose_key(flagged.id, {**first, "reason": reason}, T0 + DAY, revoke=False)
        for reason in ("query_string", "plain_http", "secret_scanning", "plain_http")))
    assert sorted(results) == [False, False, False, True]  # concurrent reporters: exactly one wins
    got = await store.get_key(flagged.id)
    assert got is not None and got.exposed_at == T0 + DAY and got.revoked_at is None
    assert got.exposure is not None and got.exposure["at"] == first["at"]
    assert not await store.expose_key(flagged.id, first, T0 + 2 * DAY, revoke=True)  # nothing changes, not even revoked
    assert (await store.get_key(flagged.id)) == got
    scanned = {"reason": "secret_scanning", "at": "2026-01-02T12:00:00Z", "url": "https://example.com/x"}
    assert await store.expose_key(revoked.id, scanned, T0 + DAY, revoke=True)
    principal = await store.get_principal_by_hash(hash_key(secret))
    assert principal is not None and principal.key == got  # the hot path's join reads the new columns
    gone = await store.get_key(revoked.id)
    assert gone is not None and gone.revoked_at == T0 + DAY and gone.exposure == scanned
    assert (await store.get_key(canary.id)).canary is True  # type: ignore[union-attr]
    assert (await store.get_key(flagged.id)).canary is False  # type: ignore[union-attr]
    assert not await store.expose_key("key_unknown", first, T0, revoke=True)
