"""The SSRF policy: which URLs and addresses a webhook may reach, at creation and at connection."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import threading
from typing import Any

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from gateway.events.addresses import AddressPolicy, AddressRefused, VettingResolver, refusal
from gateway.events.dns import WebhookResolver

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)


class FixedResolver(AbstractResolver):
    """DNS as a test wants it: each name resolves to the addresses given (or changes later)."""

    def __init__(self, names: dict[str, list[str]]) -> None:
        self.names = names
        self.asked: list[str] = []

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        self.asked.append(host)
        if host not in self.names:
            raise OSError(f"unknown host {host}")
        return [{"hostname": host, "host": a, "port": port, "family": socket.AF_INET6 if ":" in a else socket.AF_INET,
                 "proto": 0, "flags": 0} for a in self.names[host]]

    async def close(self) -> None:
        pass


@pytest.mark.parametrize("address, kind", [
    ("127.0.0.1", "loopback"), ("127.9.9.9", "loopback"), ("10.0.0.1", "private"), ("172.16.5.4", "private"),
    ("192.168.1.1", "private"), ("169.254.169.254", "link-local"), ("224.0.0.251", "multicast"),
    ("0.0.0.0", "unspecified"), ("100.64.0.1", "not globally routable"), ("240.0.0.1", "private"),
    ("::1", "loopback"), ("::", "unspecified"), ("fe80::1", "link-local"), ("fc00::1", "private"),
    ("ff02::1", "multicast"), ("::ffff:127.0.0.1", "loopback (IPv4-mapped)"), ("::ffff:10.0.0.1", "private (IPv4-mapped)"),
    ("2002:7f00:1::", "IPv6 carrying an IPv4 address"), ("64:ff9b::7f00:1", "reserved"),
])
def test_non_public_addresses_are_refused(address: str, kind: str) -> None:
    assert refusal(ipaddress.ip_address(address)) == f"{ipaddress.ip_address(address)} is {kind}"


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_pass(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


def test_the_allow_list_lifts_the_refusal_for_its_networks_only() -> None:
    assert refusal(ipaddress.ip_address("127.0.0.1"), LOOPBACK) is None
    assert refusal(ipaddress.ip_address("::ffff:127.0.0.1"), LOOPBACK) is None  # the same address
    assert refusal(ipaddress.ip_address("10.0.0.1"), LOOPBACK) is not None
    assert refusal(ipaddress.ip_address("::1"), LOOPBACK) is not None


@pytest.mark.parametrize("url, problem", [
    ("http://hooks.example.com/x", "must start with https://"),
    ("ftp://hooks.example.com/x", "must start with https://"),
    ("https://", "must name a host"),
    ("https://user:pw@hooks.example.com/", "must not carry a user name or password"),
    ("https://hooks.example.com/a b", "must not contain spaces or control characters"),
    ("https://hooks.example.com/" + "a" * 2100, "must be a URL of at most 2048 characters"),
    ("https://hooks.example.com:99999/", "is not a valid URL"),
    ("https://hooks.example.com:0/", "has an invalid port"),
    ("https://[::1/", "is not a valid URL"),
    (42, "must be a URL of at most 2048 characters"),
])
def test_url_form(url: Any, problem: str) -> None:
    assert AddressPolicy().url_problem(url) == problem


def test_http_only_when_allowed() -> None:
    assert AddressPolicy(allow_http=True).url_problem("http://hooks.example.com/x") is None
    assert AddressPolicy().url_problem("https://hooks.example.com/x") is None


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/hook", "https://10.0.0.1/hook", "https://[::1]/hook", "https://[::ffff:127.0.0.1]/hook",
    "https://localhost/hook", "https://internal.example/hook", "https://mixed.example/hook",
])
async def test_creation_refuses_urls_that_reach_inside(url: str) -> None:
    dns = FixedResolver({"localhost": ["127.0.0.1", "::1"], "internal.example": ["127.0.0.1"],
                         "mixed.example": ["8.8.8.8", "10.1.2.3"]})
    with pytest.raises(ValueError) as refused:
        await AddressPolicy(allow_http=True).check_url(url, dns)
    assert "refused" in str(refused.value) or "https" in str(refused.value)


async def test_creation_with_the_real_resolver_refuses_localhost() -> None:
    with pytest.raises(ValueError, match="loopback"):
        await AddressPolicy().check_url("https://localhost:8443/hook", WebhookResolver())
    with pytest.raises(ValueError, match="cannot be resolved"):
        await AddressPolicy().check_url("https://no-such-host.invalid/hook", WebhookResolver())


async def test_webhook_lookups_wait_for_a_thread_of_their_own_and_a_caller_may_give_up() -> None:
    """At most `threads` lookups at once; a caller that stops waiting (a timeout) before its
    turn starts none, and one that stops during its lookup frees the thread only when the
    lookup ends (the thread is still busy until then)."""
    release = threading.Event()
    asked: list[str] = []

    def held(host: str, *args: Any) -> list[tuple[Any, ...]]:
        asked.append(host)
        release.wait(10)
        return socket.getaddrinfo("127.0.0.1", *args)

    resolver = WebhookResolver(threads=1, lookup=held)
    first = asyncio.ensure_future(resolver.resolve("first.example", 443))
    second = asyncio.ensure_future(resolver.resolve("second.example", 443))
    while not asked:
        await asyncio.sleep(0.01)  # polling the lookups begun
    second.cancel()
    third = asyncio.ensure_future(resolver.resolve("third.example", 443))
    first.cancel()  # gave up during its lookup: the thread stays taken until it ends
    await asyncio.sleep(0)  # the cancellations are delivered
    assert first.cancelled() and second.cancelled() and resolver.running == 1
    release.set()
    found = await asyncio.wait_for(third, 10)
    assert asked == ["first.example", "third.example"]  # the cancelled second never started
    assert {(r["hostname"], r["host"], r["port"]) for r in found} == {("third.example", "127.0.0.1", 443)}
    assert resolver.running == 0


async def test_creation_accepts_public_names_and_allowed_networks() -> None:
    dns = FixedResolver({"hooks.example.com": ["93.184.216.34"], "localhost": ["127.0.0.1"]})
    await AddressPolicy().check_url("https://hooks.example.com/x", dns)
    await AddressPolicy(LOOPBACK, allow_http=True).check_url("http://localhost:9/x", dns)
    with pytest.raises(ValueError, match="cannot be resolved"):
        await AddressPolicy().check_url("https://nowhere.example/x", dns)


async def test_the_vetting_resolver_refuses_a_name_if_any_address_is_refused() -> None:
    dns = FixedResolver({"mixed.example": ["8.8.8.8", "10.1.2.3"], "fine.example": ["8.8.8.8"]})
    resolver = VettingResolver(AddressPolicy(), dns)
    with pytest.raises(AddressRefused, match="10.1.2.3 is private"):
        await resolver.resolve("mixed.example", 443)
    assert [r["host"] for r in await resolver.resolve("fine.example", 443)] == ["8.8.8.8"]
