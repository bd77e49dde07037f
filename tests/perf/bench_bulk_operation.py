"""Bulk archive two ways at a Standard plan's limits: the batched path (bench_bulk.py's run through the real server)
against Shopify's bulk mutation operation (tests/perf/bulk_mutation.py), for 100, 500 and 2,000 orders.

    cd tests/perf && ../../.venv/bin/python bench_bulk_operation.py [--orders 100 500 2000] [--lines-per-second 20]

The batched path is `bench_bulk.one_run`: a preview, a signed Confirm click, `OrderStates` 14 at a time and one
`orderClose` an order, timed to the run's end. The bulk-operation path, on a fresh sandbox with the same orders and
the same limits (a 2,000-point bucket, full; 100 points a second), makes the same check first (`OrderStates` for
every order; one changed or archived since it was stored is left out), then stages the JSONL file, uploads it,
starts `bulkOperationRunMutation` with ORDER_CLOSE, polls `bulkOperation(id:)` every `--poll` seconds and reads the
result file, timed from the first check to the results read. It goes through the client directly: no Slack, no
store, no audit rows (the batched path's figures include them).

ASSUMPTION: how fast Shopify runs a bulk operation's lines is not documented and cannot be measured offline; the
sandbox runs them at `--lines-per-second`. So the figure that matters is the break-even rate printed for each size:
the bulk path is faster than the batched one only if Shopify runs lines faster than that.

Exits non-zero when an order was not archived by either path.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench_alerts import SHOP
from bench_bulk import STANDARD_BUCKET, STANDARD_RESTORE_RATE, Result, archivable_orders, one_run
from bulk_mutation import run_bulk_mutation

from bot.sandbox.serving import serve
from bot.sandbox.shopify import SandboxShopify
from bot.shopify import operations
from bot.shopify.client import ShopifyClient
from bot.shopify.version import API_VERSION

CONCURRENCY = 4  # the batched path's (bot/flows/bulk.py)


@dataclass
class BulkResult:
    orders: int
    seconds: float
    processing: float  # the operation's time on the (modelled) server side, created to completed
    points: int
    requests: Counter
    archived: int
    all_archived: bool

    @property
    def client_seconds(self) -> float:
        return self.seconds - self.processing


async def bulk_operation_run(count: int, lines_per_second: float, poll_every: float) -> BulkResult:
    now = datetime.now(UTC)
    orders = archivable_orders(count, now)
    stored = {o["id"]: o["updated_at"].replace(microsecond=0) for o in orders}  # Shopify's times are to the second
    shop = SandboxShopify(orders, shop_domain=SHOP, bucket_size=STANDARD_BUCKET, restore_rate=STANDARD_RESTORE_RATE)
    shop.bulk.set_rate(lines_per_second)
    runner, url = await serve(shop.app)
    client = ShopifyClient(graphql_url=f"{url}/admin/api/{API_VERSION}/graphql.json", access_token=shop.access_token)
    try:
        started = time.monotonic()
        states = await client.order_states(list(stored))
        unchanged = [
            order_id
            for order_id, state in states.items()
            if state is not None and state.closed_at is None and state.updated_at == stored[order_id]
        ]
        lines = [(order_id, {"input": {"id": order_id}}) for order_id in unchanged]
        outcome = await run_bulk_mutation(client, operations.ORDER_CLOSE, lines, poll_every=poll_every)
        seconds = time.monotonic() - started
        operation = shop.bulk.by_id[outcome.operation_id]
        archived = sum(1 for result in outcome.results.values() if result is not None and result.ok)
        return BulkResult(
            orders=count,
            seconds=seconds,
            processing=(operation.completed_at - operation.created_at).total_seconds(),
            points=sum(op.actual_cost or 0 for op in shop.operations),
            requests=Counter(f"{op.operation_name}:{op.outcome}" for op in shop.operations),
            archived=archived,
            all_archived=archived == count and all(o["closed_at"] is not None for o in shop.orders.values()),
        )
    finally:
        await client.close()
        await runner.cleanup()


def report(batched: Result, bulk: BulkResult, lines_per_second: float) -> None:
    print(f"{bulk.orders} orders")
    floor = "floor 0 s: within the bucket"
    if batched.floor > 0:
        floor = f"floor {batched.floor:.1f} s, ratio {batched.ratio:.3f}"
    print(
        f"  batched:        {batched.seconds:6.1f} s, {batched.points:6d} points "
        f"({batched.points / batched.orders:.1f} an order), {sum(batched.requests.values())} requests ({floor})"
    )
    print(f"                  {dict(sorted(batched.requests.items()))}")
    print(
        f"  bulk operation: {bulk.seconds:6.1f} s, {bulk.points:6d} points ({bulk.points / bulk.orders:.2f} an order), "
        f"{sum(bulk.requests.values())} requests + 1 upload + 1 result file"
    )
    print(f"                  {dict(sorted(bulk.requests.items()))}")
    print(
        f"    of which server-side processing {bulk.processing:.1f} s (MODELLED: {lines_per_second:g} lines/s), "
        f"client side {bulk.client_seconds:.1f} s"
    )
    spare = batched.seconds - bulk.client_seconds
    even = f"{bulk.orders / spare:.1f} lines/s" if spare > 0 else "none (the client side alone is slower)"
    time_ratio, points_ratio = bulk.seconds / batched.seconds, bulk.points / batched.points
    print(f"  time ratio bulk/batched {time_ratio:.2f}; points ratio {points_ratio:.3f}")
    print(f"  break-even: the bulk operation is faster only if Shopify runs more than {even}")
    print(f"  archived: batched {batched.closed_once}, bulk {bulk.archived}/{bulk.orders}")


async def run(args: argparse.Namespace) -> int:
    ok = True
    with tempfile.TemporaryDirectory() as folder:
        for count in args.orders:
            batched = await one_run(count, CONCURRENCY, Path(folder))
            bulk = await bulk_operation_run(count, args.lines_per_second, args.poll)
            report(batched, bulk, args.lines_per_second)
            ok &= batched.closed_once and bulk.all_archived
    print("PASS" if ok else "FAIL", "(every order archived by both paths)")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, nargs="+", default=[100, 500, 2000])
    parser.add_argument("--lines-per-second", type=float, default=20.0, help="the modelled server-side rate")
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between two status polls")
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
