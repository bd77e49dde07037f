"""Reads for the App Home board: the stuck orders with their severity and buttons, a day's snapshot of the stuck
counts, the orders shown, and the newest webhook. Plain functions of a `sqlite_utils.Database`, run through
`Store.read`."""

from __future__ import annotations

import json
from datetime import date, datetime

import sqlite_utils

from bot.domain.home import StuckRow
from bot.domain.orders import Order, order_from_record


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


def orders_by_id(db: sqlite_utils.Database, ids: list[str]) -> dict[str, Order]:
    """The stored orders among `ids`, in one query (the board shows up to ten)."""
    rows = db.execute("SELECT id, record FROM orders WHERE id IN (SELECT value FROM json_each(?))", [json.dumps(ids)])
    return {order_id: order_from_record(json.loads(record)) for order_id, record in rows}
