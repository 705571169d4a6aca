"""Real servers on 127.0.0.1 ephemeral ports: an upstream that reports what it saw, and gateways."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trustme
from aiohttp import web
from hypothesis import settings

from gateway.app import Gateway
from gateway.config import Config, parse_config
from tests.services import (
    drop_schema,
    postgres_url,
    require_service,  # noqa: F401 - re-exported for the test modules
)

STORE_BACKEND = os.environ.get("GATEWAY_TEST_STORE", "sqlite")

# Property tests: a few hundred inputs each in CI; HYPOTHESIS_PROFILE=fuzz for the long run by hand.
settings.register_profile("ci", max_examples=300, deadline=None)
settings.register_profile("fuzz", max_examples=200_000, deadline=None)
settings.register_profile("mutation", max_examples=60, deadline=None)  # bench/mutation: each mutant, briefly
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def examples(n: int) -> int:
    """A property test's own example count, except under the mutation profile, where every test runs
    briefly: hundreds of mutants each run the tests that reach them."""
    return min(n, settings().max_examples) if os.environ.get("HYPOTHESIS_PROFILE") == "mutation" else n

ADMIN_TOKEN = "test-admin-token-0123456789abcdef"


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def server_cert(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    cert = ca.issue_cert("localhost", "127.0.0.1")
    base = tmp_path_factory.mktemp("tls")
    cert_file, key_file = base / "gateway.crt", base / "gateway.key"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    for pem in cert.cert_chain_pems[1:]:
        pem.write_to_path(str(cert_file), append=True)
    cert.private_key_pem.write_to_path(str(key_file))
    return str(cert_file), str(key_file)


@pytest.fixture(scope="session")
def client_ssl(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


class UpstreamState:
    """What the fake upstream saw, so tests can assert on what crossed the gateway."""

    def __init__(self) -> None:
        self.hits = 0
        self.last: dict[str, Any] = {}
        self.cancelled = asyncio.Event()
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.in_slow = 0
        self._slow_watchers: list[tuple[int, asyncio.Event]] = []

    def slow_entered(self) -> None:
        self.in_slow += 1
        for count, event in self._slow_watchers:
            if self.in_slow >= count:
                event.set()

    async def wait_slow(self, count: int) -> None:
        """Until `count` requests are waiting inside /slow."""
        event = asyncio.Event()
        self._slow_watchers.append((count, event))
        if self.in_slow >= count:
            event.set()
        await event.wait()


def _describe(request: web.Request, body: bytes) -> dict[str, Any]:
    return {
        "method": request.method,
        "path": request.raw_path.partition("?")[0],
        "query": request.raw_path.partition("?")[2],
        "headers": [[k, v] for k, v in request.headers.items()],
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "body_len": len(body),
    }


def upstream_app(state: UpstreamState) -> web.Application:
    async def echo(request: web.Request) -> web.Response:
        state.hits += 1
        body = await request.read()
        state.last = _describe(request, body)
        return web.json_response(state.last, headers={"X-Upstream": "yes"})

    async def stream(request: web.Request) -> web.StreamResponse:
        state.hits += 1
        size = int(request.query.get("size", str(5 * 1024 * 1024)))
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        block = bytes(range(256)) * 256
        sent = 0
        while sent < size:
            piece = block[: min(len(block), size - sent)]
            await resp.write(piece)
            sent += len(piece)
        await resp.write_eof()
        return resp

    async def upload(request: web.Request) -> web.Response:
        state.hits += 1
        digest = hashlib.sha256()
        size = 0
        async for chunk in request.content.iter_chunked(65536):
            digest.update(chunk)
            size += len(chunk)
        return web.json_response({"sha256": digest.hexdigest(), "size": size})

    async def slow(request: web.Request) -> web.Response:
        state.hits += 1
        state.entered.set()
        state.slow_entered()
        try:
            await asyncio.wait_for(state.release.wait(), float(request.query.get("max", "30")))
        except asyncio.CancelledError:
            state.cancelled.set()
            raise
        return web.json_response({"slow": "done"})

    async def hop(request: web.Request) -> web.Response:
        state.hits += 1
        return web.Response(
            text="ok",
            headers={"Connection": "close, X-Secret-Hop", "X-Secret-Hop": "1", "Keep-Alive": "timeout=5"},
        )

    app = web.Application(handler_args={"handler_cancellation": True})
    app.router.add_route("*", "/stream", stream)
    app.router.add_route("*", "/upload", upload)
    app.router.add_route("*", "/slow", slow)
    app.router.add_route("*", "/hop", hop)
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


@pytest.fixture
async def upstream(aiohttp_server: Any) -> AsyncIterator[tuple[str, UpstreamState]]:
    state = UpstreamState()
    server = await aiohttp_server(upstream_app(state))
    yield f"http://127.0.0.1:{server.port}", state
    state.release.set()


def base_config(tmp_path: Path, server_cert: tuple[str, str], **overrides: Any) -> dict[str, Any]:
    cert_file, key_file = server_cert
    cfg: dict[str, Any] = {
        "server": {
            "host": "127.0.0.1",
            "port": 0,
            "tls": {"cert_file": cert_file, "key_file": key_file},
            "grace_period": 5,
        },
        "data_dir": str(tmp_path / "data"),
        "admin": {"host": "127.0.0.1", "port": 0},
        "routes": [],
    }
    if STORE_BACKEND == "postgres":  # the whole suite on PostgreSQL: GATEWAY_TEST_STORE=postgres
        cfg["store"] = {"url": postgres_url(tmp_path)}
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    return cfg


StartGateway = Callable[..., Awaitable[Gateway]]


@pytest.fixture
async def start_gateway(
    tmp_path: Path, server_cert: tuple[str, str]
) -> AsyncIterator[StartGateway]:
    started: list[Gateway] = []

    async def start(clock: Callable[[], float] | None = None, *, options: dict[str, Any] | None = None,
                    **overrides: Any) -> Gateway:
        """`overrides`: config sections; `options`: the Gateway's other arguments (passwords, mail)."""
        cfg: Config = parse_config(base_config(tmp_path, server_cert, **overrides), env={})
        gateway = Gateway(cfg, clock=clock or time.time, admin_token=ADMIN_TOKEN, **(options or {}))
        await gateway.start()
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        await gateway.stop()
    if STORE_BACKEND == "postgres":
        await drop_schema(postgres_url(tmp_path))


