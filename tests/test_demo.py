"""`python -m bot demo`, end to end: the day is played against the real server and the sandboxes, and what it did is
checked where it landed: alerts in the sandbox Slack, mutations in the sandbox store, the email at the SMTP server, the
audit log in the server's database, and the terminal output."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.demo.feed import Console, SlackFeed
from bot.demo.scenario import TRACKING_NUMBER, Day, DayReport
from bot.demo.world import ADMIN, CHANNEL, PEOPLE, STAFF, DemoFailure, DemoWorld
from bot.sandbox.slack_files import png_size
from bot.slack.outbox import ALERT_EVENT

STUCK_IN_SEED = {f"#{n}" for n in (*range(1001, 1011), 1018)}  # every stuck reason (seed.py)


@dataclass
class PlayedDay:
    world: DemoWorld  # stopped; the sandboxes keep what happened, and the database file stays
    report: DayReport
    output: str

    def audit(self) -> list[tuple[str, str, str, str]]:
        with closing(sqlite3.connect(self.world.db_path)) as conn:
            return conn.execute(
                "SELECT o.name, a.action, a.actor, a.outcome FROM audit a JOIN orders o ON o.id = a.order_id"
                " ORDER BY a.id"
            ).fetchall()

    def mutations(self, name: str) -> list[dict]:
        return [op.variables for op in self.world.shop.operations if op.operation_name == name]


async def _play(directory: Path) -> PlayedDay:
    world = await DemoWorld.start(directory)
    out = io.StringIO()
    console = Console(out, users=PEOPLE)
    feed = SlackFeed(console, world.order_names(), world.slack.channels)
    world.slack.observer = feed
    try:
        report = await Day(world, console, feed).play()
    finally:
        await world.stop()
    return PlayedDay(world, report, out.getvalue())


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> PlayedDay:
    return asyncio.run(_play(tmp_path_factory.mktemp("demo")))


def test_one_alert_per_stuck_order_and_none_for_the_others(day: PlayedDay):
    names = day.world.order_names()
    alerted = [names[m["metadata"]["event_payload"]["order_id"]] for m in day.world.alerts()]
    assert sorted(alerted) == sorted(STUCK_IN_SEED)  # repeats and the late delivery posted nothing twice
    assert day.report.alerts_posted == len(STUCK_IN_SEED)
    for name in STUCK_IN_SEED:
        assert f"new alert for {name}" in day.output


def test_repeated_webhooks_are_answered_and_kept_once(day: PlayedDay):
    assert day.report.duplicates_sent == 2
    assert day.report.deliveries_stored == day.report.webhooks_sent - day.report.duplicates_sent
    assert day.report.late_delivery_ignored


def test_fulfil_with_tracking_reached_shopify_and_resolved_the_alert(day: PlayedDay):
    (variables,) = day.mutations("FulfillmentCreate")
    assert variables["fulfillment"]["trackingInfo"] == {"number": TRACKING_NUMBER, "company": "UPS"}
    order = day.world.order(1001)
    assert [t["number"] for f in order["fulfillments"] for t in f["tracking"]] == [TRACKING_NUMBER]
    alert = day.world.alert(1001)
    assert not [b for b in alert["blocks"] if b["type"] == "actions"]
    assert any(f"<@{STAFF}>" in reply["text"] and TRACKING_NUMBER in reply["text"] for reply in alert["replies"])
    assert ("#1001", "fulfill", STAFF, "done") in day.audit()


def test_archive_closed_the_order_without_changing_its_fulfilment(day: PlayedDay):
    assert len(day.mutations("OrderClose")) == 1
    order = day.world.order(1003)
    assert order["closed_at"] is not None and order["cancelled_at"] is None and not order["fulfillments"]
    assert ("#1003", "archive", ADMIN, "done") in day.audit()


def test_the_customer_email_was_sent_and_the_order_tagged(day: PlayedDay):
    (mail,) = day.world.smtp.messages
    order = day.world.order(1002)
    assert mail.rcpt_tos == [order["email"]]
    assert "#1002" in mail.message["Subject"]
    assert "out of stock" in mail.message.get_content()
    assert "orderbot-notified" in order["tags"]
    assert "email sent through the shop's SMTP server" in day.output and f"To: {order['email']}" in day.output


def test_a_non_admin_is_refused_a_cancel_and_sees_why(day: PlayedDay):
    assert not day.mutations("OrderCancel")
    assert day.world.order(1004)["cancelled_at"] is None
    (answer,) = [e for e in day.world.slack.ephemerals(STAFF) if "cancel" in e["text"]]
    assert "admin" in answer["text"]
    assert ("#1004", "cancel_order", STAFF, "refused") in day.audit()
    assert f"only {PEOPLE[STAFF]} sees this" in day.output


def test_an_admin_captured_the_card_payment_and_the_alert_stayed_for_the_shipping(day: PlayedDay):
    captures = day.mutations("OrderCapture")
    assert [c["input"]["amount"] for c in captures] == ["108.95"]
    names = day.world.order_names()
    assert names[captures[0]["input"]["id"]] == "#1004"
    assert ("#1004", "capture_payment", ADMIN, "done") in day.audit()
    alert = day.world.alert(1004)
    assert "Unfulfilled" in str(alert["blocks"]) and "capture_payment" not in str(alert["blocks"])
    assert "@Alex Rivera captured the payment for #1004 (108.95 USD)." in day.output


def test_a_later_webhook_resolved_the_service_shipped_order(day: PlayedDay):
    alert = day.world.alert(1009)
    assert not [b for b in alert["blocks"] if b["type"] == "actions"]
    assert "ShipBob" in alert["text"]
    assert day.report.resolved == ["#1001", "#1003", "#1009"]


def test_the_terminal_shows_alerts_with_their_buttons_forms_and_replies(day: PlayedDay):
    assert "[ Mark as fulfilled ]" in day.output and "[ Snooze… ▾ ]" in day.output
    assert "Slack form opens: Mark as fulfilled" in day.output
    assert "#1001's alert, updated in place" in day.output
    assert "reply in the thread of #1001's alert" in day.output and f"@{PEOPLE[STAFF]}" in day.output
    assert "<@" not in day.output and "&amp;" not in day.output  # mrkdwn is rendered, not shown raw


def test_the_digest_is_posted_last(day: PlayedDay):
    assert day.report.digest_posted
    messages = day.world.slack.messages(CHANNEL)
    assert (messages[-1].get("metadata") or {}).get("event_type") != ALERT_EVENT


def test_the_digests_chart_is_in_its_thread_and_the_terminal_says_where_it_is_saved(day: PlayedDay):
    path = day.report.chart_saved_at
    assert path is not None and f"The chart in the digest's thread, as Slack received it: {path}" in day.output
    assert png_size(path.read_bytes()) == (1200, 600)
    assert "file shared in a thread" in day.output and "[image/png 1200×600] Stuck orders per day" in day.output


def test_the_home_tab_is_published_for_who_opened_it_and_shown_in_the_terminal(day: PlayedDay):
    assert day.report.home_opened_by == PEOPLE[STAFF].split()[0]
    (published,) = day.world.slack.publishes(STAFF)  # nothing changed after it opened: no refresh
    assert published.args["view"]["type"] == "home" and not day.world.slack.publishes(ADMIN)
    board = day.output[day.output.index(f"Slack · orderbot's Home tab, as {PEOPLE[STAFF]} sees it") :]
    assert "STUCK ORDERS" in board and "MOST URGENT" in board and "YOUR LAST ACTIONS" in board
    assert f"@{PEOPLE[STAFF]} fulfil #1001: done" in board and "[ Email customer ]" in board
    assert "SETTINGS" not in board  # Sam is no admin


async def test_a_day_whose_step_goes_wrong_stops_with_the_reason(tmp_path: Path):
    world = await DemoWorld.start(tmp_path)
    world.webhook_secret = "not-the-apps-secret"  # Shopify signs with another secret: the server refuses it all
    console = Console(io.StringIO(), users=PEOPLE)
    try:
        with pytest.raises(DemoFailure, match="HTTP 401"):
            await Day(world, console, SlackFeed(console, world.order_names(), world.slack.channels)).play()
    finally:
        await world.stop()
    assert not world.slack.calls_to("chat.postMessage")


def test_python_m_bot_demo_needs_no_settings_and_exits_0(tmp_path: Path):
    """As a new user runs it: from a directory whose .env and environment say nonsense, which the demo ignores, and
    behind a proxy (pointing nowhere) that NO_PROXY bypasses for 127.0.0.1, where the demo's pieces all run."""
    (tmp_path / ".env").write_text("SLACK_BOT_TOKEN=not-a-token\nSHOPIFY_SHOP=nowhere\nPORT=abc\n")
    env = {
        **os.environ,
        "SLACK_BOT_TOKEN": "xoxb-real-looking",
        "SLACK_SIGNING_SECRET": "0123456789abcdef",
        "SHOPIFY_SHOP": "someone-elses.myshopify.com",
        "DATABASE_PATH": str(tmp_path / "must-not-exist.db"),
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    done = subprocess.run(
        [sys.executable, "-m", "bot", "demo"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # the server's log goes to a file, not the terminal
    assert "== Summary" in done.stdout and f"{len(STUCK_IN_SEED)} alerts posted" in done.stdout
    assert "new alert for #1001" in done.stdout and "[ Mark as fulfilled ]" in done.stdout
    assert "  home      Sam opened it: the stuck counts" in done.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == [".env"]  # nothing left behind


def test_keep_running_leaves_the_server_up_and_stops_cleanly_on_ctrl_c(tmp_path: Path):
    demo = subprocess.Popen(
        [sys.executable, "-m", "bot", "demo", "--keep-running"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        health_url = None
        deadline = time.monotonic() + 120
        while health_url is None and time.monotonic() < deadline:
            line = demo.stdout.readline()
            assert line, "the demo ended before saying how to poke it"
            if line.strip().startswith("curl -s http") and line.strip().endswith("/healthz"):
                health_url = line.split()[-1]
        with urllib.request.urlopen(health_url, timeout=10) as response:
            assert response.status == 200 and json.load(response)["ok"] is True
        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=30) == 0
        assert "Stopping." in demo.stdout.read()
    finally:
        demo.kill()
        demo.wait()


def test_the_out_of_stock_order_moved_to_the_location_that_has_it(day: PlayedDay):
    (moved,) = day.mutations("FulfillmentOrderMove")
    fo = day.world.order(1002)["fulfillment_orders"][0]
    assert moved == {"id": fo["id"], "newLocationId": fo["location"]["id"]} and not fo["holds"]
    assert fo["location"]["name"] == "Juniper & Oak Storefront"
    assert ("#1002", "move", STAFF, "done") in day.audit()
    assert "Slack form changes: Move #1002" in day.output and "◉ Juniper & Oak Storefront (Has the item)" in day.output
