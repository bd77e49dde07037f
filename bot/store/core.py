"""SQLite storage (sqlite-utils over WAL): the Store, with inbox, orders, verdicts, settings, snoozes, audit and
privacy here, alerts and the Slack outbox in alerts.py, the schema in schema.py and the plumbing in sql.py.

Two connections, each used by one thread only, so that the event loop never waits on SQLite nor on a lock:
- the database thread (a single-thread executor) runs every call but one; bulk writes go in chunks of WRITE_CHUNK
  orders so that no transaction holds the write lock for long;
- the ingest thread stores webhook deliveries (`add_deliveries`) in small group commits, each of which must be on
  disk before Shopify gets its 200: that connection runs synchronous=FULL (in WAL mode, the WAL is synced at each
  commit, with everything written to it before), so a 200 survives an OS crash or a power cut, not only a killed
  process. The database thread's stays at NORMAL (synced at checkpoints): a commit of its lost in a power cut loses
  no acknowledged webhook (a delivery whose processing was lost is pending again, and processed again).
Writes on either take one threading lock (so that neither waits in SQLite's busy handler for the other, whose growing
sleeps stalled a writer for 260 ms in a test) and open with BEGIN IMMEDIATE. The ingest thread waits at most
INGEST_BUSY_TIMEOUT_MS for that lock and as long again for SQLite (another process: an operator's `sqlite3` shell, a
backup); the webhook's request waits for its commit only until its deadline (bot/shopify/webhooks.py), then is
answered 503 and Shopify sends it again.
Neither connection checkpoints on commit (a checkpoint copies pages and syncs, slow under the lock); the database
thread runs a PASSIVE checkpoint, which never blocks a writer, at most every CHECKPOINT_SECONDS.

Personal data: an order keeps its customer's name and email (the alert shows one, a customer notice needs the other)
and nothing else of the customer. A webhook delivery's body, the whole payload with addresses, phone numbers and the
buyer's browser, goes once it is processed (the row stays, for deduplication and the digest's webhook health); one
waiting for a retry keeps it, and one parked keeps only the fields orderbot reads (orders.fields_read). Erased rows
are overwritten (secure_delete), but their old versions stay in the WAL's frames until the WAL is reset: once writes
pause (and at least every SCRUB_MAX_DELAY seconds) the WAL is checkpointed into the file and truncated, so erased
data leaves the disk too.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlite_utils

from bot.domain.orders import Order, fields_read, order_from_record, order_to_record
from bot.domain.redaction import NO_CUSTOMER, names_customer, without_customer, written_forms
from bot.domain.rules import Verdict, needs_watching
from bot.store.alerts import AlertSync, AlertTables, sync_alerts
from bot.store.bulk import BulkTables
from bot.store.cancellations import CancellationTables
from bot.store.digests import DigestTables, snapshot_stuck_counts
from bot.store.schema import MIGRATIONS
from bot.store.selection import SelectionQueries
from bot.store.sql import T, bump_counter, connect, epoch, in_transaction, insert, now_iso, set_version
from bot.store.verdicts import Classified, save_current_verdicts

DELETED = Verdict("deleted", explanation="The order was deleted in Shopify.")
INGEST_BUSY_TIMEOUT_MS = 2_000  # the ingest thread's longest wait for the write lock, then as long for SQLite's
CHECKPOINT_SECONDS = 1.0
SCRUB_QUIET_SECONDS = 1.0  # no write for this long: the WAL is checkpointed into the file and truncated
SCRUB_MAX_DELAY = 30.0  # under a steady load, this long after the first write since, at the latest
WRITE_CHUNK = 50  # orders per transaction in bulk writes (a scan), so the ingest thread never waits long for the lock


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


@dataclass(frozen=True, slots=True)
class SaveResult:
    saved: bool  # False: the stored order is newer (an out-of-order delivery), or the same version again
    current: Order | None  # what is stored now (with the fulfillment orders kept from before, if it brought none)
    # A webhook body with the stored version's updated_at but other content: Shopify's updated_at has one-second
    # resolution, so either may be the later one. It is stored (it arrived last), and Shopify is asked which is current.
    unsettled: bool = False


class Store(AlertTables, DigestTables, BulkTables, SelectionQueries, CancellationTables):
    def __init__(self, path: str):
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="orderbot-db")
        self._ingest_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="orderbot-ingest")
        self._write_lock = threading.Lock()
        self._last_checkpoint = 0.0
        self._last_write = 0.0
        self._unscrubbed_since: float | None = None  # the first write the WAL still holds since it was last truncated
        self._scrubber: asyncio.Task[None] | None = None
        self._db: sqlite_utils.Database | None = None
        self._ingest: sqlite_utils.Database | None = None  # used on the ingest thread only, by add_deliveries

    # --- lifecycle --------------------------------------------------------------------------------------------

    async def open(self) -> Store:
        await self._call(self._open)
        if self.path != ":memory:":  # a second connection to ":memory:" would be another, empty database
            self._ingest = await self._on_ingest_thread(self._connect_ingest)
            self._scrubber = asyncio.create_task(self._scrub_when_quiet(), name="wal-scrub")
        return self

    def _open(self) -> None:
        self._db = sqlite_utils.Database(connect(self.path, checkpoints=False))
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        for number, migrate in enumerate(MIGRATIONS[version:], start=version + 1):
            self._transaction(lambda db, migrate=migrate, number=number: (migrate(db), set_version(db, number)))

    def _connect_ingest(self) -> sqlite_utils.Database:
        durable = connect(self.path, busy_timeout_ms=INGEST_BUSY_TIMEOUT_MS, checkpoints=False, durable=True)
        return sqlite_utils.Database(durable)

    async def ingest_pragma(self, name: str) -> Any:
        """A setting of the ingest connection as it runs (`synchronous`: 2 is FULL, which a 200 relies on)."""
        assert self._ingest is not None, "the store is not open on a file"
        return await self._on_ingest_thread(lambda: self._ingest.execute(f"PRAGMA {name}").fetchone()[0])

    async def close(self) -> None:
        if self._scrubber is not None:
            self._scrubber.cancel()
            await asyncio.gather(self._scrubber, return_exceptions=True)
            self._scrubber = None
        if self._ingest is not None:
            await self._on_ingest_thread(self._ingest.conn.close)
            self._ingest = None
        if self._db is not None:
            await self._call(self._db.conn.close)
            self._db = None
        self._ingest_thread.shutdown(wait=True)
        self._executor.shutdown(wait=True)

    @property
    def is_open(self) -> bool:
        return self._db is not None

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def _on_ingest_thread(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._ingest_thread, fn, *args)

    def _transaction(self, fn: Callable[[sqlite_utils.Database], T]) -> T:
        assert self._db is not None, "the store is not open"
        with self._write_lock:
            result = in_transaction(self._db, fn)
            self._wrote()
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

        The write runs on the ingest thread, on its connection of its own: a batch is three statements (BEGIN
        IMMEDIATE, INSERT OR IGNORE, COMMIT, which syncs the WAL) and no checkpoint. Only when the unique indexes
        dropped a row does a second query find which (the new rows hold the highest ids). Raises
        sqlite3.OperationalError when the database stayed locked (see INGEST_BUSY_TIMEOUT_MS).
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

        if self._ingest is None:
            return await self.write(store_batch)
        return await self._on_ingest_thread(self._ingest_transaction, store_batch)

    def _ingest_transaction(self, fn: Callable[[sqlite_utils.Database], T]) -> T:
        """On the ingest thread: `fn` in one transaction, under the write lock, which the database thread may hold
        through its own busy timeout (another process has the database) or a checkpoint: waited for at most
        INGEST_BUSY_TIMEOUT_MS."""
        assert self._ingest is not None, "the store is not open"
        if not self._write_lock.acquire(timeout=INGEST_BUSY_TIMEOUT_MS / 1000):
            raise sqlite3.OperationalError("database is locked (orderbot's database thread is waiting for it)")
        try:
            result = in_transaction(self._ingest, fn)
            self._wrote()
        finally:
            self._write_lock.release()
        return result

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

    # --- verdicts ---------------------------------------------------------------------------------------------

    async def save_verdicts(
        self, classified: list[Classified], *, found_by: str, alerts: AlertSync | None = None
    ) -> int:
        """Store the verdicts that are still current (bot/store/verdicts.py) and queue the alerts they change; return
        how many alert messages were queued."""

        def save(db: sqlite_utils.Database, chunk: list[Classified]) -> int:
            written = save_current_verdicts(db, chunk, found_by)
            return sync_alerts(db, [(c.order, c.verdict) for c in written], alerts) if alerts else 0

        queued = 0
        for start in range(0, len(classified), WRITE_CHUNK):
            queued += await self.write(lambda db, chunk=classified[start : start + WRITE_CHUNK]: save(db, chunk))
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
                [key, value, now_iso(), by],
            )
        )

    async def setting_with_time(self, key: str) -> tuple[str, datetime] | None:
        """A setting's value and when it was last set; None when it never was."""
        row = await self.read(
            lambda db: db.execute("SELECT value, updated_at FROM settings WHERE key = ?", [key]).fetchone()
        )
        return (row[0], datetime.fromisoformat(row[1])) if row else None

    async def snoozes(self) -> dict[str, datetime]:
        return await self.read(
            lambda db: {r["order_id"]: datetime.fromisoformat(r["until"]) for r in db["snoozes"].rows}
        )

    async def snooze(self, order_id: str, until: datetime, by: str) -> None:
        await self.write(
            lambda db: db.execute(
                "INSERT OR REPLACE INTO snoozes (order_id, until, by, at) VALUES (?, ?, ?, ?)",
                [order_id, until.isoformat(), by, now_iso()],
            )
        )

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
            "at": now_iso(),
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
        return await self.write(lambda db: insert(db, "audit", row))

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

    async def record_scan(
        self,
        *,
        started_at: str,
        orders_seen: int,
        stuck: int,
        missed_by_webhooks: int,
        error: str | None,
        kind: str | None = None,
    ) -> None:
        """`kind`: "full" or "changes" (scan_plan.ScanPlan); None for a scan that failed before it had one. A scan that
        succeeded also takes the day's snapshot of the stuck orders by reason (the digest's chart)."""
        row = {
            "kind": kind,
            "started_at": started_at,
            "finished_at": now_iso(),
            "orders_seen": orders_seen,
            "stuck": stuck,
            "missed_by_webhooks": missed_by_webhooks,
            "error": error,
        }

        def record(db: sqlite_utils.Database) -> None:
            insert(db, "scans", row)
            if error is None:
                snapshot_stuck_counts(db, row["finished_at"])

        await self.write(record)

    async def scan_history(self) -> tuple[datetime | None, datetime | None]:
        """When the last successful scan started, and the last successful full sweep (None: there was none)."""

        def select(db: sqlite_utils.Database) -> tuple[datetime | None, datetime | None]:
            found = []
            for kinds in ("'full', 'changes'", "'full'"):
                row = db.execute(
                    f"SELECT started_at FROM scans WHERE error IS NULL AND kind IN ({kinds}) ORDER BY id DESC LIMIT 1"
                ).fetchone()
                found.append(datetime.fromisoformat(row[0]) if row else None)
            return found[0], found[1]

        return await self.read(select)

    async def bump(self, name: str, by: int = 1) -> None:
        await self.write(lambda db: bump_counter(db, now_iso()[:10], name, by))

    async def health(self) -> dict[str, Any]:
        def select(db: sqlite_utils.Database) -> dict[str, Any]:
            pending, retrying = db.execute(
                "SELECT count(*), count(retry_at) FROM inbox WHERE status = 'pending'"
            ).fetchone()
            parked = db.execute("SELECT count(*) FROM inbox WHERE status = 'parked'").fetchone()[0]
            orders = db.execute("SELECT count(*) FROM orders").fetchone()[0]
            stuck = db.execute("SELECT count(*) FROM verdicts WHERE stuck = 1").fetchone()[0]
            last_scan = db.execute("SELECT finished_at, error FROM scans ORDER BY id DESC LIMIT 1").fetchone()
            outbox = db.execute("SELECT count(*) FROM outbox WHERE status = 'pending'").fetchone()[0]
            return {
                "inbox_pending": pending,
                "inbox_retrying": retrying,  # of the pending: failed, and waiting to be tried again
                "inbox_parked": parked,  # failed for good; the server's log says why
                "slack_outbox_pending": outbox,
                "orders": orders,
                "stuck": stuck,
                "last_scan": last_scan[0] if last_scan else None,
                "last_scan_error": last_scan[1] if last_scan else None,
            }

        return await self.read(select)

    # --- privacy (customers/redact, shop/redact) --------------------------------------------------------------

    async def redact_customer(self, email: str | None, order_ids: list[str]) -> list[str]:
        """Erase one customer's personal data from every table; return the ids of the orders touched.

        Orders are matched by their exact customer email and ids. So are the webhook bodies still held (deliveries
        pending, waiting for a retry, or parked): each body that names the customer or one of the orders in its
        fields (bot/domain/redaction.py) keeps only what orderbot reads, without the customer's name and email. A
        pending one stays processable and is applied later as an order without a customer, which is what the
        redacted order is; erasing its body instead would leave nothing to process."""

        def redact(db: sqlite_utils.Database) -> list[str]:
            ids = set(order_ids)
            if email:
                ids.update(
                    r[0] for r in db.execute("SELECT id FROM orders WHERE lower(customer_email) = lower(?)", [email])
                )
            for order_id in ids:
                row = db.execute("SELECT record FROM orders WHERE id = ?", [order_id]).fetchone()
                customer = None
                if row:
                    record = json.loads(row[0])
                    customer, record["customer"] = record["customer"], None
                    db.execute(
                        "UPDATE orders SET record = ?, customer_email = NULL WHERE id = ?",
                        [json.dumps(record), order_id],
                    )
                db.execute("UPDATE audit SET inputs = '{}' WHERE order_id = ?", [order_id])
                _erase_from_messages(db, order_id, [email, *(customer or {}).values()])
            return sorted(ids)

        touched = await self.write(redact)
        # The bodies are read and rewritten in memory outside the write lock (a backlog of pending deliveries is
        # tens of megabytes to parse); the write then replaces only those still as they were read.
        rewritten = await self.read(lambda db: _bodies_without_customer(db, email, set(touched)))
        if rewritten:
            await self.write(
                lambda db: db.conn.executemany("UPDATE inbox SET body = ? WHERE id = ? AND body = ?", rewritten)
            )
        await self.checkpoint()
        return touched

    async def redact_shop(self) -> None:
        """The shop left for good: erase everything it sent us."""

        def erase(db: sqlite_utils.Database) -> None:
            for table in db.table_names():  # every table holds something of the shop's, tables added later too
                db.execute(f"DELETE FROM [{table}]")

        await self.write(erase)
        await self.checkpoint()

    async def checkpoint(self) -> bool:
        """Fold the WAL into the main file and truncate it, so erased data leaves the WAL too. It waits up to the busy
        timeout for a reader in the way (another process); False when one still was (the scrub tries again)."""
        return await self._call(self._truncate_wal, None)

    # --- the WAL scrub --------------------------------------------------------------------------------------------

    def _wrote(self) -> None:
        """Called under the write lock after each commit."""
        self._last_write = time.monotonic()
        if self._unscrubbed_since is None:
            self._unscrubbed_since = self._last_write

    async def _scrub_when_quiet(self) -> None:
        """Truncate the WAL once writes pause for SCRUB_QUIET_SECONDS, or SCRUB_MAX_DELAY after the first write it
        holds, whichever comes first. When a reader (another process) is in the way, the next try waits that long."""
        next_try = 0.0
        while True:
            await asyncio.sleep(SCRUB_QUIET_SECONDS / 4)
            now = time.monotonic()
            if self._unscrubbed_since is None or now < next_try:
                continue
            due = now - self._last_write >= SCRUB_QUIET_SECONDS or now - self._unscrubbed_since >= SCRUB_MAX_DELAY
            if due and not await self._call(self._truncate_wal, 0):
                next_try = now + SCRUB_MAX_DELAY

    def _truncate_wal(self, busy_timeout_ms: int | None) -> bool:
        """A PASSIVE checkpoint first, outside the write lock: it copies the WAL into the file and syncs it while
        writers go on. Then TRUNCATE, with little left to copy, under the lock: it makes writers wait, and the ingest
        thread's waits on that lock rather than in SQLite's busy handler. `busy_timeout_ms=0`: give up at once if a
        reader is in the way, rather than hold the lock (None: the connection's own timeout)."""
        assert self._db is not None, "the store is not open"
        self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        with self._write_lock:
            usual = self._db.execute("PRAGMA busy_timeout").fetchone()[0]
            if busy_timeout_ms is not None:
                self._db.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            try:
                busy = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            finally:
                self._db.execute(f"PRAGMA busy_timeout={int(usual)}")
            if not busy:
                self._unscrubbed_since = None
        return not busy


