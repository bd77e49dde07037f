"""Alert benchmark: from a Shopify webhook to the Slack alert, through the real server and the sandboxes.

    python tests/perf/bench_alerts.py [--quick] [--orders 50] [--spacing 1.2] [--no-pace] [--burst 200]
                                      [--only latency|burst]

Everything runs in this process over real HTTP on 127.0.0.1: the real server (`create_app(..., reconcile=False)`),
the sandbox Shopify (GraphQL over `generate_orders`) and the sandbox Slack with its one-post-a-second-per-channel
limit (a second chat.postMessage to a channel within 1 s answers 429). Only orders that are stuck (classified from
one GraphQL read each, before the server starts) are sent, so that every webhook should give exactly one alert.

1. Latency: N stuck orders' `orders/updated` webhooks, one every `--spacing` seconds (longer than the outbox's pace of
   one post a second per channel, so that pacing does not add to the figure; `--no-pace` sets the pace to 0, and
   turns the sandbox's limit off, for a latency-only run). Measured from just before each webhook POST to the
   arrival of its chat.postMessage at the sandbox: p50/p95/max. Compared, in the same run, with the webhook's 200
   alone, one `Order` GraphQL read and one chat.postMessage round trip against the sandboxes (the pipeline makes one
   of each per stuck order), and split into stages from the database's timestamps (stored, processed and queued,
   posted). The first webhook is sent once the process's startup hold is over (every channel waits one pace before
   its first post after a start, `ChannelPacer.hold_all`): that one-off wait is printed apart, not mixed into the
   figures, where it would delay the first alert by a pace and the next few while the queue catches up.
2. Burst: `--burst` stuck orders' webhooks all at once (concurrently), default pace. Reports the time until every
   alert is posted against the floor of (n - 1) s at one post a second, the gaps between consecutive posts, the 429s
   (should be 0), the alerts per order (must be exactly 1, in Slack and in the `alerts` table) and the webhook answer
   times during the burst (all clients connect at once: beyond the listen queue of 128 that aiohttp asks for, the
   kernel drops SYNs and those clients retry after about 1 s; the count is printed on Linux). About 3.5 minutes for
   200 orders (4.5 in all with the latency run); `--quick` runs 10 and 20 orders.

Exits non-zero when an alert is missing or posted twice, a webhook is not answered 200, or Slack answered 429.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings
from bot.domain.rules import Policy, classify
from bot.sandbox.seed import generate_orders
from bot.sandbox.serving import serve
from bot.sandbox.shopify import SandboxShopify
from bot.sandbox.shopify_payloads import webhook_headers
from bot.sandbox.slack import SandboxSlack
from bot.shopify.client import ShopifyClient
from bot.web import SLACK, create_app

# As in tests/conftest.py (which is not importable from a script).
WEBHOOK_SECRET = "whsec-test-0123456789abcdef"
SHOP = "orderbot-demo.myshopify.com"
SIGNING_SECRET = "slack-signing-secret-for-tests"
CHANNEL = "C0ORDERS"
SPARE_CHANNEL = "C0BENCH"  # for the baseline chat.postMessage round trips, apart from the alerts
API_VERSION = "2026-04"


# --- the world: sandbox Shopify, sandbox Slack and the real server ------------------------------------------------


@dataclass
class World:
    shop: SandboxShopify
    slack: SandboxSlack
    app: object
    url: str
    shop_url: str
    db_path: Path
    http: aiohttp.ClientSession

    def rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        with closing(sqlite3.connect(self.db_path)) as conn:
            return conn.execute(sql, params).fetchall()

    def posts(self, status: int | None = 200) -> list:
        """chat.postMessage calls to the alert channel (those answered `status`; None: all)."""
        return [
            c
            for c in self.slack.calls_to("chat.postMessage")
            if c.args.get("channel") == CHANNEL and (status is None or c.status == status)
        ]

    def order_ops(self) -> int:
        return sum(1 for op in self.shop.operations if op.operation_name == "Order")

    async def post_webhook(self, order_id: str, webhook_id: str) -> tuple[int, float]:
        """One signed `orders/updated` delivery of the order as the sandbox has it: (status, seconds to answer)."""
        body = json.dumps(self.shop.webhook_payload(order_id)).encode()
        headers = webhook_headers(
            body,
            topic="orders/updated",
            secret=WEBHOOK_SECRET,
            shop=SHOP,
            api_version=API_VERSION,
            webhook_id=webhook_id,
        )
        start = time.perf_counter()
        async with self.http.post(f"{self.url}/shopify/webhooks", data=body, headers=headers) as response:
            await response.read()
        return response.status, time.perf_counter() - start


def settings_for(shop: SandboxShopify, shop_url: str, slack: SandboxSlack, db_path: Path) -> Settings:
    return Settings(
        shopify_shop=SHOP,
        shopify_access_token=shop.access_token,
        shopify_client_secret=WEBHOOK_SECRET,
        shopify_api_url=shop_url,
        database_path=str(db_path),
        slack_bot_token=slack.bot_token,
        slack_signing_secret=SIGNING_SECRET,
        slack_channel_id=CHANNEL,
        slack_admins=("U0ADMIN",),
        slack_api_url=slack.api_url,
    )


@asynccontextmanager
async def running_world(orders: list[dict], folder: Path, *, pace: float | None = None) -> AsyncIterator[World]:
    """The sandboxes and the server; `pace` replaces the outbox's (and with 0, the sandbox Slack's limit is off)."""
    shop = SandboxShopify(orders, shop_domain=SHOP)
    shop_runner, shop_url = await serve(shop.app)
    slack = SandboxSlack(channel_rate_limit=pace != 0, channels={CHANNEL: "orders", SPARE_CHANNEL: "bench"})
    await slack.start()
    db_path = folder / f"orderbot-{uuid.uuid4().hex[:8]}.db"
    app = create_app(settings_for(shop, shop_url, slack, db_path), reconcile=False)
    if pace is not None:
        app[SLACK].outbox.pacer.pace = pace
    runner, url = await serve(app)
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            async with http.get(f"{url}/healthz") as response:  # the client's connection is open, as Shopify's is
                await response.read()
            yield World(shop, slack, app, url, shop_url, db_path, http)
    finally:
        await runner.cleanup()
        await slack.stop()
        await shop_runner.cleanup()


async def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        await asyncio.sleep(0.005)


# --- choosing stuck orders ------------------------------------------------------------------------------------------


async def stuck_orders(want: int, now: datetime) -> tuple[list[dict], list[str], int]:
    """Generated orders (enough for `want` stuck ones), and the ids of the stuck ones, classified as the server
    would from one GraphQL read each (on a sandbox of their own, so that the benchmark's bucket starts full)."""
    count = max(want * 3, 50)
    while True:
        orders = generate_orders(count, now, seed=1)
        shop = SandboxShopify(orders, shop_domain=SHOP, bucket_size=1e9, restore_rate=1e9)
        runner, url = await serve(shop.app)
        client = ShopifyClient(
            graphql_url=f"{url}/admin/api/{API_VERSION}/graphql.json", access_token=shop.access_token
        )
        try:
            stuck = []
            for order_id in shop.orders:
                order = await client.fetch_order(order_id)
                if order is not None and classify(order, now, Policy()).stuck:
                    stuck.append(order_id)
        finally:
            await client.close()
            await runner.cleanup()
        if len(stuck) >= want:
            return orders, stuck, count
        count *= 2


# --- figures ------------------------------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p * len(ordered)) - 1)]


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:8.1f} {percentile(values, 0.95) * 1000:8.1f} {max(values) * 1000:8.1f}"


