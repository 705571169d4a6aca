"""The admin API's JSON for tenants and lists, shared with the CLI's `--json` so both answer alike.

(A key's JSON is `service.key_view`, a user's `service.plain`.)
"""

from __future__ import annotations

import math
from typing import Any

from gateway.accounts.service import Accounts, plain
from gateway.keystore.models import Tenant


def listing(data: list[Any], total: int, page: int, per_page: int) -> dict[str, Any]:
    """A page of a list: `{"data": [...], "meta": {"total", "page", "per_page", "total_pages"}}`."""
    return {
        "data": data,
        "meta": {
            "total": total,
            "page": page,
            "per_page": per_page,
            "total_pages": max(1, math.ceil(total / per_page)),
        },
    }


def whole_listing(data: list[Any]) -> dict[str, Any]:
    """Every item as one page (the CLI lists everything; a tenant's users fit on one page)."""
    return listing(data, len(data), 1, max(1, len(data)))


async def tenant_view(accounts: Accounts, tenant: Tenant, *, users: bool = False) -> dict[str, Any]:
    """A tenant with its plan's limit and key count (and its users, for one tenant)."""
    view = dict(plain(tenant))
    view["requests_per_minute"] = accounts.plan_limit(tenant)
    view["active_keys"] = await accounts.store.count_active_keys(tenant.id, accounts.now())
    view["max_keys"] = accounts.cfg.keys.max_per_tenant
    if users:
        view["users"] = [plain(u) for u in await accounts.store.list_users(tenant.id)]
    return view
