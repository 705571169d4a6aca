"""`gateway keys create|list|show|rotate|revoke`: API keys from the command line.

The secret is printed once, at creation or rotation. Revoking a key that is already revoked
changes nothing and says so on stderr (exit 0: the key is revoked, as asked), as `gh pr close`
does for a closed pull request; the audit trail gets no second entry.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from gateway.accounts.actors import CLI
from gateway.accounts.events import iso
from gateway.accounts.service import Accounts
from gateway.accounts.views import key_view
from gateway.admin.key_marks import mark
from gateway.cli_output import (
    Column,
    Row,
    ago,
    describe,
    expiry,
    output,
    print_json,
    report,
    report_list,
    stamp,
)
from gateway.keystore.models import ApiKey
from gateway.observability.usage_monitor import UsageMonitor
from gateway.services import Services

_PAGE = 500


def _view(accounts: Accounts, key: ApiKey, secret: str | None = None) -> dict[str, Any]:
    view = key_view(key, accounts.now(), accounts.cfg.keys.expiring_soon_days)
    if secret is not None:
        view["key"] = secret
    return view


def _usage(services: Services) -> UsageMonitor:
    """Where the admin API's key views get their `anomaly` mark (read only: nothing is started)."""
    return UsageMonitor(services.recorder.store, services.accounts.cfg.usage, on_anomaly=_ignore)


async def _ignore(_: object) -> None:
    return None


def _masked(view: Row) -> str:
    return f"{view['masked']}{view['last4']}"


def key_columns(accounts: Accounts) -> list[Column]:
    now = accounts.now()
    return [
        Column("ID", lambda k: k["id"]),
        Column("NAME", lambda k: k["name"]),
        Column("TENANT", lambda k: k["tenant_id"]),
        Column("KEY", _masked),
        Column("SCOPE", lambda k: k["scope"]),
        Column("ENV", lambda k: k["environment"]),
        Column("STATUS", lambda k: k["status"]),
        Column("EXPIRES", lambda k: expiry(k, now)),
        Column("LAST USED", lambda k: ago(k["last_used_at"], now)),
        Column("EXPOSED", lambda k: _exposed(k, now)),
        Column("CANARY", lambda k: "yes" if k.get("canary") else "no"),
        Column("USER", lambda k: k["user_id"] or "-", wide=True),
        Column("RATE LIMIT", lambda k: "plan" if k["rate_limit_per_minute"] is None else f"{k['rate_limit_per_minute']}/min",
               wide=True),
        Column("CREATED", lambda k: ago(k["created_at"], now), wide=True),
    ]


def _exposed(view: Row, now: Any) -> str:
    """The console's `exposed` mark as a cell: how the key leaked and when (`query_string 3h ago`),
    or `-` for a key never seen leaked."""
    exposure = view.get("exposure")
    return f"{exposure['reason']} {ago(exposure['at'], now)}" if exposure else "-"


def _permissions(view: Row) -> str:
    return "; ".join(f"{','.join(p['methods'])} {p['path']}" for p in view["permissions"]) or "-"


def _resources(view: Row) -> str:
    return "; ".join(f"{name}={','.join(values)}" for name, values in sorted(view["resources"].items())) or "any"


def describe_key(accounts: Accounts, view: dict[str, Any]) -> str:
    now = accounts.now()
    limit = view["rate_limit_per_minute"]
    return describe([
        ("ID", view["id"]), ("Name", view["name"]), ("Tenant", view["tenant_id"]),
        ("User", view["user_id"] or "-"), ("Key", _masked(view)), ("Scope", view["scope"]),
        ("Permissions", _permissions(view)), ("Resources", _resources(view)),
        ("Environment", view["environment"]),
        ("Rate limit", "the tenant's plan" if limit is None else f"{limit} requests/minute"),
        ("Status", view["status"] + (" (expiring soon)" if view["expiring_soon"] and view["status"] == "active" else "")),
        ("Created", stamp(view["created_at"], now)),
        ("Last used", stamp(view["last_used_at"], now, none="never")),
        ("Expires", stamp(view["expires_at"], now, none="never")),
        ("Revoked", stamp(view["revoked_at"], now)),
        ("Replaced by", view["replaced_by"] or "-"),
        ("Unusual usage", view["anomaly"]["message"] if view.get("anomaly") else "-"),
        ("Exposed", _exposure(view, now)),
        ("Canary", "yes: any use is refused and raises the alarm" if view.get("canary") else "no"),
    ])


def _exposure(view: Row, now: Any) -> str:
    """Where and when the key was seen leaked (README, Leaked keys), or `-`."""
    exposure = view.get("exposure")
    if not exposure:
        return "-"
    where = {"query_string": "in a query string", "plain_http": "over plain HTTP",
             "secret_scanning": "by a secret scanner"}.get(exposure["reason"], exposure["reason"])
    return f"{where}, {stamp(exposure['at'], now)}" + (f" ({exposure['url']})" if exposure.get("url") else "")


