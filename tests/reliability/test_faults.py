"""The fault matrix (issue 6): each fault of Shopify, Slack, SMTP and SQLite injected into the real server through
the sandboxes, end to end. Each case asserts what the person who clicked (or typed `/orders …`) is told, what the
audit log holds, what reached Shopify (nothing done twice), and that once the fault passes the same click works or
the alert arrives, once.

The server here is the `world` of tests/conftest.py with shorter waits, set the way a deployment would tune them:
the Shopify client, the Slack outbox's client and the mailer get sub-second timeouts, and a Slack configuration error
is retried after CONFIG_RETRY instead of a minute. The sandbox Shopify runs on a port it can leave and come back to,
for "connection refused".
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.config import Settings
from bot.sandbox.seed import seed_orders
from bot.sandbox.serving import serve
from bot.sandbox.shopify import SandboxShopify
from bot.sandbox.slack import SandboxSlack
from bot.sandbox.slack_payloads import block_actions_body
from bot.sandbox.smtp import SandboxSMTP
from bot.shopify.client import MAX_THROTTLE_WAITS, ShopifyClient
from bot.slack.bulk_blocks import BULK_CONFIRM
from bot.store.core import INGEST_BUSY_TIMEOUT_MS
from bot.store.sql import connect
from bot.web import SERVICE, SLACK, create_app
from tests.conftest import ADMIN, CHANNEL, SHOP, STAFF, World, manifest_scopes, order_gid_of, wait_for, world_settings

SHOPIFY_TIMEOUT = 0.5  # seconds the Shopify client waits for an answer (10 s in production)
READ_ATTEMPTS = 4  # the client's tries of a query before it gives up
SLACK_TIMEOUT = 0.5  # the outbox's Slack client (10 s in production)
MAIL_TIMEOUT = 0.5  # the mailer (20 s in production)
CONFIG_RETRY = 0.3  # a Slack configuration error is retried after this (60 s in production)
PACE = 0.05  # between two outbox calls to one channel (1 s in production, Slack's posting limit)
# How long the database thread waits for a lock held by another program: `connect`'s default (10 s).
STORE_BUSY_TIMEOUT = inspect.signature(connect).parameters["busy_timeout_ms"].default / 1000
NOTIFIED_TAG = "orderbot-notified"


# --- the world, with short waits ------------------------------------------------------------------------------------


@dataclass
class FaultWorld(World):
    shopify_runner: Any = None
    shopify_port: int = 0

    async def shopify_down(self) -> None:
        """Shopify stops listening: every request is refused at connect."""
        await self.shopify_runner.cleanup()

    async def shopify_up(self) -> None:
        self.shopify_runner, _ = await serve(self.sandbox.app, port=self.shopify_port)


def tune(app: Any, settings: Settings) -> None:
    """Shorten the server's waits before it starts: a Shopify client with a short timeout and backoff, short
    timeouts for the outbox's Slack client and the mailer, and a quick outbox."""
    app[SERVICE].shopify = ShopifyClient(
        graphql_url=settings.graphql_url,
        access_token=settings.shopify_access_token,
        timeout=SHOPIFY_TIMEOUT,
        max_attempts=READ_ATTEMPTS,
        backoff=0.05,
    )
    slack = app[SLACK]
    slack.outbox.client.timeout = SLACK_TIMEOUT
    slack.outbox.config_retry = CONFIG_RETRY
    slack.outbox.pacer.pace = PACE
    slack.actions.mailer.timeout = MAIL_TIMEOUT


@pytest.fixture
async def world(now: datetime, tmp_path: Path) -> AsyncIterator[FaultWorld]:
    shop = SandboxShopify(seed_orders(now), shop_domain=SHOP)
    shop_runner, shop_url = await serve(shop.app)
    slack = SandboxSlack(scopes=manifest_scopes())
    await slack.start()
    smtp = SandboxSMTP()
    smtp_url = await smtp.start()
    db_path = tmp_path / "orderbot.db"
    settings = world_settings(shop, shop_url, slack, smtp_url, db_path)
    app = create_app(settings, reconcile=False)
    tune(app, settings)
    runner, url = await serve(app)
    async with aiohttp.ClientSession() as http:
        world = FaultWorld(
            url, app, shop, db_path, http, slack, smtp, shop_url, runner, shop_runner, int(shop_url.rsplit(":", 1)[1])
        )
        yield world
        await world.stop_server()
    await smtp.stop()
    await slack.stop()
    await world.shopify_runner.cleanup()


