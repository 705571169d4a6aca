"""The alarm of canary keys: keys planted to be found (in a repository, a config file, a
honeypot), which no legitimate client ever sends.

A request with one gets the 401 of an unknown key (the access guard decides that); here it is
counted (`gateway_canary_uses_total`) and reported, off the request's path so the 401 leaves as
fast as an unknown key's: the `key.canary_used` event and audit entry with the client's address,
user agent and path. A flood from one address with one canary is reported once a minute
(`quiet_for`), not once a request; every use is counted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from gateway.accounts.service import Accounts
from gateway.errors import GatewayError
from gateway.keystore.base import StoreError

log = logging.getLogger("gateway.canary")

_REMEMBERED = 65_536   # (key, address) pairs whose last report is remembered
_IN_FLIGHT = 256       # reports being written at once; beyond, a use is counted and not reported
_AGENT_CHARS = 256
_PATH_CHARS = 1024


class CanaryAlarm:
    def __init__(self, accounts: Accounts, *, on_use: Callable[[], None] | None = None, quiet_for: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._accounts = accounts
        self._on_use = on_use
        self._quiet_for = quiet_for
        self._clock = clock
        self._reported: dict[tuple[str, str], float] = {}  # (key id, client address) -> when; insertion order is age
        self._tasks: set[asyncio.Task[None]] = set()
        self.unreported = 0  # uses neither reported nor covered by a recent report (too many in flight)

    def used(self, key_id: str, client_ip: str, user_agent: str | None, method: str, path: str) -> None:
        """A request with a canary key, already refused: count it, and report it unless this
        address's use of this key was reported within `quiet_for`. Never raises, never waits."""
        if self._on_use is not None:
            self._on_use()
        now = self._clock()
        mark = (key_id, client_ip)
        last = self._reported.pop(mark, None)
        if last is not None and now - last < self._quiet_for:
            self._reported[mark] = last
            return
        if len(self._tasks) >= _IN_FLIGHT:
            self.unreported += 1
            return
        if len(self._reported) >= _REMEMBERED:
            del self._reported[next(iter(self._reported))]
        self._reported[mark] = now
        agent = None if user_agent is None else user_agent[:_AGENT_CHARS]
        task = asyncio.get_running_loop().create_task(
            self._report(mark, key_id, client_ip, agent, method, path[:_PATH_CHARS]))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _report(self, mark: tuple[str, str], key_id: str, client_ip: str, user_agent: str | None,
                      method: str, path: str) -> None:
        try:
            await self._accounts.note_canary_use(key_id, client_ip=client_ip, user_agent=user_agent, path=path,
                                                 method=method)
        except (StoreError, GatewayError) as exc:
            self._reported.pop(mark, None)  # not reported: the next use tries again
            log.warning("could not report a canary key's use", extra={"key_id": key_id, "error": str(exc)})
        except Exception:
            self._reported.pop(mark, None)
            log.exception("reporting a canary key's use failed")

    async def settled(self) -> None:
        """Until the reports under way are written (a stop; a test reading the audit trail)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
