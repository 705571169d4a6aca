"""The request figures kept as plain numbers render exactly as prometheus-client's own metrics
would, in one process and pushed into its multiprocess files."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gateway.exchange import RequestScope
from gateway.observability.metrics import BUCKETS, Metrics
from tests.unit.test_routing import table

DURATIONS = [0.0, 0.001, 0.0010001, 0.0025, 0.3, 1.0, 29.9, 30.0, 31.0, 120.0] + [
    random.Random(7).expovariate(50) for _ in range(500)
]


API_ROUTE = table([{"name": "api", "path": "/api", "upstream": "http://127.0.0.1:1"}]).routes[0]


def scope(started: float, status: int = 200) -> RequestScope:
    s = RequestScope(request_id="r", started=started, method="GET")
    s.route = API_ROUTE  # a real route: a compiled RequestScope checks the type of what it is given
    s.status = status
    s.upstream_started = started
    return s


def buckets(text: str, family: str) -> dict[str, float]:
    for f in text_string_to_metric_families(text):
        if f.name == family:
            return {s.labels.get("le", s.name): s.value for s in f.samples if s.labels.get("route") == "api"}
    raise AssertionError(f"{family} not scraped")


def reference() -> dict[str, float]:
    registry = CollectorRegistry()
    histogram = Histogram("gateway_request_duration_seconds", "d", ["route"], buckets=BUCKETS, registry=registry)
    for seconds in DURATIONS:
        histogram.labels("api").observe(seconds)
    scraped = buckets(generate_latest(registry).decode(), "gateway_request_duration_seconds")
    scraped.pop("gateway_request_duration_seconds_created", None)
    return scraped


def test_buckets_match_prometheus_client_in_one_process() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    observe(metrics, DURATIONS)
    text = generate_latest(registry).decode()
    assert buckets(text, "gateway_request_duration_seconds") == pytest.approx(reference())
    assert buckets(text, "gateway_upstream_duration_seconds") == pytest.approx(
        {k.replace("request_", "upstream_"): v for k, v in reference().items()})
    requests = {tuple(sorted(s.labels.items())): s.value for f in text_string_to_metric_families(text)
                if f.name == "gateway_requests" for s in f.samples}
    assert requests == {(("code", "200"), ("method", "GET"), ("route", "api"), ("status_class", "2xx")): len(DURATIONS)}
    assert "gateway_requests_in_flight 0.0" in text


def test_status_codes_are_labels_bounded_to_the_known_ones_else_their_class() -> None:
    """The gateway's own statuses and common upstream ones are themselves; any other code an
    upstream sends counts under its class, so a route and method have a bounded set of series."""
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    for status in (200, 201, 204, 304, 401, 403, 404, 413, 429, 431, 502, 503, 504, *range(100, 600)):
        metrics.in_flight += 1
        metrics.observe(scope(0.0, status), 0.001)
    codes: dict[str, float] = {}
    for f in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in f.samples if f.name == "gateway_requests" else ():
            assert s.labels["code"][0] == s.labels["status_class"][0]
            codes[s.labels["code"]] = codes.get(s.labels["code"], 0) + s.value
    assert codes["200"] == codes["401"] == codes["413"] == codes["431"] == codes["504"] == 2
    assert codes["4xx"] == 100 - len([c for c in codes if c.startswith("4") and c != "4xx"])  # 418, 499, ...
    assert codes["499"] == 1 and "418" not in codes and "299" not in codes and "599" not in codes
    assert len(codes) <= 40


@pytest.fixture
def shared_files(tmp_path, monkeypatch) -> Iterator[Callable[[], str]]:
    """Workers' mode: prometheus-client's multiprocess files in a temporary directory; the
    fixture's value renders what a scrape would merge from them."""
    from prometheus_client import multiprocess, values

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    values.ValueClass = values.get_value_class()  # prometheus-client picks its value class at import

    def scrape() -> str:
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged, path=str(tmp_path))
        return generate_latest(merged).decode()

    yield scrape
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    values.ValueClass = values.get_value_class()


def observe(metrics: Metrics, durations: list[float]) -> None:
    for seconds in durations:
        metrics.in_flight += 1
        metrics.observe(scope(0.0), seconds)


def requests_total(text: str) -> float:
    return sum(s.value for f in text_string_to_metric_families(text) if f.name == "gateway_requests"
               for s in f.samples)


def test_pushed_increments_add_up_in_the_multiprocess_files(shared_files) -> None:
    metrics = Metrics(CollectorRegistry(), multiprocess=True)
    half = len(DURATIONS) // 2
    observe(metrics, DURATIONS[:half])
    metrics.push()
    metrics.push()  # nothing new: nothing added twice
    observe(metrics, DURATIONS[half:])
    metrics.push()
    text = shared_files()
    assert buckets(text, "gateway_request_duration_seconds") == pytest.approx(reference())
    assert requests_total(text) == len(DURATIONS)


def test_a_push_that_fails_is_made_up_by_the_next(shared_files, monkeypatch) -> None:
    metrics = Metrics(CollectorRegistry(), multiprocess=True)
    observe(metrics, DURATIONS[:5])
    counter = metrics._pushed.requests  # type: ignore[union-attr]
    real_labels = counter.labels

    def broken(*labels: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(counter, "labels", broken)
    with pytest.raises(OSError):
        metrics.push()
    monkeypatch.setattr(counter, "labels", real_labels)
    observe(metrics, DURATIONS[5:12])
    metrics.push()
    assert requests_total(shared_files()) == 12
