"""Retention benchmark: a simulated year of a busy shop, written in bulk into a database made before pruning existed,
then upgraded (the one-time VACUUM that switches it to incremental vacuum) and pruned to the default windows (30 days
of history, 400 days of audit) by the server's own Pruner, while the event loop is watched.

    python tests/perf/bench_retention.py [--full] [--deliveries N] [--seed S] [--baseline-seconds 5] [--limit-ms 50]

The default is a quarter of the deliveries of `--full` (2,000,000 deliveries, 200,000 audit rows, 200,000 orders,
300,000 outbox messages, a scan every 15 minutes, resolutions, counters, digests and bulk runs), spread over the
same 365 days. Rows are as the server leaves them: a processed delivery keeps its ids and times and no body (see
Store.finish_deliveries), a failed one the fields orderbot reads; a sent message keeps `{}`.

Printed: the file's size before, after the upgrade and after pruning, per table; how long the upgrade and the
pruning took; and the worst and 99th percentile of three probes while pruning ran, against the same probes over a
baseline with no pruning, in the same run: a ticker on the loop (lateness of a 10 ms sleep); a webhook ingest (one
`Store.add_deliveries` every 20 ms: its durable commit, an fsync, so it also shows the disk's own stalls); and a
thread that takes the store's write lock every millisecond and keeps the waits no ingest commit overlapped (how long
the database thread, a pruning step, keeps a webhook's commit or a click's write waiting, whatever the disk's fsync
takes; a probe's own commit holds the lock through its fsync). Exits non-zero when the ticker or that write-lock wait
while pruning exceeds --limit-ms; the ingest's figures are printed beside their baseline, as the disk sets them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import sqlite_utils

from bot.domain.orders import (
    Customer,
    Fulfillment,
    FulfillmentOrder,
    FulfillmentOrderLine,
    Money,
    Order,
    Tracking,
    fields_read,
    order_to_record,
)
from bot.domain.retention import Retention
from bot.flows.retention import Pruner
from bot.store import Delivery, Store, connect
from bot.store.schema import _m6_retention
from tests.old_schema import migrate_to_before

NOW = datetime(2027, 12, 1, 9, 0, tzinfo=UTC)
YEAR = timedelta(days=365)
SHOP = "busy-shop.myshopify.com"
TOPICS = ("orders/create", "orders/updated", "orders/paid", "fulfillments/create", "fulfillment_orders/hold_released")


def iso(moment: datetime) -> str:
    return moment.isoformat()


class Year:
    """Row generators for a year ending at NOW, in proportion to `deliveries`."""

    def __init__(self, deliveries: int, rng: random.Random):
        self.rng = rng
        self.deliveries = deliveries
        self.orders = deliveries // 10
        self.audit = deliveries // 10
        self.outbox = deliveries * 3 // 20

    def moment(self, index: int, count: int) -> datetime:
        """Spread `count` rows evenly over the year, oldest first (ids grow with time, as they do)."""
        return NOW - YEAR + YEAR * (index / count)

    def uuid(self) -> str:
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def order(self, n: int, created: datetime) -> Order:
        lines = tuple(
            FulfillmentOrderLine(f"gid://shopify/FulfillmentOrderLineItem/{n}{k}", f"Linen shirt {k}", f"SKU-{k}", 0, 1)
            for k in range(2)
        )
        shipped = created + timedelta(days=2)
        return Order(
            id=f"gid://shopify/Order/{5_000_000_000 + n}",
            name=f"#{1000 + n}",
            created_at=created,
            updated_at=shipped,
            financial_status="PAID",
            fulfillment_status="FULFILLED",
            total=Money("84.50", "EUR"),
            customer=Customer("Ada Lovelace", f"customer{n}@example.com"),
            fulfillments=(
                Fulfillment(
                    f"gid://shopify/Fulfillment/{n}", "SUCCESS", shipped, shipped, (Tracking("1Z999", "UPS", None),)
                ),
            ),
            fulfillment_orders=(
                FulfillmentOrder(
                    f"gid://shopify/FulfillmentOrder/{n}",
                    "CLOSED",
                    "UNSUBMITTED",
                    created,
                    shipped,
                    "Main",
                    None,
                    lines=lines,
                ),
            ),
        )

    def order_rows(self):
        for n in range(self.orders):
            created = self.moment(n, self.orders)
            order = self.order(n, created)
            record = json.dumps(order_to_record(order))
            yield (
                order.id,
                order.name,
                order.updated_at.timestamp(),
                created.timestamp(),
                1,
                "FULFILLED",
                order.customer.email,
                record,
                iso(created),
                iso(order.updated_at),
                1,
            )

    def inbox_rows(self, failed_body: str):
        pending_from = self.deliveries - 50
        for n in range(self.deliveries):
            received = self.moment(n, self.deliveries)
            topic = TOPICS[n % len(TOPICS)]
            order_gid = f"gid://shopify/Order/{5_000_000_000 + n // 10}"
            failed = self.rng.random() < 0.002
            status = "pending" if n >= pending_from else ("failed" if failed else "processed")
            body = failed_body if status != "processed" else None
            yield (
                self.uuid(),
                self.uuid(),
                topic,
                SHOP,
                iso(received),
                f"{topic}|{order_gid}|{iso(received)}",
                body,
                iso(received),
                status,
                1,
                "KeyError: 'line_items'" if failed else None,
                None if status == "pending" else iso(received + timedelta(seconds=1)),
            )

    def outbox_rows(self):
        for n in range(self.outbox):
            created = self.moment(n, self.outbox)
            kind = "alert" if n % 3 else "reply"
            yield (
                kind,
                f"gid://shopify/Order/{5_000_000_000 + n // 8}",
                1,
                "{}",
                "sent",
                1,
                0.0,
                0,
                iso(created),
                iso(created + timedelta(seconds=2)),
                None,
            )

    def audit_rows(self):
        actions = ("fulfill", "archive", "notify_customer", "release_hold", "snooze", "cancel_order")
        for n in range(self.audit):
            at = self.moment(n, self.audit)
            inputs = json.dumps({"tracking_number": "1Z999AA10123456784", "company": "UPS", "notify": True})
            yield (
                iso(at),
                f"U0STAFF{n % 12:02d}",
                actions[n % len(actions)],
                f"gid://shopify/Order/{5_000_000_000 + n}",
                inputs,
                "done",
                None,
                412.5,
                "C0ORDERS",
                f"{1_700_000_000 + n}.000100",
            )

    def scan_rows(self):
        scans = 365 * 96
        for n in range(scans):
            started = self.moment(n, scans)
            yield (iso(started), iso(started + timedelta(seconds=40)), 2000, 140, 0, None)

    def resolution_rows(self):
        count = self.orders * 8 // 100
        for n in range(count):
            resolved = self.moment(n, count)
            yield (
                f"gid://shopify/Order/{5_000_000_000 + n}",
                "on_hold",
                iso(resolved - timedelta(days=3)),
                iso(resolved),
            )

    def daily_rows(self):
        counts = json.dumps({"on_hold": 12, "out_of_stock": 30, "unfulfilled_overdue": 41, "request_pending": 7})
        for day in range(365):
            moment = NOW - YEAR + timedelta(days=day)
            yield (
                "digest",
                (moment.date().isoformat(), iso(moment), None, 1, iso(moment), "C0ORDERS", "1.2", counts, None),
            )
            for name, value in (("webhooks_duplicate", 40), ("stuck_found_by_reconcile", 2), ("webhooks_failed", 1)):
                yield "counter", (moment.date().isoformat(), name, value)

    def bulk(self):
        runs = 100
        for run_id in range(1, runs + 1):
            started = self.moment(run_id - 1, runs)
            run = (
                run_id,
                "archive",
                "archive fulfilled older:30d",
                "{}",
                "U0ADMIN",
                "U0ADMIN",
                None,
                "C0ORDERS",
                "1.1",
                "done",
                150,
                iso(started),
                iso(started),
                iso(started + timedelta(minutes=5)),
            )
            items = [
                (run_id, p, f"gid://shopify/Order/{p}", f"#{1000 + p}", "done", "done", "", iso(started))
                for p in range(150)
            ]
            yield run, items


def build(path: Path, year: Year) -> None:
    """The year's rows in bulk (one transaction per table) into a database at the schema before retention."""
    sample = year.order(0, NOW)
    failed_body = json.dumps(fields_read({"id": 1, "admin_graphql_api_id": sample.id, **order_to_record(sample)}))
    with closing(connect(str(path))) as conn:
        conn.execute("PRAGMA synchronous=OFF")
        db = sqlite_utils.Database(conn)
        migrate_to_before(db, _m6_retention)

        def load(sql: str, rows) -> None:
            conn.execute("BEGIN")
            conn.executemany(sql, rows)
            conn.execute("COMMIT")

        load(
            "INSERT INTO orders (id, name, updated_ts, created_ts, is_open, fulfillment_status, customer_email, record,"
            " first_seen_at, last_seen_at, webhook_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            year.order_rows(),
        )
        load(
            "INSERT INTO inbox (webhook_id, event_id, topic, shop, triggered_at, body_key, body, received_at, status,"
            " attempts, error, processed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            year.inbox_rows(failed_body),
        )
        load(
            "INSERT INTO outbox (kind, order_id, priority, payload, status, attempts, not_before, maybe_posted,"
            " created_at, sent_at, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            year.outbox_rows(),
        )
        load(
            "INSERT INTO audit (at, actor, action, order_id, inputs, outcome, error, duration_ms, channel, ts)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            year.audit_rows(),
        )
        load(
            "INSERT INTO scans (started_at, finished_at, orders_seen, stuck, missed_by_webhooks, error)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            year.scan_rows(),
        )
        load(
            "INSERT INTO resolutions (order_id, reason, stuck_since, resolved_at) VALUES (?, ?, ?, ?)",
            year.resolution_rows(),
        )
        daily = list(year.daily_rows())
        load(
            "INSERT INTO digests (day, claimed_at, attempt_at, attempts, posted_at, channel, ts, counts, error)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (r for kind, r in daily if kind == "digest"),
        )
        load("INSERT INTO counters (day, name, value) VALUES (?, ?, ?)", (r for kind, r in daily if kind == "counter"))
        conn.execute("BEGIN")
        for run, items in year.bulk():
            conn.execute(
                "INSERT INTO bulk_runs (id, action, command, inputs, actor, confirmed_by, stopped_by, channel,"
                " message_ts, status, total, created_at, started_at, finished_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                run,
            )
            conn.executemany(
                "INSERT INTO bulk_items (run_id, position, order_id, order_name, status, outcome, message, finished_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                items,
            )
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def sizes(path: Path) -> dict[str, int]:
    """Bytes per table, its indexes included (dbstat), and the file's own size."""
    with closing(sqlite3.connect(path)) as conn:
        owner = dict(conn.execute("SELECT name, tbl_name FROM sqlite_master WHERE type IN ('table', 'index')"))
        found: dict[str, int] = {}
        for name, size in conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"):
            table = owner.get(name, name)
            found[table] = found.get(table, 0) + size
    found["(file)"] = path.stat().st_size
    return found


