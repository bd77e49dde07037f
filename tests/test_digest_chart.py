"""The digest's chart against real parts: its series equal what the store counts (daily snapshots of the stuck orders,
resolutions), the PNG is a valid image of the stated size, the real server shares it in the digest's thread through
the sandbox Slack's upload flow, a refused or failed upload leaves the digest posted, retention keeps the chart's 30
days, and `python -m bot digest --print` writes the PNG where it says."""

from __future__ import annotations

import json
import logging
import statistics
import subprocess
import sys
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.digest_chart import CHART_DAYS, chart_series
from bot.domain.retention import Retention
from bot.flows.digests import DIGEST_EVENT, ChartDrawer, Digests
from bot.flows.retention import Pruner
from bot.sandbox.slack import SandboxSlack
from bot.sandbox.slack_files import PNG_SIGNATURE, png_size
from bot.slack import digest_chart
from bot.slack.digest_blocks import digest_message
from bot.store import Store
from bot.store.sql import insert
from bot.web import SLACK
from tests.conftest import ADMIN, CHANNEL, World, wait_for
from tests.test_cli import run_bot

NOW = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)
CHART = ChartDrawer(
    png=digest_chart.chart_png,
    alt_text=digest_chart.chart_alt_text,
    filename=digest_chart.FILENAME,
    title=digest_chart.TITLE,
)


def png_header(content: bytes) -> tuple[int, int]:
    """Width and height read from the PNG's signature and IHDR chunk; fails on anything else."""
    assert content[:8] == PNG_SIGNATURE, "not a PNG"
    assert content[12:16] == b"IHDR", "the first chunk is not IHDR"
    size = png_size(content)
    assert size is not None
    return size


@pytest.fixture
async def store(tmp_path: Path):
    opened = await Store(str(tmp_path / "orderbot.db")).open()
    yield opened
    await opened.close()


def digest_poster(store: Store, slack: SandboxSlack, *, chart: ChartDrawer | None = CHART) -> Digests:
    return Digests(
        store,
        AsyncWebClient(token=slack.bot_token, base_url=slack.api_url, timeout=10),
        channel=CHANNEL,
        shop=None,
        digest_time=time(9, 0),
        timezone="UTC",
        shop_zone_expected=False,
        draw=digest_message,
        chart=chart,
        now=lambda: NOW,
    )


def add_history(store: Store):
    """Snapshots on some of the last days, and resolutions on some of them; returns what was written."""
    snapshots = {
        NOW - timedelta(days=1): {"awaiting_tracking": 3, "on_hold": 1},
        NOW - timedelta(days=2): {"awaiting_tracking": 5},
        NOW - timedelta(days=12): {"out_of_stock": 2},
        NOW - timedelta(days=CHART_DAYS): {"awaiting_tracking": 50},  # the day before the window
    }
    resolved = {  # (hours ago, hours it took)
        "today": [(1, 2.0), (2, 8.0), (3, 5.0)],
        "yesterday": [(25, 30.0)],
    }

    def write(db) -> None:
        for moment, counts in snapshots.items():
            for reason, count in counts.items():
                insert(
                    db,
                    "stuck_days",
                    {
                        "day": moment.date().isoformat(),
                        "reason": reason,
                        "count": count,
                        "taken_at": moment.isoformat(),
                    },
                )
        for rows in resolved.values():
            for ago, took in rows:
                at = NOW - timedelta(hours=ago)
                insert(
                    db,
                    "resolutions",
                    {
                        "order_id": f"gid://shopify/Order/{ago}",
                        "reason": "on_hold",
                        "stuck_since": (at - timedelta(hours=took)).isoformat(),
                        "resolved_at": at.isoformat(),
                    },
                )

    return store.write(write)


# --- the data -----------------------------------------------------------------------------------------------------


async def test_the_series_equal_the_stores_snapshots_and_resolutions(store: Store, slack_sandbox: SandboxSlack):
    await add_history(store)
    series = await digest_poster(store, slack_sandbox).chart_series()

    assert len(series.days) == CHART_DAYS and series.days[-1] == NOW.date()
    counts = dict(series.stuck)
    assert (counts["awaiting_tracking"][-2], counts["on_hold"][-2]) == (3, 1)
    assert counts["awaiting_tracking"][-3] == 5 and counts["out_of_stock"][-13] == 2
    assert sum(series.total_stuck(i) for i in range(CHART_DAYS)) == 3 + 1 + 5 + 2  # the day before is left out
    # today's snapshot was taken for the chart: nothing stuck, and recorded as such
    assert series.recorded[-1] and series.total_stuck(-1) == 0
    rows = await store.read(lambda db: db.execute("SELECT day, count(*) FROM stuck_days GROUP BY day").fetchall())
    assert len(rows) == 5
    assert series.recorded.count(True) == 4

    assert series.resolved[-2:] == (1, 3)
    assert series.median_to_resolve[-1] == timedelta(hours=statistics.median([2.0, 8.0, 5.0]))
    assert series.median_to_resolve[-2] == timedelta(hours=30)


