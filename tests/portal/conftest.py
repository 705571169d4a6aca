"""A running gateway with the tenant portal, and browsers (clients) to use it."""

from __future__ import annotations

import ssl
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from gateway.accounts.passwords import Passwords
from gateway.app import Gateway
from gateway.portal.mail import Mailer
from gateway.portal.services import Portal
from gateway.portal.sessions import SessionSettings
from tests.access.test_keys_e2e import routes
from tests.portal.harness import OPERATOR, PortalClient, cheap_passwords


@dataclass
class PortalSite:
    gateway: Gateway
    portal: Portal
    base: str
    ssl: ssl.SSLContext
    clients: list[PortalClient]

    def client(self) -> PortalClient:
        made = PortalClient(self.base, self.portal.path, self.ssl)
        self.clients.append(made)
        return made

    async def tenant(self, tenant_id: str = "acme", name: str = "Acme Corp") -> None:
        await self.gateway.accounts.create_tenant({"id": tenant_id, "name": name, "plan": "starter"}, OPERATOR)

    async def invite(self, tenant_id: str, email: str, role: str = "owner") -> str:
        """The operator's invitation (what POST /admin/tenants/{id}/invitations does); its URL."""
        _, url = await self.portal.people.invite(tenant_id, {"email": email, "role": role}, OPERATOR)
        return url

    async def member(self, tenant_id: str, email: str, role: str = "owner") -> PortalClient:
        """A signed-in browser of a person who accepted an invitation."""
        url = await self.invite(tenant_id, email, role)
        browser = self.client()
        status, body = await browser.accept(url)
        assert status == 200, body
        status, body = await browser.sign_in(email)
        assert status == 200, body
        return browser


StartPortal = Callable[..., Any]


@pytest.fixture
async def start_portal(start_gateway, upstream, client_ssl) -> AsyncIterator[StartPortal]:
    """The portal as the gateway serves it: on its proxy listener (HTTPS), under /portal."""
    sites: list[PortalSite] = []

    async def start(*, clock: Callable[[], float] = time.time, passwords: Passwords | None = None,
                    settings: SessionSettings | None = None, mailer: Mailer | None = None,
                    gateway: Gateway | None = None, **overrides: Any) -> PortalSite:
        portal_cfg: dict[str, Any] = {"enabled": True}
        if settings is not None:
            portal_cfg.update(session_idle=settings.idle, session_max=settings.max)
        gw = gateway or await start_gateway(
            clock=clock, routes=routes(upstream[0]), portal=portal_cfg,
            options={"passwords": passwords or cheap_passwords(), "mail": mailer}, **overrides)
        assert gw.portal is not None, "portal.enabled"
        site = PortalSite(gw, gw.portal.portal, f"https://127.0.0.1:{gw.proxy_port}", client_ssl, [])
        sites.append(site)
        return site

    yield start
    for site in sites:
        for client in site.clients:
            await client.close()