class Probes:
    """A ticker measuring how late the loop wakes a 10 ms sleep, a webhook ingest every 20 ms measuring how long it
    takes to store, and a thread measuring each wait for the store's write lock; also the WAL's largest size."""

    def __init__(self, store: Store, path: Path):
        self.store, self.wal = store, Path(f"{path}-wal")
        self.ticks: list[float] = []
        self.ingests: list[float] = []
        self.lock_waits: list[float] = []
        self.wal_peak = 0
        self._n = 0
        self._ingest_marks = 0  # odd while an ingest is in flight
        self._stop = threading.Event()

    def lock(self) -> None:
        while not self._stop.is_set():
            ingests_before = self._ingest_marks
            asked = time.perf_counter()
            with self.store._write_lock:
                waited = time.perf_counter() - asked
            if ingests_before == self._ingest_marks and ingests_before % 2 == 0:  # no ingest began or ended meanwhile
                self.lock_waits.append(waited)
            time.sleep(0.001)

    async def tick(self) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(0.01)
            self.ticks.append(time.perf_counter() - started - 0.01)
            if self.wal.exists():
                self.wal_peak = max(self.wal_peak, self.wal.stat().st_size)

    async def ingest(self) -> None:
        while True:
            self._n += 1
            delivery = Delivery(f"probe-{self._n}", None, "orders/updated", SHOP, None, None, '{"id": 1}')
            started = time.perf_counter()
            self._ingest_marks += 1
            await self.store.add_deliveries([delivery])
            self._ingest_marks += 1
            self.ingests.append(time.perf_counter() - started)
            await asyncio.sleep(0.02)

    async def during(self, work) -> object:
        tasks = [asyncio.create_task(self.tick()), asyncio.create_task(self.ingest())]
        locker = threading.Thread(target=self.lock)
        locker.start()
        try:
            return await work
        finally:
            self._stop.set()
            locker.join()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def summary(self) -> str:
        def ms(values: list[float]) -> str:
            p99 = statistics.quantiles(values, n=100)[98] if len(values) > 1 else values[0]
            return f"worst {max(values) * 1000:6.1f} ms, p99 {p99 * 1000:5.1f} ms over {len(values):6d}"

        return (
            f"ticker lateness {ms(self.ticks)}\n    write-lock wait, no ingest in it {ms(self.lock_waits)}\n"
            f"    ingest (with its fsync) {ms(self.ingests)}\n    WAL peak {self.wal_peak / 2**20:.0f} MB"
        )

    @property
    def worst(self) -> float:
        return max(max(self.ticks), max(self.lock_waits))


