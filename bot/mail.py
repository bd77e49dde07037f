"""Send a customer notice through the store's SMTP server (SMTP_URL): the Admin API has no "message the customer"
mutation (DESIGN §1)."""

from __future__ import annotations

import logging
from email.message import EmailMessage
from email.utils import make_msgid
from urllib.parse import unquote, urlparse

import aiosmtplib

log = logging.getLogger(__name__)

SEND_TIMEOUT = 20.0


class MailError(Exception):
    """A sentence for the person who clicked."""


class Mailer:
    def __init__(self, smtp_url: str, sender: str, *, timeout: float = SEND_TIMEOUT):
        parts = urlparse(smtp_url)
        self.secure = parts.scheme == "smtps"
        self.host = parts.hostname or "localhost"
        self.port = parts.port or (465 if self.secure else 587)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.sender = sender
        self.timeout = timeout

    async def send(self, *, to: str, subject: str, body: str, reply_to: str | None = None) -> str:
        """Send one plain-text email; return its Message-ID."""
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = subject
        message["Message-ID"] = make_msgid(domain=self.sender.rpartition("@")[2].strip("> ") or None)
        if reply_to:
            message["Reply-To"] = reply_to
        message.set_content(body)
        try:
            await aiosmtplib.send(
                message,
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self.password,
                use_tls=self.secure,
                # STARTTLS when the server offers it (aiosmtplib's default), never required of a local relay.
                timeout=self.timeout,
            )
        except aiosmtplib.SMTPResponseException as exc:
            raise MailError(f"The mail server refused the email ({exc.code} {exc.message}).") from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise MailError(f"The mail server at {self.host}:{self.port} could not be reached ({exc}).") from exc
        log.info("sent a customer notice %s", message["Message-ID"])
        return message["Message-ID"]
