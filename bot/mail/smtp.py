"""Send a customer notice through the store's SMTP server (SMTP_URL): the Admin API has no "message the customer"
mutation that emails a customer."""

from __future__ import annotations

import logging
from email.message import EmailMessage
from email.utils import make_msgid
from urllib.parse import unquote, urlparse

import aiosmtplib

log = logging.getLogger(__name__)

SEND_TIMEOUT = 20.0


class MailError(Exception):
    """A sentence for the person who clicked: what the mail server did, and what to do about it. `maybe_sent`: the
    server had the email when it stopped answering, so it may have gone out (sending it again could send it twice)."""

    def __init__(self, text: str, *, maybe_sent: bool = False):
        super().__init__(text)
        self.maybe_sent = maybe_sent


class _Session(aiosmtplib.SMTP):
    """aiosmtplib's client, noting when the email itself is handed over (DATA): a failure before that cannot have
    sent it; one after may have."""

    handed_over = False

    async def data(self, *args, **kwargs):
        self.handed_over = True
        return await super().data(*args, **kwargs)


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
        session = _Session(
            hostname=self.host,
            port=self.port,
            username=self.username,
            password=self.password,
            use_tls=self.secure,
            # STARTTLS when the server offers it (aiosmtplib's default), never required of a local relay.
            timeout=self.timeout,
        )
        try:
            async with session:
                await session.send_message(message)
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise self._error(exc, handed_over=session.handed_over) from exc
        log.info("sent a customer notice %s", message["Message-ID"])
        return message["Message-ID"]

    def _error(self, exc: Exception, *, handed_over: bool) -> MailError:
        """What went wrong, for the person who clicked (after "The email … was not sent.")."""
        server = f"The mail server at {self.host}:{self.port}"
        if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
            exc = exc.recipients[0]  # one recipient: its own refusal, with the server's code
        if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
            return MailError(
                f"{server} did not accept orderbot's login ({exc.code} {exc.message}); check the user name and "
                "password in SMTP_URL."
            )
        if isinstance(exc, aiosmtplib.SMTPResponseException) and 400 <= exc.code < 500:  # greylisting, a full queue
            return MailError(
                f"The mail server could not take the email just now ({exc.code} {exc.message}); try again in a few "
                "minutes."
            )
        if isinstance(exc, aiosmtplib.SMTPRecipientRefused):  # the address itself stays out of the log and audit
            return MailError(
                f"The mail server refused the customer's address ({exc.code} {exc.message}); check the email address "
                "on the order in Shopify."
            )
        if isinstance(exc, aiosmtplib.SMTPResponseException):
            return MailError(
                f"The mail server refused the email ({exc.code} {exc.message}); send it another way, or ask the mail "
                "provider why."
            )
        if handed_over:
            return MailError(
                f"{server} stopped answering while the email was handed over, so it may have reached the customer; "
                "check with the mail provider before sending it again.",
                maybe_sent=True,
            )
        if isinstance(exc, TimeoutError):
            return MailError(f"{server} did not answer within {self.timeout:g} s; try again in a few minutes.")
        reason = "connection refused" if isinstance(exc.__cause__, ConnectionRefusedError) else str(exc)
        return MailError(
            f"{server} could not be reached ({reason}); try again in a few minutes, and check SMTP_URL if it keeps "
            "failing."
        )
