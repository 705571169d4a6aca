"""Tenants and their users: creation and changes, each with its event (in the same store
transaction), its audit entry and the caches it drops."""

from __future__ import annotations

import dataclasses
from typing import Any

from gateway.accounts import rules
from gateway.accounts.actors import Actor
from gateway.accounts.base import AccountsBase
from gateway.accounts.events import tenant_event, user_event
from gateway.credentials.keyformat import new_id
from gateway.errors import Conflict, NotFound, ValidationError
from gateway.keystore.base import DuplicateError, LastOwnerError
from gateway.keystore.models import Tenant, User


class TenantsAndUsers(AccountsBase):
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
