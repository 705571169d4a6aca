"""`gateway tenants|users|keys ...`: bootstrap and scripting on the configured store.

They go through the same service as the admin API, built by the same code (`services.py`), so
the same rules apply and whatever the service does on a change happens here too. A gateway
already running on the same store sees a change within `store.cache_ttl`. Every change is in the
audit trail with the actor `cli`. `--json` prints what the admin API answers (lists as
`{"data", "meta"}`); tables are for people. Exit status: 0 done, 1 refused (not found, a rule, a
conflict), 2 usage or an unusable store.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

from gateway.accounts.actors import CLI
from gateway.accounts.service import Accounts
from gateway.accounts.views import people_views, plain, tenant_view
from gateway.cli_keys import add_parser as add_keys_parser
from gateway.cli_output import (
    Column,
    Row,
    ago,
    describe,
    output,
    print_json,
    report,
    report_list,
    switch,
    table,
)
from gateway.config import Config
from gateway.errors import GatewayError
from gateway.keystore.base import StoreError
from gateway.services import Services, open_services

Action = Callable[[Services, argparse.Namespace], Awaitable[Any]]
ROLES = ("owner", "admin", "member", "viewer")


def run_action(cfg: Config, args: argparse.Namespace, action: Action) -> int:
    async def go() -> int:
        async with AsyncExitStack() as stack:  # closing it flushes this command's audit entries
            services = await open_services(cfg, stack)
            await action(services, args)
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


def _flag(text: str) -> bool:
    if text.lower() in ("true", "yes", "on", "1"):
        return True
    if text.lower() in ("false", "no", "off", "0"):
        return False
    raise argparse.ArgumentTypeError("must be true or false")


def _changes(args: argparse.Namespace, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def _state(view: Row) -> str:
    return "disabled" if view["disabled"] else "active"


def tenant_columns(accounts: Accounts) -> list[Column]:
    now = accounts.now()
    return [
        Column("ID", lambda t: t["id"]),
        Column("NAME", lambda t: t["name"]),
        Column("PLAN", lambda t: t["plan"]),
        Column("LIMIT", lambda t: "-" if t["requests_per_minute"] is None else f"{t['requests_per_minute']}/min"),
        Column("KEYS", lambda t: f"{t['active_keys']}/{t['max_keys']}"),
        Column("STATUS", _state),
        Column("API", lambda t: switch(t["api_enabled"])),
        Column("WRITE", lambda t: switch(t["write_enabled"])),
        Column("CREATED", lambda t: ago(t["created_at"], now), wide=True),
    ]


def user_columns(accounts: Accounts) -> list[Column]:
    now = accounts.now()
    return [
        Column("ID", lambda u: u["id"]),
        Column("NAME", lambda u: u["name"]),
        Column("EMAIL", lambda u: u["email"] or "-"),
        Column("ROLE", lambda u: u["role"]),
        Column("STATUS", lambda u: u.get("status") or _state(u)),
        Column("TENANT", lambda u: u["tenant_id"], wide=True),
        Column("CREATED", lambda u: ago(u["created_at"], now), wide=True),
    ]


async def tenants_create(services: Services, args: argparse.Namespace) -> None:
    accounts = services.accounts
    body: dict[str, Any] = {"name": args.name, "plan": args.plan}
    if args.id:
        body["id"] = args.id
    tenant = await accounts.create_tenant(body, CLI)
    report(args, await tenant_view(accounts, tenant), f"created tenant {tenant.id} ({tenant.name}, plan {tenant.plan})")


async def tenants_list(services: Services, args: argparse.Namespace) -> None:
    accounts = services.accounts
    tenants, total = await accounts.store.list_tenants(page=1, per_page=1, sort="created_at")
    tenants, _ = await accounts.store.list_tenants(page=1, per_page=max(1, total), sort="created_at")
    views = [await tenant_view(accounts, t) for t in tenants]
    report_list(args, views, tenant_columns(accounts), "no tenants found")


async def tenants_show(services: Services, args: argparse.Namespace) -> None:
    accounts = services.accounts
    view = await tenant_view(accounts, await accounts.tenant(args.tenant_id), users=True)
    if output(args) == "json":
        print_json(view)
        return
    limit = view["requests_per_minute"]
    print(describe([
        ("ID", view["id"]), ("Name", view["name"]), ("Plan", view["plan"]),
        ("Rate limit", "-" if limit is None else f"{limit} requests/minute"),
        ("Active keys", f"{view['active_keys']} of {view['max_keys']}"), ("Status", _state(view)),
        ("API access", switch(view["api_enabled"])), ("Write access", switch(view["write_enabled"])),
        ("Created", view["created_at"]), ("Updated", view["updated_at"]),
        ("Users", str(len(view["users"])) if view["users"] else "none"),
    ]))
    if view["users"]:
        print()
        print(table(view["users"], user_columns(accounts), wide=output(args) == "wide"))


async def tenants_update(services: Services, args: argparse.Namespace) -> None:
    accounts = services.accounts
    body = _changes(args, ("name", "plan", "disabled", "api_enabled", "write_enabled"))
    tenant = await accounts.update_tenant(args.tenant_id, body, CLI)
    report(args, await tenant_view(accounts, tenant, users=True),
           f"updated tenant {tenant.id}: plan {tenant.plan}, {'disabled' if tenant.disabled else 'active'}, "
           f"API access {switch(tenant.api_enabled)}, write access {switch(tenant.write_enabled)}")


async def users_create(services: Services, args: argparse.Namespace) -> None:
    accounts = services.accounts
    body: dict[str, Any] = {"name": args.name, "role": args.role}
    if args.email:
        body["email"] = args.email
    user = await accounts.create_user(args.tenant, body, CLI)
    report(args, plain(user), f"created user {user.id} ({user.name}, {user.role}) in tenant {user.tenant_id}")


async def users_list(services: Services, args: argparse.Namespace) -> None:
    accounts = services.accounts
    tenant = await accounts.tenant(args.tenant)
    report_list(args, await people_views(accounts, tenant.id), user_columns(accounts), f"tenant {tenant.id} has no users")


async def users_update(services: Services, args: argparse.Namespace) -> None:
    accounts = services.accounts
    user = await accounts.update_user(args.user_id, _changes(args, ("name", "role", "disabled")), CLI)
    report(args, plain(user), f"updated user {user.id}: {user.role}, {'disabled' if user.disabled else 'active'}")


async def invitations_create(services: Services, args: argparse.Namespace) -> None:
    """An invitation to the tenant portal (a tenant's first owner, typically): the URL once, and
    by mail too when `portal.smtp` is set (sent before the command exits)."""
    from gateway.portal import server as portal_server  # the portal's parts only for this command

    async with AsyncExitStack() as stack:
        mail = portal_server.mailer(services.accounts.cfg)
        if mail is not None:
            stack.push_async_callback(mail.close)
        people = portal_server.people(services.accounts.cfg, services.accounts, mail=mail)
        body: dict[str, Any] = {"email": args.email, "role": args.role}
        if args.name:
            body["name"] = args.name
        user, url = await people.invite(args.tenant, body, CLI)
    report(args, {**plain(user), "status": "invited", "invitation_url": url},
           f"invited {user.email} as {user.role} of tenant {user.tenant_id} (user {user.id})\n"
           f"invitation URL (shown once, single use, valid 72 hours):\n{url}")
    if not services.accounts.cfg.portal.enabled:
        # The link is good, but nothing serves it yet: say so rather than let it 404 in a browser.
        print("gateway: note: the portal is off in this config (portal.enabled: false): the link "
              "works once it is on and the gateway restarted (README: Tenant portal)", file=sys.stderr)


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """`tenants`, `users` and `keys`; `common` brings --config and the output options."""
    tenants = sub.add_parser("tenants", help="create, list, show and update tenants").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    p = tenants.add_parser("create", parents=[common], help="create a tenant on a plan of the config")
    p.add_argument("--name", required=True, help="display name")
    p.add_argument("--plan", required=True, help="a plan named under plans: in the config")
    p.add_argument("--id", help="the tenant's id (default: generated, ten_...)")
    p.set_defaults(action_fn=tenants_create)
    p = tenants.add_parser("list", parents=[common], help="every tenant, oldest first")
    p.set_defaults(action_fn=tenants_list)
    p = tenants.add_parser("show", parents=[common], help="one tenant, with its limit, key count and users")
    p.add_argument("tenant_id", help="the tenant's id")
    p.set_defaults(action_fn=tenants_show)
    p = tenants.add_parser("update", parents=[common], help="rename, change plan, disable, or set the gates")
    p.add_argument("tenant_id", help="the tenant's id")
    p.add_argument("--name", help="new display name")
    p.add_argument("--plan", help="new plan (a plan named in the config)")
    p.add_argument("--disabled", type=_flag, metavar="true|false", help="a disabled tenant's keys stop working")
    p.add_argument("--api-enabled", type=_flag, metavar="true|false", help="may the tenant's keys be used at all")
    p.add_argument("--write-enabled", type=_flag, metavar="true|false", help="may they use write methods")
    p.set_defaults(action_fn=tenants_update)

    users = sub.add_parser("users", help="create, list and update a tenant's users").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    p = users.add_parser("create", parents=[common], help="add a user to a tenant")
    p.add_argument("--tenant", required=True, help="the tenant's id")
    p.add_argument("--name", required=True, help="the person's name")
    p.add_argument("--email", help="their email address (their portal sign-in)")
    p.add_argument("--role", required=True, choices=ROLES, help="what their keys may do (owner, admin, member: "
                   "read_write; viewer: read_only)")
    p.set_defaults(action_fn=users_create)
    p = users.add_parser("list", parents=[common], help="a tenant's users")
    p.add_argument("--tenant", required=True, help="the tenant's id")
    p.set_defaults(action_fn=users_list)
    p = users.add_parser("update", parents=[common], help="change role, name, or disable (ends their sessions)")
    p.add_argument("user_id", help="the user's id")
    p.add_argument("--name", help="new name")
    p.add_argument("--role", choices=ROLES, help="new role (caps their keys at once)")
    p.add_argument("--disabled", type=_flag, metavar="true|false", help="a disabled user's keys stop working")
    p.set_defaults(action_fn=users_update)

    invitations = sub.add_parser("invitations", help="invite people to the tenant portal").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    p = invitations.add_parser("create", parents=[common], help="invite someone (a tenant's first owner) to the "
                               "tenant portal: prints the invitation URL once")
    p.add_argument("--tenant", required=True, help="the tenant's id")
    p.add_argument("--email", required=True, help="their email address (their portal sign-in)")
    p.add_argument("--role", default="owner", choices=ROLES, help="their role in the portal (default: owner)")
    p.add_argument("--name", help="their name (default: from the email)")
    p.set_defaults(action_fn=invitations_create)

    add_keys_parser(sub, common)
