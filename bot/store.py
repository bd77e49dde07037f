"""SQLite storage (sqlite-utils over WAL): migrations, orders, inbox, verdicts, audit, settings.

Two connections, each used by one thread only (DESIGN §6):
- the database thread (a single-thread executor) runs every call but one, so the event loop never waits on disk
  for them; bulk writes go in chunks of WRITE_CHUNK orders so that no transaction holds the write lock for long;
- the event loop itself stores webhook deliveries (`add_deliveries`): a small group commit that must finish before
  Shopify gets its 200, cheaper inline than handed to another thread.
Writes on either take one threading lock (so the loop waits for at most one chunk of the other's work, not for
SQLite's busy handler, whose growing sleeps stalled the loop for 260 ms in a test) and open with BEGIN IMMEDIATE.
Neither connection checkpoints on commit (a checkpoint copies pages and syncs, slow under the lock); the database
thread runs a PASSIVE checkpoint, which never blocks a writer, at most every CHECKPOINT_SECONDS.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils

from bot.domain.alerts import (
    alert_fingerprint,
    alert_state,
    inferred_resolution,
    plan_alert,
    stuck_again,
    stuck_again_text,
)
from bot.domain.orders import Order, order_from_record, order_to_record
from bot.domain.rules import Verdict

T = TypeVar("T")
INGEST_BUSY_TIMEOUT_MS = 2_000  # only another process (an operator's sqlite3 shell) can make the loop wait on SQLite
CHECKPOINT_SECONDS = 1.0
WRITE_CHUNK = 50  # orders per transaction in bulk writes (a scan), so the event loop's ingest never waits long


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
    body: str
    received_at: str


@dataclass(frozen=True, slots=True)
class SaveResult:
    saved: bool  # False: the stored order is newer (an out-of-order delivery)
    current: Order | None  # what is stored now (with the fulfillment orders kept from before, if it brought none)


@dataclass(frozen=True, slots=True)
class AlertSync:
    """Where verdicts' alerts go and how they look; applied in the same transaction as the verdicts, so that an
    order is never classified stuck without its alert queued."""

    channel: str
    render: Callable[[Order, Verdict, str | None], dict[str, Any]]  # (order, verdict, resolution) -> message
    resolutions: Mapping[str, str] = field(default_factory=dict)  # order id -> who resolved it (a click in Slack)
    refresh_after: timedelta = timedelta(hours=6)  # re-word a stuck alert this old, at the lowest priority


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    kind: str  # "alert" or "reply"
    order_id: str
    payload: dict[str, Any]
    attempts: int
    channel: str | None  # the alert's channel; None when the alert is gone
    ts: str | None  # the alert's message ts; None until it is posted
    maybe_posted: bool = False  # look in the channel before posting again
    created_at: str = ""


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _ts(moment: datetime) -> float:
    return moment.timestamp()


# --- migrations (PRAGMA user_version counts the ones applied) ----------------------------------------------------


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


MIGRATIONS: tuple[Callable[[sqlite_utils.Database], None], ...] = (_m1_initial, _m2_slack)


def connect(path: str, *, busy_timeout_ms: int = 10_000, checkpoints: bool = True) -> sqlite3.Connection:
    """Open the database the way DESIGN §6 measured: WAL, NORMAL sync, a busy timeout, owner-only file mode.
    `checkpoints=False`: no automatic checkpoint on commit; the owner runs them."""
    if path != ":memory:" and not Path(path).exists():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    conn = sqlite3.connect(path, check_same_thread=False, timeout=busy_timeout_ms / 1000, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    if not checkpoints:
        conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("PRAGMA secure_delete=ON")  # erased personal data is overwritten, not left in free pages
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


class Store:
    def __init__(self, path: str):
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="orderbot-db")
        self._write_lock = threading.Lock()
        self._last_checkpoint = 0.0
        self._db: sqlite_utils.Database | None = None
        self._ingest: sqlite_utils.Database | None = None  # used on the event loop only, by add_deliveries

    # --- lifecycle --------------------------------------------------------------------------------------------

    async def open(self) -> Store:
        await self._call(self._open)
        if self.path != ":memory:":  # a second connection to ":memory:" would be another, empty database
            self._ingest = sqlite_utils.Database(
                connect(self.path, busy_timeout_ms=INGEST_BUSY_TIMEOUT_MS, checkpoints=False)
            )
        return self

    def _open(self) -> None:
        self._db = sqlite_utils.Database(connect(self.path, checkpoints=False))
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        for number, migrate in enumerate(MIGRATIONS[version:], start=version + 1):
            self._transaction(lambda db, migrate=migrate, number=number: (migrate(db), _set_version(db, number)))

    async def close(self) -> None:
        if self._ingest is not None:
            self._ingest.conn.close()
            self._ingest = None
        if self._db is not None:
            await self._call(self._db.conn.close)
            self._db = None
        self._executor.shutdown(wait=True)

    @property
    def is_open(self) -> bool:
        return self._db is not None

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _transaction(self, fn: Callable[[sqlite_utils.Database], T]) -> T:
        assert self._db is not None, "the store is not open"
        with self._write_lock:
            result = _in_transaction(self._db, fn)
        if time.monotonic() - self._last_checkpoint > CHECKPOINT_SECONDS:
            self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            self._last_checkpoint = time.monotonic()
        return result

    async def write(self, fn: Callable[[sqlite_utils.Database], T]) -> T:
        """Run `fn(db)` in one transaction on the database thread."""
        return await self._call(self._transaction, fn)

    async def read(self, fn: Callable[[sqlite_utils.Database], T]) -> T:
        return await self._call(lambda: fn(self._db))

    # --- inbox ------------------------------------------------------------------------------------------------

    async def add_deliveries(self, deliveries: list[Delivery]) -> list[bool]:
        """Store a batch in one commit; True for each delivery that is new, False for a duplicate.

        This one write runs on the event loop itself, on a connection of its own (the "one writer task" of
        DESIGN §6): a batch is three statements (BEGIN IMMEDIATE, INSERT OR IGNORE, COMMIT; no sync, no
        checkpoint), about 0.5 ms, while handing it to the database thread cost more than the write itself under
        load (GIL contention: 3,600 instead of 5,000 deliveries/s on 2 cores). Only when the unique indexes dropped
        a row does a second query find which (the new rows hold the highest ids).
        """

        def insert(db: sqlite_utils.Database) -> list[bool]:
            received = _now()
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
                _bump(db, received[:10], "webhooks_duplicate", len(deliveries) - inserted)
            return fresh

        if self._ingest is None:
            return await self.write(insert)
        with self._write_lock:
            return _in_transaction(self._ingest, insert)

    async def pending_deliveries(self, limit: int = 100) -> list[StoredDelivery]:
        def select(db: sqlite_utils.Database) -> list[StoredDelivery]:
            rows = db.execute(
                "SELECT id, topic, shop, body, received_at FROM inbox WHERE status = 'pending' ORDER BY id LIMIT ?",
                [limit],
            ).fetchall()
            return [StoredDelivery(*row) for row in rows]

        return await self.read(select)

    async def finish_deliveries(
        self,
        outcomes: list[tuple[int, str, str | None]],
        verdicts: list[tuple[Order, Verdict]],
        *,
        found_by: str,
        alerts: AlertSync | None = None,
    ) -> int:
        """Save a batch's verdicts (and queue their alerts) and mark its deliveries done, (id, status, error), in one
        commit; return how many alert messages were queued. A processed delivery's body goes (the order lives in
        `orders`, so personal data is kept once); a failed one keeps it."""

        def update(db: sqlite_utils.Database) -> int:
            _save_verdicts(db, [(o.id, v) for o, v in verdicts], found_by)
            queued = _sync_alerts(db, verdicts, alerts) if alerts else 0
            now = _now()
            db.conn.executemany(
                "UPDATE inbox SET status = ?, error = ?, processed_at = ?, attempts = attempts + 1,"
                " body = CASE WHEN ? = 'failed' THEN body ELSE NULL END WHERE id = ?",
                [(status, error, now, status, delivery_id) for delivery_id, status, error in outcomes],
            )
            return queued

        return await self.write(update)

    # --- orders -----------------------------------------------------------------------------------------------

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

    async def forget_order(self, order_id: str) -> None:
        """The order was deleted in Shopify."""

        def delete(db: sqlite_utils.Database) -> None:
            db.execute("DELETE FROM orders WHERE id = ?", [order_id])
            db.execute("DELETE FROM verdicts WHERE order_id = ?", [order_id])

        await self.write(delete)

    async def open_orders(self) -> list[Order]:
        def select(db: sqlite_utils.Database) -> list[Order]:
            rows = db.execute("SELECT record FROM orders WHERE is_open = 1").fetchall()
            return [order_from_record(json.loads(r[0])) for r in rows]

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

    # --- verdicts ---------------------------------------------------------------------------------------------

    async def save_verdicts(
        self, verdicts: list[tuple[Order, Verdict]], *, found_by: str, alerts: AlertSync | None = None
    ) -> int:
        """Store verdicts and queue the alerts they change; return how many alert messages were queued."""

        def save(db: sqlite_utils.Database, chunk: list[tuple[Order, Verdict]]) -> int:
            _save_verdicts(db, [(o.id, v) for o, v in chunk], found_by)
            return _sync_alerts(db, chunk, alerts) if alerts else 0

        queued = 0
        for start in range(0, len(verdicts), WRITE_CHUNK):
            queued += await self.write(lambda db, chunk=verdicts[start : start + WRITE_CHUNK]: save(db, chunk))
        return queued

    async def verdict_of(self, order_id: str) -> dict[str, Any] | None:
        return await self.read(lambda db: next(db.query("SELECT * FROM verdicts WHERE order_id = ?", [order_id]), None))

    async def verdict_rows(self, *, stuck_only: bool = False) -> list[dict[str, Any]]:
        def select(db: sqlite_utils.Database) -> list[dict[str, Any]]:
            where = "WHERE v.stuck = 1" if stuck_only else ""
            return list(
                db.query(
                    f"SELECT v.*, o.name FROM verdicts v JOIN orders o ON o.id = v.order_id {where} ORDER BY v.since"
                )
            )

        return await self.read(select)

    # --- settings and snoozes ---------------------------------------------------------------------------------

    async def settings(self) -> dict[str, str]:
        return await self.read(lambda db: {r["key"]: r["value"] for r in db["settings"].rows})

    async def set_setting(self, key: str, value: str, by: str) -> None:
        await self.write(
            lambda db: db.execute(
                "INSERT OR REPLACE INTO settings (key, value, updated_at, updated_by) VALUES (?, ?, ?, ?)",
                [key, value, _now(), by],
            )
        )

    async def snoozes(self) -> dict[str, datetime]:
        return await self.read(
            lambda db: {r["order_id"]: datetime.fromisoformat(r["until"]) for r in db["snoozes"].rows}
        )

    async def snooze(self, order_id: str, until: datetime, by: str) -> None:
        await self.write(
            lambda db: db.execute(
                "INSERT OR REPLACE INTO snoozes (order_id, until, by, at) VALUES (?, ?, ?, ?)",
                [order_id, until.isoformat(), by, _now()],
            )
        )

    # --- alerts and the Slack outbox --------------------------------------------------------------------------

    async def alert(self, order_id: str) -> dict[str, Any] | None:
        return await self.read(lambda db: next(db.query("SELECT * FROM alerts WHERE order_id = ?", [order_id]), None))

    async def alert_at(self, channel: str, ts: str) -> dict[str, Any] | None:
        return await self.read(
            lambda db: next(db.query("SELECT * FROM alerts WHERE channel = ? AND ts = ?", [channel, ts]), None)
        )

    async def enqueue_reply(self, order_id: str, text: str) -> bool:
        """Queue a reply in the order's alert thread; False when the order has no alert to reply to."""

        def insert(db: sqlite_utils.Database) -> bool:
            if not db.execute("SELECT 1 FROM alerts WHERE order_id = ?", [order_id]).fetchone():
                return False
            _insert(
                db,
                "outbox",
                {
                    "kind": "reply",
                    "order_id": order_id,
                    "priority": 0,
                    "payload": json.dumps({"text": text}),
                    "created_at": _now(),
                },
            )
            return True

        return await self.write(insert)

    async def outbox_ready(self, now: float, limit: int = 50) -> list[OutboxItem]:
        """Pending messages due by `now`: what a person just did first, then by age."""

        def select(db: sqlite_utils.Database) -> list[OutboxItem]:
            rows = db.execute(
                "SELECT o.id, o.kind, o.order_id, o.payload, o.attempts, a.channel, a.ts, o.maybe_posted,"
                " o.created_at FROM outbox o LEFT JOIN alerts a ON a.order_id = o.order_id"
                " WHERE o.status = 'pending' AND o.not_before <= ? ORDER BY o.priority, o.id LIMIT ?",
                [now, limit],
            ).fetchall()
            return [OutboxItem(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5], r[6], bool(r[7]), r[8]) for r in rows]

        return await self.read(select)

    async def outbox_next_due(self) -> float | None:
        return await self.read(
            lambda db: db.execute("SELECT min(not_before) FROM outbox WHERE status = 'pending'").fetchone()[0]
        )

    async def outbox_claim(self, item: OutboxItem) -> bool:
        """Mark the item in flight. A change queued meanwhile then becomes a new pending row (the unique index
        covers pending rows only) instead of being overwritten into a row about to be marked sent."""
        return await self.write(
            lambda db: (
                db.execute(
                    "UPDATE outbox SET status = 'sending' WHERE id = ? AND status = 'pending'", [item.id]
                ).rowcount
                == 1
            )
        )

    async def outbox_recover(self) -> int:
        """At start: a call in flight when the process stopped may or may not have reached Slack."""

        def recover(db: sqlite_utils.Database) -> int:
            ids = [r[0] for r in db.execute("SELECT id FROM outbox WHERE status = 'sending'")]
            for outbox_id in ids:
                _back_to_pending(db, outbox_id, 0.0, "interrupted", maybe_posted=True)
            return len(ids)

        return await self.write(recover)

    async def outbox_sent(self, item: OutboxItem, ts: str | None) -> None:
        """Slack has it. A first post's ts becomes the alert's; the payload goes (it holds the customer's name)."""

        def update(db: sqlite_utils.Database) -> None:
            now = _now()
            db.execute(
                "UPDATE outbox SET status = 'sent', sent_at = ?, payload = '{}', attempts = attempts + 1 WHERE id = ?",
                [now, item.id],
            )
            if item.kind == "alert" and item.ts is None and ts:
                db.execute(
                    "UPDATE alerts SET ts = ?, posted_at = ? WHERE order_id = ? AND ts IS NULL",
                    [ts, now, item.order_id],
                )

        await self.write(update)

    async def outbox_retry(self, item: OutboxItem, not_before: float, error: str, *, maybe_posted: bool) -> None:
        await self.write(lambda db: _back_to_pending(db, item.id, not_before, error, maybe_posted=maybe_posted))

    async def outbox_give_up(self, item: OutboxItem, status: str, error: str) -> None:
        """`failed`: Slack refused this message itself; `dropped`: it has nowhere to go (its alert is gone)."""
        await self.write(
            lambda db: db.execute(
                "UPDATE outbox SET status = ?, error = ?, payload = '{}', attempts = attempts + 1 WHERE id = ?",
                [status, error, item.id],
            )
        )

    async def alert_message_lost(self, order_id: str) -> None:
        """Slack no longer has the alert's message (deleted by someone): the next update posts it anew."""
        await self.write(lambda db: db.execute("UPDATE alerts SET ts = NULL WHERE order_id = ?", [order_id]))

    # --- action locks: one run of an action on an order at a time ---------------------------------------------

    async def lock_action(self, order_id: str, action: str, actor: str) -> dict[str, Any] | None:
        """Take the lock; None when taken, else the holder's row (someone else's run of the same action)."""

        def take(db: sqlite_utils.Database) -> dict[str, Any] | None:
            held = next(
                db.query("SELECT * FROM action_locks WHERE order_id = ? AND action = ?", [order_id, action]), None
            )
            if held is None:
                db.execute(
                    "INSERT INTO action_locks (order_id, action, actor, started_at) VALUES (?, ?, ?, ?)",
                    [order_id, action, actor, _now()],
                )
            return held

        return await self.write(take)

    async def unlock_action(self, order_id: str, action: str) -> None:
        await self.write(
            lambda db: db.execute("DELETE FROM action_locks WHERE order_id = ? AND action = ?", [order_id, action])
        )

    async def clear_action_locks(self) -> int:
        """At start: a lock held by a process that died is stale (its run ended with the process)."""
        return await self.write(lambda db: db.execute("DELETE FROM action_locks").rowcount)

    # --- audit, scans, counters -------------------------------------------------------------------------------

    async def add_audit(
        self,
        *,
        actor: str,
        action: str,
        order_id: str | None,
        inputs: dict[str, Any],
        outcome: str,
        error: str | None = None,
        duration_ms: float | None = None,
        channel: str | None = None,
        ts: str | None = None,
    ) -> int:
        row = {
            "at": _now(),
            "actor": actor,
            "action": action,
            "order_id": order_id,
            "inputs": json.dumps(inputs),
            "outcome": outcome,
            "error": error,
            "duration_ms": duration_ms,
            "channel": channel,
            "ts": ts,
        }
        return await self.write(lambda db: _insert(db, "audit", row))

    async def last_action(self, order_id: str, action: str, *, outcome: str) -> dict[str, Any] | None:
        """The latest audit row of `action` on the order with that outcome, with its `age` (a timedelta)."""

        def select(db: sqlite_utils.Database) -> dict[str, Any] | None:
            row = next(
                db.query(
                    "SELECT * FROM audit WHERE order_id = ? AND action = ? AND outcome = ? ORDER BY id DESC LIMIT 1",
                    [order_id, action, outcome],
                ),
                None,
            )
            if row is not None:
                row["age"] = datetime.now(UTC) - datetime.fromisoformat(row["at"])
            return row

        return await self.read(select)

    async def audit_rows(self, order_id: str) -> list[dict[str, Any]]:
        return await self.read(
            lambda db: list(db.query("SELECT * FROM audit WHERE order_id = ? ORDER BY id", [order_id]))
        )

    async def record_scan(
        self, *, started_at: str, orders_seen: int, stuck: int, missed_by_webhooks: int, error: str | None
    ) -> None:
        row = {
            "started_at": started_at,
            "finished_at": _now(),
            "orders_seen": orders_seen,
            "stuck": stuck,
            "missed_by_webhooks": missed_by_webhooks,
            "error": error,
        }
        await self.write(lambda db: _insert(db, "scans", row))

    async def bump(self, name: str, by: int = 1) -> None:
        await self.write(lambda db: _bump(db, _now()[:10], name, by))

    async def health(self) -> dict[str, Any]:
        def select(db: sqlite_utils.Database) -> dict[str, Any]:
            pending = db.execute("SELECT count(*) FROM inbox WHERE status = 'pending'").fetchone()[0]
            orders = db.execute("SELECT count(*) FROM orders").fetchone()[0]
            stuck = db.execute("SELECT count(*) FROM verdicts WHERE stuck = 1").fetchone()[0]
            last_scan = db.execute("SELECT finished_at, error FROM scans ORDER BY id DESC LIMIT 1").fetchone()
            outbox = db.execute("SELECT count(*) FROM outbox WHERE status = 'pending'").fetchone()[0]
            return {
                "inbox_pending": pending,
                "slack_outbox_pending": outbox,
                "orders": orders,
                "stuck": stuck,
                "last_scan": last_scan[0] if last_scan else None,
                "last_scan_error": last_scan[1] if last_scan else None,
            }

        return await self.read(select)

    # --- privacy (customers/redact, shop/redact) --------------------------------------------------------------

    async def redact_customer(self, email: str | None, order_ids: list[str]) -> int:
        """Erase one customer's personal data from every table; return how many orders were touched."""

        def redact(db: sqlite_utils.Database) -> int:
            ids = set(order_ids)
            if email:
                ids.update(
                    r[0] for r in db.execute("SELECT id FROM orders WHERE lower(customer_email) = lower(?)", [email])
                )
            for order_id in ids:
                row = db.execute("SELECT record FROM orders WHERE id = ?", [order_id]).fetchone()
                if row:
                    record = json.loads(row[0])
                    record["customer"] = None
                    db.execute(
                        "UPDATE orders SET record = ?, customer_email = NULL WHERE id = ?",
                        [json.dumps(record), order_id],
                    )
                db.execute("UPDATE audit SET inputs = '{}' WHERE order_id = ?", [order_id])
            needles = [email] if email else []
            needles += [i.rsplit("/", 1)[1] for i in ids]
            for needle in needles:
                db.execute("UPDATE inbox SET body = NULL WHERE body LIKE ?", [f"%{needle}%"])
            return len(ids)

        touched = await self.write(redact)
        await self.checkpoint()
        return touched

    async def redact_shop(self) -> None:
        """The shop left for good: erase everything it sent us."""

        def erase(db: sqlite_utils.Database) -> None:
            for table in (
                "inbox",
                "orders",
                "verdicts",
                "alerts",
                "outbox",
                "action_locks",
                "audit",
                "snoozes",
                "scans",
                "settings",
            ):
                db.execute(f"DELETE FROM {table}")

        await self.write(erase)
        await self.checkpoint()

    async def checkpoint(self) -> None:
        """Fold the WAL into the main file and truncate it, so erased data leaves the WAL too."""

        def truncate() -> None:
            with self._write_lock:  # TRUNCATE waits for writers: let it not be the event loop's
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

        await self._call(truncate)