# --- what the people and the systems see ----------------------------------------------------------------------------


def action_ids(message: dict) -> list[str]:
    return [e["action_id"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]


async def stuck_alert(world: World, number: int) -> dict:
    await world.order_webhook(number)
    return await world.wait_for_alert(number, lambda a: bool(action_ids(a)))


async def resolved(world: World, number: int) -> dict:
    # resolved: no button left but Delete (an archived or cancelled order's, which Shopify can delete)
    return await world.wait_for_alert(
        number, lambda a: set(action_ids(a)) <= {"delete"} and "Resolved" in a["text"] + str(a)
    )


async def ephemeral_to(world: World, user: str, count: int = 1, timeout: float = 10) -> str:
    await wait_for(lambda: len(world.slack.ephemerals(user)) >= count, timeout)
    return world.slack.ephemerals(user)[count - 1]["text"]


async def audited(world: World, number: int, count: int, timeout: float = 10) -> dict:
    """The order's `count`-th audit row, once written."""
    await wait_for(lambda: len(world.audit(number)) >= count, timeout)
    return world.audit(number)[count - 1]


def assert_says(text: str, *fragments: str) -> None:
    """The person's text names what happened and what to do, in words, not Python's."""
    for fragment in fragments:
        assert fragment.lower() in text.lower(), f"{fragment!r} not in {text!r}"
    assert "Traceback" not in text and "Error:" not in text, text


def requests_of(world: World, name: str) -> list[str]:
    """The outcome of every `name` request Shopify saw (ok, http_500, user_errors, …)."""
    return [op.outcome for op in world.sandbox.operations if op.operation_name == name]


def is_closed(world: World, number: int) -> bool:
    return world.sandbox.orders[order_gid_of(world.sandbox, number)]["closed_at"] is not None


def tags(world: World, number: int) -> list[str]:
    return world.sandbox.orders[order_gid_of(world.sandbox, number)]["tags"]


def alerts_posted_for(world: World, number: int) -> list[dict]:
    """The channel's messages that are the order's alert (found by the metadata orderbot posts them with)."""
    gid = order_gid_of(world.sandbox, number)
    return [
        m
        for m in world.slack.messages(CHANNEL)
        if (m.get("metadata") or {}).get("event_payload", {}).get("order_id") == gid
    ]


async def healthz(world: World) -> tuple[int, dict]:
    async with world.http.get(f"{world.url}/healthz") as response:
        return response.status, await response.json()


def outbox_rows(world: World, number: int) -> list[tuple]:
    return world.rows(
        "SELECT x.status, x.error, x.attempts FROM outbox x JOIN orders o ON o.id = x.order_id"
        " WHERE o.name = ? AND x.kind = 'alert' ORDER BY x.id",
        (f"#{number}",),
    )


# --- Shopify, under a click -----------------------------------------------------------------------------------------


def fast_throttling(world: FaultWorld) -> None:
    """A restore rate far above a query's cost: each THROTTLED answer asks the client to wait milliseconds, not a
    second, so that outlasting its patience (MAX_THROTTLE_WAITS answers) takes a moment."""
    world.sandbox.restore_rate = 50_000.0


@dataclass(frozen=True)
class ShopifyFault:
    start: Callable[[FaultWorld], Awaitable[None] | None]
    says: tuple[str, ...] = ()  # what the person is told; empty: the click goes through despite the fault
    audited: str = ""  # in the audit row's error
    end: Callable[[FaultWorld], Awaitable[None] | None] = lambda world: None
    closes_sent: int = 0  # orderClose requests Shopify saw while the fault lasted: a mutation is never retried


def failing(kind: str, times: int = 1, **options: Any) -> Callable[[FaultWorld], None]:
    return lambda world: world.sandbox.fail_next(kind, times, **options)


def throttled_beyond_patience(world: FaultWorld) -> None:
    fast_throttling(world)
    world.sandbox.fail_next("throttled", MAX_THROTTLE_WAITS + 1)


def throttled_briefly(world: FaultWorld) -> None:
    fast_throttling(world)
    world.sandbox.fail_next("throttled", 3)


SLOW = SHOPIFY_TIMEOUT + 0.3  # a Shopify answer that comes after the client gave up

SHOPIFY_FAULTS = {
    "read: HTTP 500 on every attempt": ShopifyFault(
        failing("http_500", READ_ATTEMPTS), ("HTTP 500", "try again"), "HTTP 500"
    ),
    "read: HTTP 503 on every attempt": ShopifyFault(
        failing("http_503", READ_ATTEMPTS), ("HTTP 503", "try again"), "HTTP 503"
    ),
    "read: HTTP 503 once, retried": ShopifyFault(failing("http_503")),
    "read: timeout on every attempt": ShopifyFault(
        failing("timeout", READ_ATTEMPTS, delay=SLOW), ("timed out", "try again"), "timed out"
    ),
    "read: timeout once, retried": ShopifyFault(failing("timeout", delay=SLOW)),
    "connection refused": ShopifyFault(
        FaultWorld.shopify_down, ("could not be reached", "try again"), "could not be reached", FaultWorld.shopify_up
    ),
    "THROTTLED past the client's patience": ShopifyFault(
        throttled_beyond_patience, ("kept throttling", "try again"), "kept throttling"
    ),
    "THROTTLED a few times, waited out": ShopifyFault(throttled_briefly),
    "mutation: HTTP 500": ShopifyFault(
        failing("http_500", on_mutation=True), ("#1001", "try again"), "HTTP 500", closes_sent=1
    ),
    "mutation: HTTP 503": ShopifyFault(
        failing("http_503", on_mutation=True), ("#1001", "try again"), "HTTP 503", closes_sent=1
    ),
    "mutation: userErrors": ShopifyFault(
        failing("user_errors", message="Order is locked by another app"),
        ("Order is locked by another app", "Fix that in Shopify, then try again"),
        "Order is locked by another app",
        closes_sent=1,
    ),
}


async def _maybe_await(result: Awaitable[None] | None) -> None:
    if result is not None:
        await result


@pytest.mark.parametrize("fault", SHOPIFY_FAULTS.values(), ids=SHOPIFY_FAULTS.keys())
async def test_a_shopify_fault_under_a_click(world: FaultWorld, fault: ShopifyFault):
    alert = await stuck_alert(world, 1001)
    await _maybe_await(fault.start(world))
    await world.click(1001, "archive", user=STAFF)
    first = await audited(world, 1001, 1)

    if not fault.says:  # a passing fault: retried or waited out, and done once
        assert first["outcome"] == "done", first
        await resolved(world, 1001)
        assert world.slack.ephemerals(STAFF) == []
        assert requests_of(world, "OrderClose") == ["ok"]
        return

    assert_says(await ephemeral_to(world, STAFF), *fault.says)
    assert first["outcome"] == "failed" and fault.audited in first["error"], first
    assert len(requests_of(world, "OrderClose")) == fault.closes_sent, "a mutation is never sent twice"
    assert not is_closed(world, 1001)
    assert action_ids(world.alert(1001)) == action_ids(alert), "the alert keeps its buttons"

    await _maybe_await(fault.end(world))  # the fault passes; the person clicks again
    await world.click(1001, "archive", user=STAFF)
    assert (await audited(world, 1001, 2))["outcome"] == "done"
    await resolved(world, 1001)
    assert requests_of(world, "OrderClose").count("ok") == 1 and is_closed(world, 1001)


async def test_a_failed_read_names_the_order_as_people_know_it(world: FaultWorld):
    await stuck_alert(world, 1001)
    world.sandbox.fail_next("http_503", READ_ATTEMPTS)
    await world.click(1001, "archive", user=STAFF)
    text = await ephemeral_to(world, STAFF)
    assert "#1001" in text and "gid://" not in text


async def test_a_mutation_whose_answer_comes_after_the_timeout_is_not_sent_again(world: FaultWorld):
    """The orderClose times out: the person hears so, and orderbot does not send it again. (What orderbot makes of
    the order afterwards, now that Shopify applied it late, is the lost-answer case of its own test.)"""
    await stuck_alert(world, 1001)
    world.sandbox.fail_next("timeout", on_mutation=True, delay=SLOW)
    await world.click(1001, "archive", user=STAFF)
    first = await audited(world, 1001, 1)
    assert first["outcome"] == "failed" and "timed out" in first["error"]
    assert_says(await ephemeral_to(world, STAFF), "#1001")
    await wait_for(lambda: requests_of(world, "OrderClose"))  # Shopify applies it late
    assert requests_of(world, "OrderClose") == ["timeout"], "sent once, never retried"

    await world.click(1001, "archive", user=STAFF)
    assert (await audited(world, 1001, 2))["outcome"] == "already"
    assert len(requests_of(world, "OrderClose")) == 1, "the second click re-read the order and sent nothing"
    assert is_closed(world, 1001)


# --- Shopify, under /orders and a bulk run ----------------------------------------------------------------------------


async def test_orders_command_during_a_shopify_outage_says_so_and_the_retry_works(world: FaultWorld):
    await world.service.reconcile()
    world.sandbox.fail_next("http_503", READ_ATTEMPTS)
    answer = await world.command("archive #1001", user=STAFF)
    assert_says(answer["text"], "HTTP 503", "try again")
    assert world.audit(1001)[0]["outcome"] == "failed"
    assert requests_of(world, "OrderClose") == []

    answer = await world.command("archive #1001", user=STAFF)
    assert answer["text"].startswith(f"<@{STAFF}> archived #1001")
    assert [r["outcome"] for r in world.audit(1001)] == ["failed", "done"]
    assert requests_of(world, "OrderClose") == ["ok"]


async def confirm(world: World, preview: dict) -> int:
    """Click Confirm on a bulk preview; return the run's id."""
    button = next(e for b in preview["blocks"] if b["type"] == "actions" for e in b["elements"])
    assert button["action_id"] == BULK_CONFIRM
    body = block_actions_body(
        action_id=BULK_CONFIRM,
        user_id=ADMIN,
        channel_id=CHANNEL,
        message_ts="1700000000.000100",
        message=preview,
        value=button["value"],
        response_url=world.slack.response_url(CHANNEL, ADMIN),
    )
    assert (await world.post_slack(body)).status == 200
    return int(button["value"])


async def test_a_bulk_run_counts_and_names_the_order_shopify_failed_and_goes_on(world: FaultWorld):
    await world.service.reconcile()
    preview = await world.command("archive #1001-#1008")
    world.sandbox.fail_next("http_503", on_mutation=True)  # the first orderClose of the run
    run_id = await confirm(world, preview)
    await wait_for(lambda: world.rows("SELECT status FROM bulk_runs WHERE id = ?", (run_id,))[0][0] == "done", 30)

    items = dict(world.rows("SELECT order_name, status FROM bulk_items WHERE run_id = ?", (run_id,)))
    (failed,) = [name for name, status in items.items() if status == "failed"]
    done = [name for name, status in items.items() if status == "done"]
    assert done, "the other orders went through"
    closes = requests_of(world, "OrderClose")
    assert closes[0] == "http_503" and closes[1:] == ["ok"] * len(done), "orders after the failed one were closed"
    (row,) = world.rows("SELECT channel, message_ts FROM bulk_runs WHERE id = ?", (run_id,))
    await wait_for(lambda: "Failed 1" in json.dumps(world.slack.message(*row)))
    summary = json.dumps(world.slack.message(*row), ensure_ascii=False)
    assert failed in summary and f"{len(done)} orders archived" in summary and "try again" in summary.lower()
    outcomes = [r["outcome"] for r in world.audit(int(failed.lstrip("#")))]
    assert outcomes == ["failed"]


# --- Slack, under the outbox -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SlackHiccup:
    kind: str
    statuses: list[int]  # of the chat.postMessage calls, in order: the failed one, then the one that went through
    options: dict = field(default_factory=dict)


SLACK_HICCUPS = {
    "429 with Retry-After": SlackHiccup("rate_limited", [429, 200], {"retry_after": 1}),
    "HTTP 500": SlackHiccup("http_500", [500, 200]),
    "HTTP 503": SlackHiccup("http_503", [503, 200]),
    # The post reached Slack, its answer came too late: found in the channel by its metadata, not posted again.
    "timeout, the post reached Slack": SlackHiccup("timeout", [200], {"delay": SLACK_TIMEOUT + 0.2}),
}


@pytest.mark.parametrize("hiccup", SLACK_HICCUPS.values(), ids=SLACK_HICCUPS.keys())
async def test_a_passing_slack_fault_delays_the_alert_and_it_arrives_once(world: FaultWorld, hiccup: SlackHiccup):
    world.slack.fail_next("chat.postMessage", hiccup.kind, **hiccup.options)
    await world.order_webhook(1001)
    await world.wait_for_alert(1001)
    assert [status for status, _, _ in outbox_rows(world, 1001)] == ["sent"], "nothing left to send"
    assert len(alerts_posted_for(world, 1001)) == 1, "no loss, no duplicate"
    posts = world.slack.calls_to("chat.postMessage")
    assert [call.status for call in posts] == hiccup.statuses
    if hiccup.kind == "rate_limited":
        assert posts[1].at - posts[0].at >= hiccup.options["retry_after"] - 0.05, "waited Retry-After"
    if hiccup.kind != "rate_limited":  # a post that may have reached Slack is looked for before it is sent again
        assert world.slack.calls_to("conversations.history")


@dataclass(frozen=True)
class SlackMisconfiguration:
    breaks: Callable[[SandboxSlack], None]
    mends: Callable[[SandboxSlack], None]
    code: str
    fix: str  # what the log and /healthz say to do
    health: int  # /healthz while it lasts


SLACK_MISCONFIGURATIONS = {
    "channel_not_found": SlackMisconfiguration(
        lambda slack: slack.channels.pop(CHANNEL),
        lambda slack: slack.channels.update({CHANNEL: "orders"}),
        "channel_not_found",
        "Check SLACK_CHANNEL_ID",
        200,
    ),
    "not_in_channel": SlackMisconfiguration(
        lambda slack: slack.member_of.discard(CHANNEL),
        lambda slack: slack.member_of.add(CHANNEL),
        "not_in_channel",
        "/invite @orderbot",
        200,
    ),
    "invalid_auth": SlackMisconfiguration(
        lambda slack: setattr(slack, "bot_token", slack.bot_token + "-reissued"),
        lambda slack: setattr(slack, "bot_token", slack.bot_token.removesuffix("-reissued")),
        "invalid_auth",
        "Check SLACK_BOT_TOKEN",
        503,
    ),
}


@pytest.mark.parametrize("fault", SLACK_MISCONFIGURATIONS.values(), ids=SLACK_MISCONFIGURATIONS.keys())
async def test_a_slack_misconfiguration_is_named_with_its_fix_and_the_alert_arrives_once_mended(
    world: FaultWorld, fault: SlackMisconfiguration, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, logger="bot.slack.outbox")
    fault.breaks(world.slack)
    await world.order_webhook(1001)
    await wait_for(lambda: (rows := outbox_rows(world, 1001)) and rows[0][2] >= 2)  # retried, still refused
    assert outbox_rows(world, 1001)[0][:2] == ("pending", fault.code)
    status, health = await healthz(world)
    assert status == fault.health and fault.code in health["slack_error"] and fault.fix in health["slack_error"]
    # The outbox's own lines: an earlier test's unclosed aiohttp session can be collected now and log an ERROR too.
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR and r.name == "bot.slack.outbox"]
    assert len(logged) == 1, "one clear line, not one per retry"
    assert fault.code in logged[0] and fault.fix in logged[0]
    assert alerts_posted_for(world, 1001) == []

    fault.mends(world.slack)
    await world.wait_for_alert(1001)
    assert len(alerts_posted_for(world, 1001)) == 1
    status, health = await healthz(world)
    assert status == 200 and "slack_error" not in health


