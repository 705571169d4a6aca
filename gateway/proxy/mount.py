"""A path the gateway serves itself, behind its own proxy listener (the tenant portal).

The application behind it listens on a private Unix socket of the gateway process and is
forwarded to like any upstream, so the listener's TLS, limits, timeouts, access log and drain on
stop apply to it unchanged. It learns who is asking only from what the gateway sets: the client's
own forwarding and `X-Gateway-*` headers are dropped first (`headers.py`), as for every upstream.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.routing import Upstream

CLIENT_HEADER = "X-Gateway-Client-Ip"  # the client's address, as the gateway decided it


def unix_upstream(socket_path: str) -> Upstream:
    """An upstream on a Unix socket: the pool connects to `host`, a path."""
    return Upstream(scheme="unix", host=socket_path, port=0, base_path="", origin=f"unix:{socket_path}",
                    host_header="localhost")


def _as_is(path: str) -> str:
    return path


@dataclass(frozen=True, slots=True)
class Mount:
    """`prefix` and everything below it, by whole segments, go to `upstream` with the path unchanged."""

    prefix: str
    upstream: Upstream
    timeout: float = 30.0          # to the answer's head (a sign-in's argon2 runs in it)
    idle_timeout: float = 60.0
    redact: Callable[[str], str] = field(default=_as_is)  # the path as logs and the call log show it

    def covers(self, path: str) -> bool:
        """Called only when `path` starts with `prefix`: whether it is the prefix or below it."""
        n = len(self.prefix)
        return len(path) == n or path[n] == "/"
