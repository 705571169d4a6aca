"""Pick the key store named by `store.url`; an unusable choice fails loudly at startup."""

from __future__ import annotations

from gateway.config import StoreConfig
from gateway.keystore.base import KeyStore, StoreError


def is_postgres(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def create_store(cfg: StoreConfig) -> KeyStore:
    path = cfg.sqlite_path
    if path is not None:
        from gateway.keystore.sqlite import SQLiteKeyStore

        return SQLiteKeyStore(path, busy_timeout=cfg.busy_timeout)
    if is_postgres(cfg.url):
        try:
            from gateway.keystore.postgres import PostgresKeyStore
        except ImportError:
            raise StoreError("store.url is PostgreSQL but asyncpg is not installed: pip install 'gateway[postgres]'") from None
        return PostgresKeyStore(cfg.url)
    raise StoreError(f"store.url: unsupported store {cfg.url.split(':', 1)[0]}")
