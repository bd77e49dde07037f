"""A calm first day, measured: orderbot's first scan of a shop with 300 stuck orders, through the real server against
the sandboxes, Slack's pace (one post a second per channel) unchanged.

    .venv/bin/python -m tests.perf.bench_first_day [--stuck 300] [--alert-burst 20] [--pace 1.0]

Counts the messages posted to the channel and the time from the scan's start until the channel is quiet (nothing left
to post), and checks that `/orders stuck` lists every stuck order. `--alert-burst 1000` shows the day before the
limit: one alert per stuck order (at `--pace 0.05`, to keep the run short; at Slack's pace it takes `stuck - 1` s at
least).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bot.sandbox.seed import generate_orders
from bot.sandbox.serving import serve
from bot.sandbox.shopify import SandboxShopify
from bot.web import SLACK
from tests.conftest import CHANNEL, SHOP, classified, running_world


async def main(stuck_count: int, alert_burst: int, pace: float) -> None:
    now = datetime.now(UTC)
    orders = generate_orders(stuck_count * 3, now, seed=14)
    stuck, calm = await classified(orders, now)
    chosen = set(stuck[:stuck_count]) | set(calm[:50])
    shop = SandboxShopify([o for o in orders if o["id"] in chosen], shop_domain=SHOP, bucket_size=1e9, restore_rate=1e9)
    runner, url = await serve(shop.app)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            async with running_world((shop, url), Path(tmp)) as world:
                world.app[SLACK].outbox.pacer.pace = pace
                await world.service.store.set_setting("alert_burst", str(alert_burst), by="bench")
                started = time.monotonic()
                report = await world.service.reconcile()
                scanned = time.monotonic() - started
                await world.slack_caught_up(timeout=stuck_count * pace + 120)
                quiet = time.monotonic() - started
                posts = world.slack.calls_to("chat.postMessage")
                listed = (await world.command("stuck"))["text"]
                channel = [c for c in posts if c.args.get("channel") == CHANNEL]
    finally:
        await runner.cleanup()
    print(f"stuck orders found by the first scan: {len(report.stuck)} (alert_burst {alert_burst}, pace {pace} s)")
    print(f"scan: {scanned:.1f} s; messages posted: {len(channel)}; channel quiet after {quiet:.1f} s")
    print(f"/orders stuck answers: {listed!r}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stuck", type=int, default=300)
    parser.add_argument("--alert-burst", type=int, default=20)
    parser.add_argument("--pace", type=float, default=1.0)
    options = parser.parse_args()
    asyncio.run(main(options.stuck, options.alert_burst, options.pace))
