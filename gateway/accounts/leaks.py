"""Keys seen leaked (in a query string, over plain HTTP, in a secret scanner's report): marked
exposed once, revoked at once with `keys.on_exposure: revoke`, and a flood of sightings of one
key costs the store one lookup and one write per process."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from functools import cached_property
from typing import Any

from gateway.accounts.actors import SYSTEM, Actor
from gateway.accounts.base import AccountsBase
from gateway.accounts.events import iso, key_event
from gateway.credentials.keyformat import hash_key
from gateway.errors import NotFound
from gateway.keystore.models import ApiKey

EXPOSURE_REASONS = ("query_string", "plain_http", "secret_scanning")
_EXPOSED_REMEMBERED = 65_536  # keys this process knows are marked exposed (the oldest forgotten first)


class Exposures(AccountsBase):
    on_exposed: Callable[[str], None] | None = None  # told the reason of each exposure recorded here

    # The memory of what leaked, made on first use (the constructor is `AccountsBase`'s).
    @cached_property
    def _exposed(self) -> dict[str, None]:
        """Keys this process has marked exposed (or is marking): a flood of requests with one
        leaked key reaches the store once. Insertion order is age."""
        return {}

    @cached_property
    def _leaked(self) -> dict[str, asyncio.Future[ApiKey | None]]:
        """Secret hash -> its key (None: not a key here), or the lookup under way."""
        return {}

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
