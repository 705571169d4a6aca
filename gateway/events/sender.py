"""Sends one signed delivery: one POST, never a redirect followed, a bounded wait and read.

Connections go through `VettingResolver`, so a name is connected to only at the addresses that
passed the SSRF policy; an address written in the URL is checked before the request. Only a
short excerpt of the receiver's answer is read: a hostile receiver cannot make the gateway
download gigabytes or wait for ever.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp
from aiohttp.abc import AbstractResolver
from yarl import URL

from gateway import __version__
from gateway.events.addresses import AddressPolicy, AddressRefused, VettingResolver, ip_literal


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one attempt ended: delivered (any 2xx), or why not."""

    delivered: bool
    response_status: int | None
    error: str | None
    seconds: float


EXCERPT_BYTES = 1024
USER_AGENT = f"gateway-webhooks/{__version__}"


def _error_text(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text[:300]


class WebhookSender:
    def __init__(
        self,
        policy: AddressPolicy,
        *,
        timeout: float = 10.0,
        resolver: AbstractResolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.policy = policy
        self.timeout = timeout
        self._resolver = resolver
        self._ssl = ssl_context
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        connector = aiohttp.TCPConnector(
            resolver=VettingResolver(self.policy, self._resolver),
            use_dns_cache=False,  # every connection resolves (and is vetted) anew
            ssl=self._ssl if self._ssl is not None else True,  # verification is never turned off
            limit=100, limit_per_host=10,
        )
        self._session = aiohttp.ClientSession(
            connector=connector, trust_env=False,  # no proxy from the environment
            headers={"User-Agent": USER_AGENT}, auto_decompress=False,
        )

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def send(self, url: str, headers: Mapping[str, str], body: bytes) -> Outcome:
        started = time.perf_counter()

        def outcome(delivered: bool, status: int | None, error: str | None) -> Outcome:
            return Outcome(delivered, status, error, time.perf_counter() - started)

        if self._session is None:
            raise RuntimeError("the webhook sender is not open")
        problem = self.policy.url_problem(url)
        if problem is not None:
            return outcome(False, None, f"url {problem}")
        literal = ip_literal(URL(url).raw_host or "")
        try:
            if literal is not None:
                self.policy.check_address(literal)
            timeout = aiohttp.ClientTimeout(total=self.timeout)
            async with self._session.post(url, data=body, headers=dict(headers), allow_redirects=False,
                                          timeout=timeout) as resp:
                excerpt = await resp.content.read(EXCERPT_BYTES)
                if not resp.content.at_eof():
                    resp.close()  # the rest is never read: drop the connection instead
                status = resp.status
        except AddressRefused as exc:
            return outcome(False, None, str(exc))
        except aiohttp.ClientConnectorDNSError as exc:
            if isinstance(exc.os_error, AddressRefused):
                return outcome(False, None, str(exc.os_error))
            return outcome(False, None, f"cannot resolve the host: {_error_text(exc.os_error)}")
        except TimeoutError:
            return outcome(False, None, f"no answer within {self.timeout:g} s")
        except aiohttp.ClientConnectorCertificateError as exc:
            return outcome(False, None, f"TLS certificate refused: {_error_text(exc.certificate_error)}")
        except aiohttp.ClientConnectorError as exc:
            return outcome(False, None, f"cannot connect: {_error_text(exc.os_error)}")
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            return outcome(False, None, f"request failed: {_error_text(exc)}")
        if 200 <= status < 300:
            return outcome(True, status, None)
        if 300 <= status < 400:
            return outcome(False, status, f"redirect ({status}) not followed")
        detail = excerpt[:200].decode("utf-8", "replace").strip()
        return outcome(False, status, f"HTTP {status}" + (f": {detail}" if detail else ""))