async def test_a_scan_takes_the_days_snapshot_from_the_verdicts(world: World):
    await world.order_webhook(1001)
    await world.order_webhook(1009)
    await world.service.reconcile()
    stuck = dict(world.rows("SELECT reason, count(*) FROM verdicts WHERE stuck = 1 GROUP BY reason"))
    assert sum(stuck.values()) >= 2
    today = datetime.now(UTC).date().isoformat()
    snapshot = dict(world.rows("SELECT reason, count FROM stuck_days WHERE day = ? AND count > 0", (today,)))
    assert snapshot == stuck
    series = await world.app[SLACK].digests.chart_series()
    assert {reason: counts[-1] for reason, counts in series.stuck if counts[-1]} == stuck


# --- the picture --------------------------------------------------------------------------------------------------


async def test_the_png_is_a_valid_image_of_the_stated_size(store: Store, slack_sandbox: SandboxSlack):
    await add_history(store)
    series = await digest_poster(store, slack_sandbox).chart_series()
    assert png_header(digest_chart.chart_png(series)) == (digest_chart.WIDTH, digest_chart.HEIGHT) == (1200, 600)
    empty = chart_series([], [], today=NOW.date())
    assert png_header(digest_chart.chart_png(empty)) == (1200, 600)
    assert "last 30 days" in digest_chart.chart_alt_text(series) and "4 resolved" in digest_chart.chart_alt_text(series)


async def test_the_server_draws_the_chart_in_a_child_process_the_same_picture(
    store: Store, slack_sandbox: SandboxSlack
):
    await add_history(store)
    series = await digest_poster(store, slack_sandbox).chart_series()
    assert digest_chart.series_from_json(json.loads(json.dumps(digest_chart.series_to_json(series)))) == series
    apart = digest_chart.chart_png_apart(series)
    assert apart.startswith(PNG_SIGNATURE) and png_header(apart) == (1200, 600)
    assert len(apart) == len(digest_chart.chart_png(series))  # the same drawing (not byte-equal: PNG timestamps)


def test_the_server_never_loads_matplotlib():
    """matplotlib adds about 40 MB to a process for good: the server draws its daily chart in a child. (numpy, which
    it brings, is loaded anyway: sqlite-utils imports it when installed, 15 MB.)"""
    code = "import sys, bot.web, bot.cli; print('matplotlib' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "False"


# --- shared in Slack ----------------------------------------------------------------------------------------------


@pytest.fixture
async def slack_sandbox():
    sandbox = SandboxSlack(clock=NOW.timestamp)
    await sandbox.start()
    yield sandbox
    await sandbox.stop()


def the_digest(slack: SandboxSlack) -> dict:
    (digest,) = [m for m in slack.messages(CHANNEL) if (m.get("metadata") or {}).get("event_type") == DIGEST_EVENT]
    return digest


async def test_the_server_shares_the_chart_in_the_digests_thread_through_the_upload_flow(world: World):
    await world.order_webhook(1001)
    await world.order_webhook(1009)
    await world.wait_for_alert(1001)
    await world.wait_for_alert(1009)
    answer = await world.command("digest post", user=ADMIN)
    assert "posted" in json.dumps(answer).lower()
    await wait_for(lambda: bool(world.slack.calls_to("files.completeUploadExternal")))
    (digest,) = [m for m in world.slack.messages(CHANNEL) if "Daily digest" in m["text"]]
    await wait_for(lambda: bool(world.slack.replies(CHANNEL, digest["ts"])))
    (reply,) = world.slack.replies(CHANNEL, digest["ts"])
    (shown,) = reply["files"]
    assert reply["upload"] is True and shown["mimetype"] == "image/png"
    assert (shown["title"], shown["name"]) == (digest_chart.TITLE, digest_chart.FILENAME)
    assert (shown["original_w"], shown["original_h"]) == (1200, 600)
    assert "stacked by reason" in shown["alt_txt"]
    uploaded = world.slack.files[shown["id"]]
    assert png_header(uploaded.content) == (1200, 600) and uploaded.length == len(uploaded.content)
    posted_at = next(
        i for i, c in enumerate(world.slack.calls) if (c.response or {}).get("ts") == digest["ts"]
    )  # the digest's chat.postMessage, then the upload's two calls
    methods = [c.method for c in world.slack.calls[posted_at:] if c.method.startswith(("chat.", "files."))]
    assert methods == ["chat.postMessage", "files.getUploadURLExternal", "files.completeUploadExternal"]
    complete = world.slack.calls_to("files.completeUploadExternal")[0].args
    assert (complete["channel_id"], complete["thread_ts"]) == (CHANNEL, digest["ts"])


