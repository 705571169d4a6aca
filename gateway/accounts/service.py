"""Tenant, user and key operations with their rules, cache invalidation and audit, in one place.

The admin API and the CLI both call this, so a key created either way obeys the same rules, and
every change drops the affected identities from this process's cache before it returns, so a
revoked key fails on its very next request here. Each change writes its webhook event in its own
store transaction (the outbox), so an event is never lost nor sent for a change that failed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.accounts import rules
from gateway.accounts.events import key_data, key_event, tenant_event, user_event
from gateway.config import Config
from gateway.credentials.keyformat import display_prefix, generate_key, hash_key, last4, new_id
from gateway.errors import Conflict, NotFound, ValidationError
from gateway.keystore.base import DuplicateError, KeyStore, LastOwnerError
from gateway.keystore.cache import Invalidator
from gateway.keystore.models import ApiKey, Tenant, User


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made a change: `admin` (admin token), `cli`, `system`, or a person signed in to the
    portal (`user:<id>`, with their email), and from where."""

    name: str
    source_ip: str | None = None
    email: str | None = None

    @classmethod
    def person(cls, user_id: str, email: str, source_ip: str | None = None) -> Actor:
        return cls(f"user:{user_id}", source_ip, email)


@dataclass(frozen=True, slots=True)
class TenantDefaults:
    """The gates a new tenant starts with (`tenants.api_enabled_default`, `write_enabled_default`)."""

    api_enabled: bool = True
    write_enabled: bool = True


SYSTEM = Actor("system")
CLI = Actor("cli")  # the `gateway tenants|users|keys` commands
_EXPIRY_MARGIN = dt.timedelta(minutes=10)
EXPOSURE_REASONS = ("query_string", "plain_http", "secret_scanning")
_EXPOSED_REMEMBERED = 65_536  # keys this process knows are marked exposed (the oldest forgotten first)


class AuditSink(Protocol):
    def __call__(
        self,
        actor: Actor,
        action: str,
        target_type: str,
        target_id: str,
        *,
        tenant_id: str | None = None,
        key_name: str | None = None,
        details: dict[str, str] | None = None,
    ) -> None: ...


class Propagator(Protocol):
    """Carries a change to the other gateway instances (their caches)."""

    def announce(self, kind: str, target: str) -> None: ...
    async def publish(self, kind: str, target: str, *, wait: float = 0.0) -> Any: ...


def _no_audit(*args: Any, **kwargs: Any) -> None:
    return None


