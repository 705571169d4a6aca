"""The proxy's watch for leaked keys (`exchange.LeakedKeys`): a key of this gateway in a query
string or in a request over plain HTTP is found by string work alone (credentials/leaks.py) and
marked exposed through the accounts service (`Accounts.expose_secret`: once per secret per
process, however many requests carry it) before the request is refused.
"""

from __future__ import annotations

import logging

from gateway.accounts.actors import SYSTEM, Actor
from gateway.accounts.canary import CanaryAlarm
from gateway.accounts.service import Accounts
from gateway.credentials.leaks import keys_in_headers, keys_in_query
from gateway.errors import GatewayError
from gateway.exchange import RequestScope
from gateway.http.messages import Request
from gateway.keystore.base import StoreError

log = logging.getLogger("gateway.leaks")


class LeakWatch:
    def __init__(self, accounts: Accounts, prefix: str, alarm: CanaryAlarm | None = None) -> None:
        self._accounts = accounts
        self._prefix = prefix
        self._marker = prefix + "_"
        self._alarm = alarm

    def in_query(self, query: str) -> list[str]:
        if self._marker not in query and "%" not in query:
            return []  # the common query: two substring searches, and nothing could hide a key in it
        return keys_in_query(query, self._prefix)

    def in_request(self, request: Request) -> list[str]:
        found = keys_in_headers(request.headers.items(), self._prefix)
        for secret in keys_in_query(request.raw_path, self._prefix):  # the path and the query
            if secret not in found:
                found.append(secret)
        return found

    async def report(self, secrets: list[str], reason: str, request: Request, scope: RequestScope) -> None:
        for secret in secrets:
            try:
                # audited as `system`, from the address that sent it (the first sender's, once per key)
                key = await self._accounts.expose_secret(secret, reason, actor=Actor(SYSTEM.name, scope.client_ip or None))
                if key is not None and key.canary and self._alarm is not None:  # planted, and now used
                    self._alarm.used(key.id, scope.client_ip, request.headers.get("User-Agent"), request.method,
                                     scope.path)
            except (StoreError, GatewayError) as exc:  # the refusal goes out all the same; a later sighting retries
                log.warning("could not mark a leaked key exposed",
                            extra={"request_id": scope.request_id, "reason": reason, "error": str(exc)})
