"""Reads for the App Home board: the stuck orders with their severity and buttons, a day's snapshot of the stuck
counts, and the newest webhook. Plain functions of a `sqlite_utils.Database`, run through `Store.read`."""

from __future__ import annotations

import json
from datetime import date, datetime

import sqlite_utils

from bot.domain.home import StuckRow


def stuck_rows(db: sqlite_utils.Database) -> list[StuckRow]:
    rows = db.execute(
        "SELECT v.order_id, o.name, v.reason, v.severity, coalesce(v.since, v.stuck_since_seen), v.actions"
        " FROM verdicts v JOIN orders o ON o.id = v.order_id WHERE v.stuck = 1"
    )
    return [
        StuckRow(order_id, name, reason, severity, datetime.fromisoformat(since), tuple(json.loads(actions or "[]")))
        for order_id, name, reason, severity, since, actions in rows
    ]


def day_counts(db: sqlite_utils.Database, day: date) -> dict[str, int] | None:
    """The stuck orders by reason in the UTC day's snapshot (stuck_days); None when that day has none."""
    rows = db.execute("SELECT reason, count FROM stuck_days WHERE day = ?", [day.isoformat()]).fetchall()
    return dict(rows) if rows else None


def last_delivery(db: sqlite_utils.Database) -> datetime | None:
    row = db.execute("SELECT max(received_at) FROM inbox").fetchone()
    return datetime.fromisoformat(row[0]) if row and row[0] else None