class Accounts:
    def __init__(
        self,
        store: KeyStore,
        cfg: Config,
        *,
        invalidators: tuple[Invalidator, ...] = (),
        propagator: Propagator | None = None,
        audit: AuditSink = _no_audit,
        clock: Callable[[], float] = time.time,
        tenant_defaults: TenantDefaults = TenantDefaults(),
    ) -> None:
        self.store = store
        self.cfg = cfg
        self.tenant_defaults = tenant_defaults
        self._invalidators = invalidators
        self._propagator = propagator
        self._audit = audit
        self._clock = clock
        self._expiries_since: dt.datetime | None = None  # the first look covers all time
        # Keys this process has marked exposed (or is marking): a flood of requests with one
        # leaked key reaches the store once. Insertion order is age.
        self._exposed: dict[str, None] = {}
        self._leaked: dict[str, asyncio.Future[ApiKey | None]] = {}  # secret hash -> its key (None: not a key here)
        self.on_exposed: Callable[[str], None] | None = None  # told the reason of each exposure recorded here

    def record(self, actor: Actor, action: str, target_type: str, target_id: str, *,
               tenant_id: str | None = None) -> None:
        """An audit entry for an action outside this service (a config reload, an invitation)."""
        self._audit(actor, action, target_type, target_id, tenant_id=tenant_id)

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._clock(), dt.UTC)

    # tenants

    async def create_tenant(self, body: Any, actor: Actor) -> Tenant:
        request = rules.tenant_input(body, self.cfg)
        api_enabled, write_enabled = request.api_enabled, request.write_enabled
        now = self.now()
        defaults = self.tenant_defaults
        tenant = Tenant(
            id=request.id or new_id("ten"), name=request.name, plan=request.plan,
            disabled=False, created_at=now, updated_at=now,
            api_enabled=defaults.api_enabled if api_enabled is None else api_enabled,
            write_enabled=defaults.write_enabled if write_enabled is None else write_enabled,
        )
        try:
            created = await self.store.create_tenant(
                tenant, events=[tenant_event("tenant.created", tenant, at=now, actor=actor.name)])
        except DuplicateError:
            raise Conflict(f"tenant {tenant.id} already exists") from None
        self._audit(actor, "tenant.created", "tenant", created.id, tenant_id=created.id)
        return created

    async def tenant(self, tenant_id: str) -> Tenant:
        tenant = await self.store.get_tenant(tenant_id)
        if tenant is None:
            raise NotFound(f"no tenant {tenant_id}")
        return tenant

    async def update_tenant(self, tenant_id: str, body: Any, actor: Actor) -> Tenant:
        patch = rules.tenant_patch(body, self.cfg)
        name, plan, disabled = patch.name, patch.plan, patch.disabled
        api_enabled, write_enabled = patch.api_enabled, patch.write_enabled
        now = self.now()
        current = await self.tenant(tenant_id)
        changes = {k: v for k, v in (("name", name), ("plan", plan), ("disabled", disabled),
                                     ("api_enabled", api_enabled), ("write_enabled", write_enabled)) if v is not None}
        after = dataclasses.replace(current, updated_at=now, **changes)  # type: ignore[arg-type]
        event = tenant_event("tenant.updated", after, at=now, actor=actor.name, changes=sorted(changes))
        updated = await self.store.update_tenant(
            tenant_id, name=name, plan=plan, disabled=disabled, api_enabled=api_enabled,
            write_enabled=write_enabled, at=now, events=[event]
        )
        if updated is None:
            raise NotFound(f"no tenant {tenant_id}")
        self._changed("tenant", tenant_id)
        self._audit(actor, "tenant.updated", "tenant", tenant_id, tenant_id=tenant_id)
        return updated

    def plan_limit(self, tenant: Tenant) -> int | None:
        plan = self.cfg.plans.get(tenant.plan)
        return plan.requests_per_minute if plan else None

    # users

    async def create_user(self, tenant_id: str, body: Any, actor: Actor) -> User:
        await self.tenant(tenant_id)
        request = rules.user_input(body)
        now = self.now()
        user = User(
            id=new_id("usr"), tenant_id=tenant_id, name=request.name, email=request.email,
            role=request.role, disabled=False, created_at=now, updated_at=now,
        )
        created = await self.store.create_user(
            user, events=[user_event("user.created", user, at=now, actor=actor.name)])
        self._audit(actor, "user.created", "user", created.id, tenant_id=tenant_id)
        return created

    async def update_user(self, user_id: str, body: Any, actor: Actor, *, keep_owner: bool = False) -> User:
        """`keep_owner` (the portal): refuse, with 422, a change that leaves the tenant no
        active owner; the store decides it in the write itself, so concurrent ones cannot both pass."""
        patch = rules.user_patch(body)
        role, disabled, name = patch.role, patch.disabled, patch.name
        now = self.now()
        current = await self.store.get_user(user_id)
        if current is None:
            raise NotFound(f"no user {user_id}")
        changes = {k: v for k, v in (("role", role), ("disabled", disabled), ("name", name)) if v is not None}
        after = dataclasses.replace(current, updated_at=now, **changes)  # type: ignore[arg-type]
        event = user_event("user.updated", after, at=now, actor=actor.name, changes=sorted(changes))
        try:
            updated = await self.store.update_user(
                user_id, role=role, disabled=disabled, name=name, at=now, events=[event], keep_owner=keep_owner
            )
        except LastOwnerError:
            raise ValidationError("the tenant needs at least one owner", details=[{
                "field": "role" if role is not None and role != "owner" else "disabled",
                "issue": "this is the tenant's last owner"}]) from None
        if updated is None:
            raise NotFound(f"no user {user_id}")
        self._changed("user", user_id)
        self._audit(actor, "user.updated", "user", user_id, tenant_id=updated.tenant_id)
        return updated

    # keys

    async def key(self, key_id: str) -> ApiKey:
        key = await self.store.get_key(key_id)
        if key is None:
            raise NotFound(f"no key {key_id}")
        return key

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

    async def mark_exposed(self, key_id: str, reason: str, *, url: str | None = None,
                           actor: Actor = SYSTEM) -> bool:
        """Record that a key leaked (`reason`: one of EXPOSURE_REASONS; `url`: where, if known):
        `exposed_at` and `exposure` on the key, the `key.exposed` event and audit entry, and with
        `keys.on_exposure: revoke` the key revoked at once (here and on the other instances, as
        `revoke_key` does). The first exposure wins: True for the call that recorded it; a key
        already marked (by this process: no store access at all; by another: one conditional
        update that changes nothing) is False, and so is a canary key (planted to be found: it
        stays armed). An unknown key is NotFound."""
        if reason not in EXPOSURE_REASONS:
            raise ValueError(f"unknown exposure reason {reason!r}")
        if key_id in self._exposed:
            return False
        self._remember_exposed(key_id)
        try:
            return await self._expose(key_id, reason, url, actor)
        except BaseException:
            self._exposed.pop(key_id, None)  # not recorded: a later sighting tries again
            raise

    async def expose_secret(self, secret: str, reason: str, *, url: str | None = None,
                            actor: Actor = SYSTEM) -> ApiKey | None:
        """A secret seen leaked (a well-formed key: its checksum holds): the key it is (as first
        read), marked exposed as `mark_exposed` does, or None when it is no key of this store. Once per
        secret per process: reports of one secret while the first is under way wait for it, and
        later ones are answered from memory, so a flood costs the store one lookup and one write.
        A canary key is never marked (it is planted to be found; its alarm is `note_canary_use`)."""
        digest = hash_key(secret)
        pending = self._leaked.get(digest)
        if pending is None:
            if len(self._leaked) >= _EXPOSED_REMEMBERED:
                del self._leaked[next(iter(self._leaked))]
            pending = self._leaked[digest] = asyncio.ensure_future(self._expose_secret(digest, reason, url, actor))
            pending.add_done_callback(lambda done: self._forget_failed(digest, done))
        return await asyncio.shield(pending)

    def _forget_failed(self, digest: str, done: asyncio.Future[ApiKey | None]) -> None:
        if done.cancelled() or done.exception() is not None:
            self._leaked.pop(digest, None)  # not recorded: a later sighting tries again

    async def _expose_secret(self, digest: str, reason: str, url: str | None, actor: Actor) -> ApiKey | None:
        principal = await self.store.get_principal_by_hash(digest)
        if principal is None:
            return None
        key = principal.key
        if not key.canary:
            try:
                await self.mark_exposed(key.id, reason, url=url, actor=actor)
            except NotFound:  # deleted since the lookup
                return None
        return key

    async def note_canary_use(self, key_id: str, *, client_ip: str, user_agent: str | None, path: str,
                              method: str) -> bool:
        """A request made with a canary key (answered 401 as an unknown key): the `key.canary_used`
        event and audit entry, naming where it came from. False if the key is gone."""
        key = await self.store.get_key(key_id)
        if key is None:
            return False
        use = {"client_ip": client_ip, "user_agent": user_agent or "", "method": method, "path": path}
        actor = Actor(SYSTEM.name, client_ip)
        await self.store.add_events([key_event("key.canary_used", key, at=self.now(), actor=actor.name, **use)])
        self._audit(actor, "key.canary_used", "key", key_id, tenant_id=key.tenant_id, key_name=key.name,
                    details={"user_agent": use["user_agent"], "method": method, "path": path})
        return True

    def _remember_exposed(self, key_id: str) -> None:
        if len(self._exposed) >= _EXPOSED_REMEMBERED:
            del self._exposed[next(iter(self._exposed))]
        self._exposed[key_id] = None

    async def _expose(self, key_id: str, reason: str, url: str | None, actor: Actor) -> bool:
        current = await self.key(key_id)
        if current.exposed_at is not None or current.canary:
            return False
        now = self.now()
        exposure: dict[str, Any] = {"reason": reason, "at": iso(now)}
        if url is not None:
            exposure["url"] = url
        revoke = self.cfg.keys.on_exposure == "revoke" and current.revoked_at is None
        after = dataclasses.replace(current, exposed_at=now, exposure=exposure,
                                    revoked_at=now if revoke else current.revoked_at)
        events = [key_event("key.exposed", after, at=now, actor=actor.name, exposure=exposure)]
        if revoke:
            events.append(key_event("key.revoked", after, at=now, actor=actor.name, reason="exposed"))
        if not await self.store.expose_key(key_id, exposure, now, revoke=revoke, events=events):
            return False  # another instance (or process) recorded it first
        if revoke:
            self._forget_key(key_id)
        self._audit(actor, "key.exposed", "key", key_id, tenant_id=current.tenant_id, key_name=current.name)
        if revoke:
            self._audit(actor, "key.revoked", "key", key_id, tenant_id=current.tenant_id, key_name=current.name)
        if self.on_exposed is not None:
            self.on_exposed(reason)
        return True

    async def note_expired(self, *, batch: int = 500) -> int:
        """`key.expired` in the audit trail for each key whose validity ran out since the last
        look; several instances may look at once, and each key is noted by exactly one."""
        noted = 0
        while True:
            now = self.now()
            found = await self.store.expired_unnoted(now, batch, self._expiries_since)
            for key_id in found:
                key = await self.store.get_key(key_id)
                if key is None:
                    continue
                event = key_event("key.expired", key, at=now, actor=None)
                if not await self.store.note_expiry(key_id, events=[event]):
                    continue  # another instance (or worker) got there first
                self._audit(SYSTEM, "key.expired", "key", key_id, tenant_id=key.tenant_id, key_name=key.name)
                noted += 1
            if len(found) < batch:
                # later looks start a margin before this one (clocks of instances differ a little),
                # not at the beginning of time: the keys table is not scanned every period
                self._expiries_since = now - _EXPIRY_MARGIN
                return noted

    async def note_anomaly(self, key_id: str, anomaly: Mapping[str, Any]) -> bool:
        """A key's unusual usage (`anomaly`: what the usage check found, as the key's `anomaly`
        field shows it): the `key.anomaly` event with it, and its audit entry by `system`. The
        caller reports each anomaly once across instances; False if the key is gone."""
        key = await self.store.get_key(key_id)
        if key is None:
            return False
        await self.store.add_events([key_event("key.anomaly", key, at=self.now(), actor=None, anomaly=dict(anomaly))])
        self._audit(SYSTEM, "key.anomaly", "key", key_id, tenant_id=key.tenant_id, key_name=key.name)
        return True

    async def note_expiring(self, thresholds: Sequence[int], *, batch: int = 500) -> int:
        """`key.expiring` for each live key that came within a threshold (days) of its expiry: once
        per key and threshold, across instances. A key that crossed several thresholds since the
        last look (a short validity, or a long pause) gets one event, for the nearest."""
        sent = 0
        for days in sorted(set(thresholds)):
            wider = sorted(d for d in set(thresholds) if d > days)
            while True:
                now = self.now()
                found = await self.store.expiring_unnoted(now, dt.timedelta(days=days), days, batch)
                for key in found:
                    left = (key.expires_at - now).total_seconds() / 86400 if key.expires_at else 0.0
                    event = key_event("key.expiring", key, at=now, actor=None, days_left=math.ceil(left),
                                      threshold_days=days)
                    if await self.store.note_expiring(key.id, [days, *wider], now, events=[event]):
                        sent += 1
                if len(found) < batch:
                    break
        return sent

    def _forget_key(self, key_id: str) -> None:
        self._changed("key", key_id)

    def _changed(self, kind: str, target: str) -> None:
        """Drop the object from this instance's caches now, and tell the other instances."""
        for cache in self._invalidators:
            cache.invalidate(kind, target)
        if self._propagator is not None:
            self._propagator.announce(kind, target)

    async def propagate(self, kind: str, target: str, *, wait: float) -> Any:
        """Announce a change again and wait until every other instance confirms it (or `wait`
        passes); None without a propagator (a single instance: its own cache is already clean)."""
        if self._propagator is None:
            return None
        return await self._propagator.publish(kind, target, wait=wait)


