"""The inbox: webhook deliveries as they arrived, until processed (docs/architecture.md, "Deduplication").
Mixed into Store, which provides `read`, `write` and `write_durably` (the ingest thread's commit, core.py).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlite_utils

from bot.domain.orders import fields_read
from bot.store.alerts import AlertSync, sync_alerts
from bot.store.sql import bump_counter, epoch, now_iso
from bot.store.verdicts import Classified, save_current_verdicts


@dataclass(frozen=True, slots=True)
class Delivery:
    """One webhook delivery as it arrived, before processing."""

    webhook_id: str | None
    event_id: str | None
    topic: str
    shop: str | None
    triggered_at: str | None
    body_key: str | None  # the body's identity (e.g. order id + updated_at): a replay under fresh ids still matches
    body: str


@dataclass(frozen=True, slots=True)
class StoredDelivery:
    id: int
    topic: str
    shop: str | None
    body: str | None  # None: erased (by an older orderbot's redaction, or by hand)
    received_at: str
    attempts: int = 0  # tries so far


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """How a try at a delivery ended. `status`: processed, ignored (a topic orderbot does not use), pending (it
    failed and is tried again at `retry_at`) or parked (it failed for good: `error` says why)."""

    id: int
    status: str
    error: str | None = None
    retry_at: datetime | None = None


class InboxTables:
    """The inbox methods of Store."""

    read: Callable[..., Awaitable[Any]]
    write: Callable[..., Awaitable[Any]]
    write_durably: Callable[..., Awaitable[Any]]

    async def add_deliveries(self, deliveries: list[Delivery]) -> list[bool]:
        """Store a batch in one commit; True for each delivery that is new, False for a duplicate.

        The write runs on the ingest thread, on its connection of its own: a batch is three statements (BEGIN
        IMMEDIATE, INSERT OR IGNORE, COMMIT, which syncs the WAL) and no checkpoint. Only when the unique indexes
        dropped a row does a second query find which (the new rows hold the highest ids). Raises
        sqlite3.OperationalError when the database stayed locked (INGEST_BUSY_TIMEOUT_MS, core.py).
        """

        def store_batch(db: sqlite_utils.Database) -> list[bool]:
            received = now_iso()
            fresh, rows = _first_of_each(deliveries)
            before = db.conn.total_changes
            for start in range(0, len(rows), 100):  # 100 rows x 8 values stays under SQLite's variable limit
                chunk = rows[start : start + 100]
                values = [
                    (d.webhook_id, d.event_id, d.topic, d.shop, d.triggered_at, d.body_key, d.body, received)
                    for d in chunk
                ]
                db.execute(
                    "INSERT OR IGNORE INTO inbox (webhook_id, event_id, topic, shop, triggered_at, body_key, body,"
                    " received_at) VALUES " + ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?)"] * len(chunk)),
                    [v for row in values for v in row],
                )
            inserted = db.conn.total_changes - before
            if inserted < len(rows):
                new = _identities_of_newest(db, inserted)
                fresh = [is_new and bool(_identities(d) & new) for d, is_new in zip(deliveries, fresh, strict=True)]
            if inserted < len(deliveries):
                bump_counter(db, received[:10], "webhooks_duplicate", len(deliveries) - inserted)
            return fresh

        return await self.write_durably(store_batch)

    async def pending_deliveries(self, *, due_by: datetime, limit: int = 100) -> list[StoredDelivery]:
        """The oldest pending deliveries, but for those waiting for a retry later than `due_by`."""

        def select(db: sqlite_utils.Database) -> list[StoredDelivery]:
            rows = db.execute(
                "SELECT id, topic, shop, body, received_at, attempts FROM inbox"
                " WHERE status = 'pending' AND (retry_at IS NULL OR retry_at <= ?) ORDER BY id LIMIT ?",
                [epoch(due_by), limit],
            ).fetchall()
            return [StoredDelivery(*row) for row in rows]

        return await self.read(select)

    async def next_retry_at(self) -> datetime | None:
        """When the first delivery waiting for a retry is due; None when none waits."""
        due = await self.read(
            lambda db: db.execute(
                "SELECT min(retry_at) FROM inbox WHERE status = 'pending' AND retry_at IS NOT NULL"
            ).fetchone()[0]
        )
        return None if due is None else datetime.fromtimestamp(due, UTC)

    async def finish_deliveries(
        self,
        outcomes: list[DeliveryOutcome],
        classified: list[Classified],
        *,
        found_by: str,
        alerts: AlertSync | None = None,
    ) -> int:
        """Save a batch's verdicts that are still current (and queue their alerts) and record how its deliveries'
        tries ended, in one commit; return how many alert messages were queued. A processed delivery's body goes (the
        order lives in `orders`, so personal data is kept once); one waiting for a retry keeps it whole; a parked
        one keeps only the fields orderbot reads."""

        def update(db: sqlite_utils.Database) -> int:
            written = save_current_verdicts(db, classified, found_by)
            queued = sync_alerts(db, [(c.order, c.verdict) for c in written], alerts) if alerts else 0
            _minimise_bodies(db, [outcome.id for outcome in outcomes if outcome.status == "parked"])
            now = now_iso()
            db.conn.executemany(
                "UPDATE inbox SET status = ?, error = ?, processed_at = ?, attempts = attempts + 1, retry_at = ?,"
                " body = CASE WHEN ? IN ('pending', 'parked') THEN body ELSE NULL END WHERE id = ?",
                [(o.status, o.error, now, epoch(o.retry_at) if o.retry_at else None, o.status, o.id) for o in outcomes],
            )
            return queued

        return await self.write(update)


def _minimise_bodies(db: sqlite_utils.Database, delivery_ids: list[int]) -> None:
    """Keep of each delivery's body only the fields orderbot reads (orders.fields_read); nothing of one that is not
    JSON (it was parked for that)."""
    for delivery_id in delivery_ids:
        row = db.execute("SELECT body FROM inbox WHERE id = ?", [delivery_id]).fetchone()
        if row and row[0]:
            try:
                kept: str | None = json.dumps(fields_read(json.loads(row[0])))
            except ValueError:
                kept = None
            db.execute("UPDATE inbox SET body = ? WHERE id = ?", [kept, delivery_id])


def _identities(d: Delivery) -> set[tuple[str, ...]]:
    """Every identity under which a delivery counts as already received (docs/architecture.md, "Deduplication")."""
    found: set[tuple[str, ...]] = set()
    if d.webhook_id:
        found.add(("webhook", d.webhook_id))
    if d.event_id:
        found.add(("event", d.topic, d.event_id))
    if d.body_key:
        found.add(("body", d.body_key))
    return found


def _first_of_each(deliveries: list[Delivery]) -> tuple[list[bool], list[Delivery]]:
    """Drop repeats within the batch: (is-first flags, the first deliveries)."""
    seen: set[tuple[str, ...]] = set()
    first: list[bool] = []
    for d in deliveries:
        identities = _identities(d)
        first.append(not identities & seen)
        seen |= identities
    return first, [d for d, is_first in zip(deliveries, first, strict=True) if is_first]


def _identities_of_newest(db: sqlite_utils.Database, count: int) -> set[tuple[str, ...]]:
    rows = db.execute(
        "SELECT webhook_id, topic, event_id, body_key FROM inbox ORDER BY id DESC LIMIT ?", [count]
    ).fetchall()
    found: set[tuple[str, ...]] = set()
    for webhook_id, topic, event_id, body_key in rows:
        found |= _identities(Delivery(webhook_id, event_id, topic, None, None, body_key, ""))
    return found
