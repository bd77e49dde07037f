"""The daily digest against real parts: the store's figures from SQLite, the message Slack gets, the once-a-day claim
(racing posters, a crash between the claim and Slack's answer, Slack failures), the timer on a clock the test moves,
the real server posting it to the sandbox Slack channel once, and `python -m bot digest --print`."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.commands import parse
from bot.domain.digest import (
    ARCHIVE_COMMAND,
    AuditCount,
    DigestFacts,
    StuckOrder,
    WebhookHealth,
    build_digest,
)
from bot.domain.orders import Fulfillment, Money, Order
from bot.domain.rules import Verdict
from bot.flows.digests import DIGEST_EVENT, Digests
from bot.sandbox.serving import serve
from bot.sandbox.slack import SandboxSlack
from bot.slack.digest_blocks import digest_message
from bot.slack.history import HISTORY_PAGE
from bot.store import Classified, Store
from bot.store.digests import LEASE
from bot.web import SLACK, create_app
from tests.conftest import ADMIN, CHANNEL, STAFF, World, order_gid_of, wait_for
from tests.test_cli import run_bot

SHOP = "juniper-oak.myshopify.com"
STOCKHOLM = ZoneInfo("Europe/Stockholm")


class Clock:
    """A clock the test moves."""

    def __init__(self, at: datetime):
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def digests_in(slack: SandboxSlack) -> list[dict]:
    return [m for m in slack.messages(CHANNEL) if (m.get("metadata") or {}).get("event_type") == DIGEST_EVENT]


def days_posted(slack: SandboxSlack) -> list[str]:
    return [m["metadata"]["event_payload"]["day"] for m in digests_in(slack)]


def db_rows(path: Path, sql: str, params: tuple = ()) -> list[tuple]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql, params).fetchall()


def poster(store: Store, slack: SandboxSlack, clock: Clock, *, timeout: float = 10.0) -> Digests:
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url, timeout=timeout)
    return Digests(
        store,
        client,
        channel=CHANNEL,
        shop=SHOP,
        digest_time=time(9, 0),
        timezone="Europe/Stockholm",
        shop_zone_expected=False,
        draw=digest_message,
        now=clock,
    )


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 3, 10, 9, 30, tzinfo=STOCKHOLM))


@pytest.fixture
async def slack(clock: Clock):
    sandbox = SandboxSlack(clock=lambda: clock().timestamp())
    await sandbox.start()
    yield sandbox
    await sandbox.stop()


@pytest.fixture
async def store(tmp_path: Path):
    opened = await Store(str(tmp_path / "orderbot.db")).open()
    yield opened
    await opened.close()


# --- the message ------------------------------------------------------------------------------------------------


def sample_digest(*, stuck: dict[str, int], archive: int = 0):
    now = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)
    facts = DigestFacts(
        stuck_counts=stuck,
        previous_counts={"awaiting_tracking": 1},
        oldest=[
            StuckOrder(f"gid://shopify/Order/{n}", f"#{n}", "awaiting_tracking", now - timedelta(days=n))
            for n in (3, 1)
        ]
        if stuck
        else [],
        activity=[AuditCount("archive", ADMIN, "done", 3), AuditCount("fulfill", STAFF, "done", 1)],
        resolve_times=[timedelta(hours=4)],
        webhooks=WebhookHealth(received=320, duplicates=4, found_by_reconcile=1),
        archive_candidates=archive,
    )
    return build_digest(facts, now=now, zone=STOCKHOLM, shop=SHOP)


def test_the_message_shows_the_figures_and_offers_show_all_stuck_and_the_bulk_suggestion():
    message = digest_message(sample_digest(stuck={"awaiting_tracking": 4}, archive=12))
    text = json.dumps(message["blocks"])
    assert message["text"] == "Daily digest, Tuesday 10 March: 4 stuck orders (+3 since the last digest)"
    assert len(message["blocks"]) <= 50
    assert "<https://admin.shopify.com/store/juniper-oak/orders/3|#3>" in text  # the oldest first, linked
    assert text.index("orders/3|") < text.index("orders/1|")
    assert f"<@{ADMIN}> 3" in text and "archive 3" in text and "median time to resolve 4h" in text
    assert "320 deliveries received, 4 duplicates dropped" in text
    assert "1 stuck order found only by reconciliation" in text
    (buttons,) = [b["elements"] for b in message["blocks"] if b["type"] == "actions"]
    assert [(b["action_id"], b["value"], b["text"]["text"]) for b in buttons] == [
        ("show_stuck", "stuck", "Show all stuck"),
        ("bulk_suggestion", "archive fulfilled older:30d", "Archive 12 orders fulfilled over 30 days ago"),
    ]


def test_with_nothing_stuck_and_nothing_to_suggest_there_are_no_buttons():
    message = digest_message(sample_digest(stuck={}))
    assert "No stuck orders" in json.dumps(message["blocks"])
    assert not [b for b in message["blocks"] if b["type"] == "actions"]


# --- the figures, from SQLite -------------------------------------------------------------------------------------


def order(number: int, *, shipped_days_ago: float | None, now: datetime, closed: bool = False) -> Order:
    shipped = now - timedelta(days=shipped_days_ago) if shipped_days_ago is not None else None
    return Order(
        id=f"gid://shopify/Order/{number}",
        name=f"#{number}",
        created_at=now - timedelta(days=60),
        updated_at=now - timedelta(days=1),
        financial_status="PAID",
        fulfillment_status="FULFILLED" if shipped else "UNFULFILLED",
        total=Money("10.00", "USD"),
        closed_at=now - timedelta(days=1) if closed else None,
        # Shopify's webhooks give times in the shop's offset: compared as instants, not as text
        fulfillments=(
            Fulfillment(
                f"gid://shopify/Fulfillment/{number}",
                "SUCCESS",
                shipped.astimezone(ZoneInfo("America/New_York")),
                shipped,
            ),
        )
        if shipped
        else (),
        fulfillment_orders=(),
    )


async def test_the_store_reads_every_figure_of_the_window(store: Store):
    now = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
    orders = [
        order(1, shipped_days_ago=45, now=now),  # archive candidate
        order(2, shipped_days_ago=31, now=now),  # archive candidate
        order(3, shipped_days_ago=29, now=now),  # shipped too recently
        order(8, shipped_days_ago=30 - 2 / 24, now=now),  # too, by two hours (its time is at -05:00)
        order(4, shipped_days_ago=60, now=now, closed=True),  # archived already
        order(5, shipped_days_ago=None, now=now),
        order(6, shipped_days_ago=None, now=now),
        order(7, shipped_days_ago=None, now=now),
    ]
    await store.save_orders(orders, from_webhook=True)
    stuck_since = {5: now - timedelta(days=3), 6: now - timedelta(days=5), 7: now - timedelta(hours=30)}
    reasons = {5: "awaiting_tracking", 6: "out_of_stock", 7: "awaiting_tracking"}
    await store.save_verdicts(
        [
            Classified(
                o,
                Verdict(reasons[n], stuck=True, reason=reasons[n], since=stuck_since[n].astimezone(STOCKHOLM)),
                now,
                None,
            )
            for o in orders
            if (n := o.legacy_id) in reasons
        ],
        found_by="webhook",
    )

    def history(db) -> None:
        audit = [
            (now - timedelta(hours=1), ADMIN, "archive", "done"),
            (now - timedelta(hours=23), STAFF, "fulfill", "done"),
            (now - timedelta(hours=2), STAFF, "cancel_order", "refused"),
            (now - timedelta(hours=25), ADMIN, "archive", "done"),  # yesterday's: outside the window
        ]
        for at, actor, action, outcome in audit:
            db.execute(
                "INSERT INTO audit (at, actor, action, order_id, inputs, outcome) VALUES (?, ?, ?, NULL, '{}', ?)",
                [at.isoformat(), actor, action, outcome],
            )
        for hours_ago, webhook_id in ((1, "a"), (5, "b"), (30, "c")):
            db.execute(
                "INSERT INTO inbox (webhook_id, topic, received_at, status)"
                " VALUES (?, 'orders/updated', ?, 'processed')",
                [webhook_id, (now - timedelta(hours=hours_ago)).isoformat()],
            )
        for day, name, value in (
            ("2026-03-10", "webhooks_duplicate", 2),
            ("2026-03-09", "webhooks_duplicate", 3),
            ("2026-03-01", "webhooks_duplicate", 50),
            ("2026-03-10", "stuck_found_by_reconcile", 1),
        ):
            db.execute("INSERT INTO counters (day, name, value) VALUES (?, ?, ?)", [day, name, value])
        for hours_ago, took in ((3, 10), (12, 2), (40, 99)):
            resolved = now - timedelta(hours=hours_ago)
            db.execute(
                "INSERT INTO resolutions (order_id, reason, stuck_since, resolved_at) VALUES ('x', 'on_hold', ?, ?)",
                [(resolved - timedelta(hours=took)).isoformat(), resolved.isoformat()],
            )
        db.execute(
            "INSERT INTO digests (day, claimed_at, posted_at, counts) VALUES ('2026-03-09', ?, ?, ?)",
            [now.isoformat(), (now - timedelta(days=1)).isoformat(), json.dumps({"awaiting_tracking": 1})],
        )

    await store.write(history)
    facts = await store.digest_facts(since=now - timedelta(hours=24), archive_before=now - timedelta(days=30))
    assert facts.stuck_counts == {"awaiting_tracking": 2, "out_of_stock": 1}
    assert facts.previous_counts == {"awaiting_tracking": 1}
    assert [o.name for o in facts.oldest] == ["#6", "#5", "#7"]
    assert facts.oldest[0].since == stuck_since[6]
    assert sorted(facts.activity, key=lambda a: a.action) == [
        AuditCount("archive", ADMIN, "done", 1),
        AuditCount("cancel_order", STAFF, "refused", 1),
        AuditCount("fulfill", STAFF, "done", 1),
    ]
    assert sorted(facts.resolve_times) == [timedelta(hours=2), timedelta(hours=10)]
    # duplicates are counted per UTC day: the two days the 24 hours touch
    assert facts.webhooks == WebhookHealth(received=2, duplicates=5, found_by_reconcile=1)
    assert facts.archive_candidates == 2
    # the suggestion's button runs `/orders archive fulfilled older:30d`: its preview must find the same orders
    assert await store.count_orders(parse(ARCHIVE_COMMAND).selection, now) == 2


# --- once a day ---------------------------------------------------------------------------------------------------


async def test_two_posters_racing_on_one_database_post_once(store: Store, slack: SandboxSlack, clock: Clock):
    other_process = await Store(store.path).open()
    try:
        # The first one's post is held at Slack (claimed, in flight) while the other process tries: it must wait.
        release = slack.hold_next("chat.postMessage")
        first = asyncio.create_task(poster(store, slack, clock).post_scheduled())
        await wait_for(lambda: slack.failures_left == 0)
        assert await poster(other_process, slack, clock).post_scheduled() == "busy"
        release.set()
        assert await first == "posted"
        assert len(digests_in(slack)) == 1
        clock.at += timedelta(hours=3)
        assert await poster(other_process, slack, clock).post_scheduled() == "already"
    finally:
        await other_process.close()
    (message,) = digests_in(slack)
    assert message["metadata"]["event_payload"] == {"day": "2026-03-10"}
    assert db_rows(Path(store.path), "SELECT day, ts, channel, attempts FROM digests") == [
        ("2026-03-10", message["ts"], CHANNEL, 1)
    ]


async def crash_while_posting(first: Digests, db_path: Path, slack: SandboxSlack) -> None:
    """Kill an attempt while its chat.postMessage is at Slack (as a process dies): the claim stays, no ts."""
    attempt = asyncio.create_task(first.post_scheduled())
    await wait_for(lambda: bool(db_rows(db_path, "SELECT 1 FROM digests")))
    await wait_for(lambda: slack.failures_left == 0)  # the call is at Slack, which answers it after 1.5 s
    attempt.cancel()
    with pytest.raises(asyncio.CancelledError):
        await attempt


async def test_after_a_crash_between_claim_and_answer_a_restart_finds_the_message_slack_has(
    store: Store, slack: SandboxSlack, clock: Clock
):
    slack.fail_next("chat.postMessage", "timeout", delay=1.5)  # Slack posts it, then answers late
    await crash_while_posting(poster(store, slack, clock), Path(store.path), slack)
    await wait_for(lambda: len(digests_in(slack)) == 1)
    await store.close()

    restarted = await Store(store.path).open()
    try:
        # Within the lease the first attempt might still be running: the restart waits rather than post twice.
        assert await poster(restarted, slack, clock).post_scheduled() == "busy"
        clock.at += LEASE + timedelta(seconds=1)
        assert await poster(restarted, slack, clock).post_scheduled() == "found"
    finally:
        await restarted.close()
    (message,) = digests_in(slack)
    assert db_rows(Path(store.path), "SELECT ts FROM digests") == [(message["ts"],)]
    assert slack.calls_to("conversations.history")[-1].args["include_all_metadata"] in (True, "true", "1", 1)


async def test_a_restart_finds_the_interrupted_digest_under_more_messages_than_a_page_holds(
    store: Store, slack: SandboxSlack, clock: Clock
):
    slack.fail_next("chat.postMessage", "timeout", delay=1.5)
    await crash_while_posting(poster(store, slack, clock), Path(store.path), slack)
    await wait_for(lambda: len(digests_in(slack)) == 1)
    for i in range(HISTORY_PAGE + 50):  # the team talked in the channel since
        slack.write_as("U0STAFF", CHANNEL, f"chatter {i}")
    clock.at += LEASE + timedelta(seconds=1)
    assert await poster(store, slack, clock).post_scheduled() == "found"
    assert len(digests_in(slack)) == 1
    assert len(slack.calls_to("conversations.history")) == 2


async def test_after_a_crash_before_slack_had_it_a_restart_posts_it(store: Store, slack: SandboxSlack, clock: Clock):
    slack.fail_next("chat.postMessage", "http_500", delay=1.5)  # the post never lands
    await crash_while_posting(poster(store, slack, clock), Path(store.path), slack)
    await wait_for(lambda: bool(slack.calls_to("chat.postMessage")))
    assert digests_in(slack) == []
    await store.close()

    restarted = await Store(store.path).open()
    try:
        clock.at += LEASE + timedelta(seconds=1)
        assert await poster(restarted, slack, clock).post_scheduled() == "posted"
    finally:
        await restarted.close()
    assert len(digests_in(slack)) == 1
    assert slack.calls_to("conversations.history"), "it looked for the message before posting"


async def test_a_slack_failure_is_retried_and_the_day_is_posted_once(store: Store, slack: SandboxSlack, clock: Clock):
    slack.fail_next("chat.postMessage", "http_503")
    digests = poster(store, slack, clock)
    assert await digests.post_scheduled() == "failed"
    assert db_rows(Path(store.path), "SELECT error, ts FROM digests") == [("HTTP 503", None)]
    assert await digests.post_scheduled() == "posted"  # a failed attempt holds no lease
    assert await digests.post_scheduled() == "already"
    assert len(digests_in(slack)) == 1


async def test_posting_now_does_not_take_the_scheduled_digest(store: Store, slack: SandboxSlack, clock: Clock):
    digests = poster(store, slack, clock)
    ts = await digests.post_now()
    assert [m["ts"] for m in slack.messages(CHANNEL)] == [ts]
    assert db_rows(Path(store.path), "SELECT count(*) FROM digests") == [(0,)]
    assert await digests.post_scheduled() == "posted"
    assert len(digests_in(slack)) == 1 and len(slack.messages(CHANNEL)) == 2


# --- the timer ----------------------------------------------------------------------------------------------------


async def run_timer(digests: Digests):
    task = asyncio.create_task(digests.run_forever())
    await wait_for(lambda: digests.looked > 0)  # it has looked at the clock once
    return task


async def looked_again(digests: Digests) -> None:
    """Wake the timer and wait until it has looked at the clock and done what that called for."""
    before = digests.looked
    digests.wake()
    await wait_for(lambda: digests.looked > before)


async def stop(task: asyncio.Task) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_the_timer_posts_at_nine_local_time_on_both_sides_of_a_dst_change(
    store: Store, slack: SandboxSlack, clock: Clock
):
    # Stockholm moves from CET (UTC+1) to CEST (UTC+2) on Sunday 29 March 2026.
    await store.write(
        lambda db: db.execute(
            "INSERT INTO digests (day, posted_at, counts) VALUES ('2026-03-27', '2026-03-27T08:00:00+00:00', '{}')"
        )
    )
    clock.at = datetime(2026, 3, 28, 7, 59, tzinfo=UTC)  # 08:59 CET
    digests = poster(store, slack, clock)
    timer = await run_timer(digests)
    try:
        assert digests_in(slack) == []
        for at, day in (
            (datetime(2026, 3, 28, 8, 0, 1, tzinfo=UTC), "2026-03-28"),  # 09:00 CET
            (datetime(2026, 3, 29, 7, 0, 1, tzinfo=UTC), "2026-03-29"),  # 09:00 CEST, 23 hours later
        ):
            clock.at = at - timedelta(seconds=2)
            await looked_again(digests)
            assert day not in days_posted(slack), "not before nine"
            clock.at = at
            digests.wake()
            await wait_for(lambda day=day: day in days_posted(slack))
        clock.at += timedelta(hours=5)
        await looked_again(digests)
    finally:
        await stop(timer)
    assert days_posted(slack) == ["2026-03-28", "2026-03-29"]


async def test_a_restart_after_the_digest_time_posts_the_missed_digest_but_a_first_start_waits(
    store: Store, slack: SandboxSlack, clock: Clock
):
    clock.at = datetime(2026, 3, 10, 14, 0, tzinfo=STOCKHOLM)
    timer = await run_timer(poster(store, slack, clock))  # a new database: nothing was missed
    await stop(timer)
    assert digests_in(slack) == []
    clock.at = datetime(2026, 3, 11, 8, 59, 59, tzinfo=STOCKHOLM)
    digests = poster(store, slack, clock)
    timer = await run_timer(digests)
    clock.at += timedelta(seconds=2)
    digests.wake()
    await wait_for(lambda: len(digests_in(slack)) == 1)
    await stop(timer)
    clock.at = datetime(2026, 3, 12, 16, 0, tzinfo=STOCKHOLM)  # down over the digest time, back in the afternoon
    timer = await run_timer(poster(store, slack, clock))
    await wait_for(lambda: len(digests_in(slack)) == 2)
    await stop(timer)
    assert days_posted(slack) == ["2026-03-11", "2026-03-12"]


# --- through the real server ---------------------------------------------------------------------------------------


def midday_zone(now: datetime) -> str:
    """A fixed-offset zone in which `now` is around noon, so the test never straddles midnight."""
    offset = 12 - now.hour
    offset = max(-12, min(offset, 14))
    return f"Etc/GMT{-offset:+d}"


async def restart(world: World, settings, clock: Clock) -> World:
    await world.stop_server()
    app = create_app(settings, reconcile=False, now=clock)
    runner, url = await serve(app)
    return replace(world, url=url, app=app, runner=runner)


async def test_the_server_posts_the_digest_to_the_channel_once_at_digest_time(world: World):
    real_now = datetime.now(UTC)
    zone = ZoneInfo(midday_zone(real_now))
    digest_time = (real_now.astimezone(zone) + timedelta(minutes=1)).time().replace(second=0, microsecond=0)
    settings = replace(world.settings(), timezone=zone.key, digest_time=digest_time)
    clock = Clock(real_now)
    server = await restart(world, settings, clock)
    try:
        await server.order_webhook(1001)  # unfulfilled_overdue
        await server.order_webhook(1009)  # awaiting_tracking
        await server.wait_for_alert(1001)
        await server.wait_for_alert(1009)
        digests = server.app[SLACK].digests
        await looked_again(digests)
        assert digests_in(world.slack) == [], "not before the digest time"

        clock.at = real_now + timedelta(minutes=2)
        digests.wake()
        await wait_for(lambda: len(digests_in(world.slack)) == 1)
        (message,) = digests_in(world.slack)
        assert message["metadata"]["event_payload"]["day"] == clock.at.astimezone(zone).date().isoformat()
        shown = message["text"] + json.dumps(message["blocks"])
        assert "2 stuck orders" in shown and "Awaiting tracking: 1" in shown and "Unfulfilled" in shown
        gid = order_gid_of(world.sandbox, 1001).rsplit("/", 1)[1]
        assert f"https://admin.shopify.com/store/orderbot-demo/orders/{gid}|#1001>" in shown
        actions = [e["action_id"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]
        assert actions == ["show_stuck"]

        await wait_for(lambda: server.rows("SELECT 1 FROM digests WHERE posted_at IS NOT NULL"))  # stored as posted
        clock.at += timedelta(hours=2)
        server = await restart(server, settings, clock)  # later the same day: already posted
        await looked_again(server.app[SLACK].digests)
    finally:
        await server.stop_server()
    assert len(digests_in(world.slack)) == 1
    assert [(r[0] is not None, r[1]) for r in server.rows("SELECT posted_at, ts FROM digests")] == [
        (True, message["ts"])
    ]


async def test_the_digest_keeps_to_the_shops_time_zone_when_timezone_is_not_set(world: World):
    digests = world.app[SLACK].digests
    await wait_for(lambda: getattr(digests.zone, "key", None) == "America/New_York")  # the sandbox shop's


async def test_resolved_orders_are_counted_with_their_time_to_resolve_and_a_snooze_is_not_one(world: World):
    await world.order_webhook(1009)
    await world.order_webhook(1005)
    await world.wait_for_alert(1009)
    await world.wait_for_alert(1005)
    await world.click(1005, "snooze", user=STAFF, option=f"{order_gid_of(world.sandbox, 1005)}|1d")
    await wait_for(lambda: world.rows("SELECT count(*) FROM snoozes") == [(1,)])
    world.sandbox.fulfill_externally(order_gid_of(world.sandbox, 1009), tracking_number="SB-1", company="USPS")
    await world.order_webhook(1009, topic="orders/fulfilled")
    rows = world.rows("SELECT o.name, r.reason, r.stuck_since FROM resolutions r JOIN orders o ON o.id = r.order_id")
    assert [row[:2] for row in rows] == [("#1009", "awaiting_tracking")]
    digest = await world.app[SLACK].digests.build()
    assert digest.resolved == 1
    assert digest.median_to_resolve > timedelta(days=3)  # ShipBob accepted it four days ago


async def test_digest_print_reads_the_database(world: World, tmp_path: Path):
    await world.order_webhook(1001)
    await world.order_webhook(1002)
    await world.stop_server()
    env = {"DATABASE_PATH": str(world.db_path), "SHOPIFY_SHOP": "orderbot-demo.myshopify.com", "TIMEZONE": "UTC"}
    code, out, err = await run_bot("digest", "--print", env=env, cwd=tmp_path)
    assert code == 0, err
    assert "Stuck orders: 2" in out and "Unfulfilled" in out and "Out of stock" in out
    assert "https://admin.shopify.com/store/orderbot-demo/orders/" in out
    code, _, err = await run_bot("digest", "--print", env={"DATABASE_PATH": str(tmp_path / "none.db")}, cwd=tmp_path)
    assert code == 1 and "No database" in err
    assert not (tmp_path / "none.db").exists()
