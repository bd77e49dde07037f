"""The Slack outbox on its own: a real Store (a file in tmp_path), the served SandboxSlack, and OutboxSender.send_due()
driven by hand under a fake clock. Work is queued as the product queues it (orders stored, then save_verdicts with an
AlertSync, and enqueue_reply); each test checks both what Slack received and what the `outbox` and `alerts` rows
hold."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.alerts import from_alert_snapshot
from bot.domain.burst import BurstSummary
from bot.domain.orders import Customer, Fulfillment, FulfillmentOrder, Hold, Money, Order, Tracking
from bot.domain.rules import Policy, classify
from bot.sandbox.slack import SandboxSlack, SlackCall
from bot.slack.alert_blocks import alert_message
from bot.slack.history import HISTORY_PAGE
from bot.slack.outbox import CONFIG_RETRY, OutboxSender
from bot.store import AlertSync, Classified, Store
from bot.store.alerts import PRIORITY_NEWS, PRIORITY_REWORD, queue_burst_summary
from tests.conftest import SHOP, wait_for

ORDERS = "C0ORDERS"
RUSH = "C0RUSH"
CUSTOMER = "Ada Lovelace"
NOW = datetime.now(UTC)


class Clock:
    """The outbox's and the sandbox's clock: time passes only when a test says so."""

    def __init__(self, start: float = 1_800_000_000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# --- orders and their verdicts -------------------------------------------------------------------------------------


def stuck_order(number: int) -> Order:
    """Paid, unfulfilled and 80 hours old: stuck as unfulfilled_overdue."""
    placed = NOW - timedelta(hours=80)
    fo = FulfillmentOrder(
        id=f"gid://shopify/FulfillmentOrder/{number}",
        status="OPEN",
        request_status="UNSUBMITTED",
        created_at=placed,
        updated_at=placed,
        location="Warehouse",
        supported_actions=("CREATE_FULFILLMENT", "HOLD"),
    )
    return Order(
        id=f"gid://shopify/Order/{number}",
        name=f"#{number}",
        created_at=placed,
        updated_at=placed,
        financial_status="PAID",
        fulfillment_status="UNFULFILLED",
        total=Money("42.00", "USD"),
        customer=Customer(CUSTOMER, "ada@example.com"),
        fulfillment_orders=(fo,),
    )


def held(order: Order) -> Order:
    """Someone put it on hold 30 hours ago: still stuck, for another reason (on_hold)."""
    (fo,) = order.fulfillment_orders
    hold = Hold(f"gid://shopify/FulfillmentHold/{order.legacy_id}", "OTHER", "Checking the address")
    fo = replace(fo, status="ON_HOLD", holds=(hold,), updated_at=NOW - timedelta(hours=30))
    return replace(order, fulfillment_orders=(fo,))


def shipped(order: Order) -> Order:
    """Shipped with tracking: resolved."""
    (fo,) = order.fulfillment_orders
    fulfillment = Fulfillment(
        f"gid://shopify/Fulfillment/{order.legacy_id}", "SUCCESS", NOW, NOW, (Tracking("1Z999", "UPS", None),)
    )
    return replace(
        order,
        fulfillment_status="FULFILLED",
        fulfillment_orders=(replace(fo, status="CLOSED"),),
        fulfillments=(fulfillment,),
    )


def render(order: Order, verdict, resolution: str | None) -> dict[str, Any]:
    return alert_message(order, verdict, shop=SHOP, now=NOW, resolution=resolution)


def render_1001_too_long(order: Order, verdict, resolution: str | None) -> dict[str, Any]:
    """Order #1001's alert is a message Slack refuses: a section over its 3,000 characters."""
    message = render(order, verdict, resolution)
    if order.name == "#1001":
        message["blocks"][0]["text"]["text"] = "x" * 3001
    return message


async def queue(store: Store, *orders: Order, channel: str = ORDERS) -> int:
    """Store and classify the orders and save their verdicts, which queues their alerts: what the service does."""
    await store.save_orders(list(orders), from_webhook=False)
    classified = [Classified(o, classify(o, NOW, Policy()), NOW, None) for o in orders]
    return await store.save_verdicts(classified, found_by="webhook", alerts=AlertSync(channel))