# --- SMTP, under "Notify customer" ----------------------------------------------------------------------------------


async def notify(world: World, number: int) -> None:
    """Click "Notify customer" on the order's alert and send the form as it comes."""
    before = len(world.slack.opened_views)
    await world.click(number, "notify_customer")
    await wait_for(lambda: len(world.slack.opened_views) > before)
    view = world.slack.opened_views[-1]
    response = await world.submit(
        view,
        {
            "subject": {"subject": ("plain_text_input", f"Your order #{number}")},
            "message": {"message": ("plain_text_input", "Your blanket is back-ordered; we will write again.")},
        },
    )
    assert response.status == 200 and response.text_body == ""


@dataclass(frozen=True)
class MailFault:
    start: Callable[[SandboxSMTP], Awaitable[None] | None]
    says: tuple[str, ...]  # after "The email to the customer of #1002 was not sent."
    audited: str  # in the audit row's error
    end: Callable[[SandboxSMTP], Awaitable[None] | None] = lambda smtp: None


def password_changed(smtp: SandboxSMTP) -> None:
    smtp.password += "-changed"


def password_restored(smtp: SandboxSMTP) -> None:
    smtp.password = smtp.password.removesuffix("-changed")


def refusing(code: int, text: str, stage: str = "DATA") -> Callable[[SandboxSMTP], None]:
    return lambda smtp: smtp.refuse_next(code=code, text=text, stage=stage)


