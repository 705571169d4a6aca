"""Invitations and password resets by mail, through a real SMTP server in this process (aiosmtpd)
that requires STARTTLS and a login, read back as the person would read their mailbox."""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from gateway.portal.mail import Mailer, SmtpSettings
from tests.cli.test_run import free_port
from tests.portal.conftest import PortalSite
from tests.portal.harness import PASSWORD, PortalClient, token_of

SMTP_USER, SMTP_PASSWORD = "gateway", "smtp-secret-0123456789"


@dataclass
class Mailbox:
    messages: list[email.message.EmailMessage] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))  # type: ignore[arg-type]
        return "250 OK"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        expected = (SMTP_USER.encode(), SMTP_PASSWORD.encode())
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == expected
        if ok:
            self.logins.append(data.login.decode())
        return AuthResult(success=ok)

    def body(self, index: int = -1) -> str:
        return self.messages[index].get_content()  # type: ignore[no-any-return]


@pytest.fixture
def smtp(ca: trustme.CA, tmp_path: Path) -> Iterator[tuple[Mailbox, SmtpSettings]]:
    cert = ca.issue_cert("localhost", "127.0.0.1")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(context)
    ca_file = tmp_path / "smtp-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True,
                            authenticator=box.authenticate, auth_required=True)
    controller.start()
    settings = SmtpSettings(host="127.0.0.1", port=port, sender="API portal <portal@gateway.example>",
                            username_env="SMTP_USER", password_env="SMTP_PASSWORD", ca_file=str(ca_file))
    yield box, settings
    controller.stop()


def mailer(settings: SmtpSettings) -> Mailer:
    return Mailer(settings, env={"SMTP_USER": SMTP_USER, "SMTP_PASSWORD": SMTP_PASSWORD})


async def mailing_portal(start_portal: Any, smtp: tuple[Mailbox, SmtpSettings]
                         ) -> tuple[Mailbox, Mailer, PortalSite, PortalClient]:
    """A portal that mails through `smtp`, with Acme's owner signed in and the mailbox empty: what
    setting them up sent is delivered and dropped, so a test reads only the mail it causes."""
    box, settings = smtp
    post = mailer(settings)
    site = await start_portal(mailer=post)
    await site.tenant()
    owner = await site.member("acme", "owner@acme.example")
    await post.close()
    box.messages.clear()
    return box, post, site, owner


async def test_an_invitation_arrives_by_mail_with_the_url_the_api_showed_once(start_portal, smtp) -> None:
    box, post, site, owner = await mailing_portal(start_portal, smtp)
    status, invited = await owner.api("POST", "/users", {"email": "Ada@Example.com", "role": "admin"})
    assert status == 201
    await post.close()  # waits for the mail under way
    assert len(box.messages) == 1 and box.logins[-1] == SMTP_USER
    message = box.messages[0]
    assert message["To"] == "Ada@Example.com" and message["From"] == "API portal <portal@gateway.example>"
    assert "Acme Corp" in message["Subject"]
    assert invited["invitation_url"] in box.body()
    browser = site.client()
    assert (await browser.accept(invited["invitation_url"]))[0] == 200
    assert (await browser.sign_in("ada@example.com"))[0] == 200


async def test_a_forgotten_password_is_reset_once_through_the_mailed_link(start_portal, smtp) -> None:
    box, post, site, owner = await mailing_portal(start_portal, smtp)
    stranger = site.client()
    known = await stranger.api("POST", "/password-reset", {"email": "owner@acme.example"})
    unknown = await stranger.api("POST", "/password-reset", {"email": "nobody@acme.example"})
    assert known == unknown and known[0] == 202  # the same answer: nothing to learn about accounts
    await site.portal.close()
    await post.close()
    assert len(box.messages) == 1 and box.messages[0]["To"] == "owner@acme.example"
    url = next(word for word in box.body().split() if "#reset=" in word)
    assert (await stranger.api("GET", f"/password-reset/{token_of(url)}")) == (200, {"email": "owner@acme.example"})
    new_password = "a brand new passphrase"
    assert (await stranger.api("POST", f"/password-reset/{token_of(url)}", {"password": new_password}))[0] == 200
    assert (await owner.api("GET", "/me"))[0] == 401  # every session of the account ended
    assert (await stranger.sign_in("owner@acme.example", PASSWORD))[0] == 401
    assert (await stranger.sign_in("owner@acme.example", new_password))[0] == 200
    status, body = await stranger.api("POST", f"/password-reset/{token_of(url)}", {"password": "yet another one!"})
    assert (status, body["error"]["code"]) == (404, "NOT_FOUND")