def _save_verdicts(db: sqlite_utils.Database, verdicts: list[tuple[str, Verdict]], found_by: str) -> list[str]:
    now = _now()
    newly_stuck = []
    for order_id, v in verdicts:
        before = db.execute(
            "SELECT stuck, stuck_since_seen, found_by FROM verdicts WHERE order_id = ?", [order_id]
        ).fetchone()
        was_stuck = bool(before and before[0])
        if v.stuck and not was_stuck:
            newly_stuck.append(order_id)
        db.execute(
            "INSERT OR REPLACE INTO verdicts (order_id, status, stuck, reason, severity, since, due_at,"
            " explanation, next_steps, actions, classified_at, stuck_since_seen, found_by)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                order_id,
                v.status,
                int(v.stuck),
                v.reason,
                v.severity,
                v.since.isoformat() if v.since else None,
                v.due_at.isoformat() if v.due_at else None,
                v.explanation,
                json.dumps(v.next_steps),
                json.dumps(v.actions),
                now,
                (before[1] if was_stuck else now) if v.stuck else None,
                (before[2] if was_stuck else found_by) if v.stuck else None,
            ],
        )
    return newly_stuck


def _sync_alerts(db: sqlite_utils.Database, verdicts: list[tuple[Order, Verdict]], sync: AlertSync) -> int:
    """Queue a post or an update for every alert the verdicts change (domain.alerts decides); return how many."""
    known: dict[str, tuple] = {}
    ids = [o.id for o, _ in verdicts]
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for row in db.execute(
            "SELECT a.order_id, a.ts, a.state, a.fingerprint,"
            " (SELECT group_concat(o.status) FROM outbox o WHERE o.order_id = a.order_id AND o.kind = 'alert'"
            "  AND o.status IN ('pending', 'sending')), a.updated_at"
            f" FROM alerts a WHERE a.order_id IN ({marks})",
            chunk,
        ):
            known[row[0]] = row
    queued = 0
    now = _now()
    stale_before = (datetime.fromisoformat(now) - sync.refresh_after).isoformat()
    for order, verdict in verdicts:
        row = known.get(order.id)
        state = alert_state(verdict)
        if row is None and state != "stuck":
            continue
        fingerprint = alert_fingerprint(order, verdict)
        unsent = (row[4] or "") if row else ""  # statuses of the alert's messages Slack does not have yet
        step = plan_alert(
            row[2] if row else None,
            bool(row and (row[1] or "sending" in unsent)),
            row[3] if row else None,
            state,
            fingerprint,
            unsent=bool(unsent),
            stale=bool(row and row[5] and row[5] < stale_before),
        )
        if step is None:
            continue
        if step == "forget":
            db.execute("DELETE FROM alerts WHERE order_id = ?", [order.id])
            db.execute("DELETE FROM outbox WHERE order_id = ? AND kind = 'alert' AND status = 'pending'", [order.id])
            continue
        clicked = sync.resolutions.get(order.id)
        resolution = (clicked or inferred_resolution(order, verdict)) if state == "resolved" else None
        if step == "post":
            db.execute(
                "INSERT OR REPLACE INTO alerts (order_id, channel, ts, state, posted_at, updated_at, fingerprint,"
                " reason, resolution) VALUES (?, ?, NULL, ?, NULL, ?, ?, ?, NULL)",
                [order.id, sync.channel, state, now, fingerprint, verdict.reason],
            )
        else:
            db.execute(
                "UPDATE alerts SET state = ?, updated_at = ?, fingerprint = ?, reason = ?, resolution = ?"
                " WHERE order_id = ?",
                [state, now, fingerprint, verdict.reason, resolution, order.id],
            )
        payload = json.dumps(sync.render(order, verdict, resolution))
        db.execute(
            "INSERT INTO outbox (kind, order_id, priority, payload, created_at) VALUES ('alert', ?, ?, ?, ?)"
            " ON CONFLICT(order_id) WHERE kind = 'alert' AND status = 'pending'"
            " DO UPDATE SET payload = excluded.payload, priority = min(priority, excluded.priority)",
            [order.id, _alert_priority(clicked, fingerprint == (row[3] if row else None)), payload, now],
        )
        queued += 1
        if step == "update" and stuck_again(row[2], state):
            reply = {"text": stuck_again_text(order, verdict)}
            _insert(
                db,
                "outbox",
                {"kind": "reply", "order_id": order.id, "priority": 1, "payload": json.dumps(reply), "created_at": now},
            )
    return queued


