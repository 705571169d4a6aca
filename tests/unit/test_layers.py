"""The package's shape, read from its imports (every module of `gateway/`, parsed, not imported).

- no import cycle among modules (imports run when a module loads: module level, outside
  `if TYPE_CHECKING:`; an import inside a function runs later and cannot deadlock a load);
- the HTTP engine (`gateway/http`) imports nothing of the gateway but `gateway.errors`;
- `gateway/exchange.py`, the record and seams everyone shares, imports nothing of the gateway
  at run time (annotations may name the engine's and the route table's types);
- access control and recording do not import the pipeline, nor the pipeline them: the app wires;
- more generally, no module imports one of a higher layer (`LAYERS`, the README's package map).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import gateway

ROOT = Path(gateway.__file__).parent
# Cycles known and being fixed elsewhere; each entry names where. One that is gone fails the test
# below until its entry is removed, so this list never hides a new cycle behind an old one.
KNOWN_CYCLES: set[frozenset[str]] = set()
# Lowest first: a module may import its own layer and those below (not under TYPE_CHECKING: an
# annotation may name a type from anywhere). A new module or package is placed here when it is made.
LAYERS = [
    ["gateway", "gateway.errors", "gateway.files", "gateway.tasks", "gateway.http", "gateway.exchange"],
    ["gateway.path_readings", "gateway.routing", "gateway.credentials", "gateway.tls", "gateway.listeners",
     "gateway.scanning"],
    ["gateway.config", "gateway.reload", "gateway.config_watch"],
    ["gateway.keystore", "gateway.ratelimit"],
    ["gateway.access", "gateway.accounts"],
    ["gateway.observability", "gateway.events"],
    ["gateway.proxy"],
    ["gateway.admin"],
    ["gateway.portal"],
    ["gateway.services", "gateway.readiness", "gateway.app", "gateway.serving_settings", "gateway.access_wiring",
     "gateway.upkeep", "gateway.store_migrate", "gateway.demo",
     "gateway.cli_accounts", "gateway.cli_keys", "gateway.cli_output", "gateway.cli_certs"],
    ["gateway.cli", "gateway.build", "gateway.workers", "gateway.__main__"],
    ["gateway.reference"],  # docs/ rendered from everything below
]
# (importer prefix, imported prefix): never, at any level, even within the layering above
FORBIDDEN = [
    ("gateway.access", "gateway.proxy"),
    ("gateway.observability", "gateway.proxy"),
    ("gateway.proxy", "gateway.access"),
    ("gateway.proxy", "gateway.observability"),
]


def module_name(path: Path) -> str:
    parts = ("gateway", *path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in ROOT.rglob("*.py")}


def resolve(importer: str, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    """The gateway modules an import statement loads (a name imported from a package may be a module)."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name == "gateway" or alias.name.startswith("gateway."):
                yield alias.name
        return
    base = node.module or ""
    if node.level:
        package = importer if MODULES[importer].name == "__init__.py" else importer.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{base}" if base else package
    if base != "gateway" and not base.startswith("gateway."):
        return
    for alias in node.names:
        submodule = f"{base}.{alias.name}"
        yield submodule if submodule in MODULES else base


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports(name: str) -> Iterator[tuple[str, str]]:
    """(kind, module) for every gateway import of a module: kind is "load" (runs when the module
    loads), "typing" (under TYPE_CHECKING) or "later" (inside a function or class body)."""
    tree = ast.parse(MODULES[name].read_text(), str(MODULES[name]))

    def walk(nodes: list[ast.stmt], kind: str) -> Iterator[tuple[str, str]]:
        for node in nodes:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for module in resolve(name, node):
                    yield kind, module
            elif isinstance(node, ast.If):
                yield from walk(node.body, "typing" if is_type_checking(node.test) else kind)
                yield from walk(node.orelse, kind)
            elif isinstance(node, (ast.Try, ast.With, ast.AsyncWith)):
                for block in (node.body, *(h.body for h in getattr(node, "handlers", ())),
                              getattr(node, "orelse", []), getattr(node, "finalbody", [])):
                    yield from walk(block, kind)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                yield from walk(node.body, "later")

    yield from walk(tree.body, "load")


GRAPH = {name: sorted({m for kind, m in imports(name) if kind == "load" and m != name}) for name in MODULES}


def cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in GRAPH.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    return found


def test_the_walk_sees_the_package() -> None:
    assert {"gateway.http.connection", "gateway.exchange", "gateway.proxy.handler", "gateway.app"} <= set(MODULES)
    assert "gateway.exchange" in GRAPH["gateway.proxy.handler"]


def test_no_import_cycle() -> None:
    found = cycles()
    new = [c for c in found if frozenset(c) not in KNOWN_CYCLES]
    assert not new, f"import cycles: {new}"
    gone = [sorted(c) for c in KNOWN_CYCLES if list(sorted(c)) not in found]
    assert not gone, f"known cycles now gone: remove them from KNOWN_CYCLES: {gone}"


def test_the_http_engine_imports_only_itself_and_the_errors() -> None:
    bad = [(name, kind, module) for name in MODULES if name == "gateway.http" or name.startswith("gateway.http.")
           for kind, module in imports(name)
           if module != "gateway.errors" and module != "gateway.http" and not module.startswith("gateway.http.")]
    assert not bad, f"gateway/http imports the gateway: {bad}"


def test_the_exchange_imports_nothing_of_the_gateway() -> None:
    allowed_in_annotations = ("gateway.http.", "gateway.routing")
    bad = [(kind, module) for kind, module in imports("gateway.exchange")
           if kind != "typing" or not module.startswith(allowed_in_annotations)]
    assert not bad, f"gateway/exchange.py imports: {bad}"


def layer(module: str) -> int | None:
    """The layer of a module: its longest matching prefix's."""
    best: tuple[int, int] | None = None
    for number, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            covers = module == prefix or (prefix != "gateway" and module.startswith(prefix + "."))
            if covers and (best is None or len(prefix) > best[0]):
                best = (len(prefix), number)
    return None if best is None else best[1]


def test_every_module_has_a_layer() -> None:
    assert not [name for name in MODULES if layer(name) is None], "add them to LAYERS"


def test_no_module_imports_a_higher_layer() -> None:
    bad = [(name, module) for name in MODULES for kind, module in imports(name)
           if kind != "typing" and (layer(module) or 0) > (layer(name) or 0)]
    assert not bad, f"imports from a lower layer to a higher one: {bad}"


def test_access_and_recording_stay_apart_from_the_pipeline() -> None:
    bad = [(name, module) for name in MODULES for _, module in imports(name)
           for importer, imported in FORBIDDEN
           if (name == importer or name.startswith(importer + "."))
           and (module == imported or module.startswith(imported + "."))]
    assert not bad, f"layering broken: {bad}"
