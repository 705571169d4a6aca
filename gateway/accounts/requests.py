"""The shapes of tenant, user and key requests, declared once: they validate every request (admin
API and CLI alike) and are the request bodies of the admin OpenAPI document.

Each rule a schema can state is stated here (lengths, patterns, enums), so the document is exact;
the rules that depend on the configuration (plan names, validity days) or on stored state (the
tenant exists, its key count) are checked in `rules.py` / the service, and the document gets the
configured values when it is served. A refusal is one 422 naming every broken field.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic import ValidationError as PydanticError
from pydantic.config import JsonDict
from pydantic.json_schema import WithJsonSchema
from pydantic_core import PydanticCustomError

from gateway.config.fields import Invalid, Rule
from gateway.errors import ValidationError

# Characters refused in names, as a pattern class that Python and Rust regexes (and so the
# document and its fuzzers) read alike: what str.isprintable() refuses in the BMP (controls,
# format and bidi controls, separators other than the space, surrogates, private use).
# Unassigned code points and those beyond the BMP are allowed (emoji among them): the one range
# that would also refuse the tags and private-use planes made schemathesis ten times slower.
NOT_PRINTABLE = (
    "\x00-\x1f\x7f-\xa0\xad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u1680\u180e\u2000-\u200f"
    "\u2028-\u202f\u205f-\u2064\u2066-\u206f\u3000\ue000-\uf8ff\ufeff\ufff9-\ufffb"
)
FORBIDDEN_NAME_CHARS = '\\/[]"!@#$%^&()={};'
ROLES = ("owner", "admin", "member", "viewer")
SCOPES = ("read_only", "read_write", "custom")
ENVIRONMENTS = ("live", "test")
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "*")


def _text(limit: int) -> Rule:
    return Rule(f"must be a string of 1 to {limit} printable characters",
                {"strict": True, "min_length": 1, "max_length": limit, "pattern": f"^[^{NOT_PRINTABLE}]*$"})


def _trimmed(value: str) -> str:
    """Names are stored without their outer spaces (the only whitespace the patterns let in)."""
    trimmed = value.strip(" ")
    if not trimmed:
        raise Invalid()
    return trimmed


def name_rule(problem: str, limit: int, refused: str) -> Rule:
    """A name of 1 to `limit` characters, none of the class `refused`, with one that is not a space
    (a name of spaces alone names nothing), stored trimmed."""
    return Rule(problem, {"strict": True, "min_length": 1, "max_length": limit,
                          "pattern": f"^[^{refused}]*[^ {refused}][^{refused}]*$"}, check=_trimmed)


def _one_of(*options: str) -> Rule:
    return Rule("must be one of " + ", ".join(options))


def _any_case(word: str) -> str:
    return "".join(f"[{c}{c.lower()}]" if c.isalpha() else re.escape(c) for c in word)


Text = Annotated[str, name_rule("must be a string of 1 to 256 printable characters, not only spaces", 256,
                                 NOT_PRINTABLE)]
Id = Annotated[str, _text(64)]
Flag = Annotated[bool, Rule("must be true or false", {"strict": True})]
Role = Annotated[Literal["owner", "admin", "member", "viewer"], _one_of(*ROLES)]
KeyName = Annotated[str, name_rule(
    "must be 1 to 256 characters, not only spaces, none of " + " ".join(FORBIDDEN_NAME_CHARS)
    + " and no control characters", 256, re.sub(r"([\\\[\]^-])", r"\\\1", FORBIDDEN_NAME_CHARS) + NOT_PRINTABLE)]
TenantId = Annotated[str, Rule(
    "must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit",
    {"strict": True, "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"})]
PlanName = Annotated[str, Rule("must be the name of a configured plan", {"strict": True, "min_length": 1})]
Email = Annotated[str, Rule("must be an email address", {
    "strict": True, "max_length": 320,
    "pattern": f"^[^@\\s{NOT_PRINTABLE}]+@[^@\\s{NOT_PRINTABLE}]+$"})]
Method = Annotated[str, Rule("must be an HTTP method", {
    "strict": True, "pattern": "^(?:" + "|".join(_any_case(m) for m in METHODS) + ")$"})]
PermissionPath = Annotated[str, Rule("must be a path starting with /, optionally ending in /*", {
    "strict": True, "max_length": 1024, "pattern": f"^/[^{NOT_PRINTABLE}]*$"})]
# printable, as a route segment is (a NUL or a lone surrogate could match none, and PostgreSQL's
# JSON refuses both: a 503 before)
ResourceValue = Annotated[str, _text(256)]
def _whole(value: Any) -> Any:
    """A JSON integer: `5` or `5.0` (JSON Schema's integer), never `true` or `"5"`."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid()
    return value


def _integer(lo: int, hi: int, problem: str) -> Rule:
    def check(value: Any) -> int:
        number = _whole(value)
        if not lo <= number <= hi:
            raise Invalid()
        return int(number)
    return Rule(problem, {"ge": lo, "le": hi}, check=check, native=False)


RateLimit = Annotated[int, _integer(1, 10_000_000, "must be a positive integer or null")]
ValidityDays = Annotated[int, _integer(1, 36500, "must be an integer from 1 to 36500, or null for a key that never expires")]


# RFC 3339 with a zone (`Z` or an offset; JSON Schema's `date-time`): a date without a zone would
# mean whatever the server's clock zone is.
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})")