async def test_a_mail_server_that_cannot_be_reached_is_logged_without_the_link(start_portal, caplog) -> None:
    import logging

    caplog.set_level(logging.INFO, "gateway.mail")
    post = Mailer(SmtpSettings(host="127.0.0.1", port=free_port(), sender="portal@gateway.example", timeout=2))
    site = await start_portal(mailer=post)
    await site.tenant()
    owner = await site.member("acme", "owner@acme.example")
    status, invited = await owner.api("POST", "/users", {"email": "ada@example.com", "role": "viewer"})
    assert status == 201  # the URL is still shown: the person inviting can pass it on
    await post.close()
    assert post.failed >= 1
    lines = [r for r in caplog.records if r.name == "gateway.mail"]
    assert lines and all(token_of(invited["invitation_url"]) not in str(r.__dict__) for r in lines)


async def raw_post(port: int, context: ssl.SSLContext, path: str, body: bytes, *, host: str,
                   headers: dict[str, str]) -> int:
    """A request as a script sends it: any Host, any Origin."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="localhost")
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    writer.write(f"POST {path} HTTP/1.1\r\nHost: {host}\r\n{head}Content-Type: application/json\r\n"
                 f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
    status_line = await reader.readline()
    writer.close()
    return int(status_line.split()[1])


async def test_a_reset_asked_for_under_another_host_mails_no_link_to_that_host(start_portal, smtp, client_ssl) -> None:
    """Password-reset poisoning: anyone may ask for a reset, and a client that is not a browser
    names any Host and a matching Origin; the mailed link must not lead the victim's token there."""
    box, post, site, _ = await mailing_portal(start_portal, smtp)
    status = await raw_post(site.gateway.proxy_port, client_ssl, "/portal/api/password-reset",
                            b'{"email": "owner@acme.example"}', host="evil.example",
                            headers={"Origin": "https://evil.example", "X-Forwarded-Host": "evil.example"})
    assert status == 202
    await site.portal.close()
    await post.close()
    assert len(box.messages) == 1
    url = next(word for word in box.body().split() if "#reset=" in word)
    assert "evil.example" not in box.body() and url.startswith(f"https://127.0.0.1:{site.gateway.proxy_port}/portal/")


async def test_an_invitation_asked_for_under_another_host_mails_no_link_to_that_host(start_portal, smtp) -> None:
    """Without `portal.public_url`, an invitation's link is on the proxy listener's configured
    address too: a signed-in admin's script that names another Host (and the matching Origin, which
    then passes the CSRF check) cannot make the gateway mail anyone a link to that host, from the
    operator's own address. The same for inviting again."""
    box, post, site, owner = await mailing_portal(start_portal, smtp)
    elsewhere = {"origin": "https://evil.example", "headers": {"Host": "evil.example", "X-Forwarded-Host": "evil.example"}}
    status, invited = await owner.api("POST", "/users", {"email": "ada@example.com", "role": "viewer"}, **elsewhere)
    assert status == 201, invited
    status, again = await owner.api("POST", f"/users/{invited['id']}/invitation", **elsewhere)
    assert status == 201, again
    await post.close()
    own = f"https://127.0.0.1:{site.gateway.proxy_port}/portal/#invitation="
    assert invited["invitation_url"].startswith(own) and again["invitation_url"].startswith(own)
    assert len(box.messages) == 2
    assert all("evil.example" not in box.body(i) for i in range(2))
    assert invited["invitation_url"] in box.body(0) and again["invitation_url"] in box.body(1)
