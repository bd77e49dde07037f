"""Bulk cancel benchmark: cancel 200 orders through the real server against a sandbox Shopify at a Standard plan's
limits, Shopify cancelling each in a background job.

    python tests/perf/bench_bulk_cancel.py [--orders 200] [--job-delay 2]

Everything runs in this process over real HTTP on 127.0.0.1: the real server, the sandbox Shopify and the sandbox
Slack, wired as in bench_bulk.py. The shop holds `--orders` open orders of generate_orders' mix, which orderbot first
learns by one reconciliation (budget lifted). Then the sandbox gets the Standard plan's limits (100 points a second,
a bucket of 2,000), each orderCancel's job runs `--job-delay` seconds after it is queued, and `/orders cancel
#first-#last` is previewed and confirmed with the form's choices (BulkRuns.confirm, as the form's submission calls
it; the form itself is tested end to end in tests/slack/test_bulk_cancel_e2e.py).

Measured: the time until every order is requested (the run is done) and until every cancellation has settled (the
followers, with the product's follow-up: 1 s, doubling to 30 s), the points Shopify charged per order, and the
requests by operation. Exits non-zero when an order was not requested exactly once or did not end cancelled.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from bench_alerts import CHANNEL, SHOP, settings_for
from bench_bulk import ADMIN, STANDARD_BUCKET, STANDARD_RESTORE_RATE, picked_orders, rows, until

from bot.domain.commands import parse
from bot.sandbox.serving import serve
from bot.sandbox.shopify import SandboxShopify
from bot.sandbox.slack import SandboxSlack
from bot.slack.bulk_blocks import BULK_FORM
from bot.web import SERVICE, SLACK, create_app

CHOICES = {"reason": "CUSTOMER", "restock": True, "refund": "original", "notify_customer": False}


async def one_run(count: int, job_delay: float, folder: Path) -> bool:
    orders = picked_orders(count, datetime.now(UTC), lambda order: True)
    shop = SandboxShopify(orders, shop_domain=SHOP, bucket_size=1e9, restore_rate=1e9, max_query_cost=1e9)
    shop_runner, shop_url = await serve(shop.app)
    slack = SandboxSlack()
    await slack.start()
    db_path = folder / f"orderbot-{uuid.uuid4().hex[:8]}.db"
    app = create_app(settings_for(shop, shop_url, slack, db_path), reconcile=False)
    runner, _ = await serve(app)
    try:
        await app[SERVICE].reconcile()
        shop.bucket_size, shop.restore_rate, shop.max_query_cost = STANDARD_BUCKET, STANDARD_RESTORE_RATE, 1000
        shop._available, shop._refilled_at = STANDARD_BUCKET, time.monotonic()
        shop.job_delay = job_delay
        first_op = len(shop.operations)

        command = f"cancel #10000-#{10_000 + count - 1}"
        preview = await app[SLACK].bulk.preview(parse(command), ADMIN, CHANNEL, command)
        run_id = int(
            next(
                e
                for b in preview["blocks"]
                if b["type"] == "actions"
                for e in b["elements"]
                if e["action_id"] == BULK_FORM
            )["value"]
        )
        started = time.monotonic()
        reply = await app[SLACK].bulk.confirm(run_id, ADMIN, CHOICES)
        assert "started" in reply.text, reply.text
        await until(lambda: rows(db_path, "SELECT status FROM bulk_runs WHERE id = ?", (run_id,))[0][0] == "done")
        requested = time.monotonic() - started
        settled_sql = "SELECT count(*) FROM bulk_items WHERE run_id = ? AND settled IS NOT NULL"
        await until(lambda: rows(db_path, settled_sql, (run_id,))[0][0] == count)
        settled = time.monotonic() - started

        during = shop.operations[first_op:]
        points = Counter()
        for op in during:
            points[op.operation_name] += op.actual_cost or 0
        sent = Counter(
            op.variables["orderId"] for op in during if op.operation_name == "OrderCancel" and op.outcome == "ok"
        )
        outcomes = Counter(
            dict(rows(db_path, "SELECT settled, count(*) FROM bulk_items WHERE run_id = ? GROUP BY 1", (run_id,)))
        )
        requests = Counter(f"{op.operation_name}:{op.outcome}" for op in during)
        total = sum(points.values())
        print(f"{count} orders: every one requested after {requested:.1f} s, every one settled after {settled:.1f} s")
        print(f"  points charged {total} ({total / count:.1f} an order); by operation {dict(points.most_common())}")
        print(f"  requests {dict(sorted(requests.items()))}")
        print(f"  settled {dict(outcomes)}")
        ok = sorted(sent) == sorted(o["id"] for o in orders) and set(sent.values()) == {1}
        ok &= outcomes == Counter({"cancelled": count})
        print("PASS" if ok else "FAIL", "(each order requested once, and cancelled)")
        return ok
    finally:
        await runner.cleanup()
        await slack.stop()
        await shop_runner.cleanup()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--job-delay", type=float, default=2.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        return 0 if asyncio.run(one_run(args.orders, args.job_delay, Path(folder))) else 1


if __name__ == "__main__":
    sys.exit(main())