# --- fixtures ------------------------------------------------------------------------------------------------------


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def slack(clock: Clock) -> AsyncIterator[SandboxSlack]:
    # Slack itself refuses a second post to a channel within a second (on the same clock): pacing is checked too.
    sandbox = SandboxSlack(channels={ORDERS: "orders", RUSH: "rush"}, clock=clock, channel_rate_limit=True)
    await sandbox.start()
    yield sandbox
    await sandbox.stop()


@pytest.fixture
async def store(tmp_path) -> AsyncIterator[Store]:
    opened = await Store(str(tmp_path / "orderbot.db")).open()
    yield opened
    await opened.close()


def client_of(slack: SandboxSlack, **options) -> AsyncWebClient:
    """The outbox's client as bot/slack/app.py builds it: no retry handlers, the outbox retries itself."""
    options.setdefault("token", slack.bot_token)
    return AsyncWebClient(base_url=slack.api_url, retry_handlers=[], **options)


@pytest.fixture
def sender(store: Store, slack: SandboxSlack, clock: Clock) -> OutboxSender:
    return OutboxSender(store, render=render, client=client_of(slack), pace=1.0, clock=clock)


# --- reading what happened -----------------------------------------------------------------------------------------


async def outbox(store: Store) -> list[dict[str, Any]]:
    rows = await store.read(lambda db: list(db.query("SELECT * FROM outbox ORDER BY id")))
    return [{**row, "payload": json.loads(row["payload"])} for row in rows]


def drawn(row: dict[str, Any]) -> dict[str, Any]:
    """A queued alert as the outbox draws it when it sends."""
    return render(*from_alert_snapshot(row["payload"]))


async def alert_of(store: Store, order: Order) -> dict[str, Any] | None:
    return await store.alert(order.id)


def posts(slack: SandboxSlack) -> list[SlackCall]:
    """chat.postMessage calls Slack accepted."""
    return [c for c in slack.calls_to("chat.postMessage") if c.status == 200 and c.response["ok"]]


def updates(slack: SandboxSlack) -> list[SlackCall]:
    return [c for c in slack.calls_to("chat.update") if c.status == 200 and c.response["ok"]]


async def send_everything(sender: OutboxSender, clock: Clock, *, rounds: int = 20) -> None:
    """Run the outbox until nothing is pending, letting the fake clock jump to each next due time."""
    for _ in range(rounds):
        wait = await sender.send_due()
        if not [row for row in await outbox(sender.store) if row["status"] == "pending"]:
            return
        clock.advance(wait)
    raise AssertionError(f"the outbox still holds pending messages after {rounds} rounds")


def has_buttons(message: dict) -> bool:
    return any(block["type"] == "actions" for block in message["blocks"])


# --- 1. one message per order, updated in place --------------------------------------------------------------------


async def test_an_alert_is_posted_once_then_updated_in_place_when_its_verdict_changes(store, slack, sender, clock):
    order = stuck_order(1001)
    assert await queue(store, order) == 1
    await sender.send_due()
    (post,) = posts(slack)
    alert = await alert_of(store, order)
    assert alert["ts"] == post.response["ts"] and alert["channel"] == ORDERS and alert["state"] == "stuck"
    assert "#1001 is stuck" in slack.message(ORDERS, alert["ts"])["text"]

    assert await queue(store, held(order)) == 1
    clock.advance(1.0)
    await sender.send_due()
    (update,) = updates(slack)
    assert update.args["ts"] == alert["ts"] and update.args["channel"] == ORDERS
    assert "On hold" in slack.message(ORDERS, alert["ts"])["text"]
    assert len(slack.calls_to("chat.postMessage")) == 1
    assert [(r["kind"], r["status"]) for r in await outbox(store)] == [("alert", "sent"), ("alert", "sent")]


