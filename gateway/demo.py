"""`gateway demo`: the whole gateway on one machine with nothing else to install or start.

An embedded SQLite store and a self-signed certificate in a local directory, an echo upstream in
the same process, a demo tenant and a fresh key, and curl commands that work as printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import sys
from pathlib import Path

from aiohttp import web

from gateway.accounts.actors import Actor
from gateway.app import Gateway
from gateway.config import Config, parse_config
from gateway.listeners import bind
from gateway.tls import self_signed_paths

DEMO_TENANT = "demo"
DEMO = Actor("cli")
DEMO_OWNER = "owner@demo.example"
DEMO_KEY = "demo key"  # the name of the key each run prints


def demo_config(data_dir: Path, port: int, admin_port: int, upstream_port: int) -> Config:
    upstream = f"http://127.0.0.1:{upstream_port}"
    return parse_config(
        {
            "server": {"host": "127.0.0.1", "port": port, "tls": {"self_signed": True}},
            "data_dir": str(data_dir),
            "admin": {"host": "127.0.0.1", "port": admin_port},
            "store": {"url": f"sqlite:///{data_dir}/gateway.db"},
            "portal": {"enabled": True},
            "routes": [
                {"name": "demo", "path": "/api/v1/demo", "upstream": upstream},
                {"name": "public", "path": "/public", "upstream": upstream, "auth": []},
            ],
        }
    )


def echo_app() -> web.Application:
    """An upstream that answers with what it received, so the gateway's work is visible."""

    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        return web.json_response(
            {
                "upstream": "gateway demo echo",
                "method": request.method,
                "path": request.path,
                "query": request.query_string,
                "gateway_headers": {k: v for k, v in request.headers.items() if k.lower().startswith("x-")},
                "body_bytes": len(body),
            }
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


async def _demo_key(gateway: Gateway) -> str:
    accounts = gateway.accounts
    assert accounts is not None
    if await accounts.store.get_tenant(DEMO_TENANT) is None:
        await accounts.create_tenant({"id": DEMO_TENANT, "name": "Demo tenant", "plan": "starter"}, DEMO)
    active, _ = await accounts.store.list_keys(
        tenant_id=DEMO_TENANT, status="active", now=accounts.now(), page=1, per_page=100, sort="created_at"
    )
    # Room for this run's key comes from earlier runs' keys first: one someone made in the demo's
    # portal or console is revoked only when nothing else is left to make room.
    earlier = sorted(active, key=lambda key: key.user_id is not None or key.name != DEMO_KEY)  # stable: oldest first
    for old in earlier[: max(0, len(active) - gateway.cfg.keys.max_per_tenant + 1)]:
        await accounts.revoke_key(old.id, DEMO)
    _, secret = await accounts.create_key(
        {"tenant_id": DEMO_TENANT, "name": DEMO_KEY, "scope": "read_write"}, DEMO
    )
    return secret


async def _portal_line(gateway: Gateway) -> str:
    """The demo tenant's owner in the tenant portal: a fresh invitation until one is accepted."""
    base = f"https://127.0.0.1:{gateway.proxy_port}"
    login = await gateway.store.login_by_email(DEMO_OWNER)
    if login is None:
        _, url = await gateway.people.invite(DEMO_TENANT, {"email": DEMO_OWNER, "role": "owner"}, DEMO)
    elif login.password_hash is None:
        url = await gateway.people.reinvite(login.user, DEMO)
    else:
        return f"Tenant portal: sign in as {DEMO_OWNER} at {base}/portal/"
    return f"Tenant portal: open {url} to become the demo tenant's owner ({DEMO_OWNER})."


def _banner(cfg: Config, gateway: Gateway, secret: str, token: str, portal: str) -> str:
    cert, _ = self_signed_paths(cfg.data_dir)
    base = f"https://127.0.0.1:{gateway.proxy_port}"
    admin = f"http://127.0.0.1:{gateway.admin_port}"
    curl = f"curl --cacert {cert}"
    return "\n".join(
        [
            "gateway demo is running (Ctrl-C to stop)",
            "",
            f"  proxy (HTTPS):  {base}",
            f"  admin:          {admin}",
            f"  data:           {cfg.data_dir}",
            f"  API key:        {secret}",
            f"  admin token:    {token}",
            "",
            "Try:",
            f"  {curl} -H 'X-API-Key: {secret}' {base}/api/v1/demo/hello",
            f"  {curl} -H 'Authorization: Bearer {secret}' '{base}/api/v1/demo/items?page=2'",
            f"  {curl} {base}/api/v1/demo/hello          # 401 MISSING_CREDENTIALS",
            f"  {curl} {base}/public/ping                 # a public route",
            f"  {curl} -X POST -H 'Content-Type: application/json' -d '{{\"api_key\": \"{secret}\"}}' "
            f"{base}{cfg.tokens.path}   # a short-lived JWT for the key",
            f"  curl -H 'Authorization: Bearer {token}' {admin}/admin/keys   # the admin API",
            f"  curl {admin}/metrics",
            f"  curl {admin}/readyz",
            "",
            f"Key console: open {admin}/admin/ and sign in with the admin token above.",
            portal,
            "",
        ]
    )


async def run_demo(args: argparse.Namespace) -> int:
    data_dir = Path(args.dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    token = os.environ.setdefault("GATEWAY_ADMIN_TOKEN", secrets.token_urlsafe(24))
    upstream_sock = bind("127.0.0.1", args.upstream_port)
    runner = web.AppRunner(echo_app(), access_log=None)
    await runner.setup()
    await web.SockSite(runner, upstream_sock).start()
    upstream_port = upstream_sock.getsockname()[1]
    cfg = demo_config(data_dir, args.port, args.admin_port, upstream_port)
    gateway = Gateway(cfg)
    # Handlers first: a Ctrl-C as soon as the banner shows (or during start) stops cleanly, exit 0.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await gateway.start()
        secret = await _demo_key(gateway)
        print(_banner(cfg, gateway, secret, token, await _portal_line(gateway)), flush=True)
        await stop.wait()
        print("stopping", file=sys.stderr)
    finally:
        await gateway.stop()
        await runner.cleanup()
    return 0


