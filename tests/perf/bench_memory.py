"""Resident memory of `python -m bot serve` with a year's data stored: 100,000 orders (each with its verdict) and a
million processed webhook deliveries, against the same server on a database holding a few hundred, in the same run.

    python tests/perf/bench_memory.py [--orders 100000] [--deliveries 1000000] [--live 20000]

The servers run as subprocesses without Shopify or Slack credentials (webhooks only, as in bench_webhooks.py). To
keep the run short the big database is not filled through the server: the server first stores and processes
SEED_ORDERS real webhooks, then this script copies those rows (orders, verdicts, inbox) in SQL to the sizes asked
for, with fresh ids, so that every row has the shape the store writes (a processed delivery keeps no body; a copied
order is not one that reconciliation watches). Each server is measured idle after start, and again after `--live`
more webhooks were stored and processed. Then the big database is served once more with the sandbox Shopify and
Slack (tests/reliability/crash_support.py), and measured before and after a `--bulk` order archive run. The
figure is VmRSS from /proc/<pid>/status; VmHWM (the peak) is printed too. Exits non-zero when the big database's
peak exceeds the small one's by more than GROWTH_BOUND_MB, or any peak exceeds RSS_BOUND_MB.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[2]))  # `tests.reliability` for the bulk run

from bench_webhooks import SECRET, as_http, build_deliveries, free_port, load, wait_for_processing, wait_until_listening

from tests.conftest import wait_for
from tests.reliability.crash_support import Sandboxes, SlackPerson, confirm_value, server_environment, shop_orders
from tests.reliability.crash_support import Server as CrashServer

SEED_ORDERS = 200  # webhooks the server stores itself: the templates the big database's rows are copied from
RSS_BOUND_MB = 100.0  # no server's peak above this (measured: 59.5 MB, 2026-12)
GROWTH_BOUND_MB = 30.0  # the big database's peak above the small one's: SQLite's page caches, not the data, grow
ORDER_BASE = 9_000_000_000_000  # copied orders' numeric ids start here, away from the benchmark's webhooks


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


class Server:
    def __init__(self, db: Path, env: dict[str, str]):
        self.port = free_port()
        self.db = db
        env = {**env, "DATABASE_PATH": str(db), "SHOPIFY_CLIENT_SECRET": SECRET, "PORT": str(self.port)}
        command = [sys.executable, "-m", "bot", "serve"]
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until_listening(self.port, timeout=60)

    def send(self, count: int, first: int) -> None:
        """`count` signed orders/updated webhooks (one in ten a repeat), then wait until all are processed."""
        requests = [as_http(d) for d in build_deliveries(count, first=first, prefix=f"live-{first}")]
        result = asyncio.run(load(self.port, requests, 16))
        assert result["errors"] == 0, result
        wait_for_processing(self.db, timeout=600)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def copy_rows(db: Path, orders: int, deliveries: int) -> None:
    """Fill the database with copies of the rows the server wrote: `orders` orders with their verdicts and
    `deliveries` processed deliveries, ids fresh and unique."""
    with sqlite3.connect(db, isolation_level=None) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("BEGIN")
        template_order = conn.execute("SELECT order_id FROM verdicts LIMIT 1").fetchone()[0]
        count = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
        order_columns = [r[1] for r in conn.execute("PRAGMA table_info(orders)")]
        picked = ", ".join(
            {
                "id": f"'gid://shopify/Order/' || ({ORDER_BASE} + i)",
                "name": "'#M' || i",
                "watched": "0",  # a year's orders are mostly done: reconciliation does not re-read them
                "record": f"replace(record, '{template_order}', 'gid://shopify/Order/' || ({ORDER_BASE} + i))",
            }.get(c, c)
            for c in order_columns
        )
        conn.execute(
            f"{count}INSERT INTO orders ({', '.join(order_columns)}) SELECT {picked} FROM n, orders WHERE id = ?",
            [orders, template_order],
        )
        verdict_columns = [r[1] for r in conn.execute("PRAGMA table_info(verdicts)")]
        picked = ", ".join(
            f"'gid://shopify/Order/' || ({ORDER_BASE} + i)" if c == "order_id" else c for c in verdict_columns
        )
        conn.execute(
            f"{count}INSERT INTO verdicts ({', '.join(verdict_columns)}) SELECT {picked} FROM n, verdicts"
            " WHERE order_id = ?",
            [orders, template_order],
        )
        inbox_columns = [r[1] for r in conn.execute("PRAGMA table_info(inbox)") if r[1] != "id"]
        fresh = {
            "webhook_id": "'mem-' || i",
            "event_id": "'mem-event-' || i",
            "body_key": "body_key || '-' || i",
            "body": "NULL",
        }
        picked = ", ".join(fresh.get(c, c) for c in inbox_columns)
        template_delivery = conn.execute(
            "SELECT id FROM inbox WHERE status = 'processed' AND body_key IS NOT NULL LIMIT 1"
        ).fetchone()[0]
        conn.execute(
            f"{count}INSERT INTO inbox ({', '.join(inbox_columns)}) SELECT {picked} FROM n, inbox WHERE id = ?",
            [deliveries, template_delivery],
        )
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def measure(label: str, db: Path, env: dict[str, str], live: int) -> tuple[float, float]:
    server = Server(db, env)
    try:
        time.sleep(3)  # the startup work (retention, checkpoints) is done
        idle, _ = memory_mb(server.process.pid)
        server.send(live, first=100_000_000)
        time.sleep(1)
        after, peak = memory_mb(server.process.pid)
    finally:
        server.stop()
    print(f"{label:<40} RSS idle {idle:6.1f} MB   after {live} webhooks {after:6.1f} MB   peak {peak:6.1f} MB")
    return after, peak


async def bulk_run(db: Path, workdir: Path, count: int) -> tuple[float, float, float]:
    """Serve the big database with the sandbox Shopify (Shopify Plus's budget) and Slack, `/orders archive` `count`
    orders and confirm, as tests/reliability/test_crash.py does: (RSS before the run, after it, peak) in MB."""
    orders, names = shop_orders(datetime.now(UTC), archivable_count=count, other_count=0)
    world = await Sandboxes.start(orders)
    server = CrashServer(server_environment(world, db, free_port()), workdir)
    try:
        await server.start()
        marks = ",".join("?" * len(names))

        def rows(sql: str, params: tuple = ()) -> list[tuple]:
            with sqlite3.connect(db) as conn:
                return conn.execute(sql, params).fetchall()

        stored = f"SELECT count(*) FROM orders WHERE name IN ({marks})"
        await wait_for(lambda: rows(stored, tuple(names))[0][0] == len(names), 300)  # the start's reconciliation
        unsent = "SELECT count(*) FROM outbox WHERE kind = 'alert' AND status IN ('pending', 'sending')"
        await wait_for(lambda: rows(unsent)[0][0] == 0, 120)
        before, _ = memory_mb(server.process.pid)
        person = SlackPerson(world, server)
        preview = await person.command("archive " + " ".join(names))
        started = await person.confirm(preview)
        assert "started" in started["text"], started
        run_id = confirm_value(preview)
        done = "SELECT count(*) FROM bulk_runs WHERE id = ? AND status = 'done'"
        await wait_for(lambda: rows(done, (run_id,))[0][0] == 1, 600)
        after, peak = memory_mb(server.process.pid)
        archived = sum(1 for o in world.shop.orders.values() if o["name"] in set(names) and o["closed_at"])
        print(f"bulk run: {archived} of {count} orders archived")
    finally:
        await server.stop()
        await world.stop()
    return before, after, peak


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--deliveries", type=int, default=1_000_000)
    parser.add_argument("--live", type=int, default=20_000, help="webhooks sent to each measured server")
    parser.add_argument("--bulk", type=int, default=500, help="orders archived in one bulk run (0: no run)")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHOPIFY_", "SLACK_"))}
    with tempfile.TemporaryDirectory() as tmp:
        small, big = Path(tmp, "small.db"), Path(tmp, "big.db")
        seeder = Server(small, env)
        try:
            seeder.send(SEED_ORDERS, first=0)
        finally:
            seeder.stop()
        with sqlite3.connect(small) as conn:  # the copy below takes the main file only
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        shutil.copy(small, big)
        started = time.monotonic()
        copy_rows(big, args.orders, args.deliveries)
        with sqlite3.connect(big) as conn:
            stored = [conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("orders", "inbox")]
        size_mb = big.stat().st_size / 1e6
        print(
            f"big database: {stored[0]} orders, {stored[1]} deliveries, {size_mb:.0f} MB "
            f"(copied in {time.monotonic() - started:.0f} s)"
        )
        _, small_peak = measure(f"serve, {SEED_ORDERS} orders stored", small, env, args.live)
        _, big_peak = measure(f"serve, {stored[0]} orders / {stored[1]} deliveries", big, env, args.live)
        if args.bulk:
            before, after, peak = asyncio.run(bulk_run(big, Path(tmp), args.bulk))
            print(
                f"{'same, with Shopify and Slack':<40} RSS before the bulk run {before:6.1f} MB   "
                f"after archiving {args.bulk} orders {after:6.1f} MB   peak {peak:6.1f} MB"
            )
            big_peak = max(big_peak, peak)
    growth = big_peak - small_peak
    print(
        f"peak growth from the data: {growth:.1f} MB (bound {GROWTH_BOUND_MB} MB); "
        f"largest peak {max(small_peak, big_peak):.1f} MB (bound {RSS_BOUND_MB} MB)"
    )
    return 0 if growth <= GROWTH_BOUND_MB and max(small_peak, big_peak) <= RSS_BOUND_MB else 1


if __name__ == "__main__":
    sys.exit(main())
