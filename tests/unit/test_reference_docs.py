"""The project's reference under docs/ stays true to the code: each generated page is what
`python -m gateway.reference` renders now, and each fact a page must hold is checked on its own
(every error code, admin path, portal route, metric, command and option, header)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.cli import build_parser
from gateway.errors import GatewayError
from gateway.portal.app import TABLES
from gateway.proxy import headers
from gateway.reference.__main__ import PAGES
from gateway.reference.cli_page import commands
from gateway.reference.errors_page import error_classes
from tests.observability.test_metrics import scrape

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
REGENERATE = "python -m gateway.reference"


def page(name: str) -> str:
    return (DOCS / name).read_text()


@pytest.mark.parametrize("name", sorted(PAGES))
def test_each_generated_page_is_current(name: str) -> None:
    assert page(name) == PAGES[name](), f"docs/{name} is stale: run {REGENERATE}"


def test_every_error_code_is_in_the_reference() -> None:
    text = page("errors.md")
    codes = {c.code for c in error_classes()}
    assert codes >= {cls.code for cls in GatewayError.__subclasses__() if "code" in vars(cls)}
    missing = [c for c in codes if f"`{c}`" not in text]
    assert len(codes) >= 20 and missing == []


async def test_every_admin_path_is_in_the_reference(start_gateway) -> None:
    gw = await start_gateway()
    text = page("admin-api.md")
    missing = []
    for route in gw.admin_app().router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or ""
        if route.method == "HEAD" or not path.startswith("/admin/") or path.startswith(("/admin/docs", "/admin/console")):
            continue
        if path in ("/admin/", "/admin/openapi.json"):
            assert f"`GET {path}`" in text
        elif f"### `{route.method} {path}`" not in text:
            missing.append(f"{route.method} {path}")
    assert missing == []


def test_every_portal_route_is_in_the_reference() -> None:
    text = page("portal-api.md")
    routes = [(e.method, e.path) for table in TABLES for e in table.all]
    assert len(routes) >= 20
    assert [r for r in routes if f"| {r[0]} | `/portal/api{r[1]}` |" not in text] == []


async def test_every_metric_a_gateway_exports_is_in_the_reference(start_gateway) -> None:
    gw = await start_gateway(ratelimit={"enabled": True})
    text = page("metrics.md")
    exported = set()
    for family in text_string_to_metric_families(await scrape(gw)):
        exported.add(family.name + ("_total" if family.type == "counter" else ""))
    listed = set(re.findall(r"^\| `(gateway_[a-z_]+)` \|", text, re.MULTILINE))
    assert exported - listed == set()
    assert "gateway_requests_total" in listed and "`code`" in text


def test_every_command_and_option_is_in_the_reference() -> None:
    text = page("cli.md")
    found = list(commands(build_parser()))
    assert len(found) >= 15
    for words, _, parser in found:
        assert f"## `{words}`" in text
        section = text.split(f"## `{words}`", 1)[1].split("\n## ", 1)[0]
        for action in parser._actions:
            for option in action.option_strings if action.dest != "help" else ():
                assert option in section, (words, option)


def _header_literals() -> set[str]:
    """Header names the gateway sets: the `("Name", value)` pairs of access/ and proxy/."""
    names = set()
    for path in [*(ROOT / "gateway" / "access").glob("*.py"), *(ROOT / "gateway" / "proxy").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Tuple) and len(node.elts) == 2 and isinstance(node.elts[0], ast.Constant):
                value = node.elts[0].value
                if isinstance(value, str) and re.fullmatch(r"[A-Z][A-Za-z]*(-[A-Za-z]+)+|[A-Z][a-z]+[A-Za-z]*", value):
                    names.add(value)
    return names - {"GET", "HEAD", "Content-Type"}


def test_every_header_the_gateway_sets_or_drops_is_named() -> None:
    text = page("headers.md").lower()
    named = _header_literals() | headers.CLIENT_ADDRESS | headers.HOP_BY_HOP | headers._REQUEST_DROP
    named |= {"X-Gateway-Client-Ip", "X-CSRF-Token"}
    assert {"X-Gateway-Identity", "X-RateLimit-Reset", "Sunset", "x-original-url"} <= named | {"x-original-url"}
    assert sorted(n for n in named if f"`{n.lower()}" not in text) == []


def test_the_readme_links_the_reference_and_nothing_outside_the_repository() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "../shared" not in readme and "CONTRACT.md" not in readme
    for name in [*PAGES, "headers.md", "configuration.md"]:
        assert f"(docs/{name})" in readme, name


def test_every_relative_link_in_the_readme_and_docs_names_a_file_of_the_repository() -> None:
    """A clone has no `../shared`: a link out of the tree, or to a file since moved, is a dead end."""
    broken = []
    for doc in [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]:
        text = re.sub(r"```.*?```", "", doc.read_text(), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue  # a web address or an anchor of the same page
            path = (doc.parent / target.split("#", 1)[0]).resolve()
            if not path.is_relative_to(ROOT) or not path.exists():
                broken.append(f"{doc.relative_to(ROOT)}: {target}")
    assert broken == []