async def test_without_files_write_the_digest_posts_and_the_refusal_is_logged(
    store: Store, caplog: pytest.LogCaptureFixture
):
    slack = SandboxSlack(clock=NOW.timestamp, scopes=("chat:write", "channels:history"))
    await slack.start()
    try:
        with caplog.at_level(logging.WARNING, logger="bot.flows.digests"):
            assert await digest_poster(store, slack).post_scheduled() == "posted"
        digest = the_digest(slack)
        assert slack.replies(CHANNEL, digest["ts"]) == [] and slack.files == {}
        (refused,) = slack.calls_to("files.getUploadURLExternal")
        assert refused.response == {
            "ok": False,
            "error": "missing_scope",
            "needed": "files:write",
            "provided": "chat:write,channels:history",
        }
        assert "chart was not shared in its thread (missing_scope)" in caplog.text
        assert await digest_poster(store, slack).post_scheduled() == "already"  # the day is posted: not again
    finally:
        await slack.stop()


@pytest.mark.parametrize("failing", ["files.getUploadURLExternal", "files.completeUploadExternal"])
async def test_a_failed_upload_leaves_the_digest_posted(
    store: Store, slack_sandbox: SandboxSlack, caplog: pytest.LogCaptureFixture, failing: str
):
    slack_sandbox.fail_next(failing, "http_500")
    with caplog.at_level(logging.WARNING, logger="bot.flows.digests"):
        assert await digest_poster(store, slack_sandbox).post_scheduled() == "posted"
    digest = the_digest(slack_sandbox)
    assert slack_sandbox.replies(CHANNEL, digest["ts"]) == []
    assert "chart was not shared in its thread (HTTP 500)" in caplog.text
    posted = await store.read(lambda db: db.execute("SELECT ts FROM digests WHERE posted_at IS NOT NULL").fetchall())
    assert posted == [(digest["ts"],)]


async def test_a_digest_posted_now_gets_its_chart_too_and_none_without_a_drawer(
    store: Store, slack_sandbox: SandboxSlack
):
    ts = await digest_poster(store, slack_sandbox).post_now()
    (reply,) = slack_sandbox.replies(CHANNEL, ts)
    assert reply["files"][0]["mimetype"] == "image/png"
    plain = await digest_poster(store, slack_sandbox, chart=None).post_now()
    assert slack_sandbox.replies(CHANNEL, plain) == []


# --- kept for 30 days ---------------------------------------------------------------------------------------------


async def test_a_short_history_window_still_keeps_the_charts_days(store: Store):
    def write(db) -> None:
        for days_ago in (40, 20, 1):
            at = NOW - timedelta(days=days_ago)
            label = f"{days_ago} days"
            insert(
                db,
                "stuck_days",
                {"day": at.date().isoformat(), "reason": label, "count": 1, "taken_at": at.isoformat()},
            )
            resolution = {"order_id": label, "stuck_since": at.isoformat(), "resolved_at": at.isoformat()}
            insert(db, "resolutions", resolution)
            insert(db, "scans", {"started_at": at.isoformat(), "finished_at": at.isoformat(), "error": label})

    await store.write(write)
    await Pruner(store, Retention(history_days=3), now=lambda: NOW).prune()

    def left(db) -> dict[str, set[str]]:
        return {
            "stuck_days": {r[0] for r in db.execute("SELECT reason FROM stuck_days")},
            "resolutions": {r[0] for r in db.execute("SELECT order_id FROM resolutions")},
            "scans": {r[0] for r in db.execute("SELECT error FROM scans")},
        }

    assert await store.read(left) == {
        "stuck_days": {"20 days", "1 days"},
        "resolutions": {"20 days", "1 days"},
        "scans": {"1 days"},  # the history window itself is not widened
    }


# --- python -m bot digest --print -----------------------------------------------------------------------------------


async def test_digest_print_writes_the_chart_where_it_says(world: World, tmp_path: Path):
    await world.order_webhook(1001)
    await world.stop_server()
    env = {"DATABASE_PATH": str(world.db_path), "TIMEZONE": "UTC"}
    code, out, err = await run_bot("digest", "--print", env=env, cwd=tmp_path)
    assert code == 0, err
    default = tmp_path / "orderbot-digest-chart.png"
    assert out.strip().splitlines()[-1] == (
        f"Chart (stuck orders per day, last 30 days, and the median time to resolve): {default}"
    )
    assert png_header(default.read_bytes()) == (1200, 600)
    chosen = tmp_path / "charts" / "today.png"
    chosen.parent.mkdir()
    code, out, err = await run_bot("digest", "--print", "--chart", str(chosen), env=env, cwd=tmp_path)
    assert code == 0, err
    assert out.strip().endswith(str(chosen)) and png_header(chosen.read_bytes()) == (1200, 600)
