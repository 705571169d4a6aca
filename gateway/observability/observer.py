"""What happens when a proxied request starts and ends: metrics, call log, access log.

One object the handler calls twice per request (the `Observer` of `exchange.py`), so the handler
knows nothing of what is recorded. Metrics read the scope in place; the call log and the access
log (when it is on and the request sampled) share one `RequestRecord` of it, from which their
rows and lines are made when a batch is written (recorder.py, accesslog.py).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from gateway.config import LoggingConfig
from gateway.exchange import RequestScope
from gateway.observability.accesslog import AccessLog
from gateway.observability.metrics import Metrics
from gateway.observability.recorder import Recorder
from gateway.observability.request_record import RequestRecord


class RequestObserver:
    def __init__(
        self, metrics: Metrics | None, recorder: Recorder, logging_cfg: LoggingConfig, access_log: AccessLog | None,
        *, clock: Callable[[], float] = time.time,
    ) -> None:
        self._metrics = metrics
        self._recorder = recorder
        self._calls = recorder.calls_enabled
        self._access_log = access_log if logging_cfg.access_log else None
        self._sample = logging_cfg.access_log_sample_rate
        self._clock = clock

    def started(self) -> None:
        if self._metrics is not None:
            self._metrics.in_flight += 1

    def finished(self, scope: RequestScope) -> None:
        done = time.perf_counter()
        if self._metrics is not None:
            self._metrics.observe(scope, done)
        access_log = self._access_log
        if access_log is not None and self._sample < 1.0 and random.random() >= self._sample:
            access_log = None  # not sampled
        if self._calls or access_log is not None:
            record = self.record(scope, done)
            if self._calls:
                self._recorder.call(record)
            if access_log is not None:
                access_log.request(record)

    def record(self, scope: RequestScope, done: float) -> RequestRecord:
        route = scope.route
        return RequestRecord(
            self._clock(), done, scope.started, scope.upstream_started, scope.request_id,
            route.name if route is not None else None, scope.method, scope.path, scope.status, scope.error_code,
            scope.identity, scope.auth_method, scope.client_ip, scope.rate_limited,
        )