def _alert_priority(clicked: str | None, refresh_only: bool) -> int:
    """What a person just did first, then news, then re-worded old alerts (never delaying either of the others)."""
    return 0 if clicked else 2 if refresh_only else 1


def _back_to_pending(
    db: sqlite_utils.Database, outbox_id: int, not_before: float, error: str, *, maybe_posted: bool
) -> None:
    """Retry later. If a newer version of the same alert was queued while this one was in flight, that one is
    sent instead (it inherits the doubt whether this one reached Slack)."""
    order_id, kind = db.execute("SELECT order_id, kind FROM outbox WHERE id = ?", [outbox_id]).fetchone()
    newer = None
    if kind == "alert":
        newer = db.execute(
            "SELECT id FROM outbox WHERE order_id = ? AND kind = 'alert' AND status = 'pending' AND id != ?",
            [order_id, outbox_id],
        ).fetchone()
    if newer is not None:
        db.execute(
            "UPDATE outbox SET status = 'dropped', error = 'superseded', payload = '{}' WHERE id = ?", [outbox_id]
        )
        db.execute("UPDATE outbox SET maybe_posted = max(maybe_posted, ?) WHERE id = ?", [int(maybe_posted), newer[0]])
        return
    db.execute(
        "UPDATE outbox SET status = 'pending', not_before = ?, error = ?, attempts = attempts + 1,"
        " maybe_posted = max(maybe_posted, ?) WHERE id = ?",
        [not_before, error, int(maybe_posted), outbox_id],
    )


