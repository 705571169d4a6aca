"""The SQLite store's schema, migration by migration (applied on open, `database_sqlite.py`).

Each version is applied once and never edited: a change is a new version, written so that an
instance still on the previous one keeps working against the upgraded file.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[int, list[str]]] = [
    (1, [
        """CREATE TABLE tenants (
            id TEXT PRIMARY KEY, name TEXT NOT NULL, plan TEXT NOT NULL,
            disabled INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)""",
        """CREATE TABLE users (
            id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL REFERENCES tenants(id), name TEXT NOT NULL,
            email TEXT, role TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL, updated_at TEXT NOT NULL)""",
        "CREATE INDEX users_tenant ON users (tenant_id)",
        """CREATE TABLE api_keys (
            id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL REFERENCES tenants(id),
            user_id TEXT REFERENCES users(id), name TEXT NOT NULL, display_prefix TEXT NOT NULL,
            last4 TEXT NOT NULL, secret_hash TEXT NOT NULL UNIQUE, scope TEXT NOT NULL,
            permissions TEXT NOT NULL, resources TEXT NOT NULL, environment TEXT NOT NULL,
            rate_limit_per_minute INTEGER, created_at TEXT NOT NULL, expires_at TEXT,
            last_used_at TEXT, revoked_at TEXT, replaced_by TEXT)""",
        "CREATE INDEX api_keys_tenant ON api_keys (tenant_id, created_at)",
    ]),
    (2, [  # the audit trail's key.expired: written once per key, whichever instance sees it first
        # (a table of its own: api_keys keeps its shape for instances still on the previous version)
        "CREATE TABLE key_expiry_notes (key_id TEXT PRIMARY KEY, noted_at TEXT NOT NULL)",
        # what expired before this version is history, not news for the audit trail
        "INSERT INTO key_expiry_notes SELECT id, strftime('%Y-%m-%dT%H:%M:%fZ', 'now') FROM api_keys "
        "WHERE expires_at <= strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
        "CREATE INDEX api_keys_expires ON api_keys (expires_at)",
    ]),
    (3, [  # the tenant portal: the operator's gates, sign-ins, single-use links and sessions
        "ALTER TABLE tenants ADD COLUMN api_enabled INTEGER NOT NULL DEFAULT 1",
        "ALTER TABLE tenants ADD COLUMN write_enabled INTEGER NOT NULL DEFAULT 1",
        # apart from users: the hot path's principal join never reads password hashes
        """CREATE TABLE user_logins (
            user_id TEXT PRIMARY KEY REFERENCES users(id), email TEXT NOT NULL UNIQUE,
            password_hash TEXT, password_at TEXT)""",
        """CREATE TABLE portal_tokens (
            token_hash TEXT PRIMARY KEY, purpose TEXT NOT NULL, user_id TEXT NOT NULL REFERENCES users(id),
            created_at TEXT NOT NULL, expires_at TEXT NOT NULL, used_at TEXT)""",
        "CREATE INDEX portal_tokens_user ON portal_tokens (user_id)",
        """CREATE TABLE portal_sessions (
            id_hash TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id), created_at TEXT NOT NULL,
            seen_at TEXT NOT NULL, expires_at TEXT NOT NULL, client_ip TEXT, user_agent TEXT)""",
        "CREATE INDEX portal_sessions_user ON portal_sessions (user_id)",
    ]),
    (4, [  # webhooks: endpoints, the transactional outbox of events, and their deliveries
        """CREATE TABLE webhook_endpoints (
            id TEXT PRIMARY KEY, url TEXT NOT NULL, tenant_id TEXT REFERENCES tenants(id), description TEXT,
            secret TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0, disabled_reason TEXT,
            failing_since TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)""",
        "CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant_id)",
        """CREATE TABLE webhook_subscriptions (
            endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
            event_type TEXT NOT NULL, PRIMARY KEY (endpoint_id, event_type))""",
        """CREATE TABLE webhook_events (
            id TEXT PRIMARY KEY, type TEXT NOT NULL, tenant_id TEXT, created_at TEXT NOT NULL, payload TEXT NOT NULL)""",
        "CREATE INDEX webhook_events_created ON webhook_events (created_at)",
        """CREATE TABLE webhook_deliveries (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            event_id TEXT NOT NULL REFERENCES webhook_events(id) ON DELETE CASCADE,
            endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
            status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at TEXT, retry_from TEXT NOT NULL,
            lease_until TEXT, lease_token TEXT, last_attempt_at TEXT, response_status INTEGER, error TEXT,
            created_at TEXT NOT NULL, delivered_at TEXT)""",
        "CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending'",
        "CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id)",
        "CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id)",
        # key.expiring: once per key and threshold (days), whichever instance sees it first
        """CREATE TABLE key_expiring_notes (
            key_id TEXT NOT NULL, threshold_days INTEGER NOT NULL, noted_at TEXT NOT NULL,
            PRIMARY KEY (key_id, threshold_days))""",
    ]),
    (5, [  # leaked keys: where a key was first seen exposed, and canary keys (planted to be found)
        # (nullable or defaulted: an instance still on the previous version inserts keys as before)
        "ALTER TABLE api_keys ADD COLUMN exposed_at TEXT",
        "ALTER TABLE api_keys ADD COLUMN exposure TEXT",
        "ALTER TABLE api_keys ADD COLUMN canary INTEGER NOT NULL DEFAULT 0",
    ]),
    (6, [  # webhook secret rotation: the replaced secret signs too until its grace period ends
        "ALTER TABLE webhook_endpoints ADD COLUMN previous_secret TEXT",
        "ALTER TABLE webhook_endpoints ADD COLUMN previous_secret_expires_at TEXT",
    ]),
    (7, [  # an email signs in at most one person, but may be invited by several tenants meanwhile (an
        # invitation never tells a tenant that the address is another tenant's): the UNIQUE holds
        # for accepted logins only (SQLite drops a column's UNIQUE only by making the table again)
        """CREATE TABLE user_logins_v7 (
            user_id TEXT PRIMARY KEY REFERENCES users(id), email TEXT NOT NULL,
            password_hash TEXT, password_at TEXT)""",
        "INSERT INTO user_logins_v7 SELECT user_id, email, password_hash, password_at FROM user_logins",
        "DROP TABLE user_logins",
        "ALTER TABLE user_logins_v7 RENAME TO user_logins",
        "CREATE UNIQUE INDEX user_logins_signs_in ON user_logins (email) WHERE password_hash IS NOT NULL",
        "CREATE INDEX user_logins_email ON user_logins (email)",
    ]),
]
