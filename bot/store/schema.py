"""The schema, as migrations: PRAGMA user_version counts the ones applied."""

from __future__ import annotations

import json
from collections.abc import Callable

import sqlite_utils

from bot.domain.orders import order_from_record
from bot.domain.rules import needs_watching


def _m1_initial(db: sqlite_utils.Database) -> None:
    db["inbox"].create(
        {
            "id": int,
            "webhook_id": str,
            "event_id": str,
            "topic": str,
            "shop": str,
            "triggered_at": str,
            "body_key": str,
            "body": str,
            "received_at": str,
            "status": str,
            "attempts": int,
            "error": str,
            "processed_at": str,
        },
        pk="id",
        not_null={"topic", "received_at", "status"},
        defaults={"status": "pending", "attempts": 0},
    )
    db.execute("CREATE UNIQUE INDEX inbox_webhook_id ON inbox(webhook_id)")
    db.execute("CREATE UNIQUE INDEX inbox_event ON inbox(event_id, topic)")
    db.execute("CREATE UNIQUE INDEX inbox_body_key ON inbox(body_key)")
    db.execute("CREATE INDEX inbox_pending ON inbox(status) WHERE status = 'pending'")
    db["orders"].create(
        {
            "id": str,
            "name": str,
            "updated_ts": float,
            "created_ts": float,
            "is_open": int,
            "fulfillment_status": str,
            "customer_email": str,
            "record": str,
            "first_seen_at": str,
            "last_seen_at": str,
            "webhook_seen": int,
        },
        pk="id",
    )
    db.execute("CREATE INDEX orders_open ON orders(is_open)")
    db.execute("CREATE INDEX orders_email ON orders(customer_email)")
    db["verdicts"].create(
        {
            "order_id": str,
            "status": str,
            "stuck": int,
            "reason": str,
            "severity": str,
            "since": str,
            "due_at": str,
            "explanation": str,
            "next_steps": str,
            "actions": str,
            "classified_at": str,
            "stuck_since_seen": str,
            "found_by": str,
        },
        pk="order_id",
    )
    db.execute("CREATE INDEX verdicts_stuck ON verdicts(stuck, reason)")
    db["alerts"].create(
        {"order_id": str, "channel": str, "ts": str, "state": str, "posted_at": str, "updated_at": str},
        pk="order_id",
    )
    db["audit"].create(
        {
            "id": int,
            "at": str,
            "actor": str,
            "action": str,
            "order_id": str,
            "inputs": str,
            "outcome": str,
            "error": str,
            "duration_ms": float,
            "channel": str,
            "ts": str,
        },
        pk="id",
    )
    db.execute("CREATE INDEX audit_order ON audit(order_id, at)")
    db.execute("CREATE INDEX audit_at ON audit(at)")
    db["settings"].create({"key": str, "value": str, "updated_at": str, "updated_by": str}, pk="key")
    db["snoozes"].create({"order_id": str, "until": str, "by": str, "at": str}, pk="order_id")
    db["scans"].create(
        {
            "id": int,
            "started_at": str,
            "finished_at": str,
            "orders_seen": int,
            "stuck": int,
            "missed_by_webhooks": int,
            "error": str,
        },
        pk="id",
    )
    db["counters"].create({"day": str, "name": str, "value": int}, pk=("day", "name"))


def _m2_slack(db: sqlite_utils.Database) -> None:
    """Alerts remember what they showed; the outbox holds Slack posts until Slack has them; action locks stop a
    second click from acting twice."""
    db["alerts"].add_column("fingerprint", str)
    db["alerts"].add_column("reason", str)
    db["alerts"].add_column("resolution", str)
    db["outbox"].create(
        {
            "id": int,
            "kind": str,  # "alert": post or update the order's alert; "reply": a reply in the alert's thread
            "order_id": str,
            "priority": int,  # 0 for what a person just did, 1 for new alerts
            "payload": str,
            "status": str,  # pending, sending (a call is in flight), sent, failed, dropped
            "attempts": int,
            "not_before": float,
            "maybe_posted": int,  # a first post's call failed in a way that may have reached Slack anyway
            "created_at": str,
            "sent_at": str,
            "error": str,
        },
        pk="id",
        not_null={"kind", "order_id", "payload", "status"},
        defaults={"status": "pending", "attempts": 0, "not_before": 0.0, "priority": 1, "maybe_posted": 0},
    )
    # At most one pending alert per order: a newer version replaces the one Slack has not seen yet.
    db.execute("CREATE UNIQUE INDEX outbox_one_alert ON outbox(order_id) WHERE kind = 'alert' AND status = 'pending'")
    db.execute("CREATE INDEX outbox_pending ON outbox(priority, id) WHERE status = 'pending'")
    db["action_locks"].create(
        {"order_id": str, "action": str, "actor": str, "started_at": str}, pk=("order_id", "action")
    )


