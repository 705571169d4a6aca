"""Who is really on the other end: TLS peers, trusted TLS-terminating proxies, everyone else.

`X-Forwarded-Proto` and `X-Forwarded-For` are believed only from `server.trusted_proxies`;
from anyone else they are replaced, so a client can neither fake HTTPS nor its address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.errors import HttpsRequired
from gateway.http.messages import Request

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(slots=True)  # one per request: a frozen init costs twice as much
class Peer:
    client_ip: str
    forwarded_for: str
    forwarded_host: str


class TransportPolicy:
    """Decides per connection whether a request counts as HTTPS, and who sent it."""

    _CACHE_LIMIT = 4096

    def __init__(self, trusted: Sequence[Network]) -> None:
        self._trusted = tuple(trusted)
        self._verdicts: dict[str, bool] = {}

    def is_trusted(self, address: str | None) -> bool:
        if not address or not self._trusted:
            return False
        verdict = self._verdicts.get(address)
        if verdict is None:
            try:
                ip = ipaddress.ip_address(address)
            except ValueError:
                verdict = False
            else:
                verdict = any(ip in net for net in self._trusted)
            if len(self._verdicts) >= self._CACHE_LIMIT:
                self._verdicts.clear()
            self._verdicts[address] = verdict
        return verdict

    def peer(self, request: Request, *, plain: bool) -> Peer:
        """The request's real client; on the plain listener, refuse all but trusted HTTPS hops."""
        remote = request.remote or ""
        headers = request.headers
        host = headers.get("Host", "")
        if self.is_trusted(remote):
            if plain:
                proto = headers.get("X-Forwarded-Proto", "")
                if proto.partition(",")[0].strip().lower() != "https":
                    raise HttpsRequired()
            chain = headers.get("X-Forwarded-For", "").strip()
            if chain:
                client = chain.rpartition(",")[2].strip() or remote
                return Peer(client, f"{chain}, {remote}", headers.get("X-Forwarded-Host", host))
            return Peer(remote, remote, headers.get("X-Forwarded-Host", host))
        if plain:
            raise HttpsRequired()
        return Peer(remote, remote, host)
