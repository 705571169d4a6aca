"""What happens when a proxied request starts and ends: metrics, call log, access log.

One object the handler calls twice per request, so the handler knows nothing of what is
recorded. The access log keeps a request's fields only when it is sampled and the log is on;
the line itself is rendered with its batch (accesslog.py).
"""

from __future__ import annotations

import random
import time

from gateway.config import LoggingConfig
from gateway.exchange import RequestScope
from gateway.observability.accesslog import AccessLog
from gateway.observability.metrics import Metrics
from gateway.observability.recorder import Recorder


class RequestObserver:
    def __init__(
        self, metrics: Metrics | None, recorder: Recorder, logging_cfg: LoggingConfig, access_log: AccessLog | None
    ) -> None:
        self._metrics = metrics
        self._recorder = recorder
        self._access_log = access_log if logging_cfg.access_log else None
        self._sample = logging_cfg.access_log_sample_rate

    def started(self) -> None:
        if self._metrics is not None:
            self._metrics.in_flight += 1

    def finished(self, scope: RequestScope) -> None:
        done = time.perf_counter()
        if self._metrics is not None:
            self._metrics.observe(scope, done)
        self._recorder.call(scope)
        if self._access_log is not None and (self._sample >= 1.0 or random.random() < self._sample):
            self._access(self._access_log, scope, done)

    @staticmethod
    def _access(access_log: AccessLog, scope: RequestScope, done: float) -> None:
        identity = scope.identity
        access_log.request(
            scope.request_id, scope.route.name if scope.route else None, scope.method, scope.path, scope.status,
            scope.error_code, scope.started, scope.upstream_started, done,
            identity.key_id if identity else None, identity.tenant_id if identity else None,
            scope.auth_method, scope.client_ip,
        )