async def test_a_second_change_queued_before_the_first_was_sent_replaces_it(store, slack, sender, clock):
    order = stuck_order(1001)
    await queue(store, order)
    await sender.send_due()
    ts = (await alert_of(store, order))["ts"]

    await queue(store, held(order))
    await queue(store, shipped(order))  # Slack has not seen the hold yet: only the newest state goes
    pending = [r for r in await outbox(store) if r["status"] == "pending"]
    assert len(pending) == 1 and "resolved" in drawn(pending[0])["text"]

    clock.advance(1.0)
    await sender.send_due()
    (update,) = slack.calls_to("chat.update")  # one call, with the newest payload
    assert update.args["ts"] == ts and "resolved" in update.args["text"]
    shown = slack.message(ORDERS, ts)
    assert "1Z999" in json.dumps(shown["blocks"]) and not has_buttons(shown)
    assert (await alert_of(store, order))["state"] == "resolved"
    assert [r["status"] for r in await outbox(store)] == ["sent", "sent"]


# --- 2. pacing -----------------------------------------------------------------------------------------------------


async def test_posts_to_one_channel_go_out_one_per_pace(store, slack, sender, clock):
    await queue(store, stuck_order(1001), stuck_order(1002), stuck_order(1003))
    assert await sender.send_due() == pytest.approx(1.0)
    assert [c.args["text"][:5] for c in posts(slack)] == ["#1001"]

    clock.advance(0.5)
    assert await sender.send_due() == pytest.approx(0.5)  # the channel is not free yet
    assert len(slack.calls_to("chat.postMessage")) == 1

    clock.advance(0.5)
    assert await sender.send_due() == pytest.approx(1.0)
    clock.advance(1.0)
    await sender.send_due()
    assert [c.args["text"][:5] for c in posts(slack)] == ["#1001", "#1002", "#1003"]
    assert [c.at for c in slack.calls_to("chat.postMessage")] == [clock.now - 2, clock.now - 1, clock.now]
    assert all(c.status == 200 for c in slack.calls)  # Slack never had to refuse a post as too soon


async def test_a_sender_that_just_started_waits_one_pace_before_its_first_post(store, slack, sender, clock):
    """The process before it may have posted to the channel a moment before it was killed."""
    await queue(store, stuck_order(1001))
    assert await sender.recover(answer_within=10.0) == 0
    assert await sender.send_due() == pytest.approx(1.0)
    assert not slack.calls_to("chat.postMessage")
    clock.advance(1.0)
    await sender.send_due()
    assert [c.args["text"][:5] for c in posts(slack)] == ["#1001"]


async def test_two_channels_are_paced_independently(store, slack, sender, clock):
    await queue(store, stuck_order(1001), stuck_order(1002), channel=ORDERS)
    await queue(store, stuck_order(2001), stuck_order(2002), channel=RUSH)
    assert await sender.send_due() == pytest.approx(1.0)
    assert sorted((c.args["channel"], c.args["text"][:5]) for c in posts(slack)) == [
        (ORDERS, "#1001"),
        (RUSH, "#2001"),
    ]
    clock.advance(1.0)
    await sender.send_due()
    assert len(posts(slack)) == 4
    assert {m["text"][:5] for m in slack.messages(RUSH)} == {"#2001", "#2002"}
    assert all(c.status == 200 for c in slack.calls)


# --- 3. thread replies ---------------------------------------------------------------------------------------------


async def test_a_reply_queued_before_its_alert_was_posted_waits_for_it_then_goes_in_its_thread(
    store, slack, sender, clock
):
    order = stuck_order(1001)
    await queue(store, order)
    assert await store.enqueue_reply(order.id, "<@U0ADMIN> asked the warehouse to ship it")
    assert await sender.send_due() == pytest.approx(1.0)  # the alert went first; the reply waits for the channel
    ts = (await alert_of(store, order))["ts"]
    assert ts is not None and not slack.replies(ORDERS, ts)

    clock.advance(1.0)
    await sender.send_due()
    (reply,) = slack.replies(ORDERS, ts)
    assert reply["text"] == "<@U0ADMIN> asked the warehouse to ship it"
    assert slack.calls_to("chat.postMessage")[-1].args["thread_ts"] == ts
    assert [(r["kind"], r["status"]) for r in await outbox(store)] == [("alert", "sent"), ("reply", "sent")]


