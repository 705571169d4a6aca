"""The kinds of config value: each one check, one problem message and one JSON-schema shape.

A section field is declared as `Annotated[int, Int(0, 65535)]`: pydantic checks the type and the
bounds (strictly: `true` is no integer), and any failure becomes this rule's one message
(`must be an integer between 0 and 65535`), which also documents the field (`x-rule` in the
JSON schema that `docs.py` renders). A value that was one `${NAME}` is read as the field's type;
an `Unresolved` one (an unset variable, check-config only) becomes the rule's placeholder.
"""

from __future__ import annotations

import ipaddress
import re
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, GetCoreSchemaHandler, GetJsonSchemaHandler, ValidationError
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

from gateway.config.env import FromEnv, Unresolved
from gateway.credentials.scanner_signatures import load_p256_public_key

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Invalid(ValueError):
    """Raised by a rule's `check` with the problem's message (or empty: the rule's own)."""


@dataclass(frozen=True, eq=False)
class Rule:
    """A field's check, placed in `Annotated[...]` after the type."""

    problem: str
    constraints: dict[str, Any] = field(default_factory=dict)
    from_env: Callable[[str], Any] = str
    check: Callable[[Any], Any] | None = None
    placeholder: Any = None
    json: dict[str, Any] = field(default_factory=dict)
    native: bool = True   # False: `check` alone reads the value (types pydantic reads otherwise)

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        inner = handler.generate_schema(Annotated[source, Field(**self.constraints)]) if self.constraints else handler(source)
        return core_schema.no_info_wrap_validator_function(self._validate, inner)

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        shape = handler(schema)
        return {**shape, **self.json, "x-rule": self.problem}

    def _validate(self, value: Any, handler: core_schema.ValidatorFunctionWrapHandler) -> Any:
        if isinstance(value, Unresolved):
            return str(value) if self.placeholder is None else self.placeholder
        if isinstance(value, FromEnv):
            value = self.from_env(value)
        if self.native:
            try:
                value = handler(value)
            except ValidationError:
                raise PydanticCustomError("config", self.problem) from None
        if self.check is not None:
            try:
                value = self.check(value)
            except Invalid as exc:
                raise PydanticCustomError("config", str(exc) or self.problem) from None
        return value


_INT = re.compile(r"[+-]?\d{1,18}")
_FLOAT = re.compile(r"[+-]?(\d{1,18}(\.\d{0,18})?|\.\d{1,18})")


def _env_int(text: str) -> Any:
    return int(text) if _INT.fullmatch(text) else text


def _env_float(text: str) -> Any:
    return float(text) if _FLOAT.fullmatch(text) else text


def _env_bool(text: str) -> Any:
    return {"true": True, "false": False}.get(text.lower(), text)


def Int(lo: int = 0, hi: int = 2**62) -> Rule:
    return Rule(f"must be an integer between {lo} and {hi}", {"strict": True, "ge": lo, "le": hi},
                from_env=_env_int, placeholder=lo)


def Number(lo: float = 0.0, hi: float = 1e9, *, open_lo: bool = True) -> Rule:
    bound = {"gt": lo} if open_lo else {"ge": lo}
    return Rule(f"must be a number {'>' if open_lo else '>='} {lo:g} and <= {hi:g}",
                {"strict": True, "allow_inf_nan": False, **bound, "le": hi},
                from_env=_env_float, check=float, placeholder=float(hi if open_lo else lo))


BOOL = Rule("must be true or false", {"strict": True}, from_env=_env_bool, placeholder=False)
TEXT = Rule("must be a non-empty string", {"strict": True, "min_length": 1})


def Pattern(pattern: str, problem: str) -> Rule:
    """A text matching `pattern` whole (written for both Python and JSON-schema regexes)."""
    return Rule(problem, {"strict": True, "pattern": f"^(?:{pattern})$"})


def OneOf(*options: str) -> Rule:
    return Rule("must be one of " + ", ".join(options), placeholder=options[0])


def _http_url(value: str) -> str:
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises on a bad port
    except ValueError:
        raise Invalid() from None
    if not (parts.scheme in ("http", "https") and parts.hostname and not parts.query and not parts.fragment
            and "@" not in parts.netloc and "?" not in value and "#" not in value):
        raise Invalid()
    return value