def mb(n: int) -> str:
    return f"{n / 2**20:8.1f} MB"


async def run(args: argparse.Namespace) -> int:
    deliveries = args.deliveries or (2_000_000 if args.full else 500_000)
    rng = random.Random(args.seed)
    print(f"seed {args.seed}; a year of {deliveries:,} deliveries")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "orderbot.db"
        started = time.perf_counter()
        year = Year(deliveries, rng)
        build(path, year)
        print(
            f"built in {time.perf_counter() - started:.0f} s: {year.orders:,} orders, {year.audit:,} audit rows, "
            f"{year.outbox:,} outbox messages, {365 * 96:,} scans"
        )
        built = sizes(path)

        started = time.perf_counter()
        store = await Store(str(path)).open()  # the migration's one-time VACUUM
        upgrade = time.perf_counter() - started
        await store.checkpoint()
        upgraded = sizes(path)
        print(
            f"upgrade (auto_vacuum=INCREMENTAL through one VACUUM) of a {mb(built['(file)']).strip()} file: "
            f"{upgrade:.1f} s"
        )

        baseline = Probes(store, path)
        await baseline.during(asyncio.sleep(args.baseline_seconds))
        pruning = Probes(store, path)
        pruner = Pruner(store, Retention(), now=lambda: NOW)
        report = await pruning.during(pruner.prune())
        await store.checkpoint()
        pruned = sizes(path)
        await store.close()

    print(f"\n{'table':<14}{'year, built':>14}{'upgraded':>14}{'pruned':>14}{'rows deleted':>14}")
    for table in sorted(built, key=lambda t: -built[t]):
        deleted = report.deleted.get(table, "")
        print(
            f"{table:<14}{mb(built[table]):>14}{mb(upgraded.get(table, 0)):>14}{mb(pruned.get(table, 0)):>14}"
            f"{deleted:>14}"
        )
    print(
        f"\npruning: {sum(report.deleted.values()):,} rows and {report.pages_given_back:,} pages given back in "
        f"{report.seconds:.1f} s"
    )
    print(f"baseline ({args.baseline_seconds:.0f} s, no pruning):\n    {baseline.summary()}")
    print(f"while pruning ({report.seconds:.0f} s):\n    {pruning.summary()}")
    limit = args.limit_ms / 1000
    if pruning.worst > limit:
        print(
            f"FAIL: the loop or the write lock waited {pruning.worst * 1000:.1f} ms while pruning "
            f"(limit {args.limit_ms:.0f} ms)"
        )
        return 1
    print(f"PASS: the loop and the write lock waited at most {pruning.worst * 1000:.1f} ms (limit {args.limit_ms:.0f})")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="the whole year: 2,000,000 deliveries")
    parser.add_argument("--deliveries", type=int, default=0, help="override the number of deliveries")
    parser.add_argument("--seed", type=int, default=int.from_bytes(os.urandom(2), "big"))
    parser.add_argument("--baseline-seconds", type=float, default=20.0)
    parser.add_argument("--limit-ms", type=float, default=50.0)
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