async def test_a_reply_for_an_order_without_an_alert_is_not_queued(store, slack, sender):
    assert not await store.enqueue_reply(stuck_order(1001).id, "nobody will read this")
    assert await outbox(store) == []
    await sender.send_due()
    assert slack.calls == []


# --- 4. a deleted alert --------------------------------------------------------------------------------------------


async def test_an_update_of_an_alert_someone_deleted_posts_it_anew_once(store, slack, sender, clock):
    order = stuck_order(1001)
    await queue(store, order)
    await sender.send_due()
    old_ts = (await alert_of(store, order))["ts"]

    slack.fail_next("chat.update", "message_not_found")  # someone deleted the message in Slack
    await queue(store, held(order))
    clock.advance(1.0)
    await send_everything(sender, clock)

    assert [c.response["error"] for c in slack.calls_to("chat.update")] == ["message_not_found"]
    old_post, new_post = posts(slack)
    new_ts = (await alert_of(store, order))["ts"]
    assert old_post.response["ts"] == old_ts != new_ts == new_post.response["ts"]
    assert "On hold" in slack.message(ORDERS, new_ts)["text"]  # the new message shows the latest state
    (row,) = [r for r in await outbox(store) if r["id"] != 1]
    assert row["status"] == "sent"

    clock.advance(60.0)
    await sender.send_due()
    assert len(slack.calls_to("chat.postMessage")) == 2  # posted anew once, not again


# --- 5. a message Slack refuses ------------------------------------------------------------------------------------


async def test_a_message_slack_refuses_fails_without_retry_and_the_next_one_still_goes_out(store, slack, clock):
    sender = OutboxSender(store, client_of(slack), render_1001_too_long, pace=1.0, clock=clock)
    broken, fine = stuck_order(1001), stuck_order(1002)
    await queue(store, broken)
    await queue(store, fine)
    await send_everything(sender, clock)

    refused, accepted = slack.calls_to("chat.postMessage")
    assert refused.response["error"] == "invalid_blocks" and accepted.args["text"].startswith("#1002")
    rows = await outbox(store)
    assert [(r["status"], r["error"], r["attempts"]) for r in rows] == [
        ("failed", "invalid_blocks", 1),
        ("sent", None, 1),
    ]
    assert (await alert_of(store, broken))["ts"] is None
    assert sender.problem is None  # the message was wrong, not the setup

    clock.advance(3600.0)
    await sender.send_due()
    assert len(slack.calls_to("chat.postMessage")) == 2  # never retried


async def test_an_alert_that_cannot_be_drawn_is_set_aside_and_the_next_one_still_goes_out(store, slack, sender, clock):
    """Alerts are queued as data and drawn when sent: a snapshot the renderer cannot read (a bug, or a row an
    operator edited) fails alone, logged, instead of blocking the queue behind it."""
    broken, fine = stuck_order(1001), stuck_order(1002)
    await queue(store, broken, fine)
    await store.write(
        lambda db: db.execute("UPDATE outbox SET payload = '{\"order\": {}}' WHERE order_id = ?", [broken.id])
    )
    await send_everything(sender, clock)

    [posted] = slack.calls_to("chat.postMessage")
    assert posted.args["text"].startswith("#1002")
    rows = {r["order_id"]: r for r in await outbox(store)}
    assert rows[broken.id]["status"] == "failed" and rows[broken.id]["error"].startswith("cannot be drawn")
    assert rows[fine.id]["status"] == "sent"


async def test_an_alert_queued_as_blocks_before_an_upgrade_is_sent_as_it_was(store, slack, sender, clock):
    order = stuck_order(1001)
    await queue(store, order)
    [row] = await outbox(store)
    rendered = {**drawn(row), "text": "#1001 as an older version drew it"}
    await store.write(lambda db: db.execute("UPDATE outbox SET payload = ?", [json.dumps(rendered)]))
    await send_everything(sender, clock)

    [posted] = slack.calls_to("chat.postMessage")
    assert posted.args["text"] == "#1001 as an older version drew it"


# --- 6. configuration errors ---------------------------------------------------------------------------------------


