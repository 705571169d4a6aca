"""Invitations and password-reset links by mail (`portal.smtp`), sent in the background.

The standard library's `smtplib` in a worker thread: one short conversation per message, with
STARTTLS (certificate verified) unless turned off, and a login when credentials are configured
(read from environment variables, never from the file). A failure is logged without the message,
whose body holds a single-use link; the person who asked still has the URL the API answered with.
"""

from __future__ import annotations

import asyncio
import logging
import os
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid

log = logging.getLogger("gateway.mail")


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    host: str
    sender: str                       # portal.smtp.from
    port: int = 587
    starttls: bool = True
    username_env: str | None = None   # names of environment variables, not the values
    password_env: str | None = None
    ca_file: str | None = None        # else the system's CAs
    timeout: float = 10.0


class Mailer:
    def __init__(self, settings: SmtpSettings, env: Mapping[str, str] = os.environ) -> None:
        self._settings = settings
        self._username = env.get(settings.username_env) if settings.username_env else None
        self._password = env.get(settings.password_env) if settings.password_env else None
        self._pending: set[asyncio.Task[None]] = set()
        self.sent = 0
        self.failed = 0

    def _message(self, to: str, subject: str, body: str) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self._settings.sender
        message["To"] = to
        message["Subject"] = subject
        message["Message-ID"] = make_msgid(domain=self._settings.sender.rpartition("@")[2] or None)
        message.set_content(body)
        return message

    def _send(self, message: EmailMessage) -> None:
        s = self._settings
        with smtplib.SMTP(s.host, s.port, timeout=s.timeout) as smtp:
            if s.starttls:
                smtp.starttls(context=ssl.create_default_context(cafile=s.ca_file))
            if self._username and self._password:
                smtp.login(self._username, self._password)
            smtp.send_message(message)

    async def send(self, to: str, subject: str, body: str) -> None:
        message = self._message(to, subject, body)
        try:
            await asyncio.to_thread(self._send, message)
        except (OSError, smtplib.SMTPException, ValueError) as exc:
            self.failed += 1
            log.warning("could not send mail", extra={"to": to, "subject": subject, "error": type(exc).__name__,
                                                       "reason": str(exc)[:200]})
            return
        self.sent += 1
        log.info("mail sent", extra={"to": to, "subject": subject})

    def send_later(self, to: str, subject: str, body: str) -> None:
        """Send without making the request wait (or its timing tell whether a mail went out)."""
        task = asyncio.get_running_loop().create_task(self.send(to, subject, body))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def close(self, timeout: float = 10.0) -> None:
        """Let mails under way finish (a graceful stop), for at most `timeout` seconds."""
        if self._pending:
            await asyncio.wait(self._pending, timeout=timeout)