def _erase_from_messages(db: sqlite_utils.Database, order_id: str, personal: list[str | None]) -> None:
    """The order's messages that Slack does not have yet, and its audit rows' errors, name the customer as they were
    written: a queued alert's order loses its customer, and NO_CUSTOMER takes the place of each form of `personal`
    in the rest (a reply's text, a resolution)."""
    forms = written_forms(personal)
    for outbox_id, kind, payload in db.execute(
        "SELECT id, kind, payload FROM outbox WHERE order_id = ? AND payload != '{}'", [order_id]
    ).fetchall():
        message = json.loads(payload)
        if kind == "alert" and isinstance(message.get("order"), dict):
            message["order"]["customer"] = None
        db.execute("UPDATE outbox SET payload = ? WHERE id = ?", [json.dumps(_replaced(message, forms)), outbox_id])
    for form in forms:
        db.execute("UPDATE audit SET error = replace(error, ?, ?) WHERE order_id = ?", [form, NO_CUSTOMER, order_id])


def _replaced(value: Any, variants: list[str]) -> Any:
    """Every string in a JSON value with each of `variants` (longest first) replaced by NO_CUSTOMER."""
    if isinstance(value, str):
        for variant in variants:
            value = value.replace(variant, NO_CUSTOMER)
        return value
    if isinstance(value, dict):
        return {key: _replaced(item, variants) for key, item in value.items()}
    if isinstance(value, list):
        return [_replaced(item, variants) for item in value]
    return value


