"""Rate-limit decisions as response headers (the X-RateLimit-* set, optionally IETF fields)."""

from __future__ import annotations

import math
import time

from gateway.ratelimit import Decision


def limit_headers(decision: Decision, *, ietf: bool) -> list[tuple[str, str]]:
    reset = math.ceil(decision.reset_at)
    headers = [
        ("X-RateLimit-Limit", str(decision.limit)),
        ("X-RateLimit-Remaining", str(decision.remaining)),
        ("X-RateLimit-Reset", str(reset)),
    ]
    if not decision.allowed:
        headers.append(("Retry-After", str(max(1, decision.retry_after))))
    if ietf:
        # draft-ietf-httpapi-ratelimit-headers: policy quota and window; remaining and reset delta.
        headers.append(("RateLimit-Policy", f'"key";q={decision.limit};w=60'))
        delta = max(0, math.ceil(decision.reset_at - time.time()))  # at most the window, as `w` says
        headers.append(("RateLimit", f'"key";r={decision.remaining};t={delta}'))
    return headers