MAIL_FAULTS = {
    "connection refused": MailFault(
        SandboxSMTP.stop,
        ("could not be reached (connection refused)", "try again"),
        "connection refused",
        SandboxSMTP.start,
    ),
    "login refused": MailFault(
        password_changed, ("did not accept orderbot's login (535", "SMTP_URL"), "535", password_restored
    ),
    "RCPT refused": MailFault(
        refusing(550, "5.1.1 Mailbox unavailable", "RCPT"),
        ("refused the customer's address (550 5.1.1 Mailbox unavailable)", "check the email address"),
        "550",
    ),
    "RCPT greylisted": MailFault(
        refusing(450, "4.7.1 Greylisted for 300 seconds", "RCPT"),
        ("could not take the email just now (450", "try again in a few minutes"),
        "450",
    ),
    "DATA refused, permanently": MailFault(
        refusing(554, "5.7.1 Message rejected as spam"),
        ("refused the email (554 5.7.1 Message rejected as spam)", "another way"),
        "554",
    ),
    "DATA refused, for now": MailFault(
        refusing(451, "4.3.2 System not accepting network messages"),
        ("could not take the email just now (451", "try again in a few minutes"),
        "451",
    ),
    "slow before DATA": MailFault(
        lambda smtp: smtp.delay_next(MAIL_TIMEOUT + 0.3, stage="RCPT"),
        (f"did not answer within {MAIL_TIMEOUT:g} s", "try again"),
        "did not answer",
    ),
}