def _bodies_without_customer(
    db: sqlite_utils.Database, email: str | None, order_ids: set[str]
) -> list[tuple[str, int, str]]:
    """(new body, id, body) of each stored body that names the customer or one of `order_ids`, the new body as
    `without_customer` leaves it. SQL finds the candidates, bodies with a value equal to the email (any case) or to an
    order's id; the exact fields are compared in Python. A value compared whole, never a LIKE pattern: `_` in an
    email, or an order number inside another id, matches nothing else."""
    texts = [email.lower()] if email else []
    texts += [i.lower() for i in order_ids] + [i.rsplit("/", 1)[1] for i in order_ids]
    numbers = [int(n) for i in order_ids if (n := i.rsplit("/", 1)[1]).isdigit()]
    candidates = db.execute(
        "SELECT id, topic, body FROM inbox WHERE body IS NOT NULL AND EXISTS (SELECT 1 FROM json_tree("
        "CASE WHEN json_valid(inbox.body) THEN inbox.body ELSE 'null' END) AS node WHERE"
        " (node.type = 'text' AND lower(node.atom) IN (SELECT value FROM json_each(?)))"
        " OR (node.type = 'integer' AND node.atom IN (SELECT value FROM json_each(?))))",
        [json.dumps(texts), json.dumps(numbers)],
    ).fetchall()
    rewritten = []
    for delivery_id, topic, body in candidates:
        payload = json.loads(body)
        if names_customer(topic, payload, email, order_ids):
            rewritten.append((json.dumps(without_customer(payload)), delivery_id, body))
    return rewritten


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