def key_view(key: ApiKey, now: dt.datetime, expiring_soon_days: int) -> dict[str, Any]:
    """The contract's JSON for a key: never the secret or its hash."""
    expires_in = None
    soon = False
    if key.expires_at is not None:
        days = (key.expires_at - now).total_seconds() / 86400
        expires_in = math.ceil(days) if days >= 0 else math.floor(days)
        soon = expires_in <= expiring_soon_days
    return {
        "id": key.id,
        "name": key.name,
        "tenant_id": key.tenant_id,
        "user_id": key.user_id,
        "masked": key.display_prefix + "•" * 8,
        "last4": key.last4,
        "scope": key.scope,
        "permissions": [{"methods": list(p.methods), "path": p.path} for p in key.permissions],
        "resources": {k: list(v) for k, v in key.resources.items()},
        "environment": key.environment,
        "rate_limit_per_minute": key.rate_limit_per_minute,
        "created_at": iso(key.created_at),
        "last_used_at": iso(key.last_used_at),
        "expires_at": iso(key.expires_at),
        "expires_in_days": expires_in,
        "expiring_soon": soon,
        "status": key.status(now),
        "revoked_at": iso(key.revoked_at),
        "replaced_by": key.replaced_by,
        "exposed_at": iso(key.exposed_at),
        "exposure": dict(key.exposure) if key.exposure is not None else None,
        "canary": key.canary,
    }


def iso(at: dt.datetime | None) -> str | None:
    if at is None:
        return None
    return at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def plain(obj: Any) -> Mapping[str, Any]:
    """A tenant or user as JSON-ready fields."""
    fields = {name: getattr(obj, name) for name in obj.__dataclass_fields__}
    return {k: iso(v) if isinstance(v, dt.datetime) else v for k, v in fields.items()}