async def test_a_channel_the_bot_is_not_in_keeps_the_alert_pending_and_retries_after_config_retry(
    store, slack, sender, clock
):
    slack.member_of.discard(ORDERS)
    order = stuck_order(1001)
    await queue(store, order)
    started = clock.now
    assert await sender.send_due() == pytest.approx(CONFIG_RETRY)
    (row,) = await outbox(store)
    assert (row["status"], row["error"], row["attempts"]) == ("pending", "not_in_channel", 1)
    assert row["not_before"] == pytest.approx(started + CONFIG_RETRY)
    assert sender.problem_code == "not_in_channel" and not sender.unauthorized
    assert sender.problem == "not_in_channel: Invite the bot to the channel (/invite @orderbot)."  # for /healthz

    clock.advance(CONFIG_RETRY - 1)
    await sender.send_due()
    assert len(slack.calls_to("chat.postMessage")) == 1  # not retried before CONFIG_RETRY

    slack.member_of.add(ORDERS)  # someone invited the bot
    clock.advance(1)
    await sender.send_due()
    assert len(posts(slack)) == 1
    (row,) = await outbox(store)
    assert (row["status"], row["attempts"]) == ("sent", 2)
    assert (await alert_of(store, order))["ts"] == posts(slack)[0].response["ts"]
    assert sender.problem is None


async def test_an_unknown_channel_is_a_configuration_problem_until_a_post_succeeds(store, slack, sender, clock):
    await queue(store, stuck_order(1001), channel="C0GONE")
    await sender.send_due()
    assert sender.problem == "channel_not_found: Check SLACK_CHANNEL_ID."
    assert [(r["status"], r["error"]) for r in await outbox(store)] == [("pending", "channel_not_found")]

    clock.advance(1.0)
    await queue(store, stuck_order(1002), channel=ORDERS)
    await sender.send_due()
    assert sender.problem is None  # a later success clears it
    assert [r["status"] for r in await outbox(store)] == ["pending", "sent"]


async def test_a_revoked_token_marks_the_sender_unauthorized_and_keeps_the_alert(store, slack, clock):
    sender = OutboxSender(store, render=render, client=client_of(slack, token="xoxb-revoked"), pace=1.0, clock=clock)
    await queue(store, stuck_order(1001))
    await sender.send_due()
    assert sender.problem_code == "invalid_auth" and sender.unauthorized
    assert [(r["status"], r["error"]) for r in await outbox(store)] == [("pending", "invalid_auth")]
    assert slack.messages(ORDERS) == []


# --- 7. rate limits ------------------------------------------------------------------------------------------------


async def test_a_429_holds_the_channel_for_retry_after_and_loses_nothing(store, slack, sender, clock):
    slack.fail_next("chat.postMessage", "rate_limited", retry_after=3)
    await queue(store, stuck_order(1001), stuck_order(1002))
    assert await sender.send_due() == pytest.approx(3.0)
    assert [c.status for c in slack.calls] == [429]
    assert [(r["status"], r["error"], r["attempts"]) for r in await outbox(store)] == [
        ("pending", "rate limited", 1),
        ("pending", None, 0),
    ]

    clock.advance(2.9)
    assert await sender.send_due() == pytest.approx(0.1)
    assert len(slack.calls) == 1  # nothing before Retry-After has passed

    clock.advance(0.1)
    await send_everything(sender, clock)
    assert [c.args["text"][:5] for c in posts(slack)] == ["#1001", "#1002"]
    assert [(r["status"], r["attempts"]) for r in await outbox(store)] == [("sent", 2), ("sent", 1)]


# --- 8. outages ----------------------------------------------------------------------------------------------------


async def test_http_500s_back_off_with_growing_delays_counting_attempts_then_send(store, slack, sender, clock):
    slack.fail_next("chat.postMessage", "http_500", times=2)
    order = stuck_order(1001)
    await queue(store, order)

    first_failure = clock.now
    wait = await sender.send_due()
    (row,) = await outbox(store)
    assert (row["status"], row["error"], row["attempts"]) == ("pending", "Slack answered HTTP 500", 1)
    assert first_failure + 0.5 <= row["not_before"] <= first_failure + 1.0  # 1 s, jittered down to half
    assert wait == pytest.approx(row["not_before"] - clock.now)

    clock.advance(1.0)  # past the backoff and the channel's pace
    second_failure = clock.now
    await sender.send_due()
    (row,) = await outbox(store)
    assert row["attempts"] == 2 and second_failure + 1.0 <= row["not_before"] <= second_failure + 2.0

    clock.advance(2.0)
    await sender.send_due()
    (row,) = await outbox(store)
    assert (row["status"], row["attempts"]) == ("sent", 3)
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [500, 500, 200]
    assert (await alert_of(store, order))["ts"] == posts(slack)[0].response["ts"]