def _date_time(value: Any) -> dt.datetime | None:
    if value is None:
        return None  # refused where it matters (rules.key_spec), so that it is not read as "never"
    if not isinstance(value, str) or not _DATE_TIME.fullmatch(value):
        raise Invalid()
    text = re.sub(r"(\.\d{6})\d+", r"\1", value.upper().replace(" ", "T")).replace("Z", "+00:00")
    try:
        return dt.datetime.fromisoformat(text).astimezone(dt.UTC)
    except (ValueError, OverflowError):
        raise Invalid() from None


_DATE_TIME_RULE = "must be an RFC 3339 date-time with a zone, such as 2027-01-31T00:00:00Z"
DateTime = Annotated[dt.datetime | None, Rule(_DATE_TIME_RULE, check=_date_time, native=False),
                     WithJsonSchema({"type": "string", "format": "date-time", "x-rule": _DATE_TIME_RULE})]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


def _configured(info: ValidationInfo, name: str) -> Any:
    """A configured value passed as validation context (plans, key validity bounds)."""
    return (info.context or {}).get(name)


def _plan(value: str | None, info: ValidationInfo) -> str | None:
    plans = _configured(info, "plans")
    if value is not None and plans is not None and value not in plans:
        raise PydanticCustomError("config", "must be one of " + ", ".join(plans))
    return value


class TenantInput(Request):
    """A new tenant."""

    id: TenantId | None = None
    """Chosen id; absent: one is generated (`ten_...`)."""
    name: Text
    plan: PlanName
    """One of the configured plans."""
    api_enabled: Flag | None = None
    """Whether the tenant's keys work (absent: `tenants.api_enabled_default`)."""
    write_enabled: Flag | None = None
    """Whether the tenant may have keys that write (absent: `tenants.write_enabled_default`)."""

    _plan = field_validator("plan")(_plan)


class TenantPatch(Request):
    """What changes on a tenant (absent: unchanged)."""

    name: Text | None = None
    plan: PlanName | None = None
    """One of the configured plans."""
    disabled: Flag | None = None
    api_enabled: Flag | None = None
    write_enabled: Flag | None = None

    _plan = field_validator("plan")(_plan)


class UserInput(Request):
    """A new user of a tenant."""

    name: Text
    email: Email | None = None
    role: Role


class InvitationInput(Request):
    """Someone invited to the tenant portal: a user of the tenant who sets a password through the
    answer's `invitation_url` (shown once, single use, valid 72 hours)."""

    email: Email
    name: Text | None = None
    role: Role


class UserPatch(Request):
    """What changes on a user (absent: unchanged)."""

    role: Role | None = None
    disabled: Flag | None = None
    name: Text | None = None


class PermissionInput(Request):
    """A method and path a `custom` key may use; `path` may end in `/*` (everything below)."""

    methods: Annotated[list[Method], Rule("must be a non-empty list of HTTP methods", {"min_length": 1})]
    path: PermissionPath


