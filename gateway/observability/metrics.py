"""Prometheus metrics on a registry passed in (each test app has its own), cheap on the hot path.

Labels are bounded: route names, methods, status classes, status codes (those the gateway answers
itself and common upstream ones; any other is its class) and fixed reasons, never a raw path,
key id or tenant id, unless `metrics.per_tenant_label` is switched on (one series per tenant:
mind the cardinality). Cache and buffer figures are read at scrape time.

The per-request figures (requests, durations, auth outcomes, limit decisions, in flight) are
plain numbers on the request path: prometheus-client's `Counter.inc` takes a lock and
`Histogram.observe` scans its buckets in Python, ~17 µs a request in all, measured in place. They
become Prometheus families when scraped (`_RequestCollector`); with several workers they are
pushed into prometheus-client's multiprocess files once a second and before a scrape (`push`).
"""

from __future__ import annotations

import os
from bisect import bisect_left
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from gateway import __version__
from gateway.errors import GatewayError
from gateway.exchange import RequestScope

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_LE = [floatToGoString(b) for b in BUCKETS] + ["+Inf"]

# prometheus-client adds a `<name>_created` series (the start time) to every counter and histogram
# it keeps; the families built here have none, and a scrape should not mix the two (the text
# format has no use for them, and each is one more series to store). Process-wide, at import.
disable_created_metrics()

AUTH_REASONS = {
    "MISSING_CREDENTIALS": "missing",
    "INVALID_CREDENTIALS": "invalid",
    "EXPIRED_CREDENTIALS": "expired",
    "REVOKED_CREDENTIALS": "revoked",
    "INSUFFICIENT_SCOPE": "scope",
    "RESOURCE_FORBIDDEN": "resource",
}
STATUS_CLASS = {n: f"{n}xx" for n in range(1, 6)}


