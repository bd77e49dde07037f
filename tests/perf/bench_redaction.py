"""customers/redact with a backlog of pending deliveries: how long the store's write lock (which the event loop's
webhook ingest shares) is kept from others while the held bodies are searched and rewritten, against a baseline
measured in the same run: the same redaction with no delivery pending.

    python tests/perf/bench_redaction.py [--pending 5000] [--limit-ms 100]

A thread takes and releases Store._write_lock every millisecond during each redaction and keeps its longest wait.
Prints both waits, the redaction's total time and the megabytes of bodies searched; exits non-zero when the longest
wait with the backlog exceeds --limit-ms, or when a body still names the customer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

from bot.store import Delivery, Store

EXAMPLE = Path(__file__).parents[1] / "data" / "webhooks" / "orders.updated.json"
FIRST_ORDER = 10_000_000
ERASED = 42  # the customer of the 42nd order asks to be forgotten


def deliveries(count: int) -> list[Delivery]:
    base = json.loads(EXAMPLE.read_text())
    found = []
    for i in range(count):
        number = FIRST_ORDER + i
        body = dict(base, id=number, admin_graphql_api_id=f"gid://shopify/Order/{number}", email=f"c{i}@example.com")
        found.append(Delivery(f"w{i}", None, "orders/updated", "s.myshopify.com", None, None, json.dumps(body)))
    return found


async def redaction(folder: Path, pending: int) -> tuple[float, float, int, int]:
    """(longest wait for the write lock in s, the redaction's time in s, bytes of bodies held, bodies naming them)."""
    store = await Store(str(folder / f"pending-{pending}.db")).open()
    held = deliveries(pending)
    for start in range(0, len(held), 500):
        await store.add_deliveries(held[start : start + 500])
    worst, stop = 0.0, threading.Event()

    def probe() -> None:
        nonlocal worst
        while not stop.is_set():
            asked = time.perf_counter()
            with store._write_lock:
                pass
            worst = max(worst, time.perf_counter() - asked)
            time.sleep(0.001)

    prober = threading.Thread(target=probe)
    prober.start()
    started = time.perf_counter()
    await store.redact_customer(f"c{ERASED}@example.com", [f"gid://shopify/Order/{FIRST_ORDER + ERASED}"])
    took = time.perf_counter() - started
    stop.set()
    prober.join()
    naming = await store.read(
        lambda db: db.execute("SELECT count(*) FROM inbox WHERE instr(body, ?)", [f"c{ERASED}@example.com"]).fetchone()
    )
    await store.close()
    return worst, took, sum(len(d.body) for d in held), naming[0]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pending", type=int, default=5000)
    parser.add_argument("--limit-ms", type=float, default=100.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        base_wait, base_took, _, _ = asyncio.run(redaction(Path(folder), 0))
        wait, took, size, naming = asyncio.run(redaction(Path(folder), args.pending))
    baseline = "no delivery pending (baseline)"
    print(f"{baseline:<44} longest lock wait {base_wait * 1000:6.1f} ms, {base_took * 1000:.0f} ms")
    print(
        f"{f'{args.pending:,} pending ({size / 1e6:.0f} MB of bodies)':<44} longest lock wait {wait * 1000:6.1f} ms,"
        f" {took * 1000:.0f} ms; bodies still naming the customer: {naming}"
    )
    return 0 if wait * 1000 <= args.limit_ms and naming == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