# `custom` takes one permission or more, the other scopes none: as JSON schema, for the document.
# `validity_days` and `expires_at` are two ways to say the same thing: one of them, or neither.
_SCOPE_RULE: JsonDict = {"allOf": [{
    "if": {"properties": {"scope": {"const": "custom"}}, "required": ["scope"]},
    "then": {"properties": {"permissions": {"type": "array", "minItems": 1}}, "required": ["permissions"]},
    "else": {"properties": {"permissions": {"anyOf": [{"type": "null"}, {"type": "array", "maxItems": 0}]}}},
}, {"not": {"required": ["validity_days", "expires_at"]}}]}


def _key_schema(schema: JsonDict) -> None:
    schema.update(_SCOPE_RULE)
    properties = schema["properties"]
    assert isinstance(properties, dict)
    expires_at = properties["expires_at"]
    assert isinstance(expires_at, dict)
    expires_at.pop("default")  # absent, never null: a null default would break the document


class KeyInput(Request):
    """A new key. `validity_days` is bounded by `keys.min_validity_days` and `keys.max_validity_days`."""

    model_config = ConfigDict(json_schema_extra=lambda schema: _key_schema(schema))

    tenant_id: Id
    name: KeyName
    scope: Annotated[Literal["read_only", "read_write", "custom"], _one_of(*SCOPES)]
    """`custom` takes `permissions` (at least one); the others take none."""
    permissions: list[PermissionInput] | None = Field(None, validate_default=True)
    validity_days: ValidityDays | None = None
    """Absent: `keys.default_validity_days`; null: the key never expires. Not with `expires_at`."""
    expires_at: DateTime = None
    """When the key stops working, instead of `validity_days`: in the future and at most
    `keys.max_validity_days` ahead (`min_validity_days` does not apply to an explicit date). The
    key's `expires_at` is this instant in UTC. Not with `validity_days`."""
    environment: Annotated[Literal["live", "test"], _one_of(*ENVIRONMENTS)] = "live"
    resources: dict[str, Annotated[list[ResourceValue], Rule("must be a non-empty list of strings",
                                                             {"min_length": 1})]] | None = None
    """Route parameter -> the values this key may use in it (`{"location": ["loc_001"]}`)."""
    user_id: Id | None = None
    """The tenant's user who owns the key (it never allows more than their role)."""
    rate_limit_per_minute: RateLimit | None = None
    """A cap below the tenant's plan."""
    canary: Flag = False
    """A key planted to be found (in a repository, a config file, a honeypot): every request with
    it gets the 401 of an unknown key, and raises the alarm (`key.canary_used`)."""

    @field_validator("permissions")
    @classmethod
    def _permissions_fit_scope(cls, value: list[PermissionInput] | None, info: ValidationInfo) -> Any:
        scope = info.data.get("scope")
        if scope == "custom" and not value:
            raise PydanticCustomError("config", "a custom scope needs at least one permission")
        if scope in ("read_only", "read_write") and value:
            raise PydanticCustomError("config", "only a custom scope takes permissions")
        return value

    @field_validator("validity_days")
    @classmethod
    def _validity_in_configured_range(cls, value: int | None, info: ValidationInfo) -> int | None:
        bounds = _configured(info, "validity_days")
        if value is not None and bounds is not None and not bounds[0] <= value <= bounds[1]:
            raise PydanticCustomError("config", f"must be an integer from {bounds[0]} to {bounds[1]}, "
                                      "or null for a key that never expires")
        return value


_ISSUES = {
    "missing": "is required",
    "extra_forbidden": "unknown field",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "list_type": "must be a list",
    "dict_type": "must be an object",
    "string_unicode": "must be valid text",
}
M = TypeVar("M", bound=Request)


def _details(err: PydanticError) -> list[dict[str, str]]:
    details = []
    for e in err.errors(include_url=False):
        field = ""
        for part in e["loc"]:
            field += f"[{part}]" if isinstance(part, int) else (f".{part}" if field else str(part))
        issue = e["msg"] if e["type"] == "config" else _ISSUES.get(e["type"], e["msg"])
        details.append({"field": field, "issue": issue})
    return details


def parse(model: type[M], body: Any, **configured: Any) -> M:
    """The request as `model`, or one 422 whose `details` name every broken field.

    `configured`: the values some rules read from the configuration (`plans`, `validity_days`).
    """
    try:
        return model.model_validate(body, context=configured)
    except PydanticError as err:
        raise ValidationError(details=_details(err)) from None
