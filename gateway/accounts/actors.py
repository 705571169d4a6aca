"""Who makes a change to tenants, users and keys, and where the record of it goes: the audit sink
and the propagator that carries it to the other instances' caches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made a change: `admin` (admin token), `cli`, `system`, or a person signed in to the
    portal (`user:<id>`, with their email), and from where."""

    name: str
    source_ip: str | None = None
    email: str | None = None

    @classmethod
    def person(cls, user_id: str, email: str, source_ip: str | None = None) -> Actor:
        return cls(f"user:{user_id}", source_ip, email)


SYSTEM = Actor("system")
CLI = Actor("cli")  # the `gateway tenants|users|keys` commands


class AuditSink(Protocol):
    def __call__(
        self,
        actor: Actor,
        action: str,
        target_type: str,
        target_id: str,
        *,
        tenant_id: str | None = None,
        key_name: str | None = None,
        details: dict[str, str] | None = None,
    ) -> None: ...


class Propagator(Protocol):
    """Carries a change to the other gateway instances (their caches)."""

    def announce(self, kind: str, target: str) -> None: ...
    async def publish(self, kind: str, target: str, *, wait: float = 0.0) -> Any: ...


def no_audit(*args: Any, **kwargs: Any) -> None:
    return None