def _code_labels() -> tuple[str, ...]:
    """The `code` label of each status from 0 to 599: the status itself when the gateway answers it
    (each contract error's status) or it is a common upstream answer, else its class (`4xx`), so an
    upstream answering every code from 100 to 599 adds at most five series a route and method."""
    own = {CLIENT_CLOSED}
    pending: list[type[GatewayError]] = [GatewayError]
    while pending:
        cls = pending.pop()
        own.add(cls.status)
        pending.extend(cls.__subclasses__())
    known = own | COMMON_UPSTREAM_CODES
    return tuple(str(n) if n in known else STATUS_CLASS.get(n // 100, "5xx") for n in range(600))


CLIENT_CLOSED = 499  # the client went away first (nginx's convention; proxy/handler.py)
COMMON_UPSTREAM_CODES = frozenset({
    101, 200, 201, 202, 204, 206, 301, 302, 303, 304, 307, 308, 400, 401, 403, 404, 405, 406, 409, 410, 412, 415,
    422, 429, 500, 501, 502, 503, 504,
})
CODE_LABELS = _code_labels()

_REQUESTS = ("gateway_requests", "Requests handled by the proxy listener.")
_DURATION = ("gateway_request_duration_seconds", "Time from request to the end of the response.")
_UPSTREAM = ("gateway_upstream_duration_seconds", "Time spent on the upstream exchange.")
_AUTH = ("gateway_auth", "Authentication and authorization outcomes.")
_DECISIONS = ("gateway_ratelimit_decisions", "Rate-limit decisions.")
_IN_FLIGHT = ("gateway_requests_in_flight", "Requests being handled now.")


class Timings:
    """One route's histogram: a count per bucket (not cumulative; the last is +Inf) and the sum."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(BUCKETS, seconds)] += 1  # le: a value on a bound counts in it
        self.total += seconds

    def cumulative(self) -> list[tuple[str, float]]:
        running = 0
        out: list[tuple[str, float]] = []
        for le, count in zip(_LE, self.counts, strict=True):
            running += count
            out.append((le, running))
        return out


class _Series:
    """One (route, method, status class[, tenant]) label set, with its route's two histograms."""

    __slots__ = ("count", "duration", "upstream")

    def __init__(self, duration: Timings, upstream: Timings) -> None:
        self.count = 0
        self.duration = duration
        self.upstream = upstream


class Metrics:
    def __init__(self, registry: CollectorRegistry, *, per_tenant: bool = False, multiprocess: bool = False) -> None:
        self.registry = registry
        self.per_tenant = per_tenant
        self._labels = ["route", "method", "status_class", "code"] + (["tenant"] if per_tenant else [])
        self.in_flight = 0
        self._series: dict[tuple[str, ...], _Series] = {}
        self._timings: dict[str, tuple[Timings, Timings]] = {}
        self._auth: dict[tuple[str, str], int] = {}
        self._decisions = {"allowed": 0, "limited": 0}
        self.limiter_errors = Counter(
            "gateway_ratelimit_backend_errors_total", "Rate-limit backend failures (decided by on_backend_error).",
            registry=registry,
        )
        self.upstream_errors = Counter(
            "gateway_upstream_errors_total", "Upstream failures by kind.", ["route", "kind"], registry=registry
        )
        self.key_exposures = Counter(
            "gateway_key_exposures_total", "Keys recorded as exposed (leaked), by where they were seen.", ["reason"],
            registry=registry,
        )
        self.canary_uses = Counter(
            "gateway_canary_uses_total", "Requests made with a canary key (each one answered 401).", registry=registry,
        )
        self.invalidation_lag = Histogram(
            "gateway_invalidation_lag_seconds",
            "Time from a change on one instance to its cache invalidation on this one (Redis pub/sub).",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=registry,
        )
        build = Gauge("gateway_build_info", "Build information.", ["version"], registry=registry,
                      multiprocess_mode="max")
        build.labels(__version__).set(1)
        self._pushed: _Pushed | None = _Pushed(self, registry) if multiprocess else None
        if not multiprocess:
            registry.register(_RequestCollector(self))

    def observe(self, scope: RequestScope, done: float) -> None:
        self.in_flight -= 1
        route = scope.route.name if scope.route is not None else "(none)"
        status = scope.status
        key: tuple[str, ...] = (route, scope.method, STATUS_CLASS.get(status // 100, "5xx"),
                                CODE_LABELS[status] if 0 <= status < 600 else "5xx")
        if self.per_tenant:
            identity = scope.identity
            key += (identity.tenant_id if identity else "",)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series(*self._route_timings(route))
        series.count += 1
        series.duration.observe(done - scope.started)
        if scope.upstream_started is not None:
            series.upstream.observe(done - scope.upstream_started)
        code = scope.error_code
        if scope.auth_method is not None or code in AUTH_REASONS:
            outcome = (scope.auth_method or "none", AUTH_REASONS.get(code or "", "ok"))
            self._auth[outcome] = self._auth.get(outcome, 0) + 1
        if scope.rate_limited:
            self._decisions["limited"] += 1
        elif scope.identity is not None and code not in AUTH_REASONS:
            self._decisions["allowed"] += 1
        if code == "UPSTREAM_TIMEOUT":  # no head within `timeout`; or the body stalled past `idle_timeout`
            self.upstream_errors.labels(route, "idle_timeout" if scope.truncated else "timeout").inc()
        elif code == "UPSTREAM_UNAVAILABLE":  # refused, reset, garbage; or closed or broken mid-body
            self.upstream_errors.labels(route, "truncated" if scope.truncated else "unavailable").inc()

    def _route_timings(self, route: str) -> tuple[Timings, Timings]:
        timings = self._timings.get(route)
        if timings is None:
            timings = self._timings[route] = (Timings(), Timings())
        return timings

    def families(self) -> list[CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily]:
        requests = CounterMetricFamily(*_REQUESTS, labels=self._labels)
        for key, series in self._series.items():
            requests.add_metric(key, series.count)
        duration = HistogramMetricFamily(*_DURATION, labels=["route"])
        upstream = HistogramMetricFamily(*_UPSTREAM, labels=["route"])
        for route, (total, upstream_part) in self._timings.items():
            duration.add_metric([route], total.cumulative(), total.total)
            upstream.add_metric([route], upstream_part.cumulative(), upstream_part.total)
        auth = CounterMetricFamily(*_AUTH, labels=["method", "result"])
        for outcome, count in self._auth.items():
            auth.add_metric(outcome, count)
        decisions = CounterMetricFamily(*_DECISIONS, labels=["result"])
        for result, count in self._decisions.items():
            decisions.add_metric([result], count)
        in_flight = GaugeMetricFamily(*_IN_FLIGHT, value=self.in_flight)
        return [requests, duration, upstream, auth, decisions, in_flight]

    def push(self) -> None:
        """Several workers: what this one counted since the last push goes into the shared files."""
        if self._pushed is not None:
            self._pushed.push()


class _RequestCollector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily]:
        return self._metrics.families()


class _Pushed:
    """The same families as prometheus-client metrics backed by its multiprocess files, and what
    was pushed into them so far; only increments are written, so a worker's share is never counted twice."""

    def __init__(self, metrics: Metrics, registry: CollectorRegistry) -> None:
        self._metrics = metrics
        self.requests = Counter(*_REQUESTS, metrics._labels, registry=registry)
        self.duration = Histogram(*_DURATION, ["route"], buckets=BUCKETS, registry=registry)
        self.upstream = Histogram(*_UPSTREAM, ["route"], buckets=BUCKETS, registry=registry)
        self.auth = Counter(*_AUTH, ["method", "result"], registry=registry)
        self.decisions = Counter(*_DECISIONS, ["result"], registry=registry)
        self.in_flight = Gauge(*_IN_FLIGHT, registry=registry, multiprocess_mode="livesum")
        self._done: dict[object, list[float]] = {}  # what each series had when last pushed

    def _count(self, counter: Counter, labels: tuple[str, ...], what: object, value: float) -> None:
        pushed = self._done.get(what, [0.0])
        if value != pushed[0]:
            counter.labels(*labels).inc(value - pushed[0])
            self._done[what] = [value]  # only once written: a push that failed is made up next time

    def _timings(self, histogram: Histogram, route: str, timings: Timings) -> None:
        now = [*timings.counts, timings.total]
        pushed = self._done.setdefault((histogram, route), [0.0] * len(now))  # updated as each part is written
        delta = [a - b for a, b in zip(now, pushed, strict=True)]
        if any(delta):
            child = histogram.labels(route)
            # prometheus-client can only observe one value at a time; its per-bucket values take
            # an increment (the same objects `observe` increments, one bucket each, not cumulative).
            for i, (bucket, count) in enumerate(zip(child._buckets, delta, strict=False)):
                if count:
                    bucket.inc(count)
                    pushed[i] += count
            child._sum.inc(delta[-1])
            pushed[-1] = now[-1]

    def push(self) -> None:
        m = self._metrics
        for key, series in list(m._series.items()):
            self._count(self.requests, key, ("requests", key), series.count)
        for route, (total, upstream) in list(m._timings.items()):
            self._timings(self.duration, route, total)
            self._timings(self.upstream, route, upstream)
        for outcome, value in list(m._auth.items()):
            self._count(self.auth, outcome, ("auth", outcome), value)
        for result, value in m._decisions.items():
            self._count(self.decisions, (result,), ("decisions", result), value)
        self.in_flight.set(m.in_flight)


def multiprocess_dir() -> str | None:
    """Set (by the workers supervisor) when several processes serve one gateway."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def scrape_registry(registry: CollectorRegistry) -> CollectorRegistry:
    """What `/metrics` renders: this process's registry, or with several workers the sum over
    all of them from prometheus-client's multiprocess files (any worker may answer a scrape)."""
    if multiprocess_dir() is None:
        return registry
    from prometheus_client import multiprocess

    merged = CollectorRegistry()
    multiprocess.MultiProcessCollector(merged)
    return merged
