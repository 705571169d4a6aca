"""Wires one gateway process: listeners, shared resources, and their orderly start and stop.

The service layer (key store, recorder, accounts, invalidation) comes from `services.py`, the
same for the CLI; what only a serving process adds (last-used times, tokens, the access guard,
the upstream pool, the proxy pipeline, the admin application) is built here, once, by `start`.
Resources open in dependency order on an `AsyncExitStack` and close in reverse, after the
listeners have drained: buffers flush into the store before the store closes. What the parts read
of the config is `serving_settings.py`, the guard and the gateway's own endpoints are built by
`access_wiring.py`, and the periodic loops are `upkeep.py`.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import socket
import ssl
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from gateway import __version__
from gateway.access.failures import AuthFailureThrottle
from gateway.access.guard import AccessGuard
from gateway.access_wiring import access_guard, own_endpoints
from gateway.accounts.canary import CanaryAlarm
from gateway.accounts.exposure import LeakWatch
from gateway.accounts.passwords import Passwords
from gateway.accounts.people import Mail, People
from gateway.accounts.service import Accounts
from gateway.admin import listener as admin_listener
from gateway.admin.application import admin_application
from gateway.admin.auth import check_admin_token
from gateway.admin.health import ReadinessCheck
from gateway.config import Config
from gateway.config_watch import ConfigWatcher
from gateway.credentials.tokens import TokenService, load_signing_keys
from gateway.events.runtime import WebhookDelivery
from gateway.exchange import Identity
from gateway.http.server import HttpServer
from gateway.http.upstream import UpstreamPool
from gateway.keystore.base import KeyStore
from gateway.keystore.cache import IdentityCache
from gateway.keystore.invalidation import InvalidationBus
from gateway.keystore.lastused import LastUsedRecorder
from gateway.listeners import bind, bound_port
from gateway.observability import stats
from gateway.observability.accesslog import AccessLog
from gateway.observability.metrics import Metrics, multiprocess_dir
from gateway.observability.observer import RequestObserver
from gateway.observability.recorder import Recorder
from gateway.observability.usage_anomaly import Anomaly
from gateway.observability.usage_monitor import UsageMonitor
from gateway.portal import server as portal_server
from gateway.proxy.forward import Forwarder
from gateway.proxy.handler import ProxyHandler
from gateway.proxy.mount import Mount
from gateway.proxy.transport import TransportPolicy
from gateway.ratelimit import limiter_for
from gateway.readiness import readiness_checks
from gateway.reload import Reloader
from gateway.routing import RouteTable
from gateway.services import Services, open_services
from gateway.serving_settings import engine_limits, plan_limits, portal_keys_page, tls_context
from gateway.tasks import cancel_and_wait
from gateway.upkeep import note_expiries, push_stats

log = logging.getLogger("gateway")


def supervisor_reload() -> Callable[[], None] | None:
    """In a worker (`workers.py`), SIGHUP to its supervisor, which passes it to every worker; None
    outside one. Never to another process: not once the supervisor is gone (the worker re-parented)."""
    parent = multiprocessing.parent_process()
    if parent is None or parent.pid is None:
        return None
    pid = parent.pid

    def signal_supervisor() -> None:
        if os.getppid() == pid:
            os.kill(pid, signal.SIGHUP)
    return signal_supervisor


class Gateway:
    """One gateway process: the HTTPS proxy listener, an optional plain one, and the admin one.

    The constructor builds what needs no I/O; `start` opens the rest, and the attributes
    declared below without a value are set by it, in that order (a gateway is used started).
    """

    services: Services
    last_used: LastUsedRecorder
    tokens: TokenService
    guard: AccessGuard
    upstream_pool: UpstreamPool
    access_log: AccessLog
    auth_failures: AuthFailureThrottle | None  # None: ratelimit.failed_auth_per_minute is 0
    usage: UsageMonitor
    canary_alarm: CanaryAlarm
    webhook_delivery: WebhookDelivery
    people: People  # invitations and sign-in checks: the portal's and the admin API's
    portal: portal_server.PortalServer | None  # None: portal.enabled is false

    def __init__(
        self,
        cfg: Config,
        *,
        clock: Callable[[], float] = time.time,
        admin_token: str | None = None,
        registry: CollectorRegistry | None = None,
        passwords: Passwords | None = None,
        mail: Mail | None = None,
    ) -> None:
        """`passwords`, `mail`: the portal's hashing and mail, else from the config (tests pass cheaper ones)."""
        self.cfg = cfg
        self._passwords = passwords
        self._mail = mail
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = Metrics(self.registry, per_tenant=cfg.metrics.per_tenant_label,
                               multiprocess=multiprocess_dir() is not None)
        self.clock = clock
        raw_token = admin_token if admin_token is not None else os.environ.get(cfg.admin.token_env)
        self.admin_token = check_admin_token(
            raw_token, env_name=cfg.admin.token_env, host=cfg.admin.host, allow_weak=cfg.admin.allow_weak_token
        )
        self.routes = RouteTable(cfg.routes)
        self.cache: IdentityCache[Identity] = IdentityCache(
            ttl=cfg.store.cache_ttl,
            size=cfg.store.cache_size,
            negative_ttl=cfg.store.negative_cache_ttl,
            negative_size=cfg.store.negative_cache_size,
            looks_unknown=lambda identity: identity.canary,  # cached as an unknown key is: no timing tells them apart
        )
        self.reloader = Reloader(lambda: self.cfg, self.apply_config,
                                 others=supervisor_reload() if cfg.server.workers > 1 else None)
        self.proxy_port = 0
        self.plain_port: int | None = None
        self.admin_port = 0
        self.draining = asyncio.Event()  # set once no listener accepts new connections
        self._stack = AsyncExitStack()
        self._handlers: list[ProxyHandler] = []
        self._servers: list[HttpServer] = []
        self._runners: list[web.BaseRunner] = []
        self._admin_listeners: list[asyncio.AbstractServer] = []
        self._pusher: stats.StatsPusher | None = None  # several workers: figures pushed, not read
        self._readiness: list[ReadinessCheck] = []

    # The service layer's parts, by the names the admin API, tests and tools use.
    @property
    def store(self) -> KeyStore:
        return self.services.store

    @property
    def recorder(self) -> Recorder:
        return self.services.recorder

    @property
    def accounts(self) -> Accounts:
        return self.services.accounts

    @property
    def invalidation(self) -> InvalidationBus | None:
        return self.services.invalidation

    async def start(self) -> None:
        ssl_ctx = tls_context(self.cfg)
        sockets = self._bind()
        try:
            await self._open()
            await self._serve(sockets, ssl_ctx)
            self._watch()
        except BaseException:
            for sock in sockets:
                sock.close()
            await self.stop()
            raise

    def _bind(self) -> list[socket.socket]:
        """The proxy socket, the plain one if configured, the admin one: bound before anything opens."""
        cfg = self.cfg
        reuse = cfg.server.workers > 1
        sockets: list[socket.socket] = []
        try:
            sockets.append(bind(cfg.server.host, cfg.server.port, reuse_port=reuse))
            if cfg.server.plain_http_port is not None:
                sockets.append(bind(cfg.server.host, cfg.server.plain_http_port, reuse_port=reuse))
            sockets.append(bind(cfg.admin.host, cfg.admin.port, reuse_port=reuse))
        except Exception:
            for sock in sockets:
                sock.close()
            raise
        self.proxy_port = bound_port(sockets[0])
        self.admin_port = bound_port(sockets[-1])
        self.plain_port = bound_port(sockets[1]) if len(sockets) == 3 else None
        return sockets

    async def _open(self) -> None:
        """The service layer, then what serving adds to it."""
        cfg, stack = self.cfg, self._stack
        self.services = await open_services(cfg, stack, clock=self.clock, caches=(self.cache,),
                                            on_lag=self.metrics.invalidation_lag.observe, serving=True)
        self.accounts.on_exposed = lambda reason: self.metrics.key_exposures.labels(reason).inc()
        self.canary_alarm = CanaryAlarm(self.accounts, on_use=self.metrics.canary_uses.inc)
        self._stack.push_async_callback(self.canary_alarm.settled)  # its reports written before the store closes
        self.last_used = LastUsedRecorder(self.store, interval=cfg.store.last_used_flush_interval, clock=self.clock)
        self.last_used.start()
        stack.push_async_callback(self.last_used.stop)
        webhooks = cfg.webhooks
        self.webhook_delivery = WebhookDelivery(self.store, webhooks, audit=self.recorder.audit,
                                                registry=self.registry, clock=self.clock)
        await self.webhook_delivery.start()
        stack.push_async_callback(self.webhook_delivery.stop)  # before the store closes
        expiries = asyncio.get_running_loop().create_task(note_expiries(self.accounts, webhooks.expiring_days))
        stack.push_async_callback(cancel_and_wait, expiries)  # before the store and recorder close
        self.usage = UsageMonitor(self.recorder.store, cfg.usage, on_anomaly=self._report_anomaly,
                                  clock=self.clock)
        self.usage.start()
        stack.push_async_callback(self.usage.stop)  # before the store closes
        if cfg.store.sqlite_path is None and not cfg.tokens.signing_keys:
            log.warning("tokens.signing_keys is not set: tokens are signed with a key under data_dir, "
                        "and other instances accept them only if they share that key (or data_dir)")
        mail = self._mail
        if mail is None and (mailer := portal_server.mailer(cfg)) is not None:
            mail = mailer
            stack.push_async_callback(mailer.close)  # mails under way go out, after the listeners drained
        self.people = portal_server.people(cfg, self.accounts, passwords=self._passwords, mail=mail,
                                           proxy_port=self.proxy_port)
        if mail is not None and cfg.portal.public_url is None and cfg.server.host in portal_server.WILDCARDS:
            log.warning("portal.public_url is not set: mailed invitation and reset links name %s, "
                        "which people elsewhere cannot reach", self.people.links.base())
        self.portal = None
        self.tokens = TokenService(
            load_signing_keys(cfg.tokens.algorithm, cfg.tokens.signing_keys, cfg.data_dir),
            issuer=cfg.tokens.issuer,
            audience=cfg.tokens.audience,
            leeway=cfg.tokens.leeway,
            clock=self.clock,
        )

    async def _serve(self, sockets: list[socket.socket], ssl_ctx: ssl.SSLContext) -> None:
        """The proxy pipeline on its listeners, then the admin application on its own."""
        cfg, stack = self.cfg, self._stack
        limiter = limiter_for(cfg.ratelimit, clock=self.clock,
                              on_backend_error=lambda exc: self.metrics.limiter_errors.inc())
        stack.push_async_callback(limiter.close)
        self.upstream_pool = UpstreamPool(
            keepalive=cfg.server.upstream_keepalive, connect_timeout=cfg.server.upstream_connect_timeout
        )
        stack.push_async_callback(self.upstream_pool.close)
        self.guard = access_guard(cfg, store=self.store, cache=self.cache, limiter=limiter, last_used=self.last_used,
                                  tokens=self.tokens, clock=self.clock, on_canary=self.canary_alarm.used)
        self.access_log = AccessLog()
        stack.callback(self.access_log.flush)  # the last lines, after the listeners have drained
        rl = cfg.ratelimit
        self.auth_failures = (
            AuthFailureThrottle(rl.failed_auth_per_minute, rl.failed_auth_delay) if rl.failed_auth_per_minute else None)
        forwarder = Forwarder(
            self.upstream_pool, max_body_bytes=cfg.server.max_body_bytes, body_timeout=cfg.server.body_timeout)
        transport = TransportPolicy(cfg.server.trusted_proxies)
        endpoints = own_endpoints(cfg, self.guard, self.tokens, self.accounts, self.store)
        leaks = LeakWatch(self.accounts, cfg.keys.prefix, self.canary_alarm)
        observer = RequestObserver(self.metrics if cfg.metrics.enabled else None, self.recorder, cfg.logging,
                                   self.access_log, clock=self.clock)

        mount = await self._serve_portal()

        def pipeline(plain: bool) -> ProxyHandler:
            return ProxyHandler(routes=self.routes, forwarder=forwarder, transport=transport, guard=self.guard,
                                plain=plain, endpoints=endpoints, observer=observer, failures=self.auth_failures,
                                mount=mount, leaks=leaks)

        self._pusher = stats.export(
            stats.ServiceFigures(self.cache, self.recorder, self.auth_failures, self.last_used,
                                 limiter if cfg.ratelimit.enabled else None), self.registry)
        if self._pusher is not None:
            push_task = asyncio.get_running_loop().create_task(push_stats(self._push_metrics))
            stack.callback(push_task.cancel)
        self._readiness = readiness_checks(store=self.store, limiter=limiter, recorder=self.recorder,
                                           last_used=self.last_used, admit_when_down=rl.on_backend_error == "allow")
        proxy_sock, admin_sock = sockets[0], sockets[-1]
        self._handlers = [pipeline(plain=False)]
        await self._serve_proxy(self._handlers[0], proxy_sock, ssl_ctx)
        if len(sockets) == 3:
            self._handlers.append(pipeline(plain=True))
            await self._serve_proxy(self._handlers[1], sockets[1], None)
        await self._serve_admin(self.admin_app(), admin_sock)

    async def _serve_portal(self) -> Mount | None:
        """The tenant portal on its private socket, closed after the proxy listeners have drained
        (`stop` closes the stack last) and before the store."""
        if not self.cfg.portal.enabled:
            return None
        portal = portal_server.build_portal(self.cfg, self.accounts, self.recorder, self.people,
                                            self.services.webhooks, clock=self.clock)
        self.portal = portal_server.PortalServer(portal)
        self._stack.push_async_callback(self.portal.stop)
        return await self.portal.start()

    def _watch(self) -> None:
        """`server.watch_config`: reload when the file changes (`config_watch.py`)."""
        if self.cfg.server.watch_config and self.cfg.source:
            watcher = ConfigWatcher(self.reloader, lambda: self.cfg, self.cfg.server.watch_interval)
            watcher.start()
            self._stack.push_async_callback(watcher.stop)

    def admin_app(self) -> web.Application:
        return admin_application(
            token=self.admin_token, accounts=self.accounts, recorder=self.recorder, registry=self.registry,
            webhooks=self.services.webhooks,
            reloader=self.reloader, readiness=self._readiness, token_path=self.cfg.tokens.path,
            before_scrape=self._push_metrics if self._pusher is not None else None, usage=self.usage,
            people=self.people,
        )

    async def _serve_proxy(self, handler: ProxyHandler, sock: socket.socket, ssl_ctx: ssl.SSLContext | None) -> None:
        server = HttpServer(handler, engine_limits(self.cfg.server))
        await server.start(sock, ssl_ctx)
        self._servers.append(server)

    async def _serve_admin(self, app: web.Application, sock: socket.socket) -> None:
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)
        await runner.setup()
        self._runners.append(runner)
        self._admin_listeners.append(await admin_listener.listen(runner, sock))

    def apply_config(self, cfg: Config) -> None:
        """Swap in new routes and plans (see gateway/reload.py); in-flight requests keep theirs."""
        table = RouteTable(cfg.routes)
        self.cfg = cfg
        self.routes = table
        for handler in self._handlers:
            handler.routes = table
        self.guard.set_plans(plan_limits(cfg))
        self.guard.set_sunset(cfg.keys.expiring_soon_days, portal_keys_page(cfg))
        self.accounts.cfg = cfg
        self.cache.clear()  # cached identities carry the old plan limits

    async def _report_anomaly(self, anomaly: Anomaly) -> None:
        """A key's unusual usage, seen first by this instance: the `key.anomaly` webhook event and
        audit entry."""
        await self.accounts.note_anomaly(anomaly.key_id, anomaly.json())

    def _push_metrics(self) -> None:
        """Several workers: this one's figures into the shared files (each second, before a
        scrape this worker answers, and when it stops)."""
        try:
            if self._pusher is not None:
                self._pusher.push()
        finally:
            self.metrics.push()  # the request figures, whatever became of the others

    async def stop(self) -> None:
        """Stop accepting, let in-flight requests finish within the grace period, then close."""
        runners, self._runners = self._runners, []
        servers, self._servers = self._servers, []
        for server in servers:
            server.stop_accepting()
        listeners, self._admin_listeners = self._admin_listeners, []
        for listener in listeners:
            listener.close()
        self.draining.set()
        for handler in self._handlers:
            handler.release_held()
        grace = self.cfg.server.grace_period
        await asyncio.gather(*(server.shutdown(grace) for server in servers))
        for runner in runners:
            await runner.cleanup()
        try:
            self._push_metrics()  # what the last requests counted is not lost with the worker
        except Exception:  # never at the cost of the call log, audit trail and access log flushed below
            log.exception("pushing metrics to the workers' shared files failed")
        await self._stack.aclose()

    def describe(self) -> dict[str, Any]:
        return {
            "version": __version__,
            "proxy": f"https://{self.cfg.server.host}:{self.proxy_port}",
            "admin": f"http://{self.cfg.admin.host}:{self.admin_port}",
        }