async def test_a_timeout_backs_off_and_the_alert_is_sent_later(store, slack, clock):
    sender = OutboxSender(store, render=render, client=client_of(slack, timeout=0.05), pace=1.0, clock=clock)
    slack.fail_next("chat.postMessage", "timeout", delay=0.1)  # answers after the client gave up
    order = stuck_order(1001)
    await queue(store, order)

    await sender.send_due()
    (row,) = await outbox(store)
    assert row["status"] == "pending" and row["attempts"] == 1
    assert row["error"].startswith("Slack could not be reached: TimeoutError")
    assert row["not_before"] > clock.now

    await wait_for(lambda: slack.calls_to("chat.postMessage"), timeout=2)  # Slack finished the slow call
    clock.advance(1.0)
    await sender.send_due()
    (row,) = await outbox(store)
    assert (row["status"], row["attempts"]) == ("sent", 2)
    alert = await alert_of(store, order)
    assert slack.message(ORDERS, alert["ts"]) is not None


async def test_a_first_post_that_reached_slack_before_the_timeout_is_not_posted_twice(store, slack, clock):
    sender = OutboxSender(store, render=render, client=client_of(slack, timeout=0.05), pace=1.0, clock=clock)
    slack.fail_next("chat.postMessage", "timeout", delay=0.1)
    await queue(store, stuck_order(1001))
    await sender.send_due()
    await wait_for(lambda: slack.calls_to("chat.postMessage"), timeout=2)  # Slack finished the slow call
    clock.advance(1.0)
    await sender.send_due()
    assert len(slack.messages(ORDERS)) == 1


async def test_a_scans_summary_that_reached_slack_before_the_timeout_is_not_posted_twice(store, slack, clock):
    sender = OutboxSender(store, render=render, client=client_of(slack, timeout=0.05), pace=1.0, clock=clock)
    summary = BurstSummary(alerted=20, held_back=280, by_reason=(("unfulfilled_overdue", 280),), alert_burst=20)
    await store.write(lambda db: queue_burst_summary(db, AlertSync(ORDERS, alert_burst=20, summary=summary)))
    slack.fail_next("chat.postMessage", "timeout", delay=0.1)  # answers after the client gave up
    await sender.send_due()
    await wait_for(lambda: slack.calls_to("chat.postMessage"), timeout=2)  # Slack finished the slow call
    slack.write_as("U0STAFF", ORDERS, "anyone on this?")  # the channel moved on
    clock.advance(1.0)
    await send_everything(sender, clock)
    assert len(posts(slack)) == 1, "the summary was posted twice"
    assert slack.calls_to("conversations.history")
    (row,) = await outbox(store)
    assert row["status"] == "sent"


async def test_a_post_in_flight_when_the_process_died_is_found_in_the_channel_not_posted_again(store, slack, clock):
    sender = OutboxSender(store, render=render, client=client_of(slack, timeout=0.05), pace=1.0, clock=clock)
    slack.fail_next("chat.postMessage", "timeout", delay=0.1)
    await queue(store, stuck_order(1001))
    await sender.send_due()  # times out; then, as if killed mid-call, the row is left "sending"
    await wait_for(lambda: slack.calls_to("chat.postMessage"), timeout=2)
    await store.write(lambda db: db.execute("UPDATE outbox SET status = 'sending', maybe_posted = 0"))

    assert await store.outbox_recover() == 1  # at start
    clock.advance(60.0)
    await send_everything(sender, clock)
    assert len(slack.messages(ORDERS)) == 1
    assert len(posts(slack)) == 1 and slack.calls_to("conversations.history")
    (row,) = await outbox(store)
    assert row["status"] == "sent"
    assert (await alert_of(store, stuck_order(1001)))["ts"] == slack.messages(ORDERS)[0]["ts"]