async def keys_create(services: Services, args: argparse.Namespace) -> None:
    accounts = services.accounts
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
    if args.expires_at is not None:
        body["expires_at"] = args.expires_at
    if args.permission:
        body["permissions"] = args.permission
    if args.resource:
        body["resources"] = {name: values for name, values in args.resource}
    if args.user:
        body["user_id"] = args.user
    if args.rate_limit is not None:
        body["rate_limit_per_minute"] = args.rate_limit
    if args.canary:
        body["canary"] = True
    key, secret = await accounts.create_key(body, CLI)
    report(args, _view(accounts, key, secret),
           f"created key {key.id} ({key.name}) for tenant {key.tenant_id}\n"
           f"secret (shown once, store it now): {secret}")


async def keys_list(services: Services, args: argparse.Namespace) -> None:
    accounts = services.accounts
    keys: list[ApiKey] = []
    while True:  # every page, however many keys there are
        page, total = await accounts.store.list_keys(
            tenant_id=args.tenant, status=args.status, now=accounts.now(),
            page=len(keys) // _PAGE + 1, per_page=_PAGE, sort="-created_at",
        )
        keys.extend(page)
        if len(page) < _PAGE or len(keys) >= total:
            break
    views = [_view(accounts, k) for k in keys]
    await mark(_usage(services), views)
    report_list(args, views, key_columns(accounts), "no keys found")


async def keys_show(services: Services, args: argparse.Namespace) -> None:
    accounts = services.accounts
    view = _view(accounts, await accounts.key(args.key_id))
    await mark(_usage(services), [view])
    if output(args) == "json":
        print_json(view)
    else:
        print(describe_key(accounts, view))


async def keys_rotate(services: Services, args: argparse.Namespace) -> None:
    accounts = services.accounts
    key, secret = await accounts.rotate_key(args.key_id, CLI)
    report(args, _view(accounts, key, secret),
           f"rotated {args.key_id} -> {key.id}; the old secret no longer works\n"
           f"secret (shown once, store it now): {secret}")


async def keys_revoke(services: Services, args: argparse.Namespace) -> None:
    accounts = services.accounts
    key = await accounts.key(args.key_id)
    if key.revoked_at is not None:
        print(f"gateway: key {key.id} ({key.name}) is already revoked (since {iso(key.revoked_at)}); nothing changed",
              file=sys.stderr)
        if output(args) == "json":
            print_json(_view(accounts, key))
        return
    key = await accounts.revoke_key(args.key_id, CLI)
    report(args, _view(accounts, key), f"revoked {key.id} ({key.name}); it fails on its next request")


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


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    keys = sub.add_parser("keys", help="create, list, show, rotate and revoke API keys").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    p = keys.add_parser("create", parents=[common], help="create a key and print its secret once")
    p.add_argument("--tenant", required=True, help="the tenant's id")
    p.add_argument("--name", required=True, help="a name to know the key by (1-256 characters)")
    p.add_argument("--scope", default="read_write", choices=["read_only", "read_write", "custom"],
                   help="read_only (GET, HEAD, OPTIONS), read_write (default), or custom (with --permission)")
    p.add_argument("--environment", default="live", choices=["live", "test"],
                   help="live (default) or test (sent to the route's sandbox_upstream)")
    p.add_argument("--validity-days", type=int, metavar="DAYS",
                   help="days until it expires (default keys.default_validity_days, within the configured bounds)")
    p.add_argument("--expires-at", metavar="DATE_TIME",
                   help="when it stops working instead of --validity-days: an RFC 3339 date-time with a zone, "
                        "e.g. 2027-01-31T00:00:00Z (in the future, at most keys.max_validity_days ahead)")
    p.add_argument("--no-expiry", action="store_true", help="a key that never expires")
    p.add_argument("--permission", action="append", type=_permission, metavar="METHODS:PATH",
                   help="a permission of a custom scope, e.g. GET,POST:/api/v1/* (repeatable)")
    p.add_argument("--resource", action="append", type=_resource, metavar="NAME=VALUE[,VALUE]",
                   help="limit a route's {NAME} segment to these values (repeatable)")
    p.add_argument("--user", metavar="USER_ID", help="the tenant's user who owns the key (capped by their role)")
    p.add_argument("--rate-limit", type=int, metavar="PER_MINUTE", help="requests per minute, instead of the plan's")
    p.add_argument("--canary", action="store_true",
                   help="a key planted to be found: every use gets 401 and raises the alarm (key.canary_used)")
    p.set_defaults(action_fn=keys_create)
    p = keys.add_parser("list", parents=[common],
                        help="keys, newest first, with expiry, last use and the exposed and canary marks")
    p.add_argument("--tenant", help="only this tenant's keys")
    p.add_argument("--status", choices=["active", "expired", "revoked"], help="only keys in this state")
    p.set_defaults(action_fn=keys_list)
    for name, fn, text in (("show", keys_show, "one key in full (never its secret)"),
                           ("rotate", keys_rotate, "a new secret with the same settings; the old one stops at once"),
                           ("revoke", keys_revoke, "stop a key at once (a revoked key stays revoked)")):
        p = keys.add_parser(name, parents=[common], help=text)
        p.add_argument("key_id", help="the key's id (key_...)")
        p.set_defaults(action_fn=fn)
