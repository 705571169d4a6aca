"""Pick the key store named by `store.url`; an unusable choice fails loudly at startup."""

from __future__ import annotations

from gateway.config import StoreConfig
from gateway.keystore.base import KeyStore, StoreError


def create_store(cfg: StoreConfig) -> KeyStore:
    path = cfg.sqlite_path
    if path is not None:
        from gateway.keystore.sqlite import SQLiteKeyStore

        return SQLiteKeyStore(path)
    raise StoreError(f"store.url {cfg.url.split('@')[-1]}: PostgreSQL is not supported by this build yet")
