"""Reconciliation at scale: the requests and cost points of each scan of a sandbox shop of 50,000 orders (2,000 open
and not shipped, 45,000 shipped and never archived, 3,000 archived or cancelled) whose webhooks stored every order
over its year (each one not archived stored as open), then of the same shop with 10,000 shipped: a shorter history
at the same 125 shipments a day, to show that the cost follows the open work, not the history.

    python tests/perf/bench_scan.py [--open 2000] [--shipped 45000 10000] [--closed 3000] [--later 4]

Per shop: the first scan (a full sweep), `--later` scans of a quiet shop 15 minutes apart, and the next day's sweep,
each with its requests, requested points, actual points (what Shopify charges, after refunding the difference) and
the seconds those take at the Standard plan's restore rate (100 points a second; shopify.dev, "API rate limits").
The sandbox's budget is lifted so that nothing waits: the points are counted, not waited for.

Baseline, measured in the same run on the same shop and database: the scan as it was before (its two queries at 10
orders a page, then one Order query for each order stored as open that they did not return, on every scan). Its two
queries are run and measured; its per-order re-reads are one measured Order read of such an order times their number
(tens of thousands of requests: run one by one they would take the benchmark hours). Floor: reading the open orders
once, the first query's pages at this version's page size.

Exits non-zero when a later scan takes more than 10 requests, or when a later scan or the sweep costs more for the
longer history.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bot.domain.orders import order_from_webhook
from bot.domain.scan_plan import FULL_SWEEP_EVERY, first_sweep_queries
from bot.flows.service import Service
from bot.sandbox.seed import history
from bot.sandbox.serving import serve
from bot.sandbox.shopify import SandboxShopify
from bot.shopify import operations
from bot.shopify.client import ShopifyClient
from bot.store import Store

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
STANDARD_RESTORE_RATE = 100.0  # points a second
LIFTED = 1e12  # the sandbox's bucket and restore rate: nothing is throttled, nothing waits
BEFORE_PAGE_SIZE = 10  # the page size of the scan before this change
MAX_LATER_REQUESTS = 10


@dataclass
class Cost:
    label: str
    requests: int
    requested: int
    actual: int
    seconds: float  # wall time in this process, the sandbox included
    note: str = ""

    def row(self) -> str:
        standard = self.actual / STANDARD_RESTORE_RATE
        here = "" if self.seconds != self.seconds else f"({self.seconds:5.1f} s here) "  # NaN: computed, not run
        return (
            f"  {self.label:<30} {self.requests:>7,} req {self.requested:>11,} requested {self.actual:>10,} actual"
            f" = {standard:>7,.0f} s of Standard {here}{self.note}"
        )


async def measured(label: str, shop: SandboxShopify, work: Callable[[], Awaitable[object]]) -> tuple[Cost, object]:
    before = len(shop.operations)
    started = time.perf_counter()
    result = await work()
    seconds = time.perf_counter() - started
    done = shop.operations[before:]
    cost = Cost(
        label,
        len(done),
        sum(op.requested_cost or 0 for op in done),
        sum(op.actual_cost or 0 for op in done),
        seconds,
    )
    return cost, result


async def drain(client: ShopifyClient, query: str, page_size: int) -> set[str]:
    return {order.id async for page in client.orders(query, page_size=page_size) for order in page}


async def run_shop(open_orders: int, shipped: int, closed: int, later: int) -> dict[str, Cost]:
    clock = [NOW]
    started = time.perf_counter()
    orders = history(NOW, open_orders=open_orders, shipped=shipped, closed=closed)
    shop = SandboxShopify(bucket_size=LIFTED, restore_rate=LIFTED, now=lambda: clock[0])
    shop.adopt_orders(orders)
    runner, url = await serve(shop.app)
    client = ShopifyClient(graphql_url=f"{url}/admin/api/2026-04/graphql.json", access_token=shop.access_token)
    costs: dict[str, Cost] = {}
    with tempfile.TemporaryDirectory() as directory:
        store = await Store(str(Path(directory) / "bench.db")).open()
        try:
            told = [order_from_webhook(shop.webhook_payload(order["id"])) for order in orders]
            await store.save_orders(told, from_webhook=True)  # what the webhooks stored over the year
            stored_open = {order.id for order in told if not order.closed and not order.cancelled}
            print(
                f"shop: {len(orders):,} orders ({open_orders:,} open and not shipped, {shipped:,} shipped and never"
                f" archived, {closed:,} archived or cancelled), {len(stored_open):,} stored as open by webhooks;"
                f" built in {time.perf_counter() - started:.0f} s"
            )

            # The baseline: the scan before this change, on the same shop and database.
            queries = first_sweep_queries(NOW)
            found: set[str] = set()
            before_queries, _ = await measured("", shop, lambda: _union(client, queries, BEFORE_PAGE_SIZE, found))
            stale = sorted(stored_open - found)
            one_read, _ = await measured("", shop, lambda: client.fetch_order(stale[0] if stale else min(found)))
            costs["baseline"] = Cost(
                "before: every scan",
                before_queries.requests + len(stale) * one_read.requests,
                before_queries.requested + len(stale) * one_read.requested,
                before_queries.actual + len(stale) * one_read.actual,
                float("nan"),
                f"(2 queries: {before_queries.requests} pages; then {len(stale):,} x one Order read of"
                f" {one_read.actual} points)",
            )
            costs["floor"], _ = await measured(
                "floor: the open orders read once", shop, lambda: drain(client, queries[0], operations.ORDERS_PAGE_SIZE)
            )

            service = Service(store, client, now=lambda: clock[0])
            cost, report = await measured("first scan", shop, service.reconcile)
            cost.note = f"({report.kind}: {len(report.classified):,} classified, {len(report.stuck):,} stuck)"
            costs["first"] = cost
            for k in range(1, later + 1):
                clock[0] = NOW + k * timedelta(minutes=15)
                cost, report = await measured(f"later scan {k} (+{15 * k} min)", shop, service.reconcile)
                cost.note = f"({report.kind}: {len(report.classified):,} classified)"
                costs[f"later {k}"] = cost
            clock[0] = NOW + FULL_SWEEP_EVERY
            cost, report = await measured("the next day's sweep", shop, service.reconcile)
            cost.note = f"({report.kind}: {len(report.classified):,} classified)"
            costs["sweep"] = cost
        finally:
            await store.close()
            await client.close()
            await runner.cleanup()
    for cost in costs.values():
        print(cost.row())
    return costs


async def _union(client: ShopifyClient, queries: tuple[str, ...], page_size: int, found: set[str]) -> None:
    for query in queries:
        found |= await drain(client, query, page_size)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--open", type=int, default=2_000)
    parser.add_argument("--shipped", type=int, nargs="+", default=[45_000, 10_000])
    parser.add_argument("--closed", type=int, default=3_000)
    parser.add_argument("--later", type=int, default=4)
    args = parser.parse_args()
    results = {}
    for shipped in args.shipped:
        results[shipped] = await run_shop(args.open, shipped, args.closed, args.later)
        print()
    failures = []
    for shipped, costs in results.items():
        for label, cost in costs.items():
            if label.startswith("later") and cost.requests > MAX_LATER_REQUESTS:
                failures.append(f"{shipped:,} shipped: {label} took {cost.requests} requests")
    longest, shortest = max(results), min(results)
    for label in results[longest]:
        if label.startswith("later") or label == "sweep":
            more, fewer = results[longest][label], results[shortest][label]
            print(
                f"{label}: {more.requests} requests / {more.actual:,} points with {longest:,} shipped,"
                f" {fewer.requests} / {fewer.actual:,} with {shortest:,}"
            )
            if more.requests > fewer.requests or more.actual > fewer.actual:
                failures.append(f"{label} costs more with {longest:,} shipped than with {shortest:,}")
    for failure in failures:
        print(f"FAIL: {failure}")
    print("PASS" if not failures else "FAIL")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
