"""Load: a burst of 2,000 order webhooks, 500 of them for stuck orders (a busy shop's half hour after a sale, or
Shopify delivering a backlog at once), through the real server against the sandbox Shopify and the sandbox Slack.

Slack allows one post a second per channel, so 500 alerts take at least 500 s: `pytest --long` runs exactly that
(about 9 minutes). The default run is the short variant: half the burst (1,000 webhooks, 250 stuck), with time
compressed twenty-fold (the outbox's pace and the sandbox Slack's limit both shortened to PACE), so the same code
paths post 250 alerts in about 15 s. The sandbox Shopify has Shopify Plus's restore rate (1,000 points a second):
every open order's webhook makes the server read the order once.

Holds when: every webhook is answered 200 in under 1 s (printed: p50, p95 and max, against one webhook on the idle
server measured first in the same run), all are stored and processed, no post reaches the channel sooner after the
last than the pace allows (the sandbox answers 429 to one that does: there must be none) and no ten posts in a row
come faster than ten paces, and each stuck order has exactly one alert, each other order none.
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import statistics
import time
from collections import Counter
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from bot.sandbox.seed import generate_orders
from bot.sandbox.serving import serve
from bot.sandbox.shopify import SandboxShopify
from bot.sandbox.shopify_payloads import webhook_headers
from bot.sandbox.slack import SandboxSlack
from bot.slack.outbox import PACE as SLACK_PACE
from bot.web import create_app
from tests.conftest import CHANNEL, SHOP, WEBHOOK_SECRET, classified, manifest_scopes, wait_for, world_settings

FULL = (2_000, 500)  # webhooks, of which for stuck orders
SHORT = (1_000, 250)
PACE = 0.05  # the compressed second of the default run: twenty times faster than Slack's
CONNECTIONS = 64  # Shopify delivers concurrently; this many at once
ANSWER_LIMIT = 1.0  # seconds: Shopify gives up after 5; the issue asks for under 1


async def post(http: aiohttp.ClientSession, url: str, body: bytes, gate: asyncio.Semaphore) -> tuple[int, float]:
    """One delivery on one of the CONNECTIONS; timed from when it is sent, as Shopify times its deliveries."""
    headers = webhook_headers(body, topic="orders/updated", secret=WEBHOOK_SECRET, shop=SHOP)
    async with gate:
        started = time.perf_counter()
        async with http.post(f"{url}/shopify/webhooks", data=body, headers=headers) as response:
            await response.read()
            return response.status, time.perf_counter() - started


def read(db_path: str, sql: str) -> list[tuple]:
    with closing(sqlite3.connect(db_path)) as conn:
        return conn.execute(sql).fetchall()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]


@pytest.mark.timeout(1500)
async def test_a_burst_keeps_slack_pace_answers_within_a_second_and_alerts_each_stuck_order_once(
    tmp_path: Path, long_run: bool
):
    pace = SLACK_PACE if long_run else PACE
    webhooks, stuck_count = FULL if long_run else SHORT
    now = datetime.now(UTC)
    orders = generate_orders(webhooks * 3 // 2, now, seed=6)
    stuck, calm = await classified(orders, now)
    assert len(stuck) >= stuck_count and len(calm) >= webhooks - stuck_count, "the generated mix is too small"
    chosen = set(stuck[:stuck_count]) | set(calm[: webhooks - stuck_count])

    shop = SandboxShopify(
        [o for o in orders if o["id"] in chosen], shop_domain=SHOP, bucket_size=20_000, restore_rate=1_000
    )
    shop_runner, shop_url = await serve(shop.app)
    slack = SandboxSlack(scopes=manifest_scopes(), channel_rate_limit=True, post_interval=pace)
    await slack.start()
    settings = replace(world_settings(shop, shop_url, slack, "", tmp_path / "orderbot.db"), smtp_url=None)
    runner, url = await serve(create_app(settings, reconcile=False, slack_pace=pace))
    bodies = [json.dumps(shop.webhook_payload(order_id)).encode() for order_id in chosen]
    random.Random(6).shuffle(bodies)
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONNECTIONS)) as http:
            gate = asyncio.Semaphore(CONNECTIONS)
            idle = [(await post(http, url, body, gate))[1] for body in bodies[:20]]  # one at a time: the baseline
            started = time.perf_counter()
            answers = await asyncio.gather(*(post(http, url, body, gate) for body in bodies[20:]))
            burst_seconds = time.perf_counter() - started

        def rows(sql: str) -> list[tuple]:
            return read(settings.database_path, sql)

        def all_posted() -> bool:
            return rows("SELECT count(*) FROM alerts WHERE ts IS NOT NULL")[0][0] >= stuck_count and not rows(
                "SELECT 1 FROM inbox WHERE status = 'pending' LIMIT 1"
            )

        def settled() -> bool:  # nothing left to go out: every delivery processed, no message queued or in flight
            return not rows(
                "SELECT 1 FROM inbox WHERE status = 'pending'"
                " UNION ALL SELECT 1 FROM outbox WHERE status IN ('pending', 'sending') LIMIT 1"
            )

        await wait_for(all_posted, timeout=stuck_count * pace * 2 + 120)
        posting_seconds = time.perf_counter() - started
        await wait_for(settled, timeout=120)  # then what was posted is all that will be
    finally:
        await runner.cleanup()
        await slack.stop()
        await shop_runner.cleanup()

    statuses = Counter(status for status, _ in answers)
    latencies = [seconds for _, seconds in answers]
    posts = [c for c in slack.calls_to("chat.postMessage") if c.args.get("channel") == CHANNEL]
    refused = [c for c in posts if c.status == 429]
    accepted = sorted(c.at for c in posts if c.status == 200)
    tens = [b - a for a, b in zip(accepted, accepted[10:], strict=False)]  # the time every ten posts in a row took
    shown = Counter(m["text"].split(" ", 1)[0] for m in slack.messages(CHANNEL))
    stuck_names = {shop.orders[i]["name"] for i in stuck[:stuck_count]}
    print(
        f"\nload: {len(bodies)} webhooks ({stuck_count} stuck) in {burst_seconds:.1f} s "
        f"over {CONNECTIONS} connections; "
        f"answers p50 {statistics.median(latencies) * 1000:.0f} ms, p95 {percentile(latencies, 0.95) * 1000:.0f} ms, "
        f"max {max(latencies) * 1000:.0f} ms (idle server: median {statistics.median(idle) * 1000:.1f} ms); "
        f"{len(accepted)} posts in {posting_seconds:.1f} s at a pace of {pace} s "
        f"(floor {(stuck_count - 1) * pace:.1f} s), "
        f"{len(refused)} refused for coming too soon; the fastest ten posts in a row took {min(tens):.2f} s; "
        f"{sum(1 for n in stuck_names if shown[n] == 1)}/{stuck_count} stuck orders with exactly one alert"
    )
    assert statuses == Counter({200: len(bodies) - 20}), statuses
    assert max(latencies) < ANSWER_LIMIT, f"slowest webhook answer {max(latencies):.2f} s"
    assert rows("SELECT count(*) FROM inbox")[0][0] == len(bodies)
    assert rows("SELECT count(*) FROM inbox WHERE status != 'processed'") == [(0,)]
    assert not refused, "a post reached Slack faster than the pace allows"
    assert min(tens) >= 9.5 * pace, "posts went out faster than the pace"
    assert {name for name, count in shown.items() if count == 1} == stuck_names
    assert set(shown) == stuck_names, "an alert went to an order that is not stuck, or one was posted twice"
