"""Attempts at the portal's unauthenticated doors, counted per account and per client address.

On the gateway's own sliding-window limiter (`gateway/ratelimit/`, memory or Redis: with Redis
the counts hold across workers and instances), with a window of its own (15 minutes). Every
attempt counts, before any password is looked at, so a guesser past the limit learns nothing
more, even with the right password; the answer is 429 `RATE_LIMITED` with `Retry-After`.
Accounts are counted by a hash of their email, so no address is written to Redis.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from gateway.access.failures import client_key
from gateway.errors import RateLimited
from gateway.ratelimit import RateLimiter

WINDOW = 900.0


@dataclass(frozen=True, slots=True)
class Door:
    name: str
    per_account: int
    per_address: int


SIGN_IN = Door("signin", per_account=10, per_address=50)
RESET_REQUEST = Door("reset", per_account=3, per_address=10)  # each may send a mail
LINK = Door("link", per_account=0, per_address=20)             # each costs an argon2 hash


class DoorThrottle:
    def __init__(self, limiter: RateLimiter) -> None:
        self._limiter = limiter

    async def attempt(self, door: Door, client_ip: str, account: str | None = None) -> None:
        """Count one attempt; 429 when this account or this address has had too many lately."""
        checks = [(f"{door.name}:a:{client_key(client_ip)}", door.per_address)]
        if account is not None and door.per_account:
            digest = hashlib.sha256(account.strip().lower().encode("utf-8", "surrogatepass")).hexdigest()[:32]
            checks.append((f"{door.name}:u:{digest}", door.per_account))
        decision = await self._limiter.hit(checks)
        if not decision.allowed:
            raise RateLimited("too many attempts: wait before trying again",
                              headers={"Retry-After": str(max(1, decision.retry_after))})

    async def close(self) -> None:
        await self._limiter.close()
