"""A config problem: the zero-based field path and what is wrong, printed as one line."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

Path = tuple[str | int, ...]


def dotted(path: Iterable[str | int]) -> str:
    """`("routes", 1, "upstream")` -> `routes[1].upstream`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out or "(top level)"


class Problem(NamedTuple):
    path: Path
    message: str

    def __str__(self) -> str:
        return f"{dotted(self.path)}: {self.message}"


class ConfigError(Exception):
    """Every problem of a file, one line each (`routes[1].upstream: must be an http(s) URL ...`)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))