@pytest.mark.parametrize("fault", MAIL_FAULTS.values(), ids=MAIL_FAULTS.keys())
async def test_an_smtp_fault_under_notify_customer(world: FaultWorld, fault: MailFault):
    await stuck_alert(world, 1002)
    await _maybe_await(fault.start(world.smtp))
    await notify(world, 1002)
    assert_says(await ephemeral_to(world, ADMIN), "was not sent", *fault.says)
    (row,) = world.audit(1002)
    assert (row["action"], row["outcome"]) == ("notify_customer", "failed") and fault.audited in row["error"]
    assert world.smtp.messages == [] and NOTIFIED_TAG not in tags(world, 1002)
    assert requests_of(world, "TagsAdd") == []

    await _maybe_await(fault.end(world.smtp))
    await notify(world, 1002)
    await wait_for(lambda: [r["outcome"] for r in world.audit(1002)] == ["failed", "done"])
    assert len(world.smtp.messages) == 1, "the retry sent exactly one email"
    await wait_for(lambda: NOTIFIED_TAG in tags(world, 1002))
    assert requests_of(world, "TagsAdd") == ["ok"]


async def test_a_mail_server_that_took_the_email_but_answered_too_late_is_not_called_unsent(world: FaultWorld):
    await stuck_alert(world, 1002)
    world.smtp.delay_next(MAIL_TIMEOUT + 0.3)  # at DATA: the server has the email, its answer comes too late
    await notify(world, 1002)
    text = await ephemeral_to(world, ADMIN)
    assert len(world.smtp.messages) == 1 and NOTIFIED_TAG not in tags(world, 1002)
    assert_says(text, "may have reached the customer", "before sending it again")  # the mailer's part holds
    assert world.audit(1002)[0]["outcome"] == "failed"
    assert "was not sent" not in text


