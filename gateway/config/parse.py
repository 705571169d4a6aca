"""YAML into `Config`, validated whole: every problem at once, one line each, with its field path.

Each section is checked on its own against its declaration (its module under `gateway/config/`;
`sections.py` assembles them), and each route on its own, so one broken section does not hide the
problems of the others, and the rules that read several keys (`rules.py`) still run on every
section that passed.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import typing
from collections.abc import Mapping
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from gateway.config.env import Expansion
from gateway.config.problems import ConfigError, Path, Problem
from gateway.config.routes import RouteConfig
from gateway.config.rules import Rules
from gateway.config.sections import Config

NOT_IN_FILE = frozenset({"source"})
_MESSAGES = {
    "unexpected_keyword_argument": "unknown key",
    "extra_forbidden": "unknown key",
    "missing_argument": "is required",
    "missing": "is required",
    "dataclass_type": "must be a mapping",
    "dataclass_args_type": "must be a mapping",
}


@dataclasses.dataclass(frozen=True)
class Checked:
    """A valid config, and the fields left unchecked because they name unset variables."""

    config: Config
    unresolved: Mapping[str, tuple[str, ...]]


@functools.cache
def _adapters() -> dict[str, TypeAdapter[Any]]:
    """One validator per section (built once, on first use: most CLI commands need none)."""
    hints = typing.get_type_hints(Config, include_extras=True)
    adapters: dict[str, TypeAdapter[Any]] = {
        f.name: TypeAdapter(hints[f.name]) for f in dataclasses.fields(Config) if f.name not in NOT_IN_FILE
    }
    adapters["routes[]"] = TypeAdapter(RouteConfig)
    return adapters


def _problems(err: ValidationError, prefix: Path) -> list[Problem]:
    out = []
    for e in err.errors(include_url=False):
        message = e["msg"] if e["type"] == "config" else _MESSAGES.get(e["type"], e["msg"])
        out.append(Problem((*prefix, *e["loc"]), message))
    return out


def _validate(adapter: TypeAdapter[Any], value: Any, prefix: Path, problems: list[Problem]) -> Any:
    try:
        return adapter.validate_python(value)
    except ValidationError as err:
        problems.extend(_problems(err, prefix))
        return None


def _routes(raw: Any, problems: list[Problem]) -> list[tuple[int, RouteConfig]]:
    if not isinstance(raw, list):
        problems.append(Problem(("routes",), "must be a list of routes"))
        return []
    adapter = _adapters()["routes[]"]
    routes = []
    for i, item in enumerate(raw):
        route = _validate(adapter, item, ("routes", i), problems)
        if route is not None:
            routes.append((i, route))
    return routes


def _store_url_under_data_dir(raw: Any, data_dir: str | None) -> Any:
    """`store.url` defaults to `gateway.db` under `data_dir` (the declared default is under ./data)."""
    if data_dir is None or not (raw is None or isinstance(raw, Mapping) and "url" not in raw):
        return raw
    return {**(raw or {}), "url": f"sqlite:///{data_dir}/gateway.db"}


def read_config(data: object, *, env: Mapping[str, str] | None = None, source: str | None = None,
                require_env: bool = True) -> Checked:
    """A validated config, or ConfigError listing every problem.

    `require_env=False` (check-config): a value naming an unset variable is not a problem; it is
    left unchecked and listed in `Checked.unresolved`.
    """
    expansion = Expansion(os.environ if env is None else env, require_env)
    data = expansion.expand(data)
    problems = list(expansion.problems)
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError([str(Problem((), "must be a mapping"))])
    adapters = _adapters()
    problems.extend(Problem((str(key),), "unknown key") for key in data if key not in adapters or key == "routes[]")
    sections: dict[str, Any] = {}
    routes: list[tuple[int, RouteConfig]] = []
    for f in dataclasses.fields(Config):
        if f.name in NOT_IN_FILE:
            continue
        raw = data.get(f.name)
        if f.name == "routes":
            routes = _routes(raw, problems) if raw is not None else []
            continue
        if f.name == "store":
            raw = _store_url_under_data_dir(raw, sections.get("data_dir"))
        if raw is None and f.default is not dataclasses.MISSING:
            sections[f.name] = f.default
            continue
        if raw is None and f.default_factory is not dataclasses.MISSING:
            sections[f.name] = f.default_factory()
            continue
        if raw is None:
            raw = {}  # a required section: name what it needs (`server.tls: is required`)
        value = _validate(adapters[f.name], raw, (f.name,), problems)
        if value is not None:
            sections[f.name] = value
    problems.extend(Rules(sections, expansion.unresolved).run(routes))
    if problems:
        raise ConfigError([str(p) for p in problems])
    config = Config(**sections, routes=tuple(route for _, route in routes), source=source)
    return Checked(config, expansion.unresolved)


def parse_config(data: object, *, env: Mapping[str, str] | None = None, source: str | None = None) -> Config:
    """A validated Config, or ConfigError listing every problem."""
    return read_config(data, env=env, source=source).config


def read_yaml(path: str | os.PathLike[str]) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError([f"{path}: invalid YAML{where}: {getattr(exc, 'problem', None) or exc}"]) from None


def load_config(path: str | os.PathLike[str]) -> Config:
    return read_config(read_yaml(path), source=str(path)).config


def check_file(path: str | os.PathLike[str]) -> Checked:
    """What `gateway check-config` judges: the file's shape, without requiring its variables to be set."""
    return read_config(read_yaml(path), source=str(path), require_env=False)
