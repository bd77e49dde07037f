"""Daily digest benchmark: build the digest from a database of 100,000 orders (with their verdicts, a realistic share
stuck), 1,000,000 audit rows over 30 days, 300,000 webhook deliveries and 30 days of resolutions and digests, against
a baseline measured in the same run on the same database: a bare `SELECT count(*) FROM audit`.

    python tests/perf/bench_digest.py [--orders 100000] [--audit 1000000] [--runs 7] [--limit 1.0]

Prints the time of each run (min and median), the baseline's, and what each of the digest's queries costs alone.
Exits non-zero when the median digest takes longer than --limit seconds. The database is built once in a temporary
directory (executemany in one transaction per table) and deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bot.domain.digest import ARCHIVE_AFTER, WINDOW
from bot.domain.orders import Fulfillment, Money, Order, Tracking, order_to_record
from bot.domain.rules import REASONS
from bot.flows.digests import build_digest_from
from bot.store import Store
from bot.store import digests as queries

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
DAYS = 30
STUCK_SHARE = 0.08  # of all orders: most orders ship; an open, stuck one lingers
OPEN_SHARE = 0.30
ACTORS = [f"U0STAFF{n:02d}" for n in range(12)]
ACTIONS = ("fulfill", "archive", "notify_customer", "release_hold", "request_fulfillment", "snooze", "cancel_order")
OUTCOMES = ("done",) * 17 + ("already", "failed", "refused")


def iso(moment: datetime) -> str:
    return moment.isoformat()


def build_orders(count: int, rng: random.Random) -> tuple[list[tuple], list[tuple]]:
    """(orders rows, verdicts rows)."""
    orders, verdicts = [], []
    for i in range(count):
        created = NOW - timedelta(minutes=rng.randrange(0, 90 * 24 * 60))
        is_open = rng.random() < OPEN_SHARE
        shipped = rng.random() < (0.45 if is_open else 0.95)
        fulfillments = ()
        if shipped:
            at = created + (NOW - created) * rng.random()
            fulfillments = (
                Fulfillment(f"gid://shopify/Fulfillment/{i}", "SUCCESS", at, at, (Tracking("1Z9", "UPS", None),)),
            )
        order = Order(
            id=f"gid://shopify/Order/{i}",
            name=f"#{1000 + i}",
            created_at=created,
            updated_at=created,
            financial_status="PAID",
            fulfillment_status="FULFILLED" if shipped else "UNFULFILLED",
            total=Money("42.00", "USD"),
            closed_at=None if is_open else created + timedelta(days=5),
            fulfillments=fulfillments,
            fulfillment_orders=(),
        )
        record = json.dumps(order_to_record(order))
        orders.append(
            (
                order.id,
                order.name,
                created.timestamp(),
                created.timestamp(),
                int(is_open),
                order.fulfillment_status,
                None,
                record,
                iso(created),
                iso(NOW),
                1,
            )
        )
        stuck = is_open and not shipped and rng.random() < STUCK_SHARE / (OPEN_SHARE * 0.55)
        reason = rng.choice(REASONS) if stuck else None
        since = created + timedelta(hours=rng.randrange(0, 48)) if stuck else None
        verdicts.append(
            (
                order.id,
                reason or ("waiting" if is_open else "closed"),
                int(stuck),
                reason,
                "warning" if stuck else "info",
                iso(since) if since else None,
                None,
                "",
                "[]",
                "[]",
                iso(NOW),
                iso(since) if since else None,
                "webhook" if stuck else None,
            )
        )
    return orders, verdicts


def build_audit(count: int, rng: random.Random, order_count: int) -> list[tuple]:
    rows = []
    span = DAYS * 86400
    for _ in range(count):
        at = NOW - timedelta(seconds=rng.random() * span)
        rows.append(
            (
                iso(at),
                rng.choice(ACTORS),
                rng.choice(ACTIONS),
                f"gid://shopify/Order/{rng.randrange(order_count)}",
                "{}",
                rng.choice(OUTCOMES),
                None,
                rng.uniform(100, 900),
                "C0ORDERS",
                "1700000000.000100",
            )
        )
    return rows


def populate(path: str, *, orders: int, audit: int, deliveries: int, seed: int = 1) -> dict[str, int]:
    rng = random.Random(seed)
    order_rows, verdict_rows = build_orders(orders, rng)
    audit_rows = build_audit(audit, rng, orders)
    inbox_rows = [
        (
            f"wh-{n}",
            f"ev-{n}",
            "orders/updated",
            "shop",
            None,
            f"body-{n}",
            None,
            iso(NOW - timedelta(seconds=rng.random() * DAYS * 86400)),
            "processed",
            1,
        )
        for n in range(deliveries)
    ]
    resolution_rows = []
    for n in range(DAYS * 300):
        resolved = NOW - timedelta(seconds=rng.random() * DAYS * 86400)
        resolution_rows.append(
            (
                f"gid://shopify/Order/{n}",
                rng.choice(REASONS),
                iso(resolved - timedelta(hours=rng.uniform(1, 120))),
                iso(resolved),
            )
        )
    counters = [
        ((NOW - timedelta(days=d)).date().isoformat(), name, rng.randrange(0, 40))
        for d in range(DAYS)
        for name in ("webhooks_duplicate", "stuck_found_by_reconcile")
    ]
    digests = []
    for d in range(1, DAYS):
        day = NOW - timedelta(days=d)
        counts = json.dumps({r: rng.randrange(50, 1500) for r in REASONS})
        digests.append((day.date().isoformat(), iso(day), iso(day), "C0ORDERS", f"{day.timestamp():.6f}", counts))
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO orders (id, name, updated_ts, created_ts, is_open, fulfillment_status, customer_email, record,"
        " first_seen_at, last_seen_at, webhook_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        order_rows,
    )
    conn.executemany(
        "INSERT INTO verdicts (order_id, status, stuck, reason, severity, since, due_at, explanation, next_steps,"
        " actions, classified_at, stuck_since_seen, found_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        verdict_rows,
    )
    conn.executemany(
        "INSERT INTO audit (at, actor, action, order_id, inputs, outcome, error, duration_ms, channel, ts)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        audit_rows,
    )
    conn.executemany(
        "INSERT INTO inbox (webhook_id, event_id, topic, shop, triggered_at, body_key, body, received_at, status,"
        " attempts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        inbox_rows,
    )
    conn.executemany(
        "INSERT INTO resolutions (order_id, reason, stuck_since, resolved_at) VALUES (?, ?, ?, ?)", resolution_rows
    )
    conn.executemany("INSERT INTO counters (day, name, value) VALUES (?, ?, ?)", counters)
    conn.executemany(
        "INSERT INTO digests (day, claimed_at, posted_at, channel, ts, counts) VALUES (?, ?, ?, ?, ?, ?)", digests
    )
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()
    return {
        "orders": len(order_rows),
        "stuck": sum(v[2] for v in verdict_rows),
        "audit": len(audit_rows),
        "deliveries": len(inbox_rows),
        "resolutions": len(resolution_rows),
    }


async def timed(runs: int, work: Callable[[], Awaitable[object]]) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await work()
        times.append(time.perf_counter() - started)
    return times


def show(label: str, times: list[float]) -> None:
    print(f"  {label:<44} min {min(times) * 1000:8.1f} ms   median {statistics.median(times) * 1000:8.1f} ms")


# Each query of the digest alone: (db, since as ISO text, archive cut-off) -> its result.
PARTS: dict[str, Callable[[Any, str, datetime], object]] = {
    "stuck by reason": lambda db, since, before: queries.stuck_counts(db),
    "change since the last digest": lambda db, since, before: queries.last_digest_counts(db),
    "ten stuck longest": lambda db, since, before: queries.oldest_stuck(db),
    "team activity (audit, 24 h)": lambda db, since, before: queries.audit_counts(db, since),
    "resolutions (24 h)": lambda db, since, before: queries.resolve_times(db, since),
    "webhook health (24 h)": lambda db, since, before: queries.webhook_health(db, since),
    "archive candidates": lambda db, since, before: queries.archive_candidates(db, before),
}


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--audit", type=int, default=1_000_000)
    parser.add_argument("--deliveries", type=int, default=300_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--limit", type=float, default=1.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        path = str(Path(directory) / "bench.db")
        await (await Store(path).open()).close()  # the schema, by the migrations
        started = time.perf_counter()
        sizes = populate(path, orders=args.orders, audit=args.audit, deliveries=args.deliveries)
        built = time.perf_counter() - started
        megabytes = Path(path).stat().st_size / 1e6
        contents = ", ".join(f"{v:,} {k}" for k, v in sizes.items())
        print(f"database: {contents}; {megabytes:.0f} MB, built in {built:.1f} s")
        store = await Store(path).open()
        try:
            baseline = await timed(
                args.runs, lambda: store.read(lambda db: db.execute("SELECT count(*) FROM audit").fetchone())
            )
            digest_times = await timed(
                args.runs, lambda: build_digest_from(store, now=NOW, zone=UTC, shop="bench.myshopify.com")
            )
            digest = await build_digest_from(store, now=NOW, zone=UTC, shop="bench.myshopify.com")
            since, before = (NOW - WINDOW).isoformat(), NOW - ARCHIVE_AFTER
            parts = {
                label: await timed(args.runs, lambda part=part: store.read(lambda db: part(db, since, before)))
                for label, part in PARTS.items()
            }
        finally:
            await store.close()
    print(f"\nbuilding the digest ({args.runs} runs):")
    show("digest (every query + building it)", digest_times)
    show("baseline: SELECT count(*) FROM audit", baseline)
    print("each query alone:")
    for label, times in parts.items():
        show(label, times)
    median = statistics.median(digest_times)
    print(f"\nratio to the baseline (medians): {median / statistics.median(baseline):.2f}")
    print(
        f"the digest: {digest.total_stuck:,} stuck in {len(digest.stuck)} reasons, {digest.team.done:,} actions done by"
        f" {len(digest.team.by_person)} people, {digest.resolved} resolved, {digest.webhooks.received:,} deliveries,"
        f" suggestion: {digest.suggestion.label if digest.suggestion else 'none'}"
    )
    verdict = "PASS" if median < args.limit else "FAIL"
    print(f"{verdict}: median {median:.3f} s against a limit of {args.limit:.1f} s")
    return 0 if median < args.limit else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
