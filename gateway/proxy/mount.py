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


def initials_of(prefix: str) -> str:
    """The first letter of `prefix` (after its `/`) in both cases."""
    first = prefix[1:2]
    return first.lower() + first.upper()


@dataclass(frozen=True, slots=True)
class Mount:
    """`prefix` and everything below it, by whole segments, go to `upstream` with the path unchanged."""

    prefix: str
    upstream: Upstream
    timeout: float = 30.0          # to the answer's head (a sign-in's argon2 runs in it)
    idle_timeout: float = 60.0
    # The path as the logs and the call log show it, for every request (a spelling of the prefix
    # that does not reach the mount is still logged), asked only of paths that start with one of
    # `initials` (the prefix's first letter in either case: `initials_of`) or hold an escape.
    redact: Callable[[str], str] = field(default=_as_is)
    initials: str = ""

    def shown(self, path: str) -> str:
        """`path` as records show it: cheap for most paths (one character and one `in`)."""
        return self.redact(path) if path[1:2] in self.initials or "%" in path else path

    def covers(self, path: str) -> bool:
        """Called only when `path` starts with `prefix`: whether it is the prefix or below it."""
        n = len(self.prefix)
        return len(path) == n or path[n] == "/"