@pytest.fixture
async def https(client_ssl: ssl.SSLContext) -> AsyncIterator[aiohttp.ClientSession]:
    connector = aiohttp.TCPConnector(ssl=client_ssl)
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:
        yield session


def proxy_url(gateway: Gateway, path: str) -> str:
    return f"https://127.0.0.1:{gateway.proxy_port}{path}"


def admin_url(gateway: Gateway, path: str) -> str:
    return f"http://127.0.0.1:{gateway.admin_port}{path}"


def upstream_headers(seen: dict[str, Any]) -> dict[str, str]:
    """The upstream's view of the request headers, names lower-cased."""
    return {k.lower(): v for k, v in seen["headers"]}


async def read_json(resp: aiohttp.ClientResponse) -> Any:
    return json.loads(await resp.read())


class FakeClock:
    """Wall-clock seconds that only move when a test says so (expiry without sleeping)."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="session", autouse=True)
def no_secret_is_ever_logged() -> Any:
    """Every key, token and webhook secret the suite creates, searched for in every log line the
    suite produced in-process (operational logs at DEBUG, and the access log)."""
    import logging
    import secrets as secrets_module

    from gateway.accounts import keys as accounts_keys
    from gateway.accounts.passwords import Passwords
    from gateway.credentials.tokens import TokenService
    from gateway.events import service as webhook_service
    from gateway.observability.accesslog import AccessLog
    from gateway.observability.logs import JsonFormatter, quiet_libraries

    created: set[str] = {ADMIN_TOKEN}
    lines: list[str] = []
    formatter = JsonFormatter()

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            try:
                lines.append(formatter.format(record))
            except Exception:  # a record that cannot be rendered is still scanned as text
                lines.append(repr(record.__dict__))

    original_generate, original_mint, original_render = accounts_keys.generate_key, TokenService.mint, AccessLog.render
    original_hash, original_verify, original_token = Passwords.hash, Passwords.verify, secrets_module.token_urlsafe

    async def hash_password(self: Passwords, password: str) -> str:
        hashed = await original_hash(self, password)
        created.update((password, hashed))  # a password, and its argon2id hash
        return hashed

    async def verify_password(self: Passwords, stored: str | None, password: str) -> bool:
        if len(password) >= 8:
            created.add(password)  # wrong ones too: a mistyped password is nearly the right one
        return await original_verify(self, stored, password)

    def token_urlsafe(nbytes: int | None = None) -> str:
        token = original_token(nbytes)
        if nbytes == 32:
            created.add(token)  # portal session ids and invitation / reset link tokens
        return token

    def generate_key(prefix: str, environment: str) -> str:
        secret = original_generate(prefix, environment)
        created.add(secret)
        return secret

    original_webhook_secret = webhook_service.new_secret

    def new_webhook_secret() -> str:
        secret = original_webhook_secret()
        created.add(secret)  # webhook signing secrets, made at registration and at each rotation
        return secret

    def mint(self: TokenService, *args: Any, **kwargs: Any) -> tuple[str, float]:
        token, exp = original_mint(self, *args, **kwargs)
        created.add(token)
        return token, exp

    def render(self: AccessLog, fields: Any) -> str:
        text = original_render(self, fields)
        lines.append(text)
        return text

    root = logging.getLogger()
    handler, level = Keep(logging.DEBUG), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    accounts_keys.generate_key, TokenService.mint, AccessLog.render = generate_key, mint, render  # type: ignore[method-assign]
    Passwords.hash, Passwords.verify = hash_password, verify_password  # type: ignore[method-assign]
    secrets_module.token_urlsafe = token_urlsafe
    webhook_service.new_secret = new_webhook_secret
    quiet_libraries()  # as `gateway run` sets them
    yield
    accounts_keys.generate_key, TokenService.mint, AccessLog.render = original_generate, original_mint, original_render  # type: ignore[method-assign]
    Passwords.hash, Passwords.verify = original_hash, original_verify  # type: ignore[method-assign]
    secrets_module.token_urlsafe = original_token
    webhook_service.new_secret = original_webhook_secret
    root.removeHandler(handler)
    root.setLevel(level)
    text = "\n".join(lines)
    leaked = sorted(s[:12] + "…" for s in created if s in text)
    assert not leaked, f"secrets found in log output: {leaked}"
