"""The orders as last stored: an older copy never replaces a newer one. Mixed into Store, which provides `read`
and `write`."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from bot.domain.orders import Order, order_from_record, order_to_record
from bot.domain.rules import Verdict, needs_watching
from bot.store.alerts import AlertSync, sync_alerts
from bot.store.sql import WRITE_CHUNK, epoch, now_iso

DELETED = Verdict("deleted", explanation="The order was deleted in Shopify.")


@dataclass(frozen=True, slots=True)
class SaveResult:
    saved: bool  # False: the stored order is newer (an out-of-order delivery), or the same version again
    current: Order | None  # what is stored now (with the fulfillment orders kept from before, if it brought none)
    # A webhook body with the stored version's updated_at but other content: Shopify's updated_at has one-second
    # resolution, so either may be the later one. It is stored (it arrived last), and Shopify is asked which is current.
    unsettled: bool = False


class OrderTables:
    """The order methods of Store."""

    read: Callable[..., Awaitable[Any]]
    write: Callable[..., Awaitable[Any]]

    async def save_orders(self, orders: list[Order], *, from_webhook: bool) -> list[SaveResult]:
        """Store each order unless the stored copy is newer, keeping known fulfillment orders when it brings none.
        One commit per WRITE_CHUNK orders."""
        results: list[SaveResult] = []
        for start in range(0, len(orders), WRITE_CHUNK):
            chunk = orders[start : start + WRITE_CHUNK]
            results += await self.write(lambda db, chunk=chunk: [_save_order(db, o, from_webhook) for o in chunk])
        return results

    async def get_order(self, order_id: str) -> Order | None:
        def select(db: sqlite_utils.Database) -> Order | None:
            row = db.execute("SELECT record FROM orders WHERE id = ?", [order_id]).fetchone()
            return order_from_record(json.loads(row[0])) if row else None

        return await self.read(select)

    async def forget_order(self, order_id: str, *, alerts: AlertSync | None = None) -> int:
        """The order was deleted in Shopify. Its alert, if any, is resolved (with `alerts`' resolution for it) in the
        same commit; returns how many alert messages that queued."""

        def delete(db: sqlite_utils.Database) -> int:
            row = db.execute("SELECT record FROM orders WHERE id = ?", [order_id]).fetchone()
            db.execute("DELETE FROM orders WHERE id = ?", [order_id])
            db.execute("DELETE FROM verdicts WHERE order_id = ?", [order_id])
            if row is None or alerts is None:
                return 0
            return sync_alerts(db, [(order_from_record(json.loads(row[0])), DELETED)], alerts)

        return await self.write(delete)

    async def open_orders(self) -> list[Order]:
        def select(db: sqlite_utils.Database) -> list[Order]:
            rows = db.execute("SELECT record FROM orders WHERE is_open = 1").fetchall()
            return [order_from_record(json.loads(r[0])) for r in rows]

        return await self.read(select)

    async def watched_order_ids(self, *, unknown_only: bool = False) -> set[str]:
        """The orders reconciliation watches (rules.needs_watching); `unknown_only`: those of them whose fulfillment
        orders are not known yet (a webhook stored them and the re-read failed)."""
        unknown = " AND record ->> '$.fulfillment_orders' IS NULL" if unknown_only else ""
        return await self.read(
            lambda db: {row[0] for row in db.execute(f"SELECT id FROM orders WHERE watched = 1{unknown}")}
        )

    async def orders_to_classify(self, ids: Iterable[str]) -> list[Order]:
        """The watched orders and the orders `ids`, as stored."""
        wanted = json.dumps(list(ids))

        def select(db: sqlite_utils.Database) -> list[Order]:
            rows = db.execute(
                "SELECT record FROM orders WHERE watched = 1 OR id IN (SELECT value FROM json_each(?))", [wanted]
            )
            return [order_from_record(json.loads(row[0])) for row in rows]

        return await self.read(select)

    async def order_ids_seen_by_webhook(self, ids: Iterable[str]) -> set[str]:
        wanted = list(ids)

        def select(db: sqlite_utils.Database) -> set[str]:
            found: set[str] = set()
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                found.update(
                    r[0] for r in db.execute(f"SELECT id FROM orders WHERE webhook_seen = 1 AND id IN ({marks})", chunk)
                )
            return found

        return await self.read(select)


def _save_order(db: sqlite_utils.Database, order: Order, from_webhook: bool) -> SaveResult:
    """Store `order` unless the stored copy is newer. Of the same updated_at (one-second resolution): a copy read from
    Shopify (it has fulfillment orders) replaces ours; a webhook's that says what ours says is a repeat; one that says
    something else is stored, and unsettled (see SaveResult)."""
    row = db.execute("SELECT record, updated_ts FROM orders WHERE id = ?", [order.id]).fetchone()
    if row and row[1] > epoch(order.updated_at):
        return SaveResult(False, None)  # older
    previous = order_from_record(json.loads(row[0])) if row and order.fulfillment_orders is None else None
    merged = order.with_fulfillment_orders_of(previous)
    same_second = bool(row) and row[1] == epoch(order.updated_at) and order.fulfillment_orders is None
    if same_second and merged == previous:
        return SaveResult(False, None)  # the same version again
    _upsert_order(db, merged, from_webhook=from_webhook, first_seen=None if row else now_iso())
    return SaveResult(True, merged, unsettled=same_second)


def _upsert_order(db: sqlite_utils.Database, order: Order, *, from_webhook: bool, first_seen: str | None) -> None:
    now = now_iso()
    values = [
        order.id,
        order.name,
        epoch(order.updated_at),
        epoch(order.created_at),
        int(not order.closed and not order.cancelled),
        int(needs_watching(order)),
        order.fulfillment_status,
        order.customer.email if order.customer else None,
        json.dumps(order_to_record(order)),
        first_seen or now,
        now,
        int(from_webhook),
    ]
    db.execute(
        "INSERT INTO orders (id, name, updated_ts, created_ts, is_open, watched, fulfillment_status, customer_email,"
        " record, first_seen_at, last_seen_at, webhook_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT(id) DO UPDATE SET name = excluded.name, updated_ts = excluded.updated_ts,"
        " is_open = excluded.is_open, watched = excluded.watched, fulfillment_status = excluded.fulfillment_status,"
        " customer_email = excluded.customer_email, record = excluded.record, last_seen_at = excluded.last_seen_at,"
        " webhook_seen = max(webhook_seen, excluded.webhook_seen)",
        values,
    )
