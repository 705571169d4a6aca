"""The service layer, built in one place for `gateway run` and for the commands that change the store.

`open_services` opens the key store, the record store with the recorder that feeds the audit
trail and the call log into it, and the accounts service every change goes through (its rules,
its audit entries, cache invalidation here and on other instances). A running gateway
(`app.py`) and `gateway tenants|keys ...` (`cli_accounts.py`) both call it, so whatever joins
the service (webhooks, a mailer) is wired once, here, for both.

Everything opens on the caller's exit stack and closes in reverse order: the store, opened
first, closes last, after the recorder has flushed into it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass

from gateway.accounts.base import TenantDefaults
from gateway.accounts.service import Accounts
from gateway.config import Config
from gateway.events.service import Webhooks
from gateway.keystore.base import KeyStore
from gateway.keystore.cache import Invalidator
from gateway.keystore.factory import create_store
from gateway.keystore.invalidation import InvalidationBus
from gateway.observability.record_store import create_call_writer, create_record_store
from gateway.observability.recorder import Recorder


@dataclass(frozen=True, slots=True)
class Services:
    store: KeyStore
    recorder: Recorder
    accounts: Accounts
    invalidation: InvalidationBus | None  # changes told to other instances (Redis pub/sub), if configured
    webhooks: Webhooks  # endpoints and their delivery log (the dispatcher runs in `gateway run` only)


async def open_services(
    cfg: Config,
    stack: AsyncExitStack,
    *,
    clock: Callable[[], float] = time.time,
    caches: tuple[Invalidator, ...] = (),
    on_lag: Callable[[float], None] | None = None,
    serving: bool = False,
) -> Services:
    """The service for one process, closed by `stack`. `caches` are the process's identity
    caches: each change drops what it made stale from them at once, and, when Redis is
    configured, they listen for other instances' changes (`on_lag` hears how late those come).
    A command that caches nothing (the CLI) passes none, and neither listens nor publishes.
    `serving`: a gateway that records calls, whose call log may have a writer process."""
    store = create_store(cfg.store)
    await store.open()
    stack.push_async_callback(store.close)
    records = create_record_store(cfg)
    await records.open()
    stack.push_async_callback(records.close)
    recorder = Recorder(records, cfg.call_log, usage=cfg.usage.enabled, clock=clock,
                        writer=create_call_writer(cfg) if serving else None)
    recorder.start()
    stack.push_async_callback(recorder.stop)  # flushes the audit trail and the call log
    invalidation = _invalidation_bus(cfg, stack, caches, on_lag) if caches else None
    defaults = TenantDefaults(cfg.tenants.api_enabled_default, cfg.tenants.write_enabled_default)
    accounts = Accounts(store, cfg, invalidators=caches, propagator=invalidation, audit=recorder.audit, clock=clock,
                        tenant_defaults=defaults)
    webhooks = Webhooks(store, cfg.webhooks, audit=recorder.audit, clock=clock)
    return Services(store, recorder, accounts, invalidation, webhooks)


def _invalidation_bus(
    cfg: Config, stack: AsyncExitStack, caches: tuple[Invalidator, ...], on_lag: Callable[[float], None] | None
) -> InvalidationBus | None:
    """Redis pub/sub between instances: configured, or the rate limiter's Redis."""
    url = cfg.store.invalidation_redis_url
    if url is None and cfg.ratelimit.backend == "redis":
        url = cfg.ratelimit.redis_url
    if url is None:
        return None
    bus = InvalidationBus(url, caches, channel=cfg.store.invalidation_channel, on_lag=on_lag)
    bus.start()
    stack.push_async_callback(bus.close)
    return bus
