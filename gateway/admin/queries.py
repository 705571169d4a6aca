"""The admin API's query parameters, declared once: they validate each list request and are the
parameters of the OpenAPI document (with their enums, bounds and patterns), so the two agree.

A query value is text; an integer parameter takes digits alone (`5`, never `5.0` or ` 5`).
An unknown parameter is a 422 naming it (a misspelt filter would otherwise list everything). A
broken value is a 422 naming the parameter; a cursor that this gateway did not make is a 400, as
a malformed request.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticError

from gateway.config.fields import Invalid, Rule
from gateway.errors import ValidationError
from gateway.observability.records import CURSOR_PATTERN, decode_cursor
from gateway.observability.usage_query import TIME_PATTERN, TIME_RULE, parse_time

_DIGITS = re.compile(r"-?[0-9]{1,18}")


def _integer(lo: int, hi: int) -> Rule:
    def check(value: Any) -> int:
        if not isinstance(value, str) or not _DIGITS.fullmatch(value) or not lo <= int(value) <= hi:
            raise Invalid()
        return int(value)
    return Rule(f"must be an integer from {lo} to {hi}", {"ge": lo, "le": hi}, check=check, native=False)


def _cursor(value: Any) -> str:
    decode_cursor(value)  # a 400 for a cursor this gateway did not make
    return str(value)


Page = Annotated[int, _integer(1, 1_000_000)]
PerPage = Annotated[int, _integer(1, 100)]
Limit = Annotated[int, _integer(1, 1000)]
Cursor = Annotated[str, Rule("must be a cursor from next_cursor", {"pattern": CURSOR_PATTERN},
                             check=_cursor, native=False)]
Order = Annotated[Literal["asc", "desc"], Rule("must be asc or desc")]
# no control characters: no id or action has one, and PostgreSQL cannot be asked about a NUL (a 503)
_TEXT = "^[^\x00-\x1f\x7f]*$"
Id = Annotated[str, Rule("must be an id of at most 128 characters", {"max_length": 128, "pattern": _TEXT})]

TenantSort = Literal["id", "-id", "name", "-name", "plan", "-plan", "created_at", "-created_at"]
KeySort = Literal[
    "name", "-name", "created_at", "-created_at", "last_used_at", "-last_used_at", "expires_at", "-expires_at",
    "status", "-status", "scope", "-scope", "environment", "-environment", "tenant_id", "-tenant_id",
    "last4", "-last4",
]


class Query(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class Paging(Query):
    page: Page = 1
    """Page number, from 1."""
    per_page: PerPage = 25
    """Items per page."""


class TenantList(Paging):
    sort: Annotated[TenantSort, Rule("must be one of id, name, plan, created_at (prefix - for descending)")] = "created_at"
    """Field to sort by; `-field` for descending."""


class KeyList(Paging):
    sort: Annotated[KeySort, Rule("must be one of name, created_at, last_used_at, expires_at, status, scope, "
                                  "environment, tenant_id, last4 (prefix - for descending)")] = "-created_at"
    """Field to sort by; `-field` for descending."""
    tenant_id: Id | None = None
    """Only this tenant's keys."""
    status: Annotated[Literal["active", "expired", "revoked"], Rule("must be one of active, expired, revoked")] | None = None
    """Only keys in this state."""


class Revoke(Query):
    wait: Annotated[Literal["true", "false"], Rule("must be true or false")] = "false"
    """true: answer once every other instance has dropped the key (at most 5 s)."""


class RecordPage(Query):
    after: Cursor = ""
    """Entries after this cursor (`next_cursor` of the previous page); empty: from the start."""
    limit: Limit = 100
    """Entries per page."""
    order: Order = "asc"
    """desc: newest first, before the cursor (the console's paging)."""
    tenant_id: Id | None = None
    """Only this tenant's entries."""


class AuditPage(RecordPage):
    action: Annotated[str, Rule("must be an action such as key.created, of at most 64 characters",
                                {"max_length": 64, "pattern": _TEXT})] | None = None
    """Only entries of this action (`key.created`, `tenant.updated`, ...)."""


class CallPage(RecordPage):
    key_id: Id | None = None
    """Only this key's calls."""
    status: Annotated[int, _integer(100, 599)] | None = None
    """Only calls answered with this HTTP status."""


def _time(value: Any) -> float:
    if not isinstance(value, str):
        raise Invalid()
    try:
        return parse_time(value)
    except ValueError:
        raise Invalid() from None


UsageTime = Annotated[float, Rule(TIME_RULE, check=_time, native=False, json={"type": "string", "pattern": TIME_PATTERN})]


class Usage(Query):
    """`GET /admin/usage` (and the portal's `/api/usage`, whose tenant is the caller's). The rules
    between the parameters are usage_query.plan_query's."""

    tenant_id: Id = ""
    """The tenant's usage (its keys' together); with `key_id`, the key must be this tenant's."""
    key_id: Id = ""
    """One key's usage. One of tenant_id and key_id is required."""
    granularity: Annotated[Literal["minute", "hour", "day"], Rule("must be minute, hour or day")] = "hour"
    """Bucket size."""
    from_: UsageTime | None = Field(None, alias="from")
    """Start (RFC 3339 with a zone, or Unix seconds), rounded down to the granularity; default: `to`
    less an hour (minute), a day (hour) or 30 days (day)."""
    to: UsageTime | None = None
    """End, exclusive, rounded up to the granularity; default: now. At most 3000 buckets."""


class WebhookList(Paging):
    tenant_id: Id | None = None
    """Only endpoints of this tenant."""


class DeliveryLog(Query):
    after: Cursor = ""
    """Deliveries after this cursor (`next_cursor` of the previous page); empty: from the first."""
    limit: Limit = 100
    """Deliveries per page."""
    order: Order = "asc"
    """desc: newest first, before the cursor (the console's paging)."""


Q = TypeVar("Q", bound=Query)


def read_query(model: type[Q], query: Mapping[str, str], only: tuple[str, ...] | None = None) -> Q:
    """The query as `model`, or a 422 naming each broken parameter (a foreign cursor: 400).
    `only`: the parameters of the model a reader takes (the portal's, whose tenant is the caller's);
    any other one is unknown, as a name the model does not have."""
    known = ", ".join(only if only is not None else (f.alias or name for name, f in model.model_fields.items()))
    if only is not None:
        unknown = [{"field": k, "issue": f"unknown parameter (known: {known})"} for k in dict.fromkeys(query) if k not in only]
        if unknown:
            raise ValidationError(details=unknown)
    try:
        return model.model_validate({k: query[k] for k in query})
    except PydanticError as err:
        details = [{"field": ".".join(str(p) for p in e["loc"]),
                    "issue": f"unknown parameter (known: {known})" if e["type"] == "extra_forbidden" else e["msg"]}
                   for e in err.errors(include_url=False)]
        raise ValidationError(details=details) from None
