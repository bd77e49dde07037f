"""The sandbox SMTP server, driven by aiosmtplib as the bot drives the store's mail server."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from email.message import EmailMessage
from urllib.parse import urlsplit

import aiosmtplib
import pytest

from bot.sandbox.smtp import SandboxSMTP


@pytest.fixture
async def smtp() -> AsyncIterator[SandboxSMTP]:
    sandbox = SandboxSMTP()
    await sandbox.start()
    yield sandbox
    await sandbox.stop()


def notice(to: str = "ada@example.com") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Juniper & Oak <hello@juniper-oak.example>"
    message["To"] = to
    message["Subject"] = "Your order #1001 is on its way — almost"
    message.set_content("Hi Ada,\n\nYour parcel left our workshop today. Tracking: 1Z999AA10123456784\n")
    return message


async def send(smtp: SandboxSMTP, message: EmailMessage, *, password: str | None = None, **kw):
    url = urlsplit(smtp.url)
    return await aiosmtplib.send(
        message,
        hostname=url.hostname,
        port=url.port,
        username=url.username,
        password=password or url.password,
        start_tls=False,
        use_tls=False,
        **kw,
    )


async def test_url_carries_the_credentials_and_mail_is_recorded_parsed(smtp: SandboxSMTP) -> None:
    url = urlsplit(smtp.url)
    assert (url.scheme, url.hostname, url.username, url.password) == (
        "smtp",
        "127.0.0.1",
        "orderbot",
        "sandbox-password",
    )

    await send(smtp, notice())

    [mail] = smtp.messages
    assert mail.mail_from == "hello@juniper-oak.example"
    assert mail.rcpt_tos == ["ada@example.com"]
    assert mail.login == "orderbot"
    assert mail.message["To"] == "ada@example.com"
    assert mail.message["Subject"] == "Your order #1001 is on its way — almost"
    assert "1Z999AA10123456784" in mail.message.get_body().get_content()


async def test_wrong_password_and_no_auth_are_refused(smtp: SandboxSMTP) -> None:
    with pytest.raises(aiosmtplib.SMTPAuthenticationError) as refused:
        await send(smtp, notice(), password="wrong")
    assert refused.value.code == 535

    url = urlsplit(smtp.url)
    with pytest.raises(aiosmtplib.SMTPSenderRefused) as unauthenticated:
        await aiosmtplib.send(notice(), hostname=url.hostname, port=url.port, start_tls=False, use_tls=False)
    assert unauthenticated.value.code == 530
    assert smtp.messages == []


async def test_refusals_at_data_and_rcpt_then_acceptance(smtp: SandboxSMTP) -> None:
    smtp.refuse_next(code=451, text="4.3.0 Try again later")
    with pytest.raises(aiosmtplib.SMTPDataError) as data_refused:
        await send(smtp, notice())
    assert (data_refused.value.code, data_refused.value.message) == (451, "4.3.0 Try again later")

    smtp.refuse_next(code=550, text="5.1.1 No such user", stage="RCPT")
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
        await send(smtp, notice("nobody@example.com"))
    assert smtp.messages == []

    await send(smtp, notice())
    assert len(smtp.messages) == 1

    with pytest.raises(ValueError):
        smtp.refuse_next(stage="HELO")


async def test_delay_next_holds_the_answer(smtp: SandboxSMTP) -> None:
    smtp.delay_next(2.0)
    with pytest.raises(aiosmtplib.SMTPTimeoutError):
        await send(smtp, notice(), timeout=0.1)
    assert len(smtp.messages) == 1  # taken before the slow answer: the client cannot know it was sent

    started = time.monotonic()
    await send(smtp, notice())
    # Only the next answer was held: this one comes at once (about 10 ms; under half the delay even on a machine
    # loaded enough to make it 20 times slower, where a 0.2 s limit failed once at 0.24 s).
    assert time.monotonic() - started < 1.0
    assert len(smtp.messages) == 2


async def test_delay_at_rcpt_keeps_nothing(smtp: SandboxSMTP) -> None:
    smtp.delay_next(0.3, stage="RCPT")
    with pytest.raises(aiosmtplib.SMTPTimeoutError):
        await send(smtp, notice(), timeout=0.1)
    assert smtp.messages == []  # a client that gave up before DATA sent nothing

    await send(smtp, notice())
    assert len(smtp.messages) == 1
    with pytest.raises(ValueError):
        smtp.delay_next(0.1, stage="HELO")


async def test_a_stopped_sandbox_comes_back_on_the_same_port(smtp: SandboxSMTP) -> None:
    url = smtp.url
    await smtp.stop()
    with pytest.raises(aiosmtplib.SMTPConnectError):
        await send(smtp, notice())
    assert await smtp.start() == url
    await send(smtp, notice())
    assert len(smtp.messages) == 1


async def test_url_before_start_and_stop_are_clear() -> None:
    sandbox = SandboxSMTP()
    with pytest.raises(RuntimeError):
        sandbox.url  # noqa: B018
    await sandbox.stop()  # a no-op when not started
