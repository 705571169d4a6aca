"""What `/readyz` asks of a running gateway (admin/health.py runs the checks and reports them).

- `store`: the key store answers;
- `ratelimit`: the limiter's backend answers; configured to admit while it is down
  (`ratelimit.on_backend_error: allow`), a backend that does not answer is `degraded` (still
  ready: requests are served, without limits), with `deny` it is not ready (every request is a 429);
- `records`: the audit trail, call log and last-used writes are not failing (a locked,
  read-only or full database makes them pile up in memory).
"""

from __future__ import annotations

from gateway.admin.health import Check, Degraded, ReadinessCheck
from gateway.keystore.base import KeyStore
from gateway.keystore.lastused import LastUsedRecorder
from gateway.observability.recorder import Recorder
from gateway.ratelimit import RateLimiter


def readiness_checks(
    *, store: KeyStore, limiter: RateLimiter, admit_when_down: bool, recorder: Recorder, last_used: LastUsedRecorder
) -> list[ReadinessCheck]:
    return [
        ("store", store.ping),
        ("ratelimit", _limiter_ready(limiter, admit_when_down)),
        ("records", _records_ready(recorder, last_used)),
    ]


def _limiter_ready(limiter: RateLimiter, admit_when_down: bool) -> Check:
    async def check() -> Degraded | None:
        try:
            await limiter.ping()
        except Exception as exc:
            if admit_when_down:  # configured to admit while the backend is down: still serving
                return Degraded(f"{exc}; requests are admitted without limits (on_backend_error: allow)")
            raise
        return None

    return check


def _records_ready(recorder: Recorder, last_used: LastUsedRecorder) -> Check:
    async def check() -> None:
        failing = [f"{b.name}: {b.last_error}" for b in (recorder.audit_buffer, recorder.call_buffer)
                   if b.last_error is not None]
        if last_used.last_error is not None:
            failing.append(f"last-used times: {last_used.last_error}")
        if failing:
            raise RuntimeError("cannot write " + "; ".join(failing))

    return check
