"""SQLite storage (sqlite-utils over WAL): the Store, that is its connections, threads and transactions, its health
and the WAL scrub. What it stores is in one module per table family, each a class mixed into Store that uses only its
`read` and `write` (and `write_durably` for the inbox, `checkpoint` for privacy): inbox.py, orders.py, verdicts.py,
alerts.py (alerts, the Slack outbox, action locks), settings.py (settings, snoozes), audit.py (audit, scans,
counters), privacy.py (redaction), digests.py, bulk.py, cancellations.py and selection.py. The schema is in schema.py,
the plumbing in sql.py.

Mixins rather than a separate object per family: one owner of the connections, the write lock and the transactions,
so no family can open its own; callers keep one `store` handle (`store.save_orders`, not `store.orders.save`); and
each file reads like its tables, their SQL together. What one transaction does across families (a batch's verdicts,
alerts and deliveries' outcomes) is a plain function of one module (`save_current_verdicts`, `sync_alerts`) called
inside another's transaction.

Two connections, each used by one thread only, so that the event loop never waits on SQLite nor on a lock:
- the database thread (a single-thread executor) runs every call but one; bulk writes go in chunks of WRITE_CHUNK
  (sql.py) orders so that no transaction holds the write lock for long;
- the ingest thread stores webhook deliveries (`add_deliveries`, through `write_durably`) in small group commits,
  each of which must be on disk before Shopify gets its 200: that connection runs synchronous=FULL (in WAL mode, the
  WAL is synced at each commit, with everything written to it before), so a 200 survives an OS crash or a power cut,
  not only a killed process. The database thread's stays at NORMAL (synced at checkpoints): a commit of its lost in a
  power cut loses no acknowledged webhook (a delivery whose processing was lost is pending again, and processed
  again).
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
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import sqlite_utils

from bot.store.alerts import AlertTables
from bot.store.audit import AuditTables
from bot.store.bulk import BulkTables
from bot.store.cancellations import CancellationTables
from bot.store.digests import DigestTables
from bot.store.inbox import InboxTables
from bot.store.orders import OrderTables
from bot.store.privacy import PrivacyTables
from bot.store.schema import MIGRATIONS
from bot.store.selection import SelectionQueries
from bot.store.settings import SettingTables
from bot.store.sql import T, connect, in_transaction, set_version
from bot.store.verdicts import VerdictTables

INGEST_BUSY_TIMEOUT_MS = 2_000  # the ingest thread's longest wait for the write lock, then as long for SQLite's
CHECKPOINT_SECONDS = 1.0
SCRUB_QUIET_SECONDS = 1.0  # no write for this long: the WAL is checkpointed into the file and truncated
SCRUB_MAX_DELAY = 30.0  # under a steady load, this long after the first write since, at the latest


class Store(
    InboxTables,
    OrderTables,
    VerdictTables,
    AlertTables,
    SettingTables,
    AuditTables,
    PrivacyTables,
    DigestTables,
    BulkTables,
    SelectionQueries,
    CancellationTables,
):
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
        self._ingest: sqlite_utils.Database | None = None  # used on the ingest thread only, by write_durably

    # --- lifecycle ------------------------------------------------------------------------------------------------

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

    async def write_durably(self, fn: Callable[[sqlite_utils.Database], T]) -> T:
        """Run `fn(db)` in one transaction on the ingest thread, whose commit is on disk when this returns (see
        above); on the database thread when the store is in memory."""
        if self._ingest is None:
            return await self.write(fn)
        return await self._on_ingest_thread(self._ingest_transaction, fn)

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

    # --- health and the WAL ---------------------------------------------------------------------------------------

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