def _m3_commands(db: sqlite_utils.Database) -> None:
    """`/orders`: orders found by name, audit by person; the daily digest's claim per day and the resolutions it
    counts; bulk runs and their orders, so a restart resumes a run without repeating finished orders."""
    db.execute("CREATE INDEX orders_name ON orders(name)")
    db.execute("CREATE INDEX audit_actor ON audit(actor, at)")
    db["digests"].create(
        {
            "day": str,  # YYYY-MM-DD in the digest's time zone; the row is the claim: one digest per day
            "claimed_at": str,  # the first claim: a retry looks for a message posted since then
            "attempt_at": str,  # when the attempt in flight began; another may take over once it is old (a crash)
            "attempts": int,
            "posted_at": str,
            "channel": str,
            "ts": str,
            "counts": str,  # JSON {reason: stuck orders} at that digest, for "change since the last digest"
            "error": str,
        },
        pk="day",
    )
    db["resolutions"].create(
        {
            "id": int,
            "order_id": str,
            "reason": str,  # what it was stuck for
            "stuck_since": str,
            "resolved_at": str,
        },
        pk="id",
        not_null={"order_id", "stuck_since", "resolved_at"},
    )
    db.execute("CREATE INDEX resolutions_at ON resolutions(resolved_at)")
    db.execute("CREATE INDEX inbox_received ON inbox(received_at)")  # the digest's deliveries in the last 24 h
    db["bulk_runs"].create(
        {
            "id": int,
            "action": str,  # an action id
            "command": str,  # the text as typed, for the preview and the summary
            "inputs": str,  # JSON, shared by every order (e.g. {"for": "1d"})
            "actor": str,  # who asked; who confirmed is in `confirmed_by`
            "confirmed_by": str,
            "stopped_by": str,  # who clicked Stop
            "channel": str,  # where the progress message is (SLACK_CHANNEL_ID)
            "message_ts": str,  # the progress message, updated in place, which ends as the summary
            "status": str,  # previewed, running, stopping, stopped, done, cancelled, expired
            "total": int,
            "created_at": str,
            "started_at": str,
            "finished_at": str,
        },
        pk="id",
        not_null={"action", "actor", "status"},
    )
    db["bulk_items"].create(
        {
            "run_id": int,
            "position": int,
            "order_id": str,
            "order_name": str,
            "status": str,  # pending, done, skipped, failed
            "outcome": str,  # what Actions.run said: done, already, refused, busy, failed
            "message": str,  # its words to the person: why it was skipped or failed
            "finished_at": str,
        },
        pk=("run_id", "position"),
        not_null={"order_id", "status"},
        defaults={"status": "pending"},
    )
    db.execute("CREATE INDEX bulk_items_status ON bulk_items(run_id, status)")


def _m4_inbox(db: sqlite_utils.Database) -> None:
    """A delivery that fails waits for `retry_at` (epoch seconds) before its next try, and is parked after the last;
    the deliveries that failed before this version were never retried, so they are parked already. A verdict
    remembers when it was computed (`computed_ts`, epoch seconds): an earlier computation never replaces it."""
    db["inbox"].add_column("retry_at", float)
    db.execute("UPDATE inbox SET status = 'parked' WHERE status = 'failed'")
    db.execute("CREATE INDEX inbox_parked ON inbox(processed_at) WHERE status = 'parked'")
    db["verdicts"].add_column("computed_ts", float)


