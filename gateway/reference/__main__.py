"""`python -m gateway.reference`: write every generated page of `docs/` (`--check`: only say which
are stale, exit 1 if any)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from gateway.config import docs as config_docs
from gateway.reference import (
    admin_page,
    cli_page,
    errors_page,
    metrics_page,
    portal_page,
)

PAGES: dict[str, Callable[[], str]] = {
    "configuration.md": config_docs.render,
    "errors.md": errors_page.render,
    "admin-api.md": admin_page.render,
    "portal-api.md": portal_page.render,
    "metrics.md": metrics_page.render,
    "cli.md": cli_page.render,
}


def main(argv: list[str]) -> int:
    docs = Path(__file__).resolve().parents[2] / "docs"
    stale = []
    for name, render in PAGES.items():
        text = render()
        path = docs / name
        if not path.exists() or path.read_text() != text:
            stale.append(name)
            if "--check" not in argv:
                path.write_text(text)
    verb = "stale" if "--check" in argv else "written"
    print(f"{verb}: {', '.join(stale)}" if stale else "every page is current")
    return 1 if stale and "--check" in argv else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
