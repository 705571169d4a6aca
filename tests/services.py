"""The real PostgreSQL and Redis of these machines, one schema or key prefix per test."""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

REQUIRE_SERVICES = os.environ.get("GATEWAY_REQUIRE_SERVICES") == "1"
POSTGRES = os.environ.get("GATEWAY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("GATEWAY_TEST_REDIS", "redis://127.0.0.1:6379/0")


def require_service(name: str, reachable: bool, reason: str) -> None:
    """Skip when a backing service is missing on a laptop; fail in CI, where it must exist."""
    if reachable:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"{name} is required (GATEWAY_REQUIRE_SERVICES=1) but {reason}")
    pytest.skip(f"{name} not available: {reason}")


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def free_port() -> int:
    """A loopback port nothing listens on, for a process that must be told its port before it starts.

    Taken below the ephemeral range: a port from `bind(("127.0.0.1", 0))` is handed out again by
    the next bind to port 0 anywhere on the machine (other tests, other runs of the suite), which
    can take it before the child binds it; explicit ports below that range only meet each other."""
    high = _ephemeral_range()[0] - 1
    low = max(1024, high - 12_000)
    for _ in range(200):
        port = random.randint(low, high)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))  # fails while anything listens there, or a connection lingers
            except OSError:
                continue
        return port
    raise AssertionError(f"no free loopback port in {low}..{high}")


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def require_postgres() -> None:
    require_service("postgresql", _listening(5432), "nothing answers on 127.0.0.1:5432")


def require_redis() -> None:
    require_service("redis", _listening(6379), "nothing answers on 127.0.0.1:6379")


def schema_for(tmp_path: Path) -> str:
    """A schema name unique to one test (its tmp_path), so tests never see each other's rows."""
    return "t_" + hashlib.sha256(str(tmp_path).encode()).hexdigest()[:16]


def postgres_url(tmp_path: Path) -> str:
    return f"{POSTGRES}?schema={schema_for(tmp_path)}"


async def drop_schema(url: str) -> None:
    import asyncpg

    from gateway.keystore.database_postgres import connect_args

    dsn, schema = connect_args(url)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def private_redis_server(directory: Path) -> AsyncIterator[str]:
    """A Redis of one test alone: its counters count only that test's commands, and no other
    test's CLIENT KILL or CLIENT PAUSE on the shared Redis reaches it."""
    import asyncio

    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
        "--dir", str(directory), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    assert proc.stdout is not None
    try:
        while b"Ready to accept connections" not in (line := await asyncio.wait_for(proc.stdout.readline(), 10)):
            assert line, "redis-server exited"
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.kill()
        await proc.wait()


def own_redis_names() -> tuple[dict[str, str], dict[str, str]]:
    """The `ratelimit` and `store` settings of one test's gateway on the shared Redis: its own key
    prefix and its own invalidation channel. On the default channel, every gateway of every test
    (and of another run of the suite on the same machine) would hear, and acknowledge, the others'
    changes."""
    tag = uuid.uuid4().hex
    return {"backend": "redis", "redis_prefix": f"gwtest:{tag}:"}, {"invalidation_channel": f"gwtest:{tag}:inv"}
