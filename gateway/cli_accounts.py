"""`gateway tenants|users|keys ...`: bootstrap and scripting on the configured store.

They go through the same service as the admin API, built by the same code (`services.py`), so
the same rules apply and whatever the service does on a change happens here too. A gateway
already running on the same store sees a change within `store.cache_ttl`. Every change is in the
audit trail with the actor `cli`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

from gateway.accounts.service import Accounts, Actor, key_view, plain
from gateway.config import Config
from gateway.errors import GatewayError
from gateway.keystore.base import StoreError
from gateway.services import open_services

CLI = Actor("cli")
Action = Callable[[Accounts, argparse.Namespace], Awaitable[Any]]


def _print(args: argparse.Namespace, payload: Any, lines: list[str]) -> None:
    if args.json:
        print(json.dumps(payload, indent=2, sort_keys=True))
    else:
        print("\n".join(lines))


def run_action(cfg: Config, args: argparse.Namespace, action: Action) -> int:
    async def go() -> int:
        async with AsyncExitStack() as stack:  # closing it flushes this command's audit entries
            services = await open_services(cfg, stack)
            await action(services.accounts, args)
        return 0

    try:
        return asyncio.run(go())
    except GatewayError as err:
        issues = "; ".join(f"{d['field']}: {d['issue']}" for d in err.details)
        print(f"gateway: error: {err.message}" + (f" ({issues})" if issues else ""), file=sys.stderr)
        return 1
    except StoreError as err:
        print(f"gateway: error: {err}", file=sys.stderr)
        return 2


async def tenants_create(accounts: Accounts, args: argparse.Namespace) -> None:
    body: dict[str, Any] = {"name": args.name, "plan": args.plan}
    if args.id:
        body["id"] = args.id
    tenant = await accounts.create_tenant(body, CLI)
    _print(args, plain(tenant), [f"created tenant {tenant.id} ({tenant.name}, plan {tenant.plan})"])


async def tenants_list(accounts: Accounts, args: argparse.Namespace) -> None:
    tenants, _ = await accounts.store.list_tenants(page=1, per_page=10_000, sort="created_at")
    rows = [f"{t.id}\t{t.name}\t{t.plan}\t{'disabled' if t.disabled else 'active'}" for t in tenants]
    _print(args, [plain(t) for t in tenants], rows or ["no tenants"])


def _flag(text: str) -> bool:
    if text.lower() in ("true", "yes", "on", "1"):
        return True
    if text.lower() in ("false", "no", "off", "0"):
        return False
    raise argparse.ArgumentTypeError("must be true or false")


def _changes(args: argparse.Namespace, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


async def tenants_update(accounts: Accounts, args: argparse.Namespace) -> None:
    body = _changes(args, ("name", "plan", "disabled", "api_enabled", "write_enabled"))
    tenant = await accounts.update_tenant(args.tenant_id, body, CLI)
    _print(args, plain(tenant), [
        f"updated tenant {tenant.id}: plan {tenant.plan}, {'disabled' if tenant.disabled else 'active'}, "
        f"API access {'on' if tenant.api_enabled else 'off'}, write access {'on' if tenant.write_enabled else 'off'}"])


async def users_create(accounts: Accounts, args: argparse.Namespace) -> None:
    body: dict[str, Any] = {"name": args.name, "role": args.role}
    if args.email:
        body["email"] = args.email
    user = await accounts.create_user(args.tenant, body, CLI)
    _print(args, plain(user), [f"created user {user.id} ({user.name}, {user.role}) in tenant {user.tenant_id}"])


async def users_list(accounts: Accounts, args: argparse.Namespace) -> None:
    tenant = await accounts.tenant(args.tenant)
    users = await accounts.store.list_users(tenant.id)
    rows = [f"{u.id}\t{u.name}\t{u.email or '-'}\t{u.role}\t{'disabled' if u.disabled else 'active'}" for u in users]
    _print(args, [plain(u) for u in users], rows or ["no users"])


async def users_update(accounts: Accounts, args: argparse.Namespace) -> None:
    user = await accounts.update_user(args.user_id, _changes(args, ("name", "role", "disabled")), CLI)
    _print(args, plain(user), [f"updated user {user.id}: {user.role}, {'disabled' if user.disabled else 'active'}"])


def _permission(text: str) -> dict[str, Any]:
    methods, sep, path = text.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError("permission must be METHODS:PATH, e.g. GET,POST:/api/v1/*")
    return {"methods": [m.strip() for m in methods.split(",") if m.strip()], "path": path}


def _resource(text: str) -> tuple[str, list[str]]:
    name, sep, values = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError("resource must be NAME=VALUE[,VALUE...]")
    return name, [v for v in values.split(",") if v]


async def keys_create(accounts: Accounts, args: argparse.Namespace) -> None:
    body: dict[str, Any] = {
        "tenant_id": args.tenant,
        "name": args.name,
        "scope": args.scope,
        "environment": args.environment,
    }
    if args.no_expiry:
        body["validity_days"] = None
    elif args.validity_days is not None:
        body["validity_days"] = args.validity_days
    if args.permission:
        body["permissions"] = args.permission
    if args.resource:
        body["resources"] = {name: values for name, values in args.resource}
    if args.user:
        body["user_id"] = args.user
    if args.rate_limit is not None:
        body["rate_limit_per_minute"] = args.rate_limit
    key, secret = await accounts.create_key(body, CLI)
    view = {**key_view(key, accounts.now(), accounts.cfg.keys.expiring_soon_days), "key": secret}
    _print(args, view, [
        f"created key {key.id} ({key.name}) for tenant {key.tenant_id}",
        f"secret (shown once, store it now): {secret}",
    ])


def _key_lines(view: dict[str, Any]) -> list[str]:
    return [f"{k}: {v}" for k, v in view.items()]


async def keys_list(accounts: Accounts, args: argparse.Namespace) -> None:
    keys, _ = await accounts.store.list_keys(
        tenant_id=args.tenant, status=args.status, now=accounts.now(), page=1, per_page=10_000,
        sort="-created_at",
    )
    views = [key_view(k, accounts.now(), accounts.cfg.keys.expiring_soon_days) for k in keys]
    rows = [
        f"{v['id']}\t{v['tenant_id']}\t{v['name']}\t{v['masked']}{v['last4']}\t{v['scope']}\t{v['status']}"
        for v in views
    ]
    _print(args, views, rows or ["no keys"])


async def keys_show(accounts: Accounts, args: argparse.Namespace) -> None:
    key = await accounts.key(args.key_id)
    view = key_view(key, accounts.now(), accounts.cfg.keys.expiring_soon_days)
    _print(args, view, _key_lines(view))


async def keys_rotate(accounts: Accounts, args: argparse.Namespace) -> None:
    key, secret = await accounts.rotate_key(args.key_id, CLI)
    view = {**key_view(key, accounts.now(), accounts.cfg.keys.expiring_soon_days), "key": secret}
    _print(args, view, [
        f"rotated {args.key_id} -> {key.id}; the old secret no longer works",
        f"secret (shown once, store it now): {secret}",
    ])


async def keys_revoke(accounts: Accounts, args: argparse.Namespace) -> None:
    key = await accounts.revoke_key(args.key_id, CLI)
    view = key_view(key, accounts.now(), accounts.cfg.keys.expiring_soon_days)
    _print(args, view, [f"revoked {key.id} ({key.name})"])


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    tenants = sub.add_parser("tenants", help="create and list tenants").add_subparsers(dest="action", required=True)
    p = tenants.add_parser("create", parents=[common])
    p.add_argument("--name", required=True)
    p.add_argument("--plan", required=True)
    p.add_argument("--id")
    p.set_defaults(action_fn=tenants_create)
    p = tenants.add_parser("list", parents=[common])
    p.set_defaults(action_fn=tenants_list)
    p = tenants.add_parser("update", parents=[common], help="rename, change plan, disable, or set the gates")
    p.add_argument("tenant_id")
    p.add_argument("--name")
    p.add_argument("--plan")
    p.add_argument("--disabled", type=_flag, metavar="true|false")
    p.add_argument("--api-enabled", type=_flag, metavar="true|false", help="may the tenant's keys be used at all")
    p.add_argument("--write-enabled", type=_flag, metavar="true|false", help="may they use write methods")
    p.set_defaults(action_fn=tenants_update)

    users = sub.add_parser("users", help="create, list and update a tenant's users").add_subparsers(
        dest="action", required=True)
    p = users.add_parser("create", parents=[common])
    p.add_argument("--tenant", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--email")
    p.add_argument("--role", required=True, choices=["owner", "admin", "member", "viewer"])
    p.set_defaults(action_fn=users_create)
    p = users.add_parser("list", parents=[common])
    p.add_argument("--tenant", required=True)
    p.set_defaults(action_fn=users_list)
    p = users.add_parser("update", parents=[common], help="change role, name, or disable (ends their sessions)")
    p.add_argument("user_id")
    p.add_argument("--name")
    p.add_argument("--role", choices=["owner", "admin", "member", "viewer"])
    p.add_argument("--disabled", type=_flag, metavar="true|false")
    p.set_defaults(action_fn=users_update)

    keys = sub.add_parser("keys", help="create, list, show, rotate and revoke API keys").add_subparsers(dest="action", required=True)
    p = keys.add_parser("create", parents=[common])
    p.add_argument("--tenant", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--scope", default="read_write", choices=["read_only", "read_write", "custom"])
    p.add_argument("--environment", default="live", choices=["live", "test"])
    p.add_argument("--validity-days", type=int)
    p.add_argument("--no-expiry", action="store_true", help="a key that never expires")
    p.add_argument("--permission", action="append", type=_permission, help="METHODS:PATH for a custom scope")
    p.add_argument("--resource", action="append", type=_resource, help="NAME=VALUE[,VALUE] resource limit")
    p.add_argument("--user", help="owning user id")
    p.add_argument("--rate-limit", type=int, help="requests per minute, instead of the plan's")
    p.set_defaults(action_fn=keys_create)
    p = keys.add_parser("list", parents=[common])
    p.add_argument("--tenant")
    p.add_argument("--status", choices=["active", "expired", "revoked"])
    p.set_defaults(action_fn=keys_list)
    for name, fn in (("show", keys_show), ("rotate", keys_rotate), ("revoke", keys_revoke)):
        p = keys.add_parser(name, parents=[common])
        p.add_argument("key_id")
        p.set_defaults(action_fn=fn)
