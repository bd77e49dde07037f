"""A calm first day, through the real server against the sandboxes: a scan that finds 300 stuck orders posts the 20
most urgent alerts and one summary (21 messages), `/orders stuck` and the summary's button list all 300, each later
scan alerts the next 20 most urgent, and webhooks alert a newly stuck order at once as before."""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.domain.alerts import HELD
from bot.domain.rules import Policy
from bot.sandbox.seed import generate_orders, placed
from bot.sandbox.serving import serve
from bot.sandbox.shopify import SandboxShopify
from bot.sandbox.slack_payloads import click_on_message
from bot.slack.command_blocks import SHOW_STUCK
from bot.web import SLACK
from tests.conftest import ADMIN, CHANNEL, SHOP, World, classified, running_world, wait_for

STUCK = 300
PACE = 0.05  # Slack's limit is one post a second per channel; a twentieth keeps the test short, the rule the same


def summaries(world: World) -> list[dict]:
    return [m for m in world.slack.messages(CHANNEL) if SHOW_STUCK in str(m.get("blocks"))]


def alerted(world: World) -> set[str]:
    return {n for (n,) in world.rows("SELECT o.name FROM alerts a JOIN orders o ON o.id = a.order_id WHERE a.ts")}


def held_back(world: World) -> set[str]:
    rows = world.rows("SELECT o.name FROM alerts a JOIN orders o ON o.id = a.order_id WHERE state = ?", (HELD,))
    return {name for (name,) in rows}


def most_urgent_names(world: World, names: set[str], count: int) -> set[str]:
    """Of `names`, the `count` most urgent by their stored verdicts: critical first, then the longest stuck."""
    rows = world.rows("SELECT o.name, v.severity, v.since FROM verdicts v JOIN orders o ON o.id = v.order_id")
    ranked = sorted(
        (r for r in rows if r[0] in names), key=lambda r: (r[1] != "critical", datetime.fromisoformat(r[2]), r[0])
    )
    return {name for name, _, _ in ranked[:count]}


@pytest.fixture
async def first_day(tmp_path: Path) -> AsyncIterator[World]:
    """A shop with 300 stuck orders and 50 others, which orderbot has never seen (it was just installed)."""
    now = datetime.now(UTC)
    orders = generate_orders(900, now, seed=14)
    stuck, calm = await classified(orders, now)
    assert len(stuck) >= STUCK, "the generated mix is too small"
    chosen = set(stuck[:STUCK]) | set(calm[:50])
    shop = SandboxShopify([o for o in orders if o["id"] in chosen], shop_domain=SHOP, bucket_size=1e9, restore_rate=1e9)
    runner, url = await serve(shop.app)
    try:
        async with running_world((shop, url), tmp_path) as world:
            world.app[SLACK].outbox.pacer.pace = PACE
            yield world
    finally:
        await runner.cleanup()


async def test_a_first_scan_of_300_stuck_orders_posts_20_alerts_and_a_summary_and_later_scans_the_next_20(
    first_day: World,
):
    world = first_day
    started = time.monotonic()
    report = await world.service.reconcile()
    assert len(report.stuck) == STUCK
    await world.slack_caught_up(timeout=120)
    quiet_after = time.monotonic() - started
    posts = world.slack.calls_to("chat.postMessage")
    assert len(posts) == 21, len(posts)  # 20 alerts and one summary
    stuck_names = {
        n for (n,) in world.rows("SELECT o.name FROM verdicts v JOIN orders o ON o.id = v.order_id WHERE v.stuck")
    }
    first = alerted(world)
    assert first == most_urgent_names(world, stuck_names, 20)
    assert world.rows("SELECT state, count(*) FROM alerts GROUP BY state ORDER BY state") == [
        (HELD, 280),
        ("stuck", 20),
    ]
    (summary,) = summaries(world)
    assert world.slack.messages(CHANNEL)[-1]["ts"] == summary["ts"]  # after the alerts
    assert "280 more stuck orders" in summary["text"]
    print(f"\nfirst scan of {STUCK} stuck orders: {len(posts)} messages, quiet {quiet_after:.1f} s at pace {PACE}s")

    answer = await world.command("stuck")
    assert answer["text"] == f"{STUCK} stuck orders"
    before = len(world.slack.responses)
    response = await world.post_slack(click_on_message(world.slack, CHANNEL, summary, SHOW_STUCK, user=ADMIN))
    assert response.status == 200
    await wait_for(lambda: len(world.slack.responses) > before)
    assert world.slack.responses[before].body["text"] == f"{STUCK} stuck orders"  # the same listing

    await world.service.reconcile()  # the next scan: the 20 most urgent of those held back, and no new summary
    await world.slack_caught_up(timeout=120)
    second = alerted(world) - first
    assert len(second) == 20 and second == most_urgent_names(world, stuck_names - first, 20)
    assert len(world.slack.calls_to("chat.postMessage")) == 41
    assert len(summaries(world)) == 1
    assert world.rows("SELECT count(*) FROM alerts WHERE state = ?", (HELD,)) == [(260,)]


async def test_webhooks_alert_a_newly_stuck_order_at_once_and_leave_a_held_back_one_to_the_scans(world: World):
    await world.command("settings set alert_burst 2")
    await world.service.reconcile()
    await world.slack_caught_up()
    held = sorted(held_back(world))
    assert held and len(alerted(world)) == 2 and len(summaries(world)) == 1
    posts = len(world.slack.calls_to("chat.postMessage"))

    await world.order_webhook(int(held[0].removeprefix("#")))  # still stuck: it waits for a scan, as before
    assert held[0] in held_back(world)
    assert not world.rows("SELECT 1 FROM outbox WHERE status = 'pending'")

    late = placed(2001, datetime.now(UTC) - timedelta(hours=70), random.Random(1))  # unfulfilled for 70 h
    world.sandbox.add_order(late)
    await world.order_webhook(2001)
    await world.wait_for_alert(2001)
    assert len(world.slack.calls_to("chat.postMessage")) == posts + 1


async def test_a_scan_says_which_newly_stuck_orders_wait_for_their_alert(world: World):
    await world.command("settings set alert_burst 2")
    answer = await world.command("scan")
    await world.slack_caught_up()
    waiting = len(held_back(world))
    assert waiting and len(alerted(world)) == 2
    assert f"alerts are on the way for the 2 most urgent, {waiting} wait for the next scans" in answer["text"]
    assert "`/orders stuck` lists them all" in answer["text"]


async def test_a_settings_change_that_makes_many_orders_stuck_posts_the_20_most_urgent_and_a_summary(
    first_day: World,
):
    world = first_day
    thresholds = [key for key in Policy().to_settings() if key.startswith("threshold.")]
    for key in thresholds:
        await world.command(f"settings set {key} 9000h")
    await world.service.reconcile()
    await world.slack_caught_up(timeout=120)
    alerted_before = alerted(world)
    stuck_before = world.rows("SELECT count(*) FROM verdicts WHERE stuck")[0][0]
    assert len(alerted_before) == stuck_before <= 20 and not summaries(world)  # the few stuck whatever the threshold

    await world.command("settings set threshold.unfulfilled_overdue 0h")  # hundreds are stuck at once
    await world.slack_caught_up(timeout=120)
    stuck = world.rows("SELECT count(*) FROM verdicts WHERE stuck")[0][0]
    assert stuck - stuck_before > 20
    assert len(alerted(world) - alerted_before) == 20
    assert len(held_back(world)) == stuck - stuck_before - 20
    (summary,) = summaries(world)
    assert f"{stuck - stuck_before - 20} more stuck orders" in summary["text"]
