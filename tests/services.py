"""The real PostgreSQL and Redis of these machines, one schema or key prefix per test."""

from __future__ import annotations

import hashlib
import os
import socket
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

    from gateway.keystore.postgres import connect_args

    dsn, schema = connect_args(url)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()
