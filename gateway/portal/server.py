"""The tenant portal inside a gateway process: built from the config, served on a private Unix
socket, and mounted on the proxy listener under `portal.path` (`gateway/proxy/mount.py`).

Each process (each worker) serves its own copy; everything they share (sessions, users, the
sign-in counts with Redis) lives in the store and the rate limiter, so any worker or instance
can take a browser's next request.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aiohttp import web

from gateway.accounts.passwords import Passwords
from gateway.accounts.people import Mail, People, PortalLinks
from gateway.accounts.service import Accounts
from gateway.config import Config
from gateway.events.service import Webhooks
from gateway.observability.recorder import Recorder
from gateway.portal.app import portal_app
from gateway.portal.http import Origins
from gateway.portal.mail import Mailer, SmtpSettings
from gateway.portal.redact import link_secret_redactor
from gateway.portal.services import Portal
from gateway.portal.sessions import Sessions, SessionSettings
from gateway.portal.socket_dir import SocketDir, make_socket_dir
from gateway.portal.throttle import WINDOW, DoorThrottle
from gateway.proxy.mount import Mount, initials_of, unix_upstream
from gateway.ratelimit.base import Refundable

WILDCARDS = ("0.0.0.0", "::", "")


def links(cfg: Config, proxy_port: int | None = None) -> PortalLinks:
    """Where links point: never a host a request names (see `PortalLinks`)."""
    host = cfg.server.host if cfg.server.host not in WILDCARDS else "localhost"
    port = proxy_port or cfg.server.port
    return PortalLinks(path=cfg.portal.path.rstrip("/"), public_url=cfg.portal.public_url,
                       fallback=f"https://{host}:{port}")


def mailer(cfg: Config) -> Mailer | None:
    smtp = cfg.portal.smtp
    if smtp is None:
        return None
    return Mailer(SmtpSettings(host=smtp.host, sender=smtp.sender, port=smtp.port, starttls=smtp.starttls,
                               username_env=smtp.username_env, password_env=smtp.password_env,
                               ca_file=smtp.ca_file, timeout=smtp.timeout))


def people(cfg: Config, accounts: Accounts, *, passwords: Passwords | None = None, mail: Mail | None = None,
           proxy_port: int | None = None) -> People:
    """Invitations, links and sign-in checks: the portal's, the admin API's and the CLI's."""
    return People(accounts, passwords or Passwords(), links(cfg, proxy_port), mailer=mail)


def throttle_limiter(cfg: Config, clock: Callable[[], float]) -> Refundable:
    """The `ratelimit` section's backend with the doors' own window (and, on Redis, key prefix);
    never leased: the doors refund a successful sign-in's place (`throttle.py`)."""
    rl = cfg.ratelimit
    if rl.backend == "redis":
        from gateway.ratelimit.redis import RedisRateLimiter

        return RedisRateLimiter(rl.redis_url, prefix=rl.redis_prefix + "portal:",
                                on_backend_error=rl.on_backend_error, window=WINDOW)
    from gateway.ratelimit.memory import MemoryRateLimiter

    return MemoryRateLimiter(clock=clock, window=WINDOW)


class PortalServer:
    """The portal's aiohttp application on a Unix socket in a private directory (0700) of its own
    (`socket_dir.py`)."""

    def __init__(self, portal: Portal) -> None:
        self.portal = portal
        self._runner: web.AppRunner | None = None
        self._dir: SocketDir | None = None

    async def start(self) -> Mount:
        self._dir = make_socket_dir()  # private (0700), and a path that fits however long TMPDIR is
        path = self._dir.path
        runner = web.AppRunner(portal_app(self.portal), access_log=None, shutdown_timeout=5.0)
        await runner.setup()
        self._runner = runner
        await web.UnixSite(runner, path).start()
        prefix = self.portal.path.rstrip("/")
        return Mount(prefix=prefix, upstream=unix_upstream(path), redact=link_secret_redactor(prefix),
                     initials=initials_of(prefix))

    async def stop(self) -> None:
        """After the proxy listener has drained: what it forwarded has been answered."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
            await self.portal.throttle.close()
        if self._dir is not None:
            self._dir.remove()
            self._dir = None


def build_portal(cfg: Config, accounts: Accounts, recorder: Recorder, who: People, webhooks: Webhooks, *,
                 clock: Callable[[], float] = time.time) -> Portal:
    return Portal(
        accounts=accounts,
        people=who,
        sessions=Sessions(accounts.store, SessionSettings(idle=cfg.portal.session_idle, max=cfg.portal.session_max),
                          clock=clock),
        throttle=DoorThrottle(throttle_limiter(cfg, clock)),
        origins=Origins(cfg.portal.public_url),
        webhooks=webhooks,
        recorder=recorder,
        path=cfg.portal.path.rstrip("/"),
    )
