"""`docs/errors.md`: every contract error code, from the classes in `gateway/errors.py`."""

from __future__ import annotations

from gateway import errors
from gateway.errors import GatewayError
from gateway.reference.markdown import GENERATED, code, table


def error_classes() -> list[type[GatewayError]]:
    """Each class that names a code of its own (the shared bases without one are left out)."""
    found: list[type[GatewayError]] = []
    pending: list[type[GatewayError]] = [GatewayError]
    while pending:
        cls = pending.pop()
        if "code" in vars(cls) or cls is GatewayError:
            found.append(cls)
        pending.extend(cls.__subclasses__())
    return sorted({c.code: c for c in found}.values(), key=lambda c: (c.status, c.code))


def render() -> str:
    rows = []
    for cls in error_classes():
        headers = ", ".join(f"`{k}: {v}`" for k, v in cls.default_headers.items())
        rows.append((cls.status, code(cls.code), cls.default_message, headers))
    lines = [
        "# Error codes",
        "",
        GENERATED,
        "",
        "Every refusal, on the proxy listener, the admin API and the portal alike, is JSON:",
        "",
        "```json",
        '{"error": {"code": "RATE_LIMITED", "message": "...", "details": []}}',
        "```",
        "",
        "with `X-Request-Id` in the answer. `message` is for people and may change; `code` is the",
        "interface. `details` names each broken field of a 422 (`{\"field\", \"issue\"}`), else is empty.",
        f"The codes ({errors.__name__.replace('.', '/')}.py, one class each), by status:",
        "",
        *table(("status", "code", "default message", "headers"), rows),
        "",
    ]
    return "\n".join(lines)
