"""Name lookups for webhook URLs, on threads of their own.

A webhook's host is a name a tenant typed in, so its DNS is the tenant's to make slow: a domain
whose name servers never answer holds each `getaddrinfo` for the resolver's full timeout (20 s
with glibc's defaults, A and AAAA). Resolved with the event loop's `getaddrinfo` (aiohttp's
`ThreadedResolver`), those lookups took the threads every other lookup of the process waits for
(libuv's four under uvloop, the default executor otherwise): eight webhook registrations with
such a name made every proxied request to an upstream named by host wait for a thread and get
504 until they ended. Here at most `threads` lookups run at once, each on a daemon thread (a
stuck one never holds up the process's exit), and the rest wait their turn here, where a caller
that gives up (the creation's or the attempt's timeout) leaves the queue without starting one.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult

Lookup = Callable[..., list[tuple[Any, ...]]]  # socket.getaddrinfo's signature
THREADS = 4
_FLAGS = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV  # what a ResolveResult's address is


class WebhookResolver(AbstractResolver):
    def __init__(self, threads: int = THREADS, *, lookup: Lookup | None = None) -> None:
        self._slots = asyncio.Semaphore(threads)
        self._lookup = lookup
        self.running = 0  # lookups on a thread now (a figure for tests and debugging)

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        infos = await self._getaddrinfo(host, port, family, socket.SOCK_STREAM, 0, socket.AI_ADDRCONFIG)
        found: list[ResolveResult] = []
        for fam, _, proto, _, address in infos:
            if fam == socket.AF_INET6:
                if len(address) < 4:
                    continue  # no IPv6 in this Python
                # a scope (link-local only) stays on the address: the SSRF policy refuses it by it
                resolved = f"{address[0]}%{address[3]}" if address[3] else address[0]
            elif fam == socket.AF_INET:
                resolved = address[0]
            else:
                continue
            found.append(ResolveResult(hostname=host, host=resolved, port=address[1], family=fam, proto=proto,
                                       flags=_FLAGS))
        return found

    async def _getaddrinfo(self, *args: Any) -> list[tuple[Any, ...]]:
        loop = asyncio.get_running_loop()
        await self._slots.acquire()  # a caller cancelled here has started nothing
        answer: asyncio.Future[list[tuple[Any, ...]]] = loop.create_future()

        def settle(result: list[tuple[Any, ...]] | None, error: BaseException | None) -> None:
            self.running -= 1
            self._slots.release()  # when the lookup ends, not when its caller stops waiting
            if answer.done():
                return
            if error is not None:
                answer.set_exception(error)
            else:
                answer.set_result(result or [])

        def run() -> None:
            try:
                lookup = self._lookup or socket.getaddrinfo  # read at each call, as the event loop's is
                outcome: tuple[list[tuple[Any, ...]] | None, BaseException | None] = (lookup(*args), None)
            except Exception as exc:
                outcome = (None, exc)
            try:
                loop.call_soon_threadsafe(settle, *outcome)
            except RuntimeError:
                pass  # the loop has closed meanwhile: nobody waits for this any more

        self.running += 1
        try:
            threading.Thread(target=run, name="webhook-dns", daemon=True).start()
        except BaseException:
            self.running -= 1
            self._slots.release()
            raise
        return await answer

    async def close(self) -> None:
        """Nothing to release: lookups still running end on their own threads."""
