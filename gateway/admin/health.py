"""Liveness and readiness, for load balancers and orchestrators.

`/healthz` only says the process answers; `/readyz` asks each dependency (store, rate-limit
backend, listeners) and names what is failing, so a failing probe explains itself. A check may
also answer that it serves in a lesser way (`degraded`: the rate limiter's backend is down and
requests are admitted without limits, as configured): still 200, since traffic is served by
choice, but said, so a probe or a person reading it is not told everything is fine.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import NamedTuple

from aiohttp import web

# A check returns None when its dependency is fine, a state word (such as "degraded") with a
# reason when it still serves but not fully, or raises when it is not ready.
Check = Callable[[], Awaitable["Degraded | None"]]
ReadinessCheck = tuple[str, Check]
READINESS_CHECKS: web.AppKey[Sequence[ReadinessCheck]] = web.AppKey("readiness_checks", Sequence)

_CHECK_TIMEOUT = 2.0


class Degraded(NamedTuple):
    """A dependency that is down while requests are still served (by configuration)."""

    reason: str


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _run(check: Check) -> Degraded | str | None:
    """None: fine; `Degraded`: serving without it; text: why it is not ready."""
    try:
        return await asyncio.wait_for(check(), _CHECK_TIMEOUT)
    except TimeoutError:
        return f"no answer within {_CHECK_TIMEOUT:g} s"
    except Exception as exc:  # any failure is a readiness answer, never a 500
        return str(exc) or type(exc).__name__


async def readyz(request: web.Request) -> web.Response:
    checks = request.app.get(READINESS_CHECKS, ())
    results = await asyncio.gather(*(_run(fn) for _, fn in checks))
    report = {name: "ok" if result is None else "degraded" if isinstance(result, Degraded) else result
              for (name, _), result in zip(checks, results, strict=True)}
    failing = [(name, result) for (name, _), result in zip(checks, results, strict=True) if isinstance(result, str)]
    degraded = [{"field": name, "issue": result.reason}
                for (name, _), result in zip(checks, results, strict=True) if isinstance(result, Degraded)]
    if not failing:
        body: dict[str, object] = {"status": "degraded" if degraded else "ready", "checks": report}
        if degraded:
            body["degraded"] = degraded
        return web.json_response(body)
    body = {
        "status": "unavailable",
        "checks": report,
        "error": {
            "code": "NOT_READY",
            "message": "not ready: " + ", ".join(name for name, _ in failing),
            "details": [{"field": name, "issue": problem} for name, problem in failing],
        },
    }
    return web.Response(status=503, body=json.dumps(body), content_type="application/json")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
