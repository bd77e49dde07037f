"""`python -m bot demo`: the real server against the sandbox Shopify, Slack and SMTP, playing a day, shown in the
terminal. No credentials, no network, no environment variables: everything runs on 127.0.0.1 with generated secrets,
and the database and the server's log live in a temporary directory removed at the end.

world.py starts and stops the pieces; scenario.py is the day; feed.py and terminal.py show what Slack would show.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

from bot.demo.feed import Console, SlackFeed
from bot.demo.scenario import Day, DayReport
from bot.demo.world import ADMIN, CHANNEL, CHANNEL_NAME, DEMO_PACE, PEOPLE, SHOP, DemoFailure, DemoWorld
from bot.shopify.version import API_VERSION
from bot.slack.outbox import PACE

LOG_TAIL = 20


def run_demo(*, keep_running: bool = False) -> int:
    """Play the day on stdout; 0 when everything it expected happened, 1 (with the reason on stderr) otherwise."""
    console = Console(sys.stdout, ansi=sys.stdout.isatty(), users=PEOPLE)
    with tempfile.TemporaryDirectory(prefix="orderbot-demo-") as directory:
        log_path = Path(directory) / "orderbot.log"
        with _logging_to(log_path):
            try:
                asyncio.run(_play(Path(directory), console, keep_running=keep_running, log_path=log_path))
            except KeyboardInterrupt:
                print("\nStopped before the end of the day.", file=sys.stderr)
                return 130
            except DemoFailure as exc:
                _failed(str(exc), log_path)
                return 1
            except Exception as exc:  # any other failure: say so plainly rather than end in a bare traceback
                _failed(f"{exc.__class__.__name__}: {exc}\n{traceback.format_exc()}", log_path)
                return 1
    return 0


async def _play(directory: Path, console: Console, *, keep_running: bool, log_path: Path) -> None:
    started = time.monotonic()
    world = await DemoWorld.start(directory)
    try:
        feed = SlackFeed(console, world.order_names(), world.slack.channels)
        world.slack.observer = feed
        _introduce(console, world)
        report = await Day(world, console, feed).play()
        _summarise(console, report, time.monotonic() - started)
        if keep_running:
            _how_to_poke(console, world, log_path)
            await _until_stopped()
            console.line("Stopping.")
    finally:
        await world.stop()


def _introduce(console: Console, world: DemoWorld) -> None:
    console.line("orderbot demo: a day at Juniper & Oak, a small homeware shop, with nothing real connected.")
    console.line(f"  server   {world.url}  the app `python -m bot serve` runs (webhooks, Slack, /healthz)")
    console.line(f"  Shopify  {world.shop_url}  a sandbox store ({SHOP}), {len(world.shop.orders)} orders")
    console.line(f"  Slack    {world.slack.base_url}  a sandbox workspace, channel #{CHANNEL_NAME}")
    console.line(f"  email    {world.smtp.host}:{world.smtp.port}  a local SMTP server")
    people = ", ".join(f"{name} ({'admin' if uid == ADMIN else 'support'})" for uid, name in PEOPLE.items())
    console.line(f"  people   {people}")
    console.line("  scan     off: the day is told by webhooks (`serve` also re-reads open orders every SCAN_INTERVAL)")
    console.line(
        f"  pace     one Slack post every {DEMO_PACE:g} s here, to keep the demo short; the server keeps Slack's "
        f"limit of one per {PACE:g} s per channel"
    )


def _summarise(console: Console, report: DayReport, seconds: float) -> None:
    console.heading("Summary")
    lines = [
        (
            "webhooks",
            f"{report.webhooks_sent} signed deliveries; {report.deliveries_stored} kept, "
            f"{report.duplicates_sent} repeats dropped"
            + (", 1 late delivery that did not overwrite newer data" if report.late_delivery_ignored else ""),
        ),
        (
            "Slack",
            f"{_n(report.alerts_posted, 'alert')} posted, {_n(report.alert_updates, 'update')} in place, "
            f"{_n(report.thread_replies, 'thread reply', 'thread replies')}, "
            f"{_n(report.private_answers, 'private answer')}, {_n(report.forms_opened, 'form')} opened",
        ),
        ("actions", "; ".join(report.actions) or "none"),
        ("refused", "; ".join(report.refusals) or "none"),
        ("emails", f"{len(report.emails)} sent: " + "; ".join(report.emails) if report.emails else "none"),
        ("resolved", ", ".join(report.resolved) or "none"),
        ("stuck", f"{_n(report.still_stuck, 'order')} still stuck, each with its alert and buttons"),
        ("digest", f"posted to #{CHANNEL_NAME}, its chart in the thread"),
        ("chart", str(report.chart_saved_at)),
        ("home", f"{report.home_opened_by} opened it: the stuck counts, the most urgent orders, their last actions"),
        ("time", f"{seconds:.1f} s"),
    ]
    for label, text in lines:
        console.line(f"  {label:<9} {text}")


def _n(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word if count == 1 else plural or word + 's'}"


def _how_to_poke(console: Console, world: DemoWorld, log_path: Path) -> None:
    console.heading("Still running (Ctrl-C to stop)")
    console.line(f"  server log: {log_path}")
    console.line("  The server's health:")
    console.line(f"    curl -s {world.url}/healthz")
    console.line(f"  What the sandbox Slack has in #{CHANNEL_NAME} (its Web API, with the bot's token):")
    console.line(
        f"    curl -s -H 'Authorization: Bearer {world.slack.bot_token}' "
        f"'{world.slack.api_url}conversations.history?channel={CHANNEL}'"
    )
    console.line("  The sandbox store's orders (Shopify's Admin GraphQL API):")
    console.line(
        f"    curl -s -H 'X-Shopify-Access-Token: {world.shop.access_token}' -H 'Content-Type: application/json' "
        f"{world.shop_url}/admin/api/{API_VERSION}/graphql.json "
        """-d '{"query": "{ orders(first: 20) { nodes { name displayFulfillmentStatus closed tags } } }"}'"""
    )


async def _until_stopped() -> None:
    """Wait for Ctrl-C (SIGINT) or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # not on Windows; Ctrl-C then ends asyncio.run instead
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.remove_signal_handler(sig)


@contextlib.contextmanager
def _logging_to(path: Path) -> Iterator[None]:
    """The server's log goes to a file, not between the demo's lines; the root logger is restored after."""
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.handlers = [handler]
    root.setLevel(logging.INFO)
    quiet = {name: logging.getLogger(name).level for name in ("aiohttp.access", "slack_sdk")}
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("slack_sdk").setLevel(logging.INFO)  # its DEBUG logs whole bodies (customer data)
    try:
        yield
    finally:
        handler.close()
        root.handlers = saved[1]
        root.setLevel(saved[0])
        for name, level in quiet.items():
            logging.getLogger(name).setLevel(level)


def _failed(reason: str, log_path: Path) -> None:
    print(f"\norderbot demo failed: {reason}", file=sys.stderr)
    if log_path.exists():
        tail = log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-LOG_TAIL:]
        if tail:
            print(f"The server's last log lines ({log_path.name}):", file=sys.stderr)
            for line in tail:
                print(f"  {line}", file=sys.stderr)
