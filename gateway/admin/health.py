"""Liveness and readiness, for load balancers and orchestrators.

`/healthz` only says the process answers; `/readyz` asks each dependency (store, rate-limit
backend, listeners) and names what is failing, so a failing probe explains itself.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web

ReadinessCheck = tuple[str, Callable[[], Awaitable[None]]]
READINESS_CHECKS: web.AppKey[Sequence[ReadinessCheck]] = web.AppKey("readiness_checks", Sequence)

_CHECK_TIMEOUT = 2.0


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _run(check: Callable[[], Awaitable[None]]) -> str | None:
    try:
        await asyncio.wait_for(check(), _CHECK_TIMEOUT)
    except asyncio.TimeoutError:
        return f"no answer within {_CHECK_TIMEOUT:g} s"
    except Exception as exc:  # any failure is a readiness answer, never a 500
        return str(exc) or type(exc).__name__
    return None


async def readyz(request: web.Request) -> web.Response:
    checks = request.app.get(READINESS_CHECKS, ())
    results = await asyncio.gather(*(_run(fn) for _, fn in checks))
    report = {name: (problem or "ok") for (name, _), problem in zip(checks, results)}
    failing = [(name, problem) for (name, _), problem in zip(checks, results) if problem]
    if not failing:
        return web.json_response({"status": "ready", "checks": report})
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
