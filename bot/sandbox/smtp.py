"""A local SMTP server for "notify customer": accepts mail from the bot, keeps it for tests and the demo.

It runs aiosmtpd's protocol in the current event loop (not aiosmtpd's threaded Controller), so tests and the demo
need no threads. Like a store's mail provider it wants AUTH (LOGIN or PLAIN; no TLS here, it is local) before it
takes mail. Refusals and slow answers can be injected.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
from collections import deque
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any
from urllib.parse import quote

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

STAGES = ("RCPT", "DATA")


@dataclass(frozen=True, slots=True)
class ReceivedMail:
    """One accepted message: the envelope, the parsed message (`message["Subject"]`, `get_body()`), and the login."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    login: str | None


@dataclass(frozen=True, slots=True)
class _Refusal:
    stage: str
    code: int
    text: str


class SandboxSMTP:
    """`await start()` returns the `SMTP_URL`; accepted mail collects in `.messages`."""

    def __init__(self, username: str = "orderbot", password: str = "sandbox-password", host: str = "127.0.0.1"):
        self.username = username
        self.password = password
        self.host = host
        self.port: int | None = None
        self.messages: list[ReceivedMail] = []
        self._refusals: deque[_Refusal] = deque()
        self._delays: deque[tuple[str, float]] = deque()
        self._server: asyncio.Server | None = None

    async def start(self) -> str:
        """Listen on a free port, or, once stopped, on the same port again (SMTP_URL stays valid: a server that was
        down comes back)."""
        logging.getLogger("mail.log").addFilter(_quiet_login_data_warning)
        handler = _Handler(self)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(
                handler,
                hostname="sandbox-smtp.local",  # the default, socket.getfqdn(), can wait on DNS
                auth_require_tls=False,
                authenticator=self._authenticate,
                loop=loop,
            ),
            self.host,
            self.port or 0,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self.url

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the SMTP sandbox is not started")
        credentials = f"{quote(self.username, safe='')}:{quote(self.password, safe='')}"
        return f"smtp://{credentials}@{self.host}:{self.port}"

    def refuse_next(
        self, times: int = 1, code: int = 550, text: str = "5.7.1 Message rejected by the sandbox", stage: str = "DATA"
    ) -> None:
        """Answer the next `times` messages' `stage` ("DATA", or "RCPT" for each recipient) with `code text`:
        a 4xx for a temporary failure, a 5xx for a permanent one."""
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {', '.join(STAGES)}")
        self._refusals.extend(_Refusal(stage, code, text) for _ in range(times))

    def delay_next(self, seconds: float, times: int = 1, stage: str = "DATA") -> None:
        """Hold the answer to the next `times` messages' `stage` for `seconds`. At DATA the message is kept before
        the wait, as a slow server that has taken it would: a client that gives up may have sent it anyway. At RCPT
        nothing is kept: a client that gives up there has sent nothing."""
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {', '.join(STAGES)}")
        self._delays.extend((stage, seconds) for _ in range(times))

    # --- aiosmtpd's hooks ---------------------------------------------------------------------------------------------

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data == (self.username.encode(), self.password.encode())
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    def _refusal(self, stage: str) -> str | None:
        if self._refusals and self._refusals[0].stage == stage:
            refusal = self._refusals.popleft()
            return f"{refusal.code} {refusal.text}"
        return None

    def _mail(self, session: Session, envelope: Envelope, address: str, options: list[str]) -> str:
        # AUTH is asked for here rather than with aiosmtpd's auth_required, which warns when TLS is not required too.
        if not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def _delay(self, stage: str) -> None:
        if self._delays and self._delays[0][0] == stage:
            await asyncio.sleep(self._delays.popleft()[1])

    async def _rcpt(self, envelope: Envelope, address: str, options: list[str]) -> str:
        await self._delay("RCPT")
        refusal = self._refusal("RCPT")
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def _data(self, session: Session, envelope: Envelope) -> str:
        status = self._refusal("DATA") or "250 OK"
        if status == "250 OK":
            content = envelope.original_content or b""
            message = email.message_from_bytes(content, policy=email.policy.default)
            assert isinstance(message, EmailMessage)  # the default policy builds EmailMessage
            login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
            self.messages.append(ReceivedMail(envelope.mail_from or "", list(envelope.rcpt_tos), message, login))
        await self._delay("DATA")
        return status


def _quiet_login_data_warning(record: logging.LogRecord) -> bool:
    """aiosmtpd 1.4 warns "Session.login_data is deprecated" from its own code on every successful AUTH."""
    return "login_data is deprecated" not in record.getMessage()


class _Handler:
    """aiosmtpd's hooks, kept apart from SandboxSMTP: aiosmtpd inspects every attribute of its handler."""

    def __init__(self, sandbox: SandboxSMTP):
        self.sandbox = sandbox

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        return self.sandbox._mail(session, envelope, address, mail_options)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        return await self.sandbox._rcpt(envelope, address, rcpt_options)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return await self.sandbox._data(session, envelope)
