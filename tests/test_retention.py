"""Old history goes, table by table, after its window; pending work, state and newer rows stay; the file gives the
space back; the running server prunes by itself; an existing database upgrades in place."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import sqlite_utils

from bot.domain.retention import Retention
from bot.flows.retention import CHUNK_ROWS, Pruner, PruneTimer
from bot.sandbox.serving import serve
from bot.store import MIGRATIONS, Delivery, Store
from bot.store.schema import _m6_retention
from bot.store.sql import insert
from bot.web import PRUNER, create_app
from tests.conftest import SHOP, Server, example_payload, server_settings, wait_for
from tests.old_schema import migrate_to_before

NOW = datetime(2027, 6, 1, 12, tzinfo=UTC)
OLD = timedelta(days=40)  # past the 30-day history window
RECENT = timedelta(days=1)
ANCIENT = timedelta(days=500)  # past the 400-day audit window


def at(moment: datetime) -> str:
    return moment.isoformat()


def history(now: datetime) -> Callable[[sqlite_utils.Database], None]:
    """A write adding one row per case of every table with a window, dated back from `now`; each row's label says
    whether it must stay after pruning with the default windows."""
    return lambda db: _add_history(db, now - OLD, now - RECENT, now - ANCIENT, now)


def _add_history(db: sqlite_utils.Database, old: datetime, recent: datetime, ancient: datetime, now: datetime) -> None:
    def delivery(label: str, status: str, received: datetime) -> None:
        insert(
            db,
            "inbox",
            {"webhook_id": label, "topic": "orders/updated", "status": status, "received_at": at(received)},
        )

    delivery("old processed: goes", "processed", old)
    delivery("old ignored: goes", "ignored", old)
    delivery("old failed: goes", "failed", old)
    delivery("old pending: stays", "pending", old)
    delivery("recent processed: stays", "processed", recent)

    def message(label: str, status: str, created: datetime) -> None:
        insert(
            db,
            "outbox",
            {"kind": "reply", "order_id": label, "payload": "{}", "status": status, "created_at": at(created)},
        )

    message("old sent: goes", "sent", old)
    message("old failed: goes", "failed", old)
    message("old dropped: goes", "dropped", old)
    message("old pending: stays", "pending", old)
    message("old sending: stays", "sending", old)
    message("recent sent: stays", "sent", recent)

    for label, started in (("old: goes", old), ("recent: stays", recent)):
        insert(db, "scans", {"started_at": at(started), "finished_at": at(started), "error": label})
        insert(
            db,
            "resolutions",
            {"order_id": label, "stuck_since": at(started - timedelta(days=2)), "resolved_at": at(started)},
        )
        insert(db, "counters", {"day": at(started)[:10], "name": label, "value": 1})
        insert(db, "stuck_days", {"day": at(started)[:10], "reason": label, "count": 1, "taken_at": at(started)})
        insert(db, "digests", {"day": at(started)[:10], "claimed_at": at(started), "posted_at": at(started)})
        insert(db, "snoozes", {"order_id": label, "until": at(started), "by": "U1", "at": at(started)})
    insert(
        db, "snoozes", {"order_id": "future: stays", "until": at(now + timedelta(days=3)), "by": "U1", "at": at(old)}
    )

    def run(label: str, status: str, created: datetime, finished: datetime | None) -> None:
        run_id = insert(
            db,
            "bulk_runs",
            {
                "action": "archive",
                "command": label,
                "actor": "U1",
                "status": status,
                "created_at": at(created),
                "finished_at": at(finished) if finished else None,
            },
        )
        for position in range(3):
            insert(db, "bulk_items", {"run_id": run_id, "position": position, "order_id": label, "status": "done"})

    run("old done: goes", "done", old, old)
    run("old stopped: goes", "stopped", old, old)
    run("old expired preview: goes", "expired", old, None)
    run("old running: stays", "running", old, None)
    run("old previewed: stays", "previewed", old, None)
    run("recent done: stays", "done", recent, recent)

    for label, moment in (("ancient: goes", ancient), ("old: stays", old), ("recent: stays", recent)):
        audit = {"at": at(moment), "actor": "U1", "action": "archive", "inputs": "{}", "outcome": "done"}
        insert(db, "audit", {**audit, "order_id": label})


LABELS = {
    "inbox": "webhook_id",
    "outbox": "order_id",
    "scans": "error",
    "resolutions": "order_id",
    "counters": "name",
    "stuck_days": "reason",
    "snoozes": "order_id",
    "bulk_runs": "command",
    "bulk_items": "order_id",
    "audit": "order_id",
}


async def labels_left(store: Store) -> dict[str, set[str]]:
    def select(db: sqlite_utils.Database) -> dict[str, set[str]]:
        left = {
            table: {row[0] for row in db.execute(f"SELECT {column} FROM {table}")} for table, column in LABELS.items()
        }
        left["digests"] = {row[0] for row in db.execute("SELECT day FROM digests")}
        return left

    return await store.read(select)


def staying(labels: set[str]) -> set[str]:
    return {label for label in labels if label.endswith("stays")}


async def test_history_older_than_its_window_goes_and_pending_work_and_newer_rows_stay(tmp_path):
    store = await Store(str(tmp_path / "o.db")).open()
    await store.write(history(NOW))
    before = await labels_left(store)

    report = await Pruner(store, Retention(history_days=30, audit_days=400), now=lambda: NOW).prune()

    left = await labels_left(store)
    await store.close()
    for table in LABELS:
        assert left[table] == staying(before[table]), table
    assert left["digests"] == {at(NOW - RECENT)[:10]}
    assert report.deleted == {
        "inbox": 3,
        "outbox": 3,
        "scans": 1,
        "resolutions": 1,
        "stuck_days": 1,
        "counters": 1,
        "digests": 1,
        "bulk_items": 9,
        "bulk_runs": 3,
        "snoozes": 1,
        "audit": 1,
    }


async def test_a_redelivery_within_the_window_is_still_a_duplicate_after_pruning(tmp_path):
    """The inbox row is what makes a webhook Shopify sends again a duplicate: it outlives every retry (the shortest
    window, 3 days, against Shopify's 4 hours), and only past the window is the same id taken as new."""
    store = await Store(str(tmp_path / "o.db")).open()
    delivery = Delivery("wh-1", "ev-1", "orders/updated", SHOP, None, "orders/updated|gid://shopify/Order/1|t", "{}")
    assert await store.add_deliveries([delivery]) == [True]
    await store.write(lambda db: db.execute("UPDATE inbox SET status = 'processed', body = NULL"))
    received = datetime.now(UTC)

    await Pruner(store, Retention(history_days=3), now=lambda: received + timedelta(days=2, hours=23)).prune()
    again = await store.add_deliveries([delivery])
    await store.add_deliveries([Delivery("wh-2", "ev-2", "orders/create", SHOP, None, None, "{}")])  # the newest stays
    await Pruner(store, Retention(history_days=3), now=lambda: received + timedelta(days=3, minutes=1)).prune()
    past_the_window = await store.add_deliveries([delivery])
    await store.close()
    assert again == [False]
    assert past_the_window == [True]


async def test_an_audit_window_of_zero_keeps_the_audit_log_forever(tmp_path):
    store = await Store(str(tmp_path / "o.db")).open()
    await store.write(history(NOW))

    report = await Pruner(store, Retention(history_days=30, audit_days=0), now=lambda: NOW).prune()

    left = await labels_left(store)
    await store.close()
    assert left["audit"] == {"ancient: goes", "old: stays", "recent: stays"}
    assert "audit" not in report.deleted
    assert report.deleted["inbox"] == 3  # the rest is pruned as usual


async def test_the_newest_row_stays_however_old_so_health_and_the_digest_still_see_it(tmp_path):
    """A shop quiet for longer than the window: its last scan is still the health check's, its last posted digest
    still what the next one compares with, and no id is handed out twice."""
    store = await Store(str(tmp_path / "o.db")).open()

    def old_only(db: sqlite_utils.Database) -> None:
        for days in (90, 60, 45):
            moment = NOW - timedelta(days=days)
            insert(db, "scans", {"started_at": at(moment), "finished_at": at(moment)})
            counts = json.dumps({"on_hold": days})
            insert(
                db,
                "digests",
                {"day": at(moment)[:10], "claimed_at": at(moment), "posted_at": at(moment), "counts": counts},
            )
            audit = {"at": at(moment - timedelta(days=400)), "actor": "U1", "action": "snooze", "outcome": "done"}
            insert(db, "audit", audit)

    await store.write(old_only)
    await Pruner(store, Retention(), now=lambda: NOW).prune()

    health = await store.health()
    counts = await store.read(lambda db: json.loads(db.execute("SELECT counts FROM digests").fetchone()[0]))
    audit_ids = await store.read(lambda db: [r[0] for r in db.execute("SELECT id FROM audit")])
    await store.close()
    assert health["last_scan"] == at(NOW - timedelta(days=45))
    assert counts == {"on_hold": 45}
    assert audit_ids == [3]


def file_pages(path: Path) -> tuple[int, int]:
    """(page_count, freelist_count), read as an operator would."""
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute("PRAGMA page_count").fetchone()[0], conn.execute("PRAGMA freelist_count").fetchone()[0]


async def test_the_file_shrinks_after_pruning(tmp_path):
    path = tmp_path / "o.db"
    store = await Store(str(path)).open()
    rows = 20 * CHUNK_ROWS
    old = NOW - OLD

    def many(db: sqlite_utils.Database) -> None:
        db.conn.executemany(
            "INSERT INTO inbox (webhook_id, event_id, topic, body_key, status, received_at, processed_at, shop)"
            " VALUES (?, ?, 'orders/updated', ?, 'processed', ?, ?, ?)",
            [
                (
                    f"wh-{n:08d}-" + "x" * 30,
                    f"ev-{n:012d}",
                    f"gid://shopify/Order/{n}@{at(old)}",
                    at(old),
                    at(old),
                    SHOP,
                )
                for n in range(rows)
            ],
        )
        new = {"webhook_id": "new", "topic": "orders/updated", "status": "processed", "received_at": at(NOW - RECENT)}
        insert(db, "inbox", new)

    await store.write(many)
    await store.checkpoint()
    pages_before, _ = file_pages(path)
    size_before = os.path.getsize(path)

    report = await Pruner(store, Retention(), now=lambda: NOW).prune()
    await store.checkpoint()

    pages_after, free_after = file_pages(path)
    size_after = os.path.getsize(path)
    await store.close()
    print(f"{rows} deliveries pruned: {pages_before} -> {pages_after} pages, {size_before} -> {size_after} bytes")
    assert report.deleted["inbox"] == rows
    assert report.pages_given_back > 0
    assert free_after == 0
    assert pages_after < pages_before / 4
    assert size_after == pages_after * 4096 < size_before / 4


async def test_an_existing_database_upgrades_in_place_to_give_space_back(tmp_path):
    """A file made before pruning existed (auto_vacuum off) keeps its rows and switches to incremental vacuum."""
    path = tmp_path / "o.db"
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        db = sqlite_utils.Database(conn)
        migrate_to_before(db, _m6_retention)
        insert(db, "audit", {"at": at(NOW), "actor": "U1", "action": "archive", "outcome": "done"})
        assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 0

    store = await Store(str(path)).open()
    mode, version, audit = await store.read(
        lambda db: (
            db.execute("PRAGMA auto_vacuum").fetchone()[0],
            db.execute("PRAGMA user_version").fetchone()[0],
            db.execute("SELECT count(*) FROM audit").fetchone()[0],
        )
    )
    await store.close()
    assert (mode, version, audit) == (2, len(MIGRATIONS), 1)  # 2: INCREMENTAL


async def test_the_running_server_prunes_by_itself(sandbox, tmp_path):
    """Started on a database with old history, the server prunes it in the background while it goes on storing and
    processing webhooks; a pass that began after a webhook was processed is the signal to look."""
    shop, shop_url = sandbox
    db_path = tmp_path / "orderbot.db"
    store = await Store(str(db_path)).open()
    await store.write(history(datetime.now(UTC)))
    await store.write(lambda db: db.execute("DELETE FROM inbox WHERE status = 'pending'"))  # no body to process
    await store.close()
    app = create_app(server_settings(shop, shop_url, db_path), reconcile=False, prune_timer=PruneTimer(0, 0.05))
    runner, url = await serve(app)
    try:
        async with aiohttp.ClientSession() as http:
            server = Server(url, app, shop, db_path, http)
            response = await server.post_webhook("orders/updated", example_payload("orders/updated"))
            assert response.status == 200
            await server.settled()
            passes = app[PRUNER].passes
            await wait_for(lambda: app[PRUNER].passes >= passes + 2)  # one may have begun before the webhook
            inbox = {row[0] for row in server.rows("SELECT status FROM inbox")}
            outbox = {row[0] for row in server.rows("SELECT order_id FROM outbox")}
            audit = {row[0] for row in server.rows("SELECT order_id FROM audit")}
    finally:
        await runner.cleanup()
    assert inbox == {"processed"}
    assert len(server.rows("SELECT 1 FROM inbox")) == 2  # the recent delivery and the one just received
    assert outbox == {"old pending: stays", "old sending: stays", "recent sent: stays"}
    assert audit == {"old: stays", "recent: stays"}
