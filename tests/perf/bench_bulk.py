"""Bulk benchmark: archive 500 orders through the real server against a sandbox Shopify at a Standard plan's limits.

    python tests/perf/bench_bulk.py [--orders 500] [--concurrency 4 ...]

Everything runs in this process over real HTTP on 127.0.0.1: the real server (`create_app(..., reconcile=False)`),
the sandbox Shopify and the sandbox Slack. The shop holds `--orders` open, fully shipped orders (from
`generate_orders`), which orderbot first learns by one reconciliation (with the sandbox's budget lifted, as that is
not what is measured). Then the sandbox gets Shopify's GraphQL Admin limits for the Standard plan — a restore rate of
100 points a second (shopify.dev, "API rate limits") and a bucket of 2,000 points (20 seconds of restore, the ratio
Shopify's throttleStatus shows on every plan) — full, and `/orders archive fulfilled` is previewed, confirmed with a
signed click, and timed until the run is done.

The floor is the cheapest safe way to do the same work, at the plan's restore rate once its bucket is spent: the
mutations' own cost (what the sandbox charged for them during the run), plus the state each order must be checked
against just before it is archived (whether it is archived already, and whether it changed), read in the largest
batches Shopify takes (`nodes(ids:)`, 250 ids) with only those fields (FLOOR_CHECK, costed by the sandbox's own
cost model). Our points an order are everything the sandbox charged during the run. The run must finish within 1.3x
the floor with no failed order. Each `--concurrency` given runs once (a fresh world each); the figures per count
show which is best.

Exits non-zero when an order failed, any was not archived exactly once, or a ratio is above 1.3.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import graphql
from bench_alerts import CHANNEL, SHOP, SIGNING_SECRET, settings_for  # the same sandbox wiring as the alert benchmark

from bot.domain.commands import parse
from bot.sandbox.cost import QueryCost
from bot.sandbox.schema import load_schema
from bot.sandbox.seed import generate_orders
from bot.sandbox.serving import serve
from bot.sandbox.shopify import SandboxShopify
from bot.sandbox.slack import SandboxSlack
from bot.sandbox.slack_payloads import block_actions_body, sign_request
from bot.slack.bulk_blocks import BULK_CONFIRM
from bot.web import SERVICE, SLACK, create_app

ADMIN = "U0ADMIN"  # an admin in bench_alerts.settings_for
STANDARD_RESTORE_RATE = 100.0  # points a second: shopify.dev/docs/api/usage/limits, GraphQL Admin API, Standard
STANDARD_BUCKET = 2000.0  # points: 20 seconds of restore
LIMIT = 1.3
MUTATIONS = {"OrderClose"}  # what the run sends to change an order
MAX_IDS = 250  # Shopify's largest input array, so the largest `nodes(ids:)` batch
# What an archive must know of an order before it acts, and nothing more.
FLOOR_CHECK = """
query FloorCheck($ids: [ID!]!) {
  nodes(ids: $ids) { ... on Order { id closedAt updatedAt } }
}
"""
COMMAND = "archive fulfilled"


@dataclass
class Result:
    concurrency: int
    orders: int
    seconds: float
    floor: float
    points: int
    floor_points: int
    requests: Counter
    items: Counter
    closed_once: bool

    @property
    def ratio(self) -> float:
        return self.seconds / self.floor if self.floor > 0 else float("inf")


def picked_orders(count: int, now: datetime, keep: Callable[[dict], bool], seed: int = 1) -> list[dict]:
    """`count` open orders of generate_orders' mix that `keep` takes, touched in the last hour (so that reconciliation
    reads them), named and numbered apart across seeds."""
    found: list[dict] = []
    while len(found) < count:
        for order in generate_orders(1000, now, seed=seed):
            if order["closed_at"] is None and order["cancelled_at"] is None and keep(order) and len(found) < count:
                order["updated_at"] = now - timedelta(hours=1)
                order["name"] = f"#{10_000 + len(found)}"
                order["id"] = f"gid://shopify/Order/{9_000_000 + len(found)}"
                found.append(order)
        seed += 1
    return found


def archivable_orders(count: int, now: datetime) -> list[dict]:
    """`count` open, fully shipped orders."""
    return picked_orders(count, now, _shipped)


def _shipped(order: dict) -> bool:
    return bool(order["fulfillments"]) and all(fo["status"] == "CLOSED" for fo in order["fulfillment_orders"])


async def until(condition: Callable[[], bool]) -> None:
    while True:
        if condition():
            return
        await asyncio.sleep(0.05)


def rows(db_path: Path, sql: str, params: tuple = ()) -> list[tuple]:
    with closing(sqlite3.connect(db_path)) as conn:
        return conn.execute(sql, params).fetchall()


async def one_run(count: int, concurrency: int, folder: Path) -> Result:
    now = datetime.now(UTC)
    orders = archivable_orders(count, now)
    shop = SandboxShopify(orders, shop_domain=SHOP, bucket_size=1e9, restore_rate=1e9, max_query_cost=1e9)
    shop_runner, shop_url = await serve(shop.app)
    slack = SandboxSlack()
    await slack.start()
    db_path = folder / f"orderbot-{uuid.uuid4().hex[:8]}.db"
    app = create_app(settings_for(shop, shop_url, slack, db_path), reconcile=False)
    app[SLACK].bulk.concurrency = concurrency
    runner, url = await serve(app)
    try:
        await app[SERVICE].reconcile()
        # A Standard plan's limits, the bucket full, from here on.
        shop.bucket_size, shop.restore_rate, shop.max_query_cost = STANDARD_BUCKET, STANDARD_RESTORE_RATE, 1000
        shop._available, shop._refilled_at = STANDARD_BUCKET, time.monotonic()
        first_op = len(shop.operations)

        preview = await app[SLACK].bulk.preview(parse(COMMAND), ADMIN, CHANNEL, COMMAND)
        confirm = next(
            e
            for b in preview["blocks"]
            if b["type"] == "actions"
            for e in b["elements"]
            if e["action_id"] == BULK_CONFIRM
        )
        run_id = int(confirm["value"])
        body = block_actions_body(
            action_id=BULK_CONFIRM,
            user_id=ADMIN,
            channel_id=CHANNEL,
            message_ts="1700000000.000100",
            message={"type": "message", "ts": "1700000000.000100", **preview},
            response_url=slack.response_url(CHANNEL, ADMIN),
        )
        started = time.monotonic()
        headers = sign_request(body, SIGNING_SECRET)
        async with aiohttp.ClientSession() as http, http.post(f"{url}/slack/events", data=body, headers=headers) as r:
            assert r.status == 200, r.status
        await until(lambda: rows(db_path, "SELECT status FROM bulk_runs WHERE id = ?", (run_id,))[0][0] == "done")
        seconds = time.monotonic() - started

        during = shop.operations[first_op:]
        points = sum(op.actual_cost or 0 for op in during)
        mutations = sum(op.actual_cost or 0 for op in during if op.operation_name in MUTATIONS)
        floor_points = mutations + check_cost(len(orders))
        floor = max(floor_points - STANDARD_BUCKET, 0) / STANDARD_RESTORE_RATE
        closes = Counter(op.variables["input"]["id"] for op in during if op.operation_name == "OrderClose")
        items = Counter(
            dict(rows(db_path, "SELECT status, count(*) FROM bulk_items WHERE run_id = ? GROUP BY 1", (run_id,)))
        )
        return Result(
            concurrency=concurrency,
            orders=len(orders),
            seconds=seconds,
            floor=floor,
            points=points,
            floor_points=floor_points,
            requests=Counter(f"{op.operation_name}:{op.outcome}" for op in during),
            items=items,
            closed_once=sorted(closes) == sorted(o["id"] for o in orders) and set(closes.values()) == {1},
        )
    finally:
        await runner.cleanup()
        await slack.stop()
        await shop_runner.cleanup()


def check_cost(count: int) -> int:
    """Points of reading FLOOR_CHECK for `count` orders in batches of MAX_IDS, as the sandbox charges them."""
    schema = load_schema()
    document = graphql.parse(FLOOR_CHECK)
    (operation,) = document.definitions
    total = 0
    for start in range(0, count, MAX_IDS):
        ids = [f"gid://shopify/Order/{n}" for n in range(start, min(start + MAX_IDS, count))]
        total += QueryCost(schema, document, {"ids": ids}).operation(operation)
    return total


def report(result: Result) -> None:
    per_order = result.points / result.orders
    floor_per_order = result.floor_points / result.orders
    print(f"concurrency {result.concurrency}: {result.orders} orders archived in {result.seconds:.1f} s")
    print(
        f"  points charged {result.points} ({per_order:.1f} an order); floor {result.floor_points} "
        f"({floor_per_order:.1f} an order); points ratio {per_order / floor_per_order:.2f}"
    )
    print(
        f"  floor time ({result.floor_points} - {STANDARD_BUCKET:.0f}) / {STANDARD_RESTORE_RATE:.0f} = "
        f"{result.floor:.1f} s; time ratio {result.ratio:.3f}"
    )
    print(f"  items {dict(result.items)}; requests {dict(sorted(result.requests.items()))}")
    print(f"  every order closed exactly once: {result.closed_once}")


async def run(args: argparse.Namespace) -> int:
    ok = True
    with tempfile.TemporaryDirectory() as folder:
        for concurrency in args.concurrency:
            result = await one_run(args.orders, concurrency, Path(folder))
            report(result)
            failed = result.items.get("failed", 0) + result.items.get("skipped", 0) + result.items.get("pending", 0)
            ok &= failed == 0 and result.closed_once and result.ratio <= LIMIT
    print("PASS" if ok else "FAIL", f"(ratio must be <= {LIMIT} with 0 failed orders)")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=500)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[4])
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