HTTP_URL = Rule("must be an http(s) URL without query or fragment", {"strict": True}, check=_http_url,
                placeholder="http://unresolved.invalid", json={"format": "uri"})


def _starts(*prefixes: str, min_length: int = 0) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not value.startswith(prefixes) or len(value) < min_length:
            raise Invalid()
        return value
    return check


REDIS_URL = Rule("must be a redis:// URL", {"strict": True}, check=_starts("redis://", "rediss://", "unix://"),
                 placeholder="redis://unresolved.invalid", json={"format": "uri"})


def _store_url(value: str) -> str:
    if value.startswith("sqlite:///") and len(value) > len("sqlite:///") or value.startswith(("postgresql://", "postgres://")):
        return value
    raise Invalid()


STORE_URL = Rule("must be sqlite:///PATH or postgresql://...", {"strict": True}, check=_store_url,
                 placeholder="postgresql://unresolved.invalid/", json={"format": "uri"})


def _network(value: Any) -> Network:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise Invalid()
    try:
        return ipaddress.ip_network(str(value), strict=False)
    except ValueError:
        raise Invalid() from None


NETWORK = Rule("not an IP network", check=_network, native=False, placeholder=ipaddress.ip_network("0.0.0.0/32"),
               json={"type": "string", "format": "cidr"})


def List(problem: str, *, placeholder: Any = ()) -> Rule:
    """A list refused whole with `problem` when it is no list; its items report their own paths."""
    return _Shape(problem, placeholder=placeholder)


def Table(problem: str) -> Rule:
    """A non-empty mapping (text keys) refused whole when it is not one; its values report their own paths."""
    return _Shape(problem, kind=dict, check=lambda v: types.MappingProxyType(dict(v)), json={"minProperties": 1})


@dataclass(frozen=True, eq=False)
class _Shape(Rule):
    kind: type = list

    def _validate(self, value: Any, handler: core_schema.ValidatorFunctionWrapHandler) -> Any:
        if isinstance(value, Unresolved):
            return self.placeholder
        if self.kind is dict:
            if not isinstance(value, dict) or not value:
                raise PydanticCustomError("config", self.problem)
            value = {str(k): v for k, v in value.items()}
        elif not isinstance(value, (list, tuple)):
            raise PydanticCustomError("config", self.problem)
        value = handler(value)
        return value if self.check is None else self.check(value)


def unique_upper(methods: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(m.upper() for m in methods))


def unique(items: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_BAD_ROUTE_PATH = ("must start with /, be ASCII without %-escapes, have no empty, '.' or '..' segments, "
                   "no ? or #, and {param} segments with distinct identifier names")


def _route_path(path: str) -> str:
    if not path.startswith("/") or "?" in path or "#" in path or "//" in path:
        raise Invalid()
    if not path.isascii() or "%" in path:  # requests are matched normalised: `~`, never `%7E`
        raise Invalid()
    if path == "/":
        return path
    segments = path.strip("/").split("/") if path.endswith("/") else path[1:].split("/")
    names = []
    for segment in segments:
        if segment in ("", ".", "..") or not segment.isprintable() or " " in segment:
            raise Invalid()
        if "{" in segment or "}" in segment:
            m = _PARAM.fullmatch(segment)
            if m is None:
                raise Invalid()
            names.append(m.group(1))
    if len(names) != len(set(names)):
        raise Invalid()
    return path


def route_shape(path: str) -> str:
    """The path with every `{param}` as `{}`: two routes of one shape match the same requests."""
    return "/" + "/".join("{}" if _PARAM.fullmatch(s) else s for s in path.split("/") if s)


ROUTE_PATH = Rule(_BAD_ROUTE_PATH, {"strict": True, "pattern": "^/"}, check=_route_path)


def _p256_pem(value: str) -> str:
    try:
        load_p256_public_key(value)
    except ValueError:
        raise Invalid() from None
    return value


P256_PEM = Rule("must be an ECDSA P-256 public key in PEM (-----BEGIN PUBLIC KEY-----)", {"strict": True},
                check=_p256_pem)
