"""`${NAME}` and `${NAME:-default}` in the file's strings, read from the environment before validation.

A string that is one reference alone becomes `FromEnv`, so a number or boolean field reads it as
one (`port: ${PORT}`) while a text field keeps the text. A string that names an unset variable
becomes `Unresolved`: each field accepts it as a placeholder of its type and the rules that read it
are skipped. Normally the unset variable is itself a problem; with `require=False` (check-config,
where secrets are absent) it is only noted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from gateway.config.problems import Problem, dotted

REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class FromEnv(str):
    """A value that was one `${NAME}` alone: a number or boolean field reads it as one."""


class Unresolved(str):
    """A value naming a variable that is not set (check-config only): not checked, not used."""

    names: tuple[str, ...] = ()


class Expansion:
    """The expanded tree, the problems found, and where the unresolved values sit."""

    def __init__(self, env: Mapping[str, str], require: bool) -> None:
        self.env = env
        self.require = require
        self.problems: list[Problem] = []
        self.unresolved: dict[str, tuple[str, ...]] = {}   # field path -> unset variable names

    def expand(self, node: Any, path: tuple[str | int, ...] = ()) -> Any:
        if isinstance(node, str):
            return self._string(node, path)
        if isinstance(node, Mapping):
            return {k: self.expand(v, (*path, str(k))) for k, v in node.items()}
        if isinstance(node, list):
            return [self.expand(v, (*path, i)) for i, v in enumerate(node)]
        return node

    def _string(self, text: str, path: tuple[str | int, ...]) -> str:
        unset: list[str] = []

        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in self.env:
                return self.env[name]
            if default is not None:
                return default
            unset.append(name)
            return m.group(0)

        expanded = REFERENCE.sub(sub, text)
        if unset:
            if self.require:
                self.problems.extend(
                    Problem(path, f"environment variable {name} is not set") for name in unset)
            value = Unresolved(expanded)  # the field is not checked: one problem, not a derived one
            value.names = tuple(unset)
            self.unresolved[dotted(path)] = value.names
            return value
        if expanded != text and REFERENCE.fullmatch(text):
            return FromEnv(expanded)  # `port: ${PORT}`: a number where the field wants one
        return expanded
