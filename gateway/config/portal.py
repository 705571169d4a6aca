"""The `portal` section: the tenant portal, its sessions and its outgoing mail."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from gateway.config.fields import (
    HTTP_URL,
    Number,
    Pattern,
)
from gateway.config.keytypes import SECTION, Flag, Port, Text

PORTAL_PATH = Pattern(r"(/[A-Za-z0-9._~-]+)+", "must be a path of one or more literal segments, like /portal")


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """Where invitation and password-reset mails go out (unset: links are only shown once to whoever made them)."""

    __pydantic_config__ = SECTION
    host: Text
    """The SMTP server."""
    sender: Text
    """The From address (`API portal <portal@example.com>`)."""
    port: Port = 587
    """Its port."""
    starttls: Flag = True
    """Upgrade to TLS with STARTTLS before sending (verified against the system's CAs or `ca_file`)."""
    username_env: Text | None = None
    """The environment variable holding the SMTP user name (credentials never go in this file)."""
    password_env: Text | None = None
    """The environment variable holding the SMTP password."""
    ca_file: Text | None = None
    """CA bundle for the server's certificate, else the system's."""
    timeout: Annotated[float, Number(0, 300)] = 10.0
    """Seconds for one SMTP conversation."""


@dataclass(frozen=True, slots=True)
class PortalConfig:
    """The tenant portal: the tenants' own people sign in on the proxy listener under `path`."""

    __pydantic_config__ = SECTION
    enabled: Flag = False
    """true: serve the portal page and its API on the proxy listener (HTTPS) under `path`."""
    path: Annotated[str, PORTAL_PATH] = "/portal"
    """Where it is served; this path and everything below it are the portal's (a route there is refused)."""
    public_url: Annotated[str, HTTP_URL] | None = None
    """The portal's address as people reach it (`https://api.example.com`): the origin state-changing
    requests must come from, and the base of invitation and reset links. Unset: the Origin check takes
    the host each request names; links never do (they use the proxy listener's `server.host` and `port`)."""
    session_idle: Annotated[float, Number(60, 86400 * 30)] = 1800
    """A session ends this long after its last use."""
    session_max: Annotated[float, Number(60, 86400 * 365)] = 43200
    """A session ends this long after sign-in, however much it is used."""
    smtp: SmtpConfig | None = None
    """Optional: invitations and password-reset links also go out by mail."""
