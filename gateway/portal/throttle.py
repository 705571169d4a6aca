"""Attempts at the portal's unauthenticated doors, counted per account and per client address.

On the gateway's own sliding-window limiter (`gateway/ratelimit/`, memory or Redis: with Redis
the counts hold across workers and instances), with a window of its own (15 minutes). Every
attempt takes its places before any password is looked at, so a guesser past the limit learns
nothing more, even with the right password, and guesses sent at once cannot slip past it; the
answer is 429 `RATE_LIMITED` with `Retry-After`.

A sign-in that succeeds hands its account's place back (`succeeded`): an account's limit counts
failures only, or anyone sending sign-ins for a victim's email (or the victim, signing in often)
would lock the victim out. Its address's place stays taken: each attempt costs an argon2 hash,
and an address's budget bounds that. A success does not wipe the account's earlier failures
either, which would hand a guesser a fresh allowance each time the victim signs in.
Accounts are counted by a hash of their email, so no address is written to Redis.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from gateway.access.failures import client_key
from gateway.errors import RateLimited
from gateway.ratelimit.base import Refundable

WINDOW = 900.0


@dataclass(frozen=True, slots=True)
class Door:
    name: str
    per_account: int
    per_address: int


SIGN_IN = Door("signin", per_account=10, per_address=50)  # per account: failures (`succeeded`)
RESET_REQUEST = Door("reset", per_account=3, per_address=10)  # each may send a mail
LINK = Door("link", per_account=0, per_address=20)             # each costs an argon2 hash


def _account_bucket(door: Door, account: str) -> str:
    digest = hashlib.sha256(account.strip().lower().encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{door.name}:u:{digest}"


class DoorThrottle:
    def __init__(self, limiter: Refundable) -> None:
        self._limiter = limiter

    async def attempt(self, door: Door, client_ip: str, account: str | None = None) -> None:
        """Count one attempt; 429 when this account or this address has had too many lately."""
        checks = [(f"{door.name}:a:{client_key(client_ip)}", door.per_address)]
        if account is not None and door.per_account:
            checks.append((_account_bucket(door, account), door.per_account))
        decision = await self._limiter.hit(checks)
        if not decision.allowed:
            raise RateLimited("too many attempts: wait before trying again",
                              headers={"Retry-After": str(max(1, decision.retry_after))})

    async def succeeded(self, door: Door, account: str) -> None:
        """The attempt `attempt` counted for this account worked: it is no failure of the account's."""
        if door.per_account:
            await self._limiter.refund(_account_bucket(door, account))

    async def close(self) -> None:
        await self._limiter.close()
