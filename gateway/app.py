"""Wires one gateway process: listeners, shared resources, and their orderly start and stop.

Resources open in dependency order on an `AsyncExitStack` and close in reverse, after the
listeners have drained: buffers flush into the store before the store closes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from gateway import __version__
from gateway.access.assertion import IdentityAssertions
from gateway.access.failures import AuthFailureThrottle
from gateway.access.guard import AccessGuard
from gateway.exchange import Identity
from gateway.accounts.service import Accounts
from gateway.admin import api, console, docs, health, metrics_endpoint, records_api
from gateway.admin import listener as admin_listener
from gateway.admin.auth import check_admin_token, token_middleware
from gateway.admin.errors import error_middleware
from gateway.config import Config
from gateway.credentials.tokens import TokenService, load_signing_keys
from gateway.errors import SERVER
from gateway.keystore.base import KeyStore, StoreError
from gateway.keystore.cache import IdentityCache
from gateway.keystore.invalidation import InvalidationBus
from gateway.keystore.factory import create_store
from gateway.keystore.lastused import LastUsedRecorder
from gateway.listeners import bind, bound_port
from gateway.observability.accesslog import AccessLog
from gateway.observability.metrics import Metrics, StatsCollector, StatsPusher, multiprocess_dir
from gateway.observability.observer import RequestObserver
from gateway.observability.recorder import Recorder
from gateway.observability.record_store import create_record_store
from gateway.access.endpoints import TokenEndpoints
from gateway.proxy.forward import Forwarder
from gateway.proxy.handler import ProxyHandler
from gateway.http.connection import Limits
from gateway.http.server import HttpServer
from gateway.proxy.transport import TransportPolicy
from gateway.http.upstream import UpstreamPool
from gateway.reload import Reloader
from gateway.ratelimit import RateLimiter, create_rate_limiter
from gateway.routing import RouteTable
from gateway.tasks import cancel_and_wait
from gateway.tls import ensure_self_signed, server_context

log = logging.getLogger("gateway")
EXPIRY_CHECK_PERIOD = 30.0  # seconds between looks for keys that expired (the audit's key.expired)
Check = Callable[[], Awaitable[None]]


def tls_context(cfg: Config) -> ssl.SSLContext:
    tls = cfg.server.tls
    if tls.self_signed:
        cert, key = ensure_self_signed(cfg.data_dir)
        return server_context(cert, key)
    assert tls.cert_file and tls.key_file  # guaranteed by config validation
    return server_context(tls.cert_file, tls.key_file)


async def _name_the_server(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Server"] = SERVER  # not aiohttp's name and version


class Gateway:
    """One gateway process: the HTTPS proxy listener, an optional plain one, and the admin one."""

    def __init__(
        self,
        cfg: Config,
        *,
        clock: Callable[[], float] = time.time,
        admin_token: str | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.cfg = cfg
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
        )
        self.store: KeyStore | None = None
        self.tokens: TokenService | None = None
        self.guard: AccessGuard | None = None
        self.upstream_pool: UpstreamPool | None = None
        self.invalidation: InvalidationBus | None = None
        self.access_log: AccessLog | None = None
        self.auth_failures: AuthFailureThrottle | None = None
        self._handlers: list[ProxyHandler] = []
        self.reloader = Reloader(lambda: self.cfg, self.apply_config)
        self._pusher: StatsPusher | None = None
        self.accounts: Accounts | None = None
        self.last_used: LastUsedRecorder | None = None
        self.recorder: Recorder | None = None
        self.proxy_port = 0
        self.plain_port: int | None = None
        self.admin_port = 0
        self.draining = asyncio.Event()  # set once no listener accepts new connections
        self._stack = AsyncExitStack()
        self._runners: list[web.BaseRunner] = []
        self._admin_listeners: list[asyncio.AbstractServer] = []
        self._servers: list[HttpServer] = []
        self._readiness: list[tuple[str, Check]] = []

    async def start(self) -> None:
        cfg = self.cfg
        ssl_ctx = tls_context(cfg)
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
        proxy_sock, admin_sock = sockets[0], sockets[-1]
        plain_sock = sockets[1] if len(sockets) == 3 else None
        self.proxy_port = bound_port(proxy_sock)
        self.admin_port = bound_port(admin_sock)
        self.plain_port = bound_port(plain_sock) if plain_sock else None
        try:
            await self._open_resources()
            await self._serve(proxy_sock, plain_sock, admin_sock, ssl_ctx)
        except BaseException:
            for sock in sockets:
                sock.close()
            await self.stop()
            raise

    async def _open_resources(self) -> None:
        cfg = self.cfg
        store = create_store(cfg.store)
        await store.open()
        self._stack.push_async_callback(store.close)
        self.store = store
        records = create_record_store(cfg)
        await records.open()
        self._stack.push_async_callback(records.close)
        self.recorder = Recorder(records, cfg.call_log, clock=self.clock)
        self.recorder.start()
        self._stack.push_async_callback(self.recorder.stop)
        self.last_used = LastUsedRecorder(store, interval=cfg.store.last_used_flush_interval, clock=self.clock)
        self.last_used.start()
        self._stack.push_async_callback(self.last_used.stop)
        self.invalidation = self._invalidation_bus()
        self.accounts = Accounts(
            store, cfg, invalidators=(self.cache,), propagator=self.invalidation, audit=self.recorder.audit,
            clock=self.clock,
        )
        expiries = asyncio.get_running_loop().create_task(self._note_expiries(self.accounts))
        self._stack.push_async_callback(cancel_and_wait, expiries)  # before the store and recorder close
        if cfg.store.sqlite_path is None and not cfg.tokens.signing_keys:
            log.warning("tokens.signing_keys is not set: tokens are signed with a key under data_dir, "
                        "and other instances accept them only if they share that key (or data_dir)")
        self.tokens = TokenService(
            load_signing_keys(cfg.tokens.algorithm, cfg.tokens.signing_keys, cfg.data_dir),
            issuer=cfg.tokens.issuer,
            audience=cfg.tokens.audience,
            leeway=cfg.tokens.leeway,
            clock=self.clock,
        )

    def _invalidation_bus(self) -> InvalidationBus | None:
        """Redis pub/sub between instances: configured, or the rate limiter's Redis."""
        cfg = self.cfg
        url = cfg.store.invalidation_redis_url
        if url is None and cfg.ratelimit.backend == "redis":
            url = cfg.ratelimit.redis_url
        if url is None:
            return None
        bus = InvalidationBus(url, (self.cache,), channel=cfg.store.invalidation_channel,
                              on_lag=self.metrics.invalidation_lag.observe)
        bus.start()
        self._stack.push_async_callback(bus.close)
        return bus

    def _limiter(self) -> RateLimiter:
        rl = self.cfg.ratelimit
        if rl.backend == "redis":
            return create_rate_limiter(
                "redis",
                url=rl.redis_url,
                prefix=rl.redis_prefix,
                on_backend_error=rl.on_backend_error,
                on_error_callback=lambda exc: self.metrics.limiter_errors.inc(),
            )
        return create_rate_limiter("memory", clock=self.clock)

    def _limiter_ready(self, limiter: RateLimiter) -> Check:
        async def check() -> None:
            try:
                await limiter.ping()
            except Exception:
                if self.cfg.ratelimit.on_backend_error == "allow":
                    return  # configured to admit while the backend is down: still serving
                raise

        return check

    async def _records_ready(self) -> None:
        """Writes that keep failing (a locked, read-only or full database) make the instance
        unready: its audit trail, call log and last-used times are piling up in memory."""
        failing = []
        if self.recorder is not None:
            failing += [f"{b.name}: {b.last_error}" for b in (self.recorder.audit_buffer, self.recorder.call_buffer)
                        if b.last_error is not None]
        if self.last_used is not None and self.last_used.last_error is not None:
            failing.append(f"last-used times: {self.last_used.last_error}")
        if failing:
            raise RuntimeError("cannot write " + "; ".join(failing))

    async def _serve(
        self,
        proxy_sock: socket.socket,
        plain_sock: socket.socket | None,
        admin_sock: socket.socket,
        ssl_ctx: ssl.SSLContext,
    ) -> None:
        cfg = self.cfg
        assert self.store and self.tokens and self.last_used and self.recorder
        limiter = self._limiter()
        self._stack.push_async_callback(limiter.close)
        pool = UpstreamPool(
            keepalive=cfg.server.upstream_keepalive, connect_timeout=cfg.server.upstream_connect_timeout
        )
        self._stack.push_async_callback(pool.close)
        self.upstream_pool = pool
        guard = AccessGuard(
            store=self.store,
            cache=self.cache,
            limiter=limiter if cfg.ratelimit.enabled else None,
            last_used=self.last_used,
            plan_limits={name: p.requests_per_minute for name, p in cfg.plans.items()},
            key_prefix=cfg.keys.prefix,
            ietf_headers=cfg.ratelimit.ietf_headers,
            clock=self.clock,
            verify_token=self.tokens.verify,
            assertions=IdentityAssertions(self.tokens, ttl=cfg.tokens.identity_ttl, clock=self.clock),
        )
        self.guard = guard
        access_log = self.access_log = AccessLog()
        self._stack.callback(access_log.flush)  # the last lines, after the listeners have drained
        token_endpoints = TokenEndpoints(guard, self.tokens, ttl=cfg.tokens.ttl, body_timeout=cfg.server.body_timeout)
        rl = cfg.ratelimit
        failures = self.auth_failures = (
            AuthFailureThrottle(rl.failed_auth_per_minute, rl.failed_auth_delay) if rl.failed_auth_per_minute else None)
        common: dict[str, Any] = dict(
            routes=self.routes,
            failures=failures,
            forwarder=Forwarder(
                pool, max_body_bytes=cfg.server.max_body_bytes, body_timeout=cfg.server.body_timeout),
            transport=TransportPolicy(cfg.server.trusted_proxies),
            guard=guard,
            endpoints={
                cfg.tokens.path: token_endpoints.exchange,
                "/.well-known/jwks.json": token_endpoints.jwks,
            },
            observer=RequestObserver(self.metrics if cfg.metrics.enabled else None, self.recorder, cfg.logging,
                                     access_log, clock=self.clock),
        )
        if multiprocess_dir() is None:
            self.registry.register(StatsCollector(self._stats))
        else:
            self._pusher = StatsPusher(self._stats, self.registry)
            push_task = asyncio.get_running_loop().create_task(self._push_stats())
            self._stack.callback(push_task.cancel)
        self._readiness = [("store", self.store.ping), ("ratelimit", self._limiter_ready(limiter)),
                           ("records", self._records_ready)]
        self._handlers = [ProxyHandler(**common)]
        await self._serve_proxy(self._handlers[0], proxy_sock, ssl_ctx)
        if plain_sock is not None:
            self._handlers.append(ProxyHandler(plain=True, **common))
            await self._serve_proxy(self._handlers[1], plain_sock, None)
        await self._serve_admin(self.admin_app(), admin_sock)

    def apply_config(self, cfg: Config) -> None:
        """Swap in new routes and plans (see gateway/reload.py); in-flight requests keep theirs."""
        table = RouteTable(cfg.routes)
        self.cfg = cfg
        self.routes = table
        for handler in self._handlers:
            handler.routes = table
        if self.guard is not None:
            self.guard.set_plans({name: p.requests_per_minute for name, p in cfg.plans.items()})
        if self.accounts is not None:
            self.accounts.cfg = cfg
        self.cache.clear()  # cached identities carry the old plan limits

    @staticmethod
    async def _note_expiries(accounts: Accounts) -> None:
        """The audit trail's `key.expired`, within a period of a key's validity running out."""
        while True:
            try:
                await accounts.note_expired()
            except StoreError as exc:
                log.warning("could not look for expired keys", extra={"error": str(exc)})
            except Exception:  # a periodic look must not die, nor fail the shutdown that cancels it
                log.exception("looking for expired keys failed")
            await asyncio.sleep(EXPIRY_CHECK_PERIOD)  # a period, not synchronisation

    async def _push_stats(self) -> None:
        while True:
            try:
                self._push_metrics()
            except Exception:  # a failed push must not end the pushing: the next one adds the rest
                log.exception("pushing metrics to the workers' shared files failed")
            await asyncio.sleep(1.0)  # a period, not synchronisation: scrapes see figures <= 1 s old

    def _push_metrics(self) -> None:
        """Several workers: this one's figures into the shared files (each second, before a
        scrape this worker answers, and when it stops)."""
        try:
            if self._pusher is not None:
                self._pusher.push()
        finally:
            self.metrics.push()  # the request figures, whatever became of the others

    def _stats(self) -> list[tuple[str, str, str, float]]:
        cache, stats = self.cache, self.cache.stats
        rows: list[tuple[str, str, str, float]] = [
            ("counter", "gateway_key_cache_hits_total", "Key cache hits.", stats.hits),
            ("counter", "gateway_key_cache_misses_total", "Key cache misses (store lookups).", stats.misses),
            ("counter", "gateway_key_cache_negative_hits_total", "Unknown keys answered from the negative cache.", stats.negative_hits),
            ("counter", "gateway_key_cache_evictions_total", "Key cache evictions.", stats.evictions),
            ("gauge", "gateway_key_cache_size", "Identities in the key cache.", len(cache)),
        ]
        if self.recorder is not None:
            for name, buffer in (("audit", self.recorder.audit_buffer), ("call_log", self.recorder.call_buffer)):
                rows += [
                    ("gauge", f"gateway_{name}_queue_depth", f"Entries waiting to be written ({name}).", len(buffer)),
                    ("counter", f"gateway_{name}_flush_failures_total", f"Failed writes ({name}).", buffer.flush_failures),
                    ("counter", f"gateway_{name}_dropped_total", f"Entries dropped on a full buffer ({name}).", buffer.dropped),
                ]
        if self.auth_failures is not None:
            rows += [
                ("counter", "gateway_auth_failures_held_total",
                 "401 answers held back from clients past ratelimit.failed_auth_per_minute.", self.auth_failures.held),
                ("gauge", "gateway_auth_failures_clients", "Client addresses with recent failed credentials.",
                 len(self.auth_failures)),
            ]
        if self.last_used is not None:
            rows.append(("counter", "gateway_last_used_flush_failures_total", "Failed last-used writes.",
                         self.last_used.flush_failures))
        return rows

    def admin_app(self) -> web.Application:
        app = web.Application(
            middlewares=[error_middleware, token_middleware(self.admin_token)],
            client_max_size=api.MAX_BODY,
        )
        assert self.accounts and self.recorder
        app.on_response_prepare.append(_name_the_server)
        app[health.READINESS_CHECKS] = self._readiness
        app[api.ACCOUNTS] = self.accounts
        app[records_api.RECORDER] = self.recorder
        app[metrics_endpoint.REGISTRY] = self.registry
        app[api.RELOADER] = self.reloader
        if self._pusher is not None:
            app[metrics_endpoint.BEFORE_SCRAPE] = self._push_metrics
        health.add_routes(app)
        metrics_endpoint.add_routes(app)
        api.add_routes(app)
        records_api.add_routes(app)
        docs.add_routes(app, self.cfg.tokens.path)
        console.add_routes(app)
        return app

    async def _serve_proxy(
        self, handler: ProxyHandler, sock: socket.socket, ssl_ctx: ssl.SSLContext | None
    ) -> None:
        server_cfg = self.cfg.server
        limits = Limits(
            header_timeout=server_cfg.header_timeout,
            keepalive_timeout=server_cfg.keepalive_timeout,
            linger_timeout=server_cfg.body_timeout,
            send_timeout=server_cfg.send_timeout,



            max_line_bytes=server_cfg.max_line_bytes,
            max_field_bytes=server_cfg.max_header_bytes,
            max_header_total_bytes=server_cfg.max_header_total_bytes,
        )
        server = HttpServer(handler, limits)
        await server.start(sock, ssl_ctx)
        self._servers.append(server)

    async def _serve_admin(self, app: web.Application, sock: socket.socket) -> None:
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)
        await runner.setup()
        self._runners.append(runner)
        self._admin_listeners.append(await admin_listener.listen(runner, sock))

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
