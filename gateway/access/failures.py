"""Wrong credentials per client address: past a budget, the answer (the same 401) waits.

Guessing keys, or flooding the gateway with made-up ones, then costs the client time instead of
costing the gateway CPU: each of its connections gets one answer per `delay`, so what it can
make the gateway do is bounded by how many connections it holds, while its valid requests on
other connections and every other client go on as before. This is nginx's `limit_req` with
delay, or a fail2ban jail that slows rather than bans, applied to failed authentication only:
a well-behaved client never pays for it, and a client that refuses to stop is held, not refused,
so the answer it gets stays the contract's 401.

A token bucket per address, in memory and per worker (a client's budget is per process),
touched only when a credential fails: the valid-key path does no work here.
"""

from __future__ import annotations

import ipaddress
import random
import time
from collections.abc import Callable

_MAX_CLIENTS = 65_536  # addresses remembered; the least recently failing are forgotten first


def client_key(address: str) -> str:
    """An IPv6 client is its /64 (one host usually holds all of one), an IPv4 one its address."""
    if ":" not in address:
        return address
    try:
        ip = ipaddress.IPv6Address(address.split("%", 1)[0])
    except ValueError:
        return address
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.IPv6Network((ip, 64), strict=False).network_address) + "/64"


class AuthFailureThrottle:
    def __init__(
        self,
        per_minute: int,
        delay: float,
        *,
        max_clients: int = _MAX_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._burst = float(per_minute)  # a minute's budget may be spent at once
        self._refill = per_minute / 60.0
        self._delay = delay
        self._max = max_clients
        self._clock = clock
        self._jitter = jitter
        self._buckets: dict[str, list[float]] = {}  # address -> [tokens, when]
        self.held = 0  # answers delayed so far (exported as a metric)

    def failed(self, client_ip: str) -> float:
        """Count one failed credential from this address; how long its answer should wait."""
        now = self._clock()
        client_ip = client_key(client_ip)
        buckets = self._buckets
        bucket = buckets.pop(client_ip, None)  # re-inserted below: dict order is recency
        if bucket is None:
            if len(buckets) >= self._max:
                del buckets[next(iter(buckets))]
            bucket = [self._burst, now]
        else:
            bucket[0] = min(self._burst, bucket[0] + (now - bucket[1]) * self._refill)
            bucket[1] = now
        buckets[client_ip] = bucket
        if bucket[0] >= 1.0:
            bucket[0] -= 1.0
            return 0.0
        self.held += 1
        # 0.5-1.5 × the delay, the mean unchanged: a flood's held connections would otherwise all
        # come back in the same instant each round and queue everyone else's requests behind them
        return self._delay * (0.5 + self._jitter())

    def __len__(self) -> int:
        return len(self._buckets)