# --- SQLite, locked by another program ------------------------------------------------------------------------------


@contextmanager
def write_lock(db_path: Path) -> Iterator[None]:
    """Hold the database's write lock from another connection, as an operator's `sqlite3` shell in a transaction
    would."""
    with closing(sqlite3.connect(db_path, isolation_level=None, timeout=30)) as conn:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")


async def test_a_webhook_while_the_database_is_locked_gets_503_and_its_retry_is_stored_once(world: FaultWorld):
    payload = world.sandbox.webhook_payload(order_gid_of(world.sandbox, 1001))
    with write_lock(world.db_path):
        started = asyncio.get_running_loop().time()
        refused = await world.post_webhook("orders/updated", payload, webhook_id="wh-locked")
        waited = asyncio.get_running_loop().time() - started
    assert refused.status == 503, "Shopify retries a 5xx"
    assert waited >= INGEST_BUSY_TIMEOUT_MS / 1000 - 0.1
    assert world.rows("SELECT count(*) FROM inbox") == [(0,)]

    stored = await world.post_webhook("orders/updated", payload, webhook_id="wh-locked")
    assert stored.status == 200
    again = await world.post_webhook("orders/updated", payload, webhook_id="wh-locked")
    assert again.status == 200 and json.loads(await again.text())["duplicate"] is True
    assert world.rows("SELECT count(*) FROM inbox WHERE webhook_id = 'wh-locked'") == [(1,)]
    await world.settled()
    await world.wait_for_alert(1001)


