"""The periodic work of a serving process, each a loop its owner starts as a task and cancels on
stop: looking for keys that expired or come near their expiry, and pushing this worker's figures
into the files the workers share. A failed round is logged and the next one comes anyway.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from gateway.accounts.service import Accounts
from gateway.keystore.base import StoreError

log = logging.getLogger("gateway")
EXPIRY_CHECK_PERIOD = 30.0  # seconds between looks for keys that expired (the audit's key.expired)


async def note_expiries(accounts: Accounts, expiring_days: tuple[int, ...]) -> None:
    """The audit trail's `key.expired` (and its event) within a period of a key's validity
    running out, and the `key.expiring` events at each of `webhooks.expiring_days`."""
    while True:
        try:
            await accounts.note_expired()
            await accounts.note_expiring(expiring_days)
        except StoreError as exc:
            log.warning("could not look for expired keys", extra={"error": str(exc)})
        except Exception:  # a periodic look must not die, nor fail the shutdown that cancels it
            log.exception("looking for expired keys failed")
        await asyncio.sleep(EXPIRY_CHECK_PERIOD)  # a period, not synchronisation


async def push_stats(push: Callable[[], None]) -> None:
    """Several workers: `push` this worker's figures into the shared files every second."""
    while True:
        try:
            push()
        except Exception:  # a failed push must not end the pushing: the next one adds the rest
            log.exception("pushing metrics to the workers' shared files failed")
        await asyncio.sleep(1.0)  # a period, not synchronisation: scrapes see figures <= 1 s old