def _identities(d: Delivery) -> set[tuple[str, ...]]:
    """Every identity under which a delivery counts as already received (DESIGN §4)."""
    found: set[tuple[str, ...]] = set()
    if d.webhook_id:
        found.add(("webhook", d.webhook_id))
    if d.event_id:
        found.add(("event", d.topic, d.event_id))
    if d.body_key:
        found.add(("body", d.body_key))
    return found


def _in_transaction(db: sqlite_utils.Database, fn: Callable[[sqlite_utils.Database], T]) -> T:
    """BEGIN IMMEDIATE: with two connections writing, a deferred transaction that read first could not upgrade to
    a write after the other committed (SQLITE_BUSY at once, no busy wait); taking the write lock first waits."""
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(db)
    except BaseException:
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
        raise
    db.conn.execute("COMMIT")
    return result


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


def _set_version(db: sqlite_utils.Database, number: int) -> None:
    db.execute(f"PRAGMA user_version = {int(number)}")


def _insert(db: sqlite_utils.Database, table: str, row: dict[str, Any]) -> int:
    columns = ", ".join(row)
    marks = ", ".join("?" * len(row))
    return db.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", list(row.values())).lastrowid


def _bump(db: sqlite_utils.Database, day: str, name: str, by: int) -> None:
    db.execute(
        "INSERT INTO counters (day, name, value) VALUES (?, ?, ?)"
        " ON CONFLICT(day, name) DO UPDATE SET value = value + excluded.value",
        [day, name, by],
    )


