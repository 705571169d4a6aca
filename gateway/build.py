"""Which build runs: the hot modules setup.py compiles with mypyc, and how many of them are loaded compiled.

`GATEWAY_COMPILE=1 pip install .` builds these modules as C extensions (setup.py); any other install
is pure Python. The list lives here, stdlib only, so setup.py can read it without importing the
gateway and `gateway --version` can say which build runs. A module on it must stay type-correct
under `mypy --strict`, and tests must not patch its globals, subclass its classes or fake its
functions (compiled code binds them early): they inject instead.
"""

from __future__ import annotations

import importlib
import importlib.machinery

# The request's path through the gateway: the HTTP engine, the proxy pipeline, the access decision,
# the in-memory limiter, routing, the observers. Measured in bench/README.md ("Compiled build").
HOT_MODULES: tuple[str, ...] = (
    "gateway.http.connection",  # not body.py: mypyc has no async generators
    "gateway.http.deadline",
    "gateway.http.flow",
    "gateway.http.messages",
    "gateway.http.server",
    "gateway.http.upstream",
    "gateway.proxy.forward",
    "gateway.proxy.handler",
    "gateway.proxy.headers",
    "gateway.proxy.mount",
    "gateway.proxy.transport",
    "gateway.access.authorize",
    "gateway.access.guard",
    "gateway.access.identity",
    "gateway.access.limits",
    "gateway.credentials.keyformat",
    "gateway.credentials.parse",
    "gateway.ratelimit.memory",
    "gateway.routing",
    "gateway.path_readings",
    "gateway.observability.accesslog",
    "gateway.observability.metrics",
    "gateway.observability.observer",
    "gateway.observability.request_record",
    "gateway.exchange",
)


def compiled_modules() -> list[str]:
    """The hot modules this process loads from a C extension rather than from source."""
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    return [name for name in HOT_MODULES if (getattr(importlib.import_module(name), "__file__", None) or "").endswith(suffixes)]


def describe() -> str:
    """'compiled: N modules' or 'pure Python', as `gateway --version` prints it."""
    count = len(compiled_modules())
    return f"compiled: {count} modules" if count else "pure Python"