async def test_a_post_that_reached_slack_is_found_past_the_first_page_of_a_busy_channels_history(store, slack, clock):
    """The channel moved on after the post whose answer was lost: more messages since than one page of history
    holds. The lookup pages back (cursor) to when the alert was queued, and finds it instead of posting it again."""
    sender = OutboxSender(store, render=render, client=client_of(slack, timeout=0.05), pace=1.0, clock=clock)
    slack.fail_next("chat.postMessage", "timeout", delay=0.1)
    await queue(store, stuck_order(1001))
    await sender.send_due()
    await wait_for(lambda: slack.calls_to("chat.postMessage"), timeout=2)  # Slack finished the slow call
    for i in range(HISTORY_PAGE + 50):
        clock.advance(0.001)
        slack.write_as("U0STAFF", ORDERS, f"chatter {i}")
    clock.advance(60.0)
    await send_everything(sender, clock)
    assert len(posts(slack)) == 1, "the alert was posted twice"
    assert len(slack.calls_to("conversations.history")) == 2
    alert = await alert_of(store, stuck_order(1001))
    assert alert["ts"] == posts(slack)[0].response["ts"]


async def test_a_post_in_flight_at_a_restart_is_looked_for_only_once_a_slow_answer_could_have_landed(
    store, slack, sender, clock
):
    await queue(store, stuck_order(1001))
    await store.write(lambda db: db.execute("UPDATE outbox SET status = 'sending'"))
    assert await sender.recover(answer_within=10.0) == 1
    clock.advance(5.0)
    await sender.send_due()
    assert not slack.calls  # the call before the restart may still be on its way
    clock.advance(5.0)
    await send_everything(sender, clock)
    assert slack.calls_to("conversations.history") and len(posts(slack)) == 1


async def test_a_post_that_never_reached_slack_is_posted_after_the_lookup_finds_nothing(store, slack, sender, clock):
    await queue(store, stuck_order(1001))
    await store.write(lambda db: db.execute("UPDATE outbox SET status = 'sending'"))
    await store.outbox_recover()
    await send_everything(sender, clock)
    assert len(posts(slack)) == 1 and len(slack.calls_to("conversations.history")) == 1


# --- 9. resolved before it was ever posted -------------------------------------------------------------------------


async def test_an_order_resolved_before_its_alert_was_posted_never_reaches_slack(store, slack, sender, clock):
    order = stuck_order(1001)
    await queue(store, order)
    assert await store.enqueue_reply(order.id, "<@U0ADMIN> snoozed it")
    await queue(store, shipped(order))  # plan "forget": Slack never saw it, so there is nothing to tell

    assert await alert_of(store, order) is None
    assert [(r["kind"], r["status"]) for r in await outbox(store)] == [("reply", "pending")]
    await send_everything(sender, clock)
    assert slack.calls == []
    assert [(r["kind"], r["status"], r["payload"]) for r in await outbox(store)] == [("reply", "dropped", {})]


async def test_an_order_stuck_again_before_its_resolution_was_sent_still_has_one_alert_with_buttons(
    store, slack, sender, clock
):
    order = stuck_order(1001)
    await queue(store, order)
    await sender.send_due()
    await queue(store, shipped(order))  # resolved: an update waits for the channel ...
    await queue(store, held(order))  # ... when a hold makes it stuck again
    clock.advance(1.0)
    await send_everything(sender, clock)
    with_buttons = [m["text"] for m in slack.messages(ORDERS) if has_buttons(m)]
    assert len(with_buttons) == 1 and "On hold" in with_buttons[0]


# --- 10. personal data ---------------------------------------------------------------------------------------------


