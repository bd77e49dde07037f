"""`/orders stuck` at scale: counting the stuck orders and reading one page of them (the first, and one deep in the
list) from a database of 100,000 orders (8 % stuck, as in bench_digest.py), against a baseline measured in the same
run on the same database: the same selection matched on every parsed order (the general path, which lists with a
tag filter take).

    python tests/perf/bench_stuck_list.py [--orders 100000] [--runs 7] [--limit 0.5]

Prints min and median of each; exits non-zero when a stuck page (count + page) takes longer than --limit seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench_digest import NOW, populate, show, timed

from bot.domain.commands import Selection
from bot.store import Store
from bot.store.selection import _matching

PAGE = 20


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--limit", type=float, default=0.5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        path = str(Path(directory) / "bench.db")
        await (await Store(path).open()).close()
        started = time.perf_counter()
        populate(path, orders=args.orders, audit=0, deliveries=0)
        print(f"database: {args.orders:,} orders, built in {time.perf_counter() - started:.1f} s")
        store = await Store(path).open()
        try:
            results = {}
            for label, selection in (
                ("stuck", Selection(stuck=True)),
                (
                    "stuck:awaiting_tracking older:7d",
                    Selection(stuck=True, reason="awaiting_tracking", older=timedelta(days=7)),
                ),
            ):
                total = await store.count_orders(selection, NOW)
                deep = max(total // 2 // PAGE * PAGE, 0)

                async def page(selection=selection, offset=0):
                    return await store.page_of_orders(selection, NOW, limit=PAGE, offset=offset)

                results[f"{label}: count + first page ({total:,} match)"] = await timed(args.runs, page)
                results[f"{label}: count + page at {deep:,}"] = await timed(
                    args.runs, lambda selection=selection, deep=deep: page(selection, deep)
                )
                results[f"{label}: baseline, every order parsed and matched"] = await timed(
                    args.runs, lambda selection=selection: store.read(lambda db: _matching(db, selection, NOW))
                )
        finally:
            await store.close()
    for label, times in results.items():
        show(label, times)
    worst = max(statistics.median(t) for label, t in results.items() if "baseline" not in label)
    verdict = "PASS" if worst < args.limit else "FAIL"
    print(f"{verdict}: slowest stuck page (median) {worst:.3f} s against a limit of {args.limit:.1f} s")
    return 0 if worst < args.limit else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
