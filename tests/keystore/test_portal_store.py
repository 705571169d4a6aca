"""What every key store backend must do for the tenant portal, on a real database each:
the operator's gates, sign-ins, single-use links and server-side sessions."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from gateway.accounts.events import user_event
from gateway.keystore.base import DuplicateError, KeyStore, LastOwnerError
from gateway.keystore.models import PortalSession, PortalToken, User
from tests.keystore.test_store_conformance import (  # noqa: F401 - fixture
    BACKENDS,
    DAY,
    T0,
    key,
    open_store,
    store,
    tenant,
    user,
)
from tests.services import drop_schema, postgres_url, require_postgres

HOUR = dt.timedelta(hours=1)


def link(user_id: str, token_hash: str = "h" * 64, *, purpose: str = "invitation", at: dt.datetime = T0,
         hours: int = 72) -> PortalToken:
    return PortalToken(token_hash=token_hash, purpose=purpose, user_id=user_id,  # type: ignore[arg-type]
                       created_at=at, expires_at=at + hours * HOUR)


def session(user_id: str, id_hash: str = "s" * 64, at: dt.datetime = T0) -> PortalSession:
    return PortalSession(id_hash=id_hash, user_id=user_id, created_at=at, seen_at=at, expires_at=at + 12 * HOUR,
                         client_ip="203.0.113.7", user_agent="test")


async def invited(store: KeyStore, email: str = "ada@example.com", role: str = "owner", token_hash: str = "h" * 64):
    made = dataclasses.replace(user(role=role), email=email)
    await store.create_invited_user(made, email, link(made.id, token_hash))
    return made


async def test_tenant_gates_default_on_change_and_reach_the_principal(store: KeyStore) -> None:
    await store.create_tenant(tenant())
    got = await store.get_tenant("acme")
    assert got is not None and got.api_enabled and got.write_enabled
    await store.create_tenant(dataclasses.replace(tenant("beta"), api_enabled=False))
    assert (await store.get_tenant("beta")).api_enabled is False  # type: ignore[union-attr]
    changed = await store.update_tenant("acme", write_enabled=False, at=T0 + DAY)
    assert changed is not None and changed.api_enabled and not changed.write_enabled and changed.updated_at == T0 + DAY
    made, secret = key()
    await store.create_key(made)
    principal = await store.get_principal_by_key_id(made.id)
    assert principal is not None and principal.tenant.write_enabled is False and principal.tenant.api_enabled
    page, _ = await store.list_tenants(page=1, per_page=10, sort="id")
    assert [(t.id, t.api_enabled, t.write_enabled) for t in page] == [("acme", True, False), ("beta", False, True)]


async def test_an_invitation_makes_a_user_without_password_and_an_email_signs_in_one_user(store: KeyStore) -> None:
    await store.create_tenant(tenant())
    ada = await invited(store)
    login = await store.login_by_email("ada@example.com")
    assert login is not None and login.user == ada and login.tenant.id == "acme" and login.password_hash is None
    with pytest.raises(DuplicateError):
        await invited(store, token_hash="i" * 64)  # same email: nothing of the second is kept
    assert [u.id for u in await store.list_users("acme")] == [ada.id]
    assert await store.login_by_email("nobody@example.com") is None
    assert (await store.login_of(ada.id)) == login
    assert [lg.user.id for lg in await store.logins_of_tenant("acme")] == [ada.id]
    await store.set_password(ada.id, "$argon2id$fake", T0)
    assert (await store.login_by_email("ada@example.com")).password_hash == "$argon2id$fake"  # type: ignore[union-attr]


async def test_several_tenants_may_invite_an_email_that_then_signs_in_one_person(store: KeyStore) -> None:
    """An invitation never tells a tenant that the email is another tenant's person: pending
    logins of one email in several tenants coexist; the first accepted signs in, the others'
    acceptance is refused (`DuplicateError`) with nothing of it written."""
    await store.create_tenant(tenant())
    await store.create_tenant(tenant("beta"))
    acme = await invited(store)
    beta = dataclasses.replace(user("beta"), email="ada@example.com", created_at=T0 + HOUR)
    await store.create_invited_user(beta, "ada@example.com", link(beta.id, "b" * 64))
    with pytest.raises(DuplicateError):  # twice in one tenant: still one user there
        await store.create_invited_user(dataclasses.replace(user("beta"), email="ada@example.com"),
                                        "ada@example.com", link(beta.id, "c" * 64))
    assert [u.id for u in await store.list_users("beta")] == [beta.id]
    assert (await store.login_by_email("ada@example.com")).user.id == acme.id  # type: ignore[union-attr]  # the earliest
    assert (await store.token_login("b" * 64, "invitation", T0 + HOUR)).user.id == beta.id  # type: ignore[union-attr]
    assert await store.redeem_token("b" * 64, "invitation", T0 + HOUR, "$argon2id$beta") is not None
    login = await store.login_by_email("ada@example.com")  # the one that signs in, before earlier invitations
    assert login is not None and login.user.id == beta.id and login.password_hash == "$argon2id$beta"
    with pytest.raises(DuplicateError):
        await store.redeem_token("h" * 64, "invitation", T0 + HOUR, "$argon2id$acme")
    assert (await store.login_of(acme.id)).password_hash is None  # type: ignore[union-attr]
    assert (await store.token_login("h" * 64, "invitation", T0 + HOUR)) is not None  # not spent either


async def test_a_link_is_spent_once_within_its_time_and_ends_the_users_sessions(store: KeyStore) -> None:
    await store.create_tenant(tenant())
    ada = await invited(store)
    await store.create_session(session(ada.id))
    assert (await store.token_login("h" * 64, "invitation", T0 + HOUR)).user.id == ada.id  # type: ignore[union-attr]
    assert await store.token_login("h" * 64, "reset", T0 + HOUR) is None  # another purpose
    assert await store.token_login("h" * 64, "invitation", T0 + 72 * HOUR) is None  # expired
    assert await store.redeem_token("h" * 64, "invitation", T0 + 72 * HOUR, "$argon2id$late") is None
    assert (await store.login_of(ada.id)).password_hash is None  # type: ignore[union-attr]
    redeemed = await store.redeem_token("h" * 64, "invitation", T0 + HOUR, "$argon2id$one", name="Ada L.")
    assert redeemed is not None and redeemed.id == ada.id and redeemed.name == "Ada L."
    assert (await store.login_of(ada.id)).password_hash == "$argon2id$one"  # type: ignore[union-attr]
    assert await store.get_session("s" * 64) is None
    assert await store.redeem_token("h" * 64, "invitation", T0 + 2 * HOUR, "$argon2id$two") is None  # used
    assert (await store.login_of(ada.id)).password_hash == "$argon2id$one"  # type: ignore[union-attr]
    assert await store.token_login("h" * 64, "invitation", T0 + 2 * HOUR) is None
    assert await store.redeem_token("x" * 64, "invitation", T0, "$argon2id$x") is None  # unknown


async def test_a_new_link_replaces_the_earlier_one_and_a_disabled_user_cannot_use_any(store: KeyStore) -> None:
    await store.create_tenant(tenant())
    ada = await invited(store)
    await store.add_token(link(ada.id, "r" * 64, purpose="reset", at=T0))
    await store.add_token(link(ada.id, "q" * 64, purpose="reset", at=T0 + HOUR))
    assert await store.token_login("r" * 64, "reset", T0 + 2 * HOUR) is None
    assert await store.token_login("h" * 64, "invitation", T0 + 2 * HOUR) is not None  # other purpose kept
    await store.update_user(ada.id, disabled=True, at=T0 + 2 * HOUR)
    assert await store.token_login("q" * 64, "reset", T0 + 2 * HOUR) is None
    assert await store.redeem_token("q" * 64, "reset", T0 + 2 * HOUR, "$argon2id$z") is None
    await store.update_user(ada.id, disabled=False, at=T0 + 3 * HOUR)
    await store.update_tenant("acme", disabled=True, at=T0 + 3 * HOUR)
    assert await store.redeem_token("q" * 64, "reset", T0 + 3 * HOUR, "$argon2id$z") is None


async def test_sessions_are_read_with_their_person_touched_replaced_and_ended(store: KeyStore) -> None:
    await store.create_tenant(tenant())
    ada = await invited(store)
    bob = await invited(store, "bob@example.com", "viewer", "b" * 64)
    await store.create_session(session(ada.id, "1" * 64))
    await store.create_session(session(ada.id, "2" * 64))
    await store.create_session(session(bob.id, "3" * 64))
    view = await store.get_session("1" * 64)
    assert view is not None and view.user == ada and view.tenant.id == "acme" and view.email == "ada@example.com"
    assert view.session == session(ada.id, "1" * 64)
    await store.touch_session("1" * 64, T0 + HOUR)
    await store.touch_session("1" * 64, T0)  # never backwards (two instances touching)
    assert (await store.get_session("1" * 64)).session.seen_at == T0 + HOUR  # type: ignore[union-attr]
    await store.create_session(session(ada.id, "4" * 64), replaces="1" * 64)
    assert await store.get_session("1" * 64) is None and await store.get_session("4" * 64) is not None
    await store.delete_session("4" * 64)
    assert await store.get_session("4" * 64) is None
    await store.update_user(ada.id, role="admin", at=T0)  # a role change keeps the session...
    assert (await store.get_session("2" * 64)).user.role == "admin"  # type: ignore[union-attr]
    await store.update_user(ada.id, disabled=True, at=T0)  # ...disabling ends it
    assert await store.get_session("2" * 64) is None
    assert await store.get_session("3" * 64) is not None
    await store.delete_user_sessions(bob.id)
    assert await store.get_session("3" * 64) is None


async def test_purge_removes_what_can_no_longer_be_used(store: KeyStore) -> None:
    await store.create_tenant(tenant())
    ada = await invited(store)
    await store.create_session(session(ada.id, "1" * 64, at=T0))               # idle since T0
    await store.create_session(session(ada.id, "2" * 64, at=T0 + 2 * HOUR))    # fresh
    await store.add_token(link(ada.id, "r" * 64, purpose="reset", at=T0, hours=1))
    await store.purge_portal(T0 + 2 * HOUR, idle_before=T0 + HOUR)
    assert await store.get_session("1" * 64) is None
    assert await store.get_session("2" * 64) is not None
    assert await store.token_login("h" * 64, "invitation", T0 + 2 * HOUR) is not None
    await store.purge_portal(T0 + 13 * HOUR + 1 * DAY, idle_before=T0)
    assert await store.get_session("2" * 64) is None  # past its absolute limit


@pytest.mark.parametrize("backend", BACKENDS)
async def test_concurrent_demotions_of_a_tenants_two_owners_leave_it_one(tmp_path: Path, backend: str) -> None:
    """Two instances (two store objects, two connections) each take a different owner of the same
    tenants away at the same moment: per tenant exactly one change passes, the other is refused
    with nothing of it written, and one active owner is left."""
    if backend == "postgres":
        require_postgres()
    first, second = await open_store(backend, tmp_path), await open_store(backend, tmp_path)
    try:
        tenants = [f"t{i}" for i in range(8)]
        pairs = []
        for tid in tenants:
            await first.create_tenant(tenant(tid))
            a, b = user(tid, "owner"), user(tid, "owner")
            await first.create_user(a)
            await first.create_user(b)
            pairs.append((a, b))
        changes = []
        for a, b in pairs:
            changes.append(first.update_user(a.id, role="admin", at=T0 + DAY, keep_owner=True,
                                             events=[user_event("user.updated", a, at=T0 + DAY, actor="admin")]))
            changes.append(second.update_user(b.id, disabled=True, at=T0 + DAY, keep_owner=True,
                                              events=[user_event("user.updated", b, at=T0 + DAY, actor="admin")]))
        results = await asyncio.gather(*changes, return_exceptions=True)
        assert all(r is None or isinstance(r, (User, LastOwnerError)) for r in results), results
        for tid, outcome in zip(tenants, zip(results[::2], results[1::2], strict=True), strict=True):
            assert sorted(type(r).__name__ for r in outcome) == ["LastOwnerError", "User"], (tid, outcome)
            owners = [u for u in await second.list_users(tid) if u.role == "owner" and not u.disabled]
            assert len(owners) == 1, (tid, owners)
        # nothing refuses a change that keeps an owner, or one made without keep_owner (the operator's)
        a, b = pairs[0]
        kept = a if isinstance(results[0], LastOwnerError) else b
        assert (await first.update_user(kept.id, name="Still", at=T0 + DAY, keep_owner=True)).name == "Still"  # type: ignore[union-attr]
        assert (await first.update_user(kept.id, role="viewer", at=T0 + DAY)).role == "viewer"  # type: ignore[union-attr]
        assert await first.update_user("usr_nobody", role="admin", at=T0 + DAY, keep_owner=True) is None
    finally:
        await first.close()
        await second.close()
        if backend == "postgres":
            await drop_schema(postgres_url(tmp_path))
