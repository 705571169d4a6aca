"""`gateway tenants` and `gateway keys` on a real SQLite file, as a script would use them."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path
from typing import Any

from tests.cli.test_run import gateway, write_config
from tests.conftest import STORE_BACKEND, base_config


def test_bootstrap_tenant_and_key_lifecycle(tmp_path: Path, server_cert) -> None:
    cfg = write_config(tmp_path, base_config(tmp_path, server_cert))
    c = ["--config", str(cfg)]

    made = gateway("tenants", "create", *c, "--id", "acme", "--name", "Acme", "--plan", "starter", "--json", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["id"] == "acme"
    dup = gateway("tenants", "create", *c, "--id", "acme", "--name", "Acme", "--plan", "starter", cwd=tmp_path)
    assert dup.returncode == 1 and "already exists" in dup.stderr

    listed = gateway("tenants", "list", *c, "--json", cwd=tmp_path)
    assert [t["id"] for t in json.loads(listed.stdout)["data"]] == ["acme"]

    created = gateway("keys", "create", *c, "--tenant", "acme", "--name", "backend", "--json", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)
    secret, key_id = key["key"], key["id"]
    assert secret.startswith("gw_live_") and key["status"] == "active"
    assert key["expires_in_days"] == 90

    human = gateway("keys", "create", *c, "--tenant", "acme", "--name", "ops", cwd=tmp_path)
    assert "shown once" in human.stdout
    canary = json.loads(gateway("keys", "create", *c, "--tenant", "acme", "--name", "trap", "--canary", "--json",
                                cwd=tmp_path).stdout)
    assert canary["canary"] is True and key["canary"] is False and key["exposure"] is None
    described = gateway("keys", "show", *c, canary["id"], cwd=tmp_path).stdout
    assert "Canary" in described and "raises the alarm" in described and "Exposed" in described

    shown = json.loads(gateway("keys", "show", *c, key_id, "--json", cwd=tmp_path).stdout)
    assert "key" not in shown and secret not in json.dumps(shown)
    assert shown["masked"].startswith("gw_live_") and shown["last4"] == secret[-4:]

    rotated = json.loads(gateway("keys", "rotate", *c, key_id, "--json", cwd=tmp_path).stdout)
    assert rotated["id"] != key_id and rotated["key"] != secret
    revoked = json.loads(gateway("keys", "revoke", *c, rotated["id"], "--json", cwd=tmp_path).stdout)
    assert revoked["status"] == "revoked"
    statuses = {k["id"]: k["status"] for k in json.loads(gateway("keys", "list", *c, "--json", cwd=tmp_path).stdout)["data"]}
    assert statuses[key_id] == "revoked" and statuses[rotated["id"]] == "revoked"

    if STORE_BACKEND != "sqlite":
        return  # what follows reads the SQLite file
    db = sqlite3.connect(tmp_path / "data" / "gateway.db")
    dump = "\n".join(db.iterdump())
    trail = db.execute("SELECT actor, action, target_id FROM audit_log ORDER BY id").fetchall()
    db.close()
    assert secret not in dump and rotated["key"] not in dump
    # every change made from the command line is in the audit trail, by the actor "cli"
    assert {actor for actor, _, _ in trail} == {"cli"}
    actions = [(action, target) for _, action, target in trail]
    assert actions[0] == ("tenant.created", "acme")
    assert ("key.created", key_id) in actions and ("key.rotated", key_id) in actions
    assert ("key.revoked", rotated["id"]) in actions


def test_key_rules_are_enforced_by_the_cli(tmp_path: Path, server_cert) -> None:
    cfg = write_config(tmp_path, base_config(tmp_path, server_cert))
    c = ["--config", str(cfg)]
    gateway("tenants", "create", *c, "--id", "acme", "--name", "Acme", "--plan", "starter", cwd=tmp_path)
    bad = gateway("keys", "create", *c, "--tenant", "acme", "--name", "bad/name", "--validity-days", "5", cwd=tmp_path)
    assert bad.returncode == 1
    assert "name" in bad.stderr and "validity_days" in bad.stderr
    for i in range(4):
        ok = gateway("keys", "create", *c, "--tenant", "acme", "--name", f"k{i}", cwd=tmp_path)
        assert ok.returncode == 0, ok.stderr
    full = gateway("keys", "create", *c, "--tenant", "acme", "--name", "k5", cwd=tmp_path)
    assert full.returncode == 1 and "maximum" in full.stderr
    missing = gateway("keys", "show", *c, "key_nope", cwd=tmp_path)
    assert missing.returncode == 1 and "no key" in missing.stderr


def test_unopenable_store_is_one_line_exit_2(tmp_path: Path, server_cert) -> None:
    (tmp_path / "adir").mkdir()
    cfg = base_config(tmp_path, server_cert, store={"url": f"sqlite:///{tmp_path / 'adir'}"})
    result = gateway("tenants", "list", "--config", str(write_config(tmp_path, cfg)), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr


async def _add_endpoint(path: str) -> Any:
    import datetime as dt

    from gateway.events.signing import new_secret
    from gateway.keystore.outbox import Endpoint
    from gateway.keystore.sqlite import SQLiteKeyStore

    store = SQLiteKeyStore(path)
    await store.open()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    hook = Endpoint(id="whk_1", url="https://hooks.example.com/x", tenant_id="acme", description="ops",
                    events=("key.revoked",), secret=new_secret(), disabled=False, disabled_reason=None,
                    failing_since=None, created_at=now, updated_at=now)
    try:
        return await store.create_endpoint(hook)
    finally:
        await store.close()


def test_store_migrate_copies_everything_from_sqlite_to_postgresql(tmp_path: Path, server_cert) -> None:
    import asyncio

    from tests.services import drop_schema, postgres_url, require_postgres

    require_postgres()
    cfg = base_config(tmp_path, server_cert)
    cfg["store"] = {"url": f"sqlite:///{tmp_path}/data/gateway.db"}
    path = write_config(tmp_path, cfg)
    c = ["--config", str(path)]
    assert gateway("tenants", "create", *c, "--id", "acme", "--name", "Acme", "--plan", "starter", cwd=tmp_path).returncode == 0
    made = json.loads(gateway("keys", "create", *c, "--tenant", "acme", "--name", "one", "--json", cwd=tmp_path).stdout)
    gone = json.loads(gateway("keys", "create", *c, "--tenant", "acme", "--name", "two", "--json", cwd=tmp_path).stdout)
    gateway("keys", "revoke", *c, gone["id"], cwd=tmp_path)
    assert gateway("tenants", "update", *c, "acme", "--write-enabled", "false", cwd=tmp_path).returncode == 0

    async def signs_in(url: str, add: bool) -> tuple[object, object]:
        import datetime as dt

        from gateway.keystore.models import PortalToken, User
        from gateway.keystore.postgres import PostgresKeyStore
        from gateway.keystore.sqlite import SQLiteKeyStore

        store = SQLiteKeyStore(url[len("sqlite:///"):]) if url.startswith("sqlite") else PostgresKeyStore(url)
        await store.open()
        try:
            if add:
                now = dt.datetime.now(dt.UTC)
                ada = User("usr_ada", "acme", "Ada", "ada@example.com", "owner", False, now, now)
                await store.create_invited_user(ada, "ada@example.com",
                                                PortalToken("h" * 64, "invitation", ada.id, now, now))
                await store.set_password(ada.id, "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA", now)
            login = await store.login_by_email("ada@example.com")
            return (login.password_hash if login else None), await store.get_tenant("acme")
        finally:
            await store.close()

    before, _ = asyncio.run(signs_in(cfg["store"]["url"], add=True))
    hook = asyncio.run(_add_endpoint(f"{tmp_path}/data/gateway.db"))
    target = postgres_url(tmp_path)
    try:
        moved = gateway("store", "migrate", "--from", cfg["store"]["url"], "--to", target, cwd=tmp_path)
        assert moved.returncode == 0, moved.stderr
        assert "migrated 1 tenant, 1 user, 2 keys, 5 audit entries" in moved.stdout  # one, not "1 tenants"
        after, tenant = asyncio.run(signs_in(target, add=False))
        assert after == before and tenant.write_enabled is False  # type: ignore[attr-defined]
        assert "1 webhook endpoint" in moved.stdout and "copied 1 tenant, 1 user\n" in moved.stderr
        again = gateway("store", "migrate", "--from", cfg["store"]["url"], "--to", target, cwd=tmp_path)
        assert again.returncode == 2 and "empty store" in again.stderr
        # the same keys, secrets included, work against the new store
        cfg["store"] = {"url": target}
        pg = write_config(tmp_path, cfg)
        listed = json.loads(gateway("keys", "list", "--config", str(pg), "--json", cwd=tmp_path).stdout)
        assert {k["id"]: k["status"] for k in listed["data"]} == {made["id"]: "active", gone["id"]: "revoked"}

        async def principal() -> object:
            from gateway.credentials.keyformat import hash_key
            from gateway.keystore.postgres import PostgresKeyStore

            store = PostgresKeyStore(target)
            await store.open()
            try:
                return await store.get_principal_by_hash(hash_key(made["key"]))
            finally:
                await store.close()

        found = asyncio.run(principal())
        assert found is not None and found.key.id == made["id"]  # type: ignore[attr-defined]

        async def endpoint() -> object:
            from gateway.keystore.postgres import PostgresKeyStore

            store = PostgresKeyStore(target)
            await store.open()
            try:
                return await store.get_endpoint(hook.id)
            finally:
                await store.close()

        assert asyncio.run(endpoint()) == hook  # its secret too: receivers keep verifying
    finally:
        asyncio.run(drop_schema(target))


def test_tenant_gates_and_users_from_the_command_line(tmp_path: Path, server_cert) -> None:
    cfg = write_config(tmp_path, base_config(tmp_path, server_cert))
    c = ["--config", str(cfg)]
    assert gateway("tenants", "create", *c, "--id", "acme", "--name", "Acme", "--plan", "starter",
                   cwd=tmp_path).returncode == 0
    gated = gateway("tenants", "update", *c, "acme", "--api-enabled", "false", "--write-enabled", "no", "--json",
                    cwd=tmp_path)
    assert gated.returncode == 0, gated.stderr
    assert (json.loads(gated.stdout)["api_enabled"], json.loads(gated.stdout)["write_enabled"]) == (False, False)
    refused = gateway("keys", "create", *c, "--tenant", "acme", "--name", "k", cwd=tmp_path)
    assert refused.returncode == 1 and "API access is not enabled" in refused.stderr
    assert gateway("tenants", "update", *c, "acme", "--api-enabled", "maybe", cwd=tmp_path).returncode == 2

    made = gateway("users", "create", *c, "--tenant", "acme", "--name", "Ada", "--email", "ada@example.com",
                   "--role", "admin", "--json", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    user = json.loads(made.stdout)
    assert (user["tenant_id"], user["role"], user["disabled"]) == ("acme", "admin", False)
    changed = json.loads(gateway("users", "update", *c, user["id"], "--role", "viewer", "--disabled", "true",
                                 "--json", cwd=tmp_path).stdout)
    assert (changed["role"], changed["disabled"]) == ("viewer", True)
    listed = gateway("users", "list", *c, "--tenant", "acme", cwd=tmp_path)
    assert "ada@example.com" in listed.stdout and "disabled" in listed.stdout
    missing = gateway("users", "update", *c, "usr_nope", "--role", "viewer", cwd=tmp_path)
    assert missing.returncode == 1 and "no user" in missing.stderr


def test_a_key_created_with_an_expiry_date(tmp_path: Path, server_cert) -> None:
    cfg = write_config(tmp_path, base_config(tmp_path, server_cert))
    c = ["--config", str(cfg)]
    gateway("tenants", "create", *c, "--id", "acme", "--name", "Acme", "--plan", "starter", cwd=tmp_path)
    at = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).replace(microsecond=0)
    made = gateway("keys", "create", *c, "--tenant", "acme", "--name", "dated", "--json",
                   "--expires-at", at.isoformat(), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["expires_at"] == at.strftime("%Y-%m-%dT%H:%M:%SZ")
    both = gateway("keys", "create", *c, "--tenant", "acme", "--name", "x", "--expires-at", at.isoformat(),
                   "--validity-days", "30", cwd=tmp_path)
    assert both.returncode == 1 and "expires_at" in both.stderr and "not both" in both.stderr
    past = gateway("keys", "create", *c, "--tenant", "acme", "--name", "x", "--expires-at", "2020-01-01T00:00:00Z",
                   cwd=tmp_path)
    assert past.returncode == 1 and "in the future" in past.stderr


async def test_the_first_owner_is_invited_from_the_command_line(tmp_path: Path, server_cert, start_gateway,
                                                                  client_ssl) -> None:
    """`gateway invitations create` prints the link once; the person accepts it in the portal of a
    gateway on the same store and signs in."""
    from tests.portal.harness import PortalClient, cheap_passwords

    portal = {"enabled": True, "public_url": "https://api.example.com"}
    cfg = write_config(tmp_path, base_config(tmp_path, server_cert, portal=portal))
    c = ["--config", str(cfg)]
    assert gateway("tenants", "create", *c, "--id", "acme", "--name", "Acme", "--plan", "starter",
                   cwd=tmp_path).returncode == 0
    made = gateway("invitations", "create", *c, "--tenant", "acme", "--email", "owner@acme.example", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    url = made.stdout.strip().splitlines()[-1]
    assert url.startswith("https://api.example.com/portal/#invitation=") and "shown once" in made.stdout
    again = gateway("invitations", "create", *c, "--tenant", "acme", "--email", "owner@acme.example", "--json",
                    cwd=tmp_path)
    assert again.returncode == 1, again.stdout
    nowhere = gateway("invitations", "create", *c, "--tenant", "nope", "--email", "x@acme.example", cwd=tmp_path)
    assert nowhere.returncode == 1 and "no tenant" in nowhere.stderr
    admin = json.loads(gateway("invitations", "create", *c, "--tenant", "acme", "--email", "ops@acme.example",
                               "--role", "admin", "--json", cwd=tmp_path).stdout)
    assert (admin["role"], admin["status"]) == ("admin", "invited") and "#invitation=" in admin["invitation_url"]

    gw = await start_gateway(portal={"enabled": True}, options={"passwords": cheap_passwords()})
    browser = PortalClient(f"https://127.0.0.1:{gw.proxy_port}", "/portal", client_ssl)
    try:
        assert (await browser.accept(url))[0] == 200
        status, me = await browser.sign_in("owner@acme.example")
        assert status == 200 and (me["role"], me["tenant"]["id"]) == ("owner", "acme")
    finally:
        await browser.close()


def test_an_invitation_made_while_the_portal_is_off_says_so(tmp_path: Path, server_cert) -> None:
    """config/quickstart.yaml has no portal: the link is printed (it works once the portal is on) and a
    note on stderr says why it would 404 today; with the portal on there is no note."""
    c = ["--config", str(write_config(tmp_path, base_config(tmp_path, server_cert)))]
    gateway("tenants", "create", *c, "--id", "acme", "--name", "Acme", "--plan", "starter", cwd=tmp_path)
    made = gateway("invitations", "create", *c, "--tenant", "acme", "--email", "owner@acme.example", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert "#invitation=" in made.stdout and "portal is off" in made.stderr and "portal.enabled" in made.stderr
    listed = gateway("users", "list", *c, "--tenant", "acme", cwd=tmp_path).stdout.splitlines()
    assert listed[0].split()[-1] == "STATUS" and listed[1].split()[-1] == "invited", listed  # not yet "active"
    on = tmp_path / "on"
    on.mkdir()
    c = ["--config", str(write_config(on, base_config(on, server_cert, portal={"enabled": True})))]
    gateway("tenants", "create", *c, "--id", "acme", "--name", "Acme", "--plan", "starter", cwd=on)
    made = gateway("invitations", "create", *c, "--tenant", "acme", "--email", "owner@acme.example", cwd=on)
    assert made.returncode == 0 and "portal is off" not in made.stderr, made.stderr