def _m5_scan(db: sqlite_utils.Database) -> None:
    """Reconciliation keeps checking only the orders it watches (rules.needs_watching), no longer every open one: each
    order's `watched` flag, set here from its stored record; and each scan's kind (a full sweep, or changes only:
    rows from before say neither, so the first scan after the upgrade is a full sweep)."""
    db["orders"].add_column("watched", int, not_null_default=0)
    rows = db.execute("SELECT id, record FROM orders WHERE is_open = 1").fetchall()
    db.conn.executemany(
        "UPDATE orders SET watched = 1 WHERE id = ?",
        [(order_id,) for order_id, record in rows if needs_watching(order_from_record(json.loads(record)))],
    )
    db.execute("CREATE INDEX orders_watched ON orders(watched) WHERE watched = 1")
    db["scans"].add_column("kind", str)


def _m6_retention(db: sqlite_utils.Database) -> None:
    """Old history is pruned (bot/flows/retention.py): the outbox's finished messages by age, and the file gives the
    freed pages back (auto_vacuum=INCREMENTAL). SQLite switches an existing file to it only through a VACUUM, which
    rewrites the whole file and cannot run inside a transaction: this migration commits the (empty) transaction it
    runs in, vacuums, and opens a new one for the rest. Stopped in between, it runs again from the start."""
    db.conn.execute("COMMIT")
    db.conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
    db.conn.execute("VACUUM")
    db.conn.execute("BEGIN IMMEDIATE")
    db.execute("CREATE INDEX outbox_created ON outbox(created_at)")


def _m7_cancellations(db: sqlite_utils.Database) -> None:
    """Order cancellations in flight: Shopify cancels in the background (orderCancel answers a job), so the request,
    and its job once Shopify has answered, are kept until Shopify shows the order cancelled or the wait gives up; a
    restart goes on following them. A row exists only while a cancellation is in flight."""
    db["cancellations"].create(
        {
            "order_id": str,
            "job_id": str,  # Shopify's Job id; NULL until orderCancel answered (never, when its answer was lost)
            "actor": str,  # the Slack user who asked
            "detail": str,  # what they chose (reason, refund), for the alert and the thread once it is done
            "requested_at": str,
        },
        pk="order_id",
        not_null={"actor", "requested_at"},
    )


def _m8_stuck_days(db: sqlite_utils.Database) -> None:
    """The digest's chart: stuck orders by reason per UTC day (the day's last snapshot, taken at each successful scan
    and each digest), since the verdicts hold only the present and a snooze leaves no resolution behind."""
    db["stuck_days"].create(
        {"day": str, "reason": str, "count": int, "taken_at": str},
        pk=("day", "reason"),
        not_null={"count", "taken_at"},
    )


def _m9_alert_burst(db: sqlite_utils.Database) -> None:
    """A scan that finds many stuck orders at once alerts the most urgent and posts one summary for the others
    (bot/domain/burst.py): the summary belongs to no order's alert, so the outbox keeps its channel itself. The
    alerts held back are rows of `alerts` in state `held` (no message yet); no column is needed for them."""
    db["outbox"].add_column("channel", str)


def _m10_bulk_cancel(db: sqlite_utils.Database) -> None:
    """A bulk cancel's orders are only requested when the run is done with them: Shopify cancels in the background.
    Each item keeps how its cancellation settled (cancelled, not_cancelled, unconfirmed, gone), so that the run's
    summary counts requested and cancelled apart, and a restart still knows."""
    db["bulk_items"].add_column("settled", str)
    db.execute("CREATE INDEX bulk_items_order ON bulk_items(order_id)")


def _m11_summary_shown(db: sqlite_utils.Database) -> None:
    """How many settled cancellations a bulk cancel's summary showed when last drawn (`settled_shown`): a summary
    showing fewer than are settled is out of date, and a start draws it again (a crash can come between a
    settlement's write and the summary's redraw). Runs ended before this count as drawn: nothing says otherwise."""
    db["bulk_runs"].add_column("settled_shown", int)
    db.execute(
        "UPDATE bulk_runs SET settled_shown = (SELECT count(*) FROM bulk_items i"
        " WHERE i.run_id = bulk_runs.id AND i.status = 'done' AND i.settled IS NOT NULL)"
        " WHERE action = 'cancel_order'"
    )


MIGRATIONS: tuple[Callable[[sqlite_utils.Database], None], ...] = (
    _m1_initial,
    _m2_slack,
    _m3_commands,
    _m4_inbox,
    _m5_scan,
    _m6_retention,
    _m7_cancellations,
    _m8_stuck_days,
    _m9_alert_burst,
    _m10_bulk_cancel,
    _m11_summary_shown,
)
