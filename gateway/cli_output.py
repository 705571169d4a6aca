"""How the CLI shows what it read: aligned tables with headers (`-o wide` for more columns), a
described object (`show`), or the admin API's JSON (`--json`, `-o json`), as kubectl and gh do.

Tables are for people and may change; scripts read `--json`, which is the API's shape.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.accounts.views import whole_listing

OUTPUTS = ("table", "wide", "json")
Row = Mapping[str, Any]


def add_output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", choices=OUTPUTS, default="table",
                        help="table (default), wide (a table with more columns) or json (the admin API's JSON)")
    parser.add_argument("--json", action="store_true", help="the admin API's JSON, for scripts (same as -o json)")


def output(args: argparse.Namespace) -> str:
    return "json" if getattr(args, "json", False) else str(getattr(args, "output", "table"))


def print_json(payload: Any) -> None:
    print(json.dumps(payload, indent=2, sort_keys=True))


def report(args: argparse.Namespace, payload: Any, text: str) -> None:
    """The API's JSON with --json, else a line (or table) for people."""
    if output(args) == "json":
        print_json(payload)
    else:
        print(text)


def report_list(args: argparse.Namespace, views: list[dict[str, Any]], columns: list[Column], empty: str) -> None:
    """The API's `{"data", "meta"}` with --json; else a table, or `empty` on stderr (kubectl's way)."""
    if output(args) == "json":
        print_json(whole_listing(views))
    elif not views:
        print(empty, file=sys.stderr)
    else:
        print(table(views, columns, wide=output(args) == "wide"))


@dataclass(frozen=True, slots=True)
class Column:
    header: str
    cell: Callable[[Row], str]
    wide: bool = False  # shown with -o wide only


def table(rows: Sequence[Row], columns: Sequence[Column], *, wide: bool = False) -> str:
    """Columns left-aligned under upper-case headers, three spaces apart (kubectl's layout)."""
    shown = [c for c in columns if wide or not c.wide]
    cells = [[c.header for c in shown]] + [[_one_line(c.cell(row)) for c in shown] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(shown))]
    return "\n".join("   ".join(text.ljust(w) for text, w in zip(line, widths, strict=True)).rstrip() for line in cells)


def describe(fields: Iterable[tuple[str, str]]) -> str:
    """`Label:  value` lines with the values aligned (kubectl describe, gh ... view)."""
    pairs = [(label + ":", _one_line(value)) for label, value in fields]
    width = max(len(label) for label, _ in pairs)
    return "\n".join(f"{label.ljust(width)}  {value}".rstrip() for label, value in pairs)


def _one_line(text: str) -> str:
    return " ".join(str(text).split()) or "-"


def parse_time(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None


def span(seconds: float) -> str:
    """A duration in its largest whole unit: 45s, 12m, 5h, 89d (kubectl's AGE)."""
    seconds = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def ago(text: str | None, now: dt.datetime, *, none: str = "never") -> str:
    at = parse_time(text)
    return none if at is None else f"{span((now - at).total_seconds())} ago"


def expiry(view: Row, now: dt.datetime) -> str:
    """A key's expiry: never, in 12d (soon), expired 3d ago; `-` once revoked (the status says so)."""
    if view.get("status") == "revoked":
        return "-"
    at = parse_time(view.get("expires_at"))
    if at is None:
        return "never"
    left = (at - now).total_seconds()
    if left <= 0:
        return f"expired {span(left)} ago"
    days = view.get("expires_in_days")  # whole days rounded up, as the API and the console say it
    return (f"in {days}d" if left >= 86400 and days else f"in {span(left)}") + (" (soon)" if view.get("expiring_soon") else "")


def stamp(text: str | None, now: dt.datetime, *, none: str = "-") -> str:
    """An RFC 3339 time with how far it is from now: `2026-12-04T10:00:00Z (3d ago)`."""
    at = parse_time(text)
    if at is None:
        return none
    seconds = (at - now).total_seconds()
    return f"{text} ({'in ' + span(seconds) if seconds > 0 else span(seconds) + ' ago'})"


def switch(value: bool, on: str = "on", off: str = "off") -> str:
    return on if value else off
