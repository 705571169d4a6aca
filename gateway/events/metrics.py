"""Webhook figures for Prometheus: deliveries by result, attempt latency, the outbox's backlog."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

RESULTS = ("delivered", "retrying", "failed")
_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class WebhookMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.deliveries = Counter(
            "gateway_webhook_deliveries", "Webhook delivery attempts by result (retrying: failed, will be retried; "
            "failed: failed and given up).", ["result"], registry=registry)
        for result in RESULTS:
            self.deliveries.labels(result)
        self.attempt_seconds = Histogram(
            "gateway_webhook_attempt_duration_seconds", "Time of one webhook delivery attempt.",
            buckets=_BUCKETS, registry=registry)
        # the same figure on every instance (it is read from the shared outbox): max, not sum
        self.backlog = Gauge("gateway_webhook_backlog", "Webhook deliveries waiting in the outbox (pending).",
                             registry=registry, multiprocess_mode="max")
        self.oldest = Gauge("gateway_webhook_oldest_pending_seconds",
                            "Age of the oldest pending webhook delivery (0 when none).",
                            registry=registry, multiprocess_mode="max")
