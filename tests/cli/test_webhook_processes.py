"""Webhooks from `gateway` processes: a revocation answered just before the gateway is killed
(SIGKILL) reaches the receiver after a restart, whether the kill came before the first attempt or
in the middle of it (the attempt's lease then runs out: `webhooks.timeout` + 5 s); changes made
with the command line are delivered by the running gateway."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.cli.test_run import ENV, free_port, gateway, write_config
from tests.conftest import ADMIN_TOKEN, base_config
from tests.events.receiver import Receiver, start_receiver
from tests.processes import start_gateway_process


@pytest.mark.parametrize("when", ["answered", "mid-attempt"])
async def test_a_revocation_answered_before_sigkill_is_delivered_after_restart(
        tmp_path: Path, server_cert: Any, aiohttp_server: Any, when: str) -> None:
    receiver = await start_receiver(aiohttp_server, Receiver(hang=True))  # no attempt ends before the kill
    admin_port = free_port()
    cfg = base_config(tmp_path, server_cert, server={"port": free_port()}, admin={"port": admin_port},
                      webhooks={"allowed_networks": ["127.0.0.0/8"], "allow_http": True, "timeout": 1})
    config = write_config(tmp_path, cfg)
    base, auth = f"http://127.0.0.1:{admin_port}", {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    running = await start_gateway_process(config, tmp_path, ENV)
    try:
        async with aiohttp.ClientSession(headers=auth) as admin:
            async def call(method: str, path: str, body: Any = None) -> Any:
                async with admin.request(method, base + path, json=body) as resp:
                    assert resp.status in (200, 201), await resp.text()
                    return await resp.json()

            hook = await call("POST", "/admin/webhooks", {"url": receiver.url, "events": ["key.revoked"]})
            receiver.secret = hook["secret"]
            await call("POST", "/admin/tenants", {"id": "acme", "name": "Acme", "plan": "starter"})
            key = await call("POST", "/admin/keys", {"tenant_id": "acme", "name": "ci", "scope": "read_only"})
            await call("POST", f"/admin/keys/{key['id']}/revoke")
        if when == "mid-attempt":
            await receiver.wait_count(1)  # the attempt is under way, waiting for an answer
        await running.kill()  # SIGKILL
    finally:
        await running.kill()
    assert all(r.status == 0 for r in receiver.got)  # nothing was answered, let alone delivered
    receiver.hang = False
    receiver.release.set()
    running = await start_gateway_process(config, tmp_path, ENV)
    try:
        await receiver.wait_for(lambda r: any(g.status == 200 for g in r.got), timeout=30)
    finally:
        await running.stop()
    (delivered,) = receiver.delivered()
    assert delivered.verified and delivered.payload["type"] == "key.revoked"
    assert delivered.payload["data"]["key"]["id"] == key["id"]
    assert {r.id for r in receiver.got} == {delivered.id}  # a retry of the same event, not another one


async def test_changes_made_with_the_command_are_delivered_by_the_running_gateway(
        tmp_path: Path, server_cert: Any, aiohttp_server: Any) -> None:
    receiver = await start_receiver(aiohttp_server)
    admin_port = free_port()
    cfg = base_config(tmp_path, server_cert, server={"port": free_port()}, admin={"port": admin_port},
                      webhooks={"allowed_networks": ["127.0.0.0/8"], "allow_http": True, "poll_interval": 0.2})
    config = write_config(tmp_path, cfg)
    running = await start_gateway_process(config, tmp_path, ENV)
    try:
        async with (aiohttp.ClientSession(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as admin,
                    admin.post(f"http://127.0.0.1:{admin_port}/admin/webhooks",
                               json={"url": receiver.url, "events": ["tenant.created", "key.revoked"]}) as resp):
            receiver.secret = (await resp.json())["secret"]
        c = ["--config", str(config)]
        for args in (("tenants", "create", *c, "--id", "acme", "--name", "Acme", "--plan", "starter"),
                     ("keys", "create", *c, "--tenant", "acme", "--name", "ci", "--json")):
            done = await asyncio.to_thread(gateway, *args, cwd=tmp_path)
            assert done.returncode == 0, done.stderr
        key = json.loads(done.stdout)
        revoked = await asyncio.to_thread(gateway, "keys", "revoke", *c, key["id"], cwd=tmp_path)
        assert revoked.returncode == 0, revoked.stderr
        await receiver.wait_count(2)
    finally:
        await running.stop()
    # both, whatever their order (a gateway held up by a loaded machine may claim them together)
    got = {r.payload["type"]: r for r in receiver.got}
    assert sorted(got) == ["key.revoked", "tenant.created"] and len(receiver.got) == 2
    assert all(r.verified for r in receiver.got)
    assert got["key.revoked"].payload["data"]["key"]["id"] == key["id"] and got["key.revoked"].payload["data"]["actor"] == "cli"
