"""A key's life as its tenant's people and the operator drive it: created (within the tenant's
gates and key budget), rotated, revoked. The secret exists only in what `create_key` and
`rotate_key` return."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from gateway.accounts import rules
from gateway.accounts.actors import Actor
from gateway.accounts.base import AccountsBase
from gateway.accounts.events import key_data, key_event
from gateway.credentials.keyformat import display_prefix, generate_key, hash_key, last4, new_id
from gateway.errors import Conflict, NotFound, ValidationError
from gateway.keystore.models import ApiKey


class KeyLifecycle(AccountsBase):
    async def _check_capacity(self, tenant_id: str) -> None:
        active = await self.store.count_active_keys(tenant_id, self.now())
        limit = self.cfg.keys.max_per_tenant
        if active >= limit:
            raise ValidationError(
                f"tenant {tenant_id} already has {active} active keys (maximum {limit})",
                details=[{"field": "tenant_id", "issue": f"tenant has reached its maximum of {limit} active keys"}],
            )

    def _mint(self, spec: rules.KeySpec, now: dt.datetime) -> tuple[ApiKey, str]:
        secret = generate_key(self.cfg.keys.prefix, spec.environment)
        expires = spec.expires_at or (now + dt.timedelta(days=spec.validity_days) if spec.validity_days else None)
        key = ApiKey(
            id=new_id("key"), tenant_id=spec.tenant_id, user_id=spec.user_id, name=spec.name,
            display_prefix=display_prefix(secret), last4=last4(secret), secret_hash=hash_key(secret),
            scope=spec.scope, permissions=spec.permissions,  # type: ignore[arg-type]
            resources=spec.resources, environment=spec.environment,  # type: ignore[arg-type]
            rate_limit_per_minute=spec.rate_limit_per_minute, created_at=now, expires_at=expires,
            last_used_at=None, revoked_at=None, replaced_by=None, canary=spec.canary,
        )
        return key, secret

    async def create_key(self, body: Any, actor: Actor) -> tuple[ApiKey, str]:
        """A new key and its secret, which exists only in this return value from now on."""
        spec = rules.key_spec(body, self.cfg.keys, self.now())
        tenant = await self.store.get_tenant(spec.tenant_id)
        if tenant is None:
            raise NotFound(f"no tenant {spec.tenant_id}", details=[{"field": "tenant_id", "issue": "no such tenant"}])
        rules.check_gates(tenant, spec.scope, spec.permissions)
        if spec.user_id is not None:
            user = await self.store.get_user(spec.user_id)
            if user is None or user.tenant_id != tenant.id:
                raise NotFound(f"no user {spec.user_id} in tenant {tenant.id}",
                               details=[{"field": "user_id", "issue": "no such user in this tenant"}])
        await self._check_capacity(tenant.id)
        now = self.now()
        key, secret = self._mint(spec, now)
        created = await self.store.create_key(key, events=[key_event("key.created", key, at=now, actor=actor.name)])
        self._audit(actor, "key.created", "key", created.id, tenant_id=created.tenant_id, key_name=created.name)
        return created, secret

    async def rotate_key(self, key_id: str, actor: Actor) -> tuple[ApiKey, str]:
        """A new secret with the same settings; the old key stops at once."""
        old = await self.key(key_id)
        now = self.now()
        if old.status(now) == "revoked":
            raise Conflict(f"key {key_id} is revoked and cannot be rotated")
        tenant = await self.tenant(old.tenant_id)
        rules.check_gates(tenant, old.scope, old.permissions, rotating=True)
        validity = None
        if old.expires_at is not None:
            days = (old.expires_at - old.created_at).days
            validity = max(1, days)
        spec = rules.KeySpec(
            tenant_id=old.tenant_id, name=old.name, scope=old.scope, permissions=old.permissions,
            validity_days=validity, environment=old.environment, resources=old.resources,
            user_id=old.user_id, rate_limit_per_minute=old.rate_limit_per_minute, canary=old.canary,
        )
        new, secret = self._mint(spec, now)
        event = key_event("key.rotated", dataclasses.replace(old, revoked_at=now, replaced_by=new.id), at=now,
                          actor=actor.name, new_key=key_data(new))
        rotated = await self.store.rotate_key(key_id, new, now, events=[event])
        if rotated is None:  # revoked or rotated by someone else since we read it
            raise Conflict(f"key {key_id} is revoked and cannot be rotated")
        self._forget_key(key_id)
        self._audit(actor, "key.rotated", "key", key_id, tenant_id=old.tenant_id, key_name=old.name)
        return rotated, secret

    async def revoke_key(self, key_id: str, actor: Actor) -> ApiKey:
        """Revoked at once; revoking a revoked key changes nothing (and makes no event)."""
        now = self.now()
        current = await self.key(key_id)
        event = key_event("key.revoked", dataclasses.replace(current, revoked_at=now), at=now, actor=actor.name)
        revoked = await self.store.revoke_key(key_id, now, events=[event])
        if revoked is None:
            raise NotFound(f"no key {key_id}")
        self._forget_key(key_id)
        self._audit(actor, "key.revoked", "key", key_id, tenant_id=revoked.tenant_id, key_name=revoked.name)
        return revoked
