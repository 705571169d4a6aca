"""`docs/metrics.md`: every metric family a running gateway registers, with its type, labels and help.

The families are read from a gateway started for the purpose (loopback, ephemeral ports, a
temporary data directory, the rate limiter and webhooks on), so a metric registered anywhere in
the code is listed without a hand-kept list.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry

from gateway.reference.markdown import GENERATED, code, table

# Families only a multi-worker gateway or a feature off by default registers would be missed by a
# single process with the defaults; the config below switches on what registers something.
CONFIG: dict[str, Any] = {
    "server": {"host": "127.0.0.1", "port": 0, "tls": {"self_signed": True}},
    "admin": {"host": "127.0.0.1", "port": 0},
    "routes": [],
}
SUFFIXES = {"counter": "_total", "histogram": "", "gauge": "", "info": "_info"}


def _labels(collector: Any, family: Any) -> tuple[str, ...]:
    """A family's label names, before any sample exists (prometheus-client keeps them privately)."""
    names = getattr(collector, "_labelnames", None)
    if names is None:
        names = getattr(family, "_labelnames", ())
    if not names:
        names = tuple(sorted({k for s in family.samples for k in s.labels if k != "le"}))
    return tuple(names)


def families(registry: CollectorRegistry) -> list[tuple[str, str, tuple[str, ...], str]]:
    """(exported name, type, label names, help) of each family, by name."""
    found: dict[str, tuple[str, str, tuple[str, ...], str]] = {}
    collectors: Iterable[Any] = list(registry._collector_to_names)
    for collector in collectors:
        for family in collector.collect():
            name = family.name + SUFFIXES.get(family.type, "")
            found[name] = (name, family.type, _labels(collector, family), family.documentation)
    return [found[n] for n in sorted(found)]


async def _registry() -> CollectorRegistry:
    from gateway.app import Gateway
    from gateway.config import parse_config

    with tempfile.TemporaryDirectory() as data:
        cfg = parse_config({**CONFIG, "data_dir": data}, env={})
        gateway = Gateway(cfg, admin_token="reference-docs-token-0123456789abcdef")
        await gateway.start()
        try:
            return gateway.registry
        finally:
            await gateway.stop()


def render(registry: CollectorRegistry | None = None) -> str:
    registry = registry if registry is not None else asyncio.run(_registry())
    rows = [(code(name), kind, ", ".join(code(label) for label in labels), help_)
            for name, kind, labels, help_ in families(registry)]
    lines = [
        "# Metrics",
        "",
        GENERATED,
        "",
        "`GET /metrics` on the admin listener, unauthenticated, in the Prometheus text format. Labels are",
        "bounded: route names, methods, status classes, status codes (those the gateway answers itself",
        "and common upstream ones; any other code counts as its class, `4xx`), fixed reasons and kinds;",
        "never a raw path, key id or tenant id, unless `metrics.per_tenant_label` adds `tenant` to",
        "`gateway_requests_total`. No `*_created` series are exported. A histogram's series are",
        "`<name>_bucket` (with `le`), `<name>_sum` and `<name>_count`. With `server.workers` above 1,",
        "any worker answers a scrape with the sum over all of them. The alert rules in",
        "`deploy/prometheus/alerts.yml` and the Grafana dashboard in `deploy/grafana/` use these.",
        "",
        *table(("metric", "type", "labels", "meaning"), rows),
        "",
    ]
    return "\n".join(lines)