async def test_a_sent_message_leaves_no_customer_name_in_the_outbox(store, slack, sender, clock):
    order = stuck_order(1001)
    await queue(store, order)
    await store.enqueue_reply(order.id, f"<@U0ADMIN> emailed {CUSTOMER}")
    (alert_row, reply_row) = await outbox(store)
    assert CUSTOMER in json.dumps(alert_row["payload"]) and CUSTOMER in reply_row["payload"]["text"]

    await send_everything(sender, clock)
    assert CUSTOMER in json.dumps(slack.messages(ORDERS))  # Slack has it ...
    rows = await outbox(store)
    assert [(r["status"], r["payload"]) for r in rows] == [("sent", {}), ("sent", {})]  # ... so we no longer keep it
    raw = await store.read(lambda db: db.execute("SELECT group_concat(payload) FROM outbox").fetchone()[0])
    assert CUSTOMER not in raw


# --- changes that arrive while a send is in flight -----------------------------------------------------------------


async def send_slowly(slack: SandboxSlack, sender: OutboxSender, method: str) -> asyncio.Task:
    """Start send_due with Slack slow to answer `method` (but answering in time); return once the call is in flight."""
    slack.fail_next(method, "timeout", delay=0.2)  # the client's timeout (30 s) is far longer: only slow
    task = asyncio.create_task(sender.send_due())
    await wait_for(lambda: not slack._failures, timeout=2)  # Slack has the request
    return task


async def test_a_change_queued_while_the_alert_is_being_posted_is_still_sent(store, slack, sender, clock):
    order = stuck_order(1001)
    await queue(store, order)
    task = await send_slowly(slack, sender, "chat.postMessage")
    await queue(store, held(order))  # the hold arrives while Slack is still answering the post
    await task

    clock.advance(1.0)
    await send_everything(sender, clock)
    ts = (await alert_of(store, order))["ts"]
    assert "On hold" in slack.message(ORDERS, ts)["text"]


async def test_an_order_resolved_while_its_alert_is_being_posted_does_not_leave_a_stuck_alert(
    store, slack, sender, clock
):
    order = stuck_order(1001)
    await queue(store, order)
    task = await send_slowly(slack, sender, "chat.postMessage")
    await queue(store, shipped(order))
    await task

    clock.advance(1.0)
    await send_everything(sender, clock)
    assert not any(has_buttons(m) for m in slack.messages(ORDERS))


async def test_a_stuck_alert_is_reworded_after_six_hours_after_any_news(store, slack, sender, clock):
    old, new = stuck_order(1001), stuck_order(1002)
    await queue(store, old)
    await send_everything(sender, clock)
    assert await queue(store, old) == 0  # unchanged: nothing to send
    await store.write(lambda db: db.execute("UPDATE alerts SET updated_at = '2000-01-01T00:00:00+00:00'"))

    assert await queue(store, old, new) == 2  # the old one is re-worded ("for 3 days" went stale); #1002 is news
    rows = {r["order_id"]: r for r in await outbox(store) if r["status"] == "pending"}
    assert rows[old.id]["priority"] == PRIORITY_REWORD and rows[new.id]["priority"] == PRIORITY_NEWS
    clock.advance(1.0)
    await send_everything(sender, clock)
    assert [c.method for c in slack.calls[-2:]] == ["chat.postMessage", "chat.update"]  # the news went first
    assert await queue(store, old) == 0


async def test_a_message_queued_while_the_outbox_reads_its_queue_is_not_left_waiting(store, slack):
    sender = OutboxSender(
        store, render=render, client=client_of(slack), pace=1.0
    )  # the real clock: run_forever really waits
    runner = asyncio.create_task(sender.run_forever())
    await asyncio.sleep(0)  # the outbox is now reading its (empty) queue on the database thread
    await queue(store, stuck_order(1001))  # committed behind that read
    sender.wake()  # as the server does after a commit that queued alerts
    try:
        await wait_for(lambda: posts(slack), timeout=3)  # not IDLE_CHECK (30 s) later
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner


async def test_a_cancel_that_arrives_with_a_wake_up_still_stops_the_outbox(store, slack):
    sender = OutboxSender(store, render=render, client=client_of(slack), pace=1.0)
    runner = asyncio.create_task(sender.run_forever())
    await asyncio.sleep(0.05)  # idle: waiting for a wake-up
    sender.wake()
    runner.cancel()  # the server shuts down at that very moment
    done, _ = await asyncio.wait({runner}, timeout=2)
    assert done, "the outbox ignored the cancel (Python 3.11's wait_for swallows it) and shutdown would hang"