def _save_order(db: sqlite_utils.Database, order: Order, from_webhook: bool) -> SaveResult:
    row = db.execute("SELECT record, updated_ts FROM orders WHERE id = ?", [order.id]).fetchone()
    if row and (
        row[1] > _ts(order.updated_at) or (row[1] == _ts(order.updated_at) and order.fulfillment_orders is None)
    ):
        return SaveResult(False, None)  # older, or the same version again with less in it
    previous = order_from_record(json.loads(row[0])) if row and order.fulfillment_orders is None else None
    merged = order.with_fulfillment_orders_of(previous)
    _upsert_order(db, merged, from_webhook=from_webhook, first_seen=None if row else _now())
    return SaveResult(True, merged)


def _upsert_order(db: sqlite_utils.Database, order: Order, *, from_webhook: bool, first_seen: str | None) -> None:
    now = _now()
    values = [
        order.id,
        order.name,
        _ts(order.updated_at),
        _ts(order.created_at),
        int(not order.closed and not order.cancelled),
        order.fulfillment_status,
        order.customer.email if order.customer else None,
        json.dumps(order_to_record(order)),
        first_seen or now,
        now,
        int(from_webhook),
    ]
    db.execute(
        "INSERT INTO orders (id, name, updated_ts, created_ts, is_open, fulfillment_status, customer_email, record,"
        " first_seen_at, last_seen_at, webhook_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT(id) DO UPDATE SET name = excluded.name, updated_ts = excluded.updated_ts,"
        " is_open = excluded.is_open, fulfillment_status = excluded.fulfillment_status,"
        " customer_email = excluded.customer_email, record = excluded.record, last_seen_at = excluded.last_seen_at,"
        " webhook_seen = max(webhook_seen, excluded.webhook_seen)",
        values,
    )
