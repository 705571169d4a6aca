"""`docs/portal-api.md`: every route of the tenant portal's API, from its route tables."""

from __future__ import annotations

from gateway.config.portal import PortalConfig
from gateway.portal.app import TABLES, api_prefix
from gateway.portal.authz import capabilities
from gateway.reference.markdown import GENERATED, code, first_line, table

ROLES = ("owner", "admin", "member", "viewer")


def routes() -> list[tuple[str, str, str, str]]:
    """(method, path below the API's prefix, who may call it, what it does) of each endpoint."""
    found = []
    for table_ in TABLES:
        for endpoint in table_.all:
            if endpoint.needs == "public":
                who = "anyone (no session)"
            else:
                who = ", ".join(r for r in ROLES if endpoint.needs in capabilities(r))
            what = first_line(endpoint.handler.__doc__) or endpoint.handler.__name__.replace("_", " ")
            found.append((endpoint.method, endpoint.path, who, what))
    return found


def render() -> str:
    prefix = api_prefix(PortalConfig().path)
    rows = [(method, code(prefix + path), who, what) for method, path, who, what in routes()]
    lines = [
        "# Tenant portal API",
        "",
        GENERATED,
        "",
        "With `portal.enabled: true` the portal is served on the proxy listener (HTTPS) under",
        f"`portal.path` (default `{prefix.removesuffix('/api')}`): its page at `<portal.path>/` and this JSON API at",
        "`<portal.path>/api`. A session is a cookie set by `POST /api/session`; every state-changing call",
        "needs the session's CSRF token in `X-CSRF-Token` (from `GET /api/me`) and a same-origin `Origin`.",
        "Everything is scoped to the caller's tenant: another tenant's object is a 404, as one that does",
        "not exist. Refusals are the contract's JSON errors ([errors.md](errors.md)); a role that may not",
        "do something gets 403 `INSUFFICIENT_SCOPE`. Request and answer shapes are the admin API's",
        "([admin-api.md](admin-api.md)) for the same objects, without what is the portal's to set",
        "(`tenant_id`, a key's owner). A query parameter an operation does not take (every one of an",
        "operation that takes none) is a 422 `VALIDATION_ERROR` naming it, as on the admin API.",
        "",
        *table(("method", "path", "roles allowed", "what it does"), rows),
        "",
    ]
    return "\n".join(lines)
