"""Where a webhook may be sent: the SSRF defence, checked at creation and at every connection.

A URL a tenant typed in must not reach the gateway's own network: `https://` only (unless
`allow_http`), and every address its host resolves to must be globally routable: no loopback,
private, link-local, multicast, unspecified or reserved address, in IPv4 or IPv6, nor an IPv6
form that carries an IPv4 one (mapped, 6to4, Teredo, NAT64), unless it lies in
`allowed_networks`. The check runs in the resolver the delivery client connects through, so the
addresses checked are the addresses connected to: no DNS-rebinding window between the two.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from gateway.events.dns import WebhookResolver

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URL = 2048
# IPv6 prefixes that route to an IPv4 address written inside them
_EMBEDDING = tuple(ipaddress.IPv6Network(n) for n in ("2002::/16", "2001::/32", "64:ff9b::/96", "64:ff9b:1::/48"))


class AddressRefused(OSError):
    """A destination the policy does not allow (an OSError, so a connector reports it as a
    failed resolution and never connects)."""


def refusal(address: Address, allowed: Sequence[Network] = ()) -> str | None:
    """Why `address` may not be connected to, or None when it may."""
    plain: Address = address
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        plain = address.ipv4_mapped
    if any(a in net for net in allowed for a in {address, plain} if a.version == net.version):
        return None
    kind = ("unspecified" if plain.is_unspecified else "loopback" if plain.is_loopback
            else "link-local" if plain.is_link_local else "multicast" if plain.is_multicast
            else "private" if plain.is_private else "reserved" if plain.is_reserved
            else "IPv6 carrying an IPv4 address" if any(plain in net for net in _EMBEDDING if plain.version == 6)
            else "not globally routable" if not plain.is_global else None)
    if kind is None:
        return None
    mapped = " (IPv4-mapped)" if plain is not address else ""
    return f"{address} is {kind}{mapped}"


def ip_literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    allowed_networks: tuple[Network, ...] = ()
    allow_http: bool = False

    def url_problem(self, url: str) -> str | None:
        """What is wrong with a URL on its face (no DNS), or None."""
        if not isinstance(url, str) or not url or len(url) > MAX_URL:
            return f"must be a URL of at most {MAX_URL} characters"
        if not url.isprintable() or any(c.isspace() for c in url):
            return "must not contain spaces or control characters"
        try:
            parsed = URL(url)
            port = parsed.port
        except (ValueError, TypeError):
            return "is not a valid URL"
        schemes = ("https", "http") if self.allow_http else ("https",)
        if parsed.scheme not in schemes:
            return "must start with https://" + (" or http://" if self.allow_http else "")
        if not parsed.host:
            return "must name a host"
        if parsed.user is not None or parsed.password is not None:
            return "must not carry a user name or password"
        if port is None or not 0 < port < 65536:
            return "has an invalid port"
        return None

    def check_address(self, address: Address) -> None:
        reason = refusal(address, self.allowed_networks)
        if reason is not None:
            raise AddressRefused(f"address refused: {reason}")

    async def check_url(self, url: str, resolver: AbstractResolver) -> None:
        """The creation-time check: the URL's form, then every address its host has now.
        Raises ValueError with the reason."""
        problem = self.url_problem(url)
        if problem is not None:
            raise ValueError(problem)
        parsed = URL(url)
        host, port = parsed.raw_host or "", parsed.port or 443
        literal = ip_literal(host)
        try:
            if literal is not None:
                self.check_address(literal)
            else:
                await VettingResolver(self, resolver).resolve(host, port, socket.AF_UNSPEC)
        except AddressRefused as exc:
            raise ValueError(str(exc)) from None
        except OSError as exc:
            raise ValueError(f"host {host} cannot be resolved: {exc.strerror or exc}") from None


class VettingResolver(AbstractResolver):
    """Resolves through `inner`, and refuses a name if any of its addresses is refused: the
    connector connects only to what this returns."""

    def __init__(self, policy: AddressPolicy, inner: AbstractResolver | None = None) -> None:
        self.policy = policy
        self._inner = inner if inner is not None else WebhookResolver()  # never the loop's own threads

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        if not found:
            raise OSError(f"{host} has no address")
        for result in found:
            address = ip_literal(result["host"])
            if address is None:
                raise AddressRefused(f"address refused: {host} resolved to {result['host']!r}")
            reason = refusal(address, self.policy.allowed_networks)
            if reason is not None:
                raise AddressRefused(f"address refused: {host} resolves to {reason}")
        return found

    async def close(self) -> None:
        await self._inner.close()