def listen_overflows() -> int | None:
    """Connections the kernel refused because a listen queue was full (Linux, machine-wide; None elsewhere): the
    client then retries its SYN after about 1 s, so a webhook answer just over 1 s points here."""
    try:
        head, values = Path("/proc/net/netstat").read_text().splitlines()[:2]
        return int(values.split()[head.split().index("ListenOverflows")])
    except (OSError, ValueError):
        return None


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


@dataclass
class Checks:
    problems: list[str] = field(default_factory=list)

    def expect(self, ok: bool, problem: str) -> None:
        if not ok:
            self.problems.append(problem)


def check_one_alert_each(world: World, order_ids: list[str], checks: Checks) -> tuple[int, int]:
    """Alerts per order in Slack and in the `alerts` table; returns (orders with exactly one, with more than one)."""
    names = {world.shop.orders[i]["name"]: i for i in order_ids}
    shown = Counter(m["text"].split(" ", 1)[0] for m in world.slack.messages(CHANNEL))
    stored = dict(world.rows("SELECT order_id, count(*) FROM alerts WHERE ts IS NOT NULL GROUP BY order_id"))
    sent = dict(world.rows("SELECT order_id, count(*) FROM outbox WHERE kind = 'alert' GROUP BY order_id"))
    exactly_one = sum(1 for name, i in names.items() if shown[name] == 1 and stored.get(i) == 1 and sent.get(i) == 1)
    twice = sum(1 for name in names if shown[name] > 1)
    checks.expect(exactly_one == len(names), f"{len(names) - exactly_one} orders have not exactly one alert")
    checks.expect(twice == 0, f"{twice} orders were alerted more than once")
    extra = set(shown) - set(names)
    checks.expect(not extra, f"alerts for orders that were not sent: {sorted(extra)[:5]}")
    return exactly_one, twice