async def test_a_click_while_the_database_is_locked_is_answered_and_the_retry_works(world: FaultWorld):
    await stuck_alert(world, 1001)
    await wait_for(lambda: world.rows("SELECT count(*) FROM outbox WHERE status = 'pending'") == [(0,)])
    with write_lock(world.db_path):
        started = asyncio.get_running_loop().time()
        await world.click(1001, "archive", user=STAFF)
        text = await ephemeral_to(world, STAFF, timeout=STORE_BUSY_TIMEOUT + 5)
        waited = asyncio.get_running_loop().time() - started
    assert waited >= STORE_BUSY_TIMEOUT - 0.5, "the lock outlasted the store's busy timeout"
    assert_says(text, "database", "try again")
    assert requests_of(world, "OrderClose") == []

    await world.click(1001, "archive", user=STAFF)
    await wait_for(lambda: [r["outcome"] for r in world.audit(1001)] == ["done"])
    await resolved(world, 1001)
    assert requests_of(world, "OrderClose") == ["ok"]


async def test_a_database_locked_in_the_middle_of_an_action_leaves_no_stale_lock(world: FaultWorld, long_run: bool):
    """The lock comes after the click took its action lock and stays past two busy timeouts: the order is archived in
    Shopify, but neither the alert nor the thread reply nor the release of the action lock can be written then. The
    person is told it was done, and the lock is released as soon as the database lets go."""
    if not long_run:
        pytest.skip("holds the database locked for two busy timeouts (about 21 s); runs under --long")
    await stuck_alert(world, 1001)
    await wait_for(lambda: world.rows("SELECT count(*) FROM outbox WHERE status = 'pending'") == [(0,)])
    world.sandbox.fail_next("timeout", delay=SHOPIFY_TIMEOUT / 2)  # a slow read, answered in time: room to lock
    await world.click(1001, "archive", user=STAFF)
    await wait_for(lambda: world.rows("SELECT count(*) FROM action_locks") == [(1,)])
    with write_lock(world.db_path):
        # Done in Shopify; the thread reply could not be queued, so the person is told directly.
        told = await ephemeral_to(world, STAFF, timeout=2 * STORE_BUSY_TIMEOUT + 5)
        assert f"<@{STAFF}> archived #1001" in told, told
    assert requests_of(world, "OrderClose") == ["ok"]
    await wait_for(lambda: world.rows("SELECT count(*) FROM action_locks") == [(0,)], 5)  # released once it could be

    await world.click(1001, "archive", user=STAFF)
    second = await ephemeral_to(world, STAFF, 2)
    assert "already doing this" not in second, second
    assert "archived already" in second and requests_of(world, "OrderClose") == ["ok"]