# --- 1. latency -------------------------------------------------------------------------------------------------


async def baseline_reads(world: World, order_ids: list[str]) -> tuple[list[float], list[float]]:
    """One `Order` GraphQL read per order, and as many chat.postMessage round trips, against the same sandboxes."""
    client = ShopifyClient(
        graphql_url=f"{world.shop_url}/admin/api/{API_VERSION}/graphql.json", access_token=world.shop.access_token
    )
    slack = AsyncWebClient(token=world.slack.bot_token, base_url=world.slack.api_url)
    fetches, posts = [], []
    try:
        await client.fetch_order(order_ids[0])  # the connection is open, as the server's is
        for order_id in order_ids:
            start = time.perf_counter()
            await client.fetch_order(order_id)
            fetches.append(time.perf_counter() - start)
        world.slack.channel_rate_limit = False  # the bot's posts are done; this one is no test of pacing
        await slack.chat_postMessage(channel=SPARE_CHANNEL, text="warm-up")
        for _ in order_ids:
            start = time.perf_counter()
            await slack.chat_postMessage(channel=SPARE_CHANNEL, text="baseline", blocks=[])
            posts.append(time.perf_counter() - start)
    finally:
        await client.close()
    return fetches, posts


async def latency(orders: list[dict], order_ids: list[str], spacing: float, no_pace: bool, folder: Path) -> Checks:
    checks = Checks()
    async with running_world(orders, folder, pace=0.0 if no_pace else None) as world:
        await wait_for(lambda: world.shop.operations, 10, "the server asks Shopify for the shop's name at start")
        # At start every channel waits one pace before its first post (the process before may have posted just
        # before it stopped: ChannelPacer.hold_all). That hold is paid once per process; measured inside the run it
        # delays the first alert by the pace and, at one post a pace, the next few while the queue catches up.
        pacer = world.app[SLACK].outbox.pacer
        startup_hold = max(0.0, pacer.free_at(CHANNEL) - pacer.clock())
        await asyncio.sleep(startup_hold)
        answers, totals = [], []
        sent_at: dict[str, float] = {}
        webhook_ids: dict[str, str] = {}
        for order_id in order_ids:
            name = world.shop.orders[order_id]["name"]
            webhook_ids[order_id] = f"bench-latency-{uuid.uuid4()}"
            seen = len(world.slack.calls)
            start = time.time()
            status, answered = await world.post_webhook(order_id, webhook_ids[order_id])
            checks.expect(status == 200, f"webhook for {name} answered {status}")
            answers.append(answered)
            sent_at[order_id] = start

            def posted(seen: int = seen, name: str = name) -> bool:
                return any(
                    c.method == "chat.postMessage" and c.status == 200 and c.args.get("text", "").startswith(name + " ")
                    for c in world.slack.calls[seen:]
                )

            await wait_for(posted, 60, f"the alert of {name}")
            call = next(c for c in world.posts() if c.args["text"].startswith(name + " "))
            totals.append(call.at - start)
            await asyncio.sleep(max(0.0, start + spacing - time.time()))
        await asyncio.sleep(2.0)  # anything posted twice would come now
        order_reads = world.order_ops()
        exactly_one, _ = check_one_alert_each(world, order_ids, checks)
        rate_limited = len(world.posts(429))
        checks.expect(rate_limited == 0, f"Slack answered 429 {rate_limited} times")

        # Stages, from the database's own timestamps.
        stored, processed, queued_to_post = [], [], []
        arrivals = {c.args["text"].split(" ", 1)[0]: c.at for c in world.posts()}
        for order_id in order_ids:
            ((received, done),) = world.rows(
                "SELECT received_at, processed_at FROM inbox WHERE webhook_id = ?", (webhook_ids[order_id],)
            )
            ((created,),) = world.rows(
                "SELECT created_at FROM outbox WHERE order_id = ? AND kind = 'alert'", (order_id,)
            )
            stored.append(epoch(received) - sent_at[order_id])
            processed.append(epoch(done) - epoch(received))
            queued_to_post.append(arrivals[world.shop.orders[order_id]["name"]] - epoch(created))
        fetches, slack_posts = await baseline_reads(world, order_ids)

    pace = "pace 0 and no channel limit at Slack (latency only)" if no_pace else "default pace 1 s per channel"
    print(f"\n1. webhook -> chat.postMessage: {len(order_ids)} stuck orders, one every {spacing} s, {pace}")
    print(f"   (the first post of the process waits {startup_hold:.2f} s more, once: waited out before measuring)")
    print(f"   {'':<52} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    print(f"   {'webhook POST -> chat.postMessage arrives at Slack':<52} {ms(totals)}")
    print(f"   {'baseline: webhook POST -> its 200':<52} {ms(answers)}")
    print(f"   {'baseline: one Order GraphQL read (ShopifyClient)':<52} {ms(fetches)}")
    print(f"   {'baseline: one chat.postMessage round trip (slack_sdk)':<52} {ms(slack_posts)}")
    print("   stages (database timestamps):")
    print(f"   {'  POST -> delivery stored (received_at)':<52} {ms(stored)}")
    print(f"   {'  stored -> processed, alert queued (one commit)':<52} {ms(processed)}")
    print(f"   {'  queued -> chat.postMessage arrives':<52} {ms(queued_to_post)}")
    print(
        f"   Order reads by the server: {order_reads} for {len(order_ids)} orders; "
        f"alerts: exactly one for {exactly_one}/{len(order_ids)}; 429s: {rate_limited}; "
        f"webhook answers over 1 s: {sum(a > 1 for a in answers)}"
    )
    return checks


# --- 2. burst -----------------------------------------------------------------------------------------------------


async def burst(orders: list[dict], order_ids: list[str], folder: Path) -> Checks:
    checks = Checks()
    async with running_world(orders, folder) as world:
        await wait_for(lambda: world.shop.operations, 10, "the server asks Shopify for the shop's name at start")
        pace = world.app[SLACK].outbox.pacer.pace
        overflows_before = listen_overflows()
        start = time.time()
        results = await asyncio.gather(*(world.post_webhook(i, f"bench-burst-{uuid.uuid4()}") for i in order_ids))
        burst_seconds = time.time() - start
        overflows = listen_overflows()
        overflowed = overflows - overflows_before if overflows is not None and overflows_before is not None else None
        answers = [seconds for _, seconds in results]
        not_ok = [status for status, _ in results if status != 200]
        checks.expect(not not_ok, f"{len(not_ok)} webhooks not answered 200: {Counter(not_ok)}")
        floor = (len(order_ids) - 1) * pace
        print(
            f"\n2. burst: {len(order_ids)} stuck orders' webhooks sent at once, answered in {burst_seconds:.2f} s; "
            f"waiting for the alerts (floor {floor:.0f} s)...",
            flush=True,
        )
        reported = 0.0
        while len(world.posts()) < len(order_ids):
            await asyncio.sleep(0.05)
            if time.time() - start > floor * 2 + 60:
                checks.problems.append(f"only {len(world.posts())} of {len(order_ids)} alerts after {floor * 2 + 60} s")
                break
            if time.time() - start - reported >= 30:
                reported = time.time() - start
                print(f"   {reported:4.0f} s: {len(world.posts())} posted", flush=True)
        await asyncio.sleep(2 * pace + 0.5)  # anything posted twice would come now
        processing = world.rows("SELECT min(received_at), max(processed_at) FROM inbox")[0]
        order_reads = world.order_ops()
        throttled = sum(1 for op in world.shop.operations if op.outcome == "throttled")
        read_cost = sum(op.actual_cost or 0 for op in world.shop.operations if op.operation_name == "Order")
        bucket = f"a bucket of {world.shop.bucket_size:,.0f} restoring {world.shop.restore_rate:,.0f}/s"
        posts = world.posts()
        attempts = world.posts(None)
        rate_limited = len(world.posts(429))
        checks.expect(rate_limited == 0, f"Slack answered 429 {rate_limited} times")
        exactly_one, twice = check_one_alert_each(world, order_ids, checks)
        alert_rows = world.rows("SELECT count(*) FROM alerts WHERE ts IS NOT NULL")[0][0]

    total = posts[-1].at - start if posts else float("nan")
    span = posts[-1].at - posts[0].at if posts else float("nan")
    gaps = [b.at - a.at for a, b in itertools.pairwise(posts)]
    attempt_gaps = [b.at - a.at for a, b in itertools.pairwise(attempts)]
    print(f"   {'alerts posted':<48} {len(posts)} of {len(order_ids)} (chat.postMessage calls: {len(attempts)})")
    first = posts[0].at - start if posts else float("nan")
    print(f"   {'time from the burst to the last alert':<48} {total:.1f} s (first alert after {first:.2f} s)")
    print(f"   {'first -> last alert':<48} {span:.1f} s")
    print(f"   {'floor: (n - 1) x pace':<48} {floor:.0f} s (pace {pace:g} s)")
    print(f"   {'ratio actual / floor':<48} {total / floor:.3f} (first -> last: {span / floor:.3f})")
    if gaps:
        print(
            f"   {'gap between consecutive posts':<48} min {min(gaps):.3f} s, median {statistics.median(gaps):.3f} s, "
            f"max {max(gaps):.3f} s (between any two calls: min {min(attempt_gaps):.3f} s)"
        )
    print(f"   {'429s from Slack':<48} {rate_limited}")
    print(
        f"   {'alerts per order':<48} exactly 1 for {exactly_one}/{len(order_ids)} (Slack, alerts and outbox tables); "
        f"more than 1 for {twice}; alerts rows with a ts: {alert_rows}"
    )
    print(
        f"   {'webhook answers during the burst':<48} p50 {statistics.median(answers) * 1000:.1f} ms, "
        f"p95 {percentile(answers, 0.95) * 1000:.1f} ms, max {max(answers) * 1000:.1f} ms; "
        f"over 1 s: {sum(a > 1 for a in answers)}"
    )
    if overflowed is not None:
        print(f"   {'listen queue overflows (SYNs dropped)':<48} {overflowed} (such a client retries after ~1 s)")
    if processing[0] and processing[1]:
        print(
            f"   {'deliveries stored -> all processed':<48} {epoch(processing[1]) - epoch(processing[0]):.2f} s "
            f"({order_reads} Order reads costing {read_cost:,} points against {bucket}; "
            f"answered THROTTLED: {throttled})"
        )
    return checks


# --- main ---------------------------------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> int:
    want = max(args.orders if args.only != "burst" else 0, args.burst if args.only != "latency" else 0)
    now = datetime.now(UTC)
    started = time.perf_counter()
    orders, stuck, generated = await stuck_orders(want, now)
    print(
        f"orders: generate_orders({generated}, seed=1): {len(stuck)} stuck by one GraphQL read each "
        f"({time.perf_counter() - started:.1f} s to find them)"
    )
    checks = Checks()
    with tempfile.TemporaryDirectory() as tmp:
        if args.only != "burst":
            checks.problems += (
                await latency(orders, stuck[: args.orders], args.spacing, args.no_pace, Path(tmp))
            ).problems
        if args.only != "latency":
            checks.problems += (await burst(orders, stuck[: args.burst], Path(tmp))).problems
    if checks.problems:
        print("\nFAIL: " + "; ".join(checks.problems))
        return 1
    print("\nOK: one alert per order, every webhook answered 200, no 429 from Slack")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=50, help="stuck orders in the latency run")
    parser.add_argument("--spacing", type=float, default=1.2, help="seconds between webhooks in the latency run")
    parser.add_argument("--no-pace", action="store_true", help="latency run with the outbox's pace set to 0")
    parser.add_argument("--burst", type=int, default=200, help="stuck orders in the burst")
    parser.add_argument("--only", choices=("latency", "burst"), help="run one of the two")
    parser.add_argument("--quick", action="store_true", help="10 orders for the latency, 20 for the burst")
    args = parser.parse_args()
    if args.orders < 1 or args.burst < 2:
        parser.error("--orders must be at least 1 and --burst at least 2")
    if args.quick:
        args.orders, args.burst = min(args.orders, 10), min(args.burst, 20)
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
