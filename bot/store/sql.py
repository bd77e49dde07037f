"""The SQLite plumbing every part of the store shares: opening a connection (docs/architecture.md), transactions,
and small statement helpers."""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils

T = TypeVar("T")
log = logging.getLogger(__name__)

OWNER_ONLY = 0o600  # the database holds customers' names and emails
OTHERS = 0o077  # the group's and everyone's permission bits
WRITE_CHUNK = 50  # orders per transaction in bulk writes (a scan), so the ingest thread never waits long for the lock


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def epoch(moment: datetime) -> float:
    return moment.timestamp()


def connect(
    path: str, *, busy_timeout_ms: int = 10_000, checkpoints: bool = True, durable: bool = False
) -> sqlite3.Connection:
    """Open the database (docs/architecture.md, "SQLite"): WAL, NORMAL sync, a busy timeout, owner-only file mode.
    NORMAL: a commit survives a killed process. `durable=True`: FULL, the WAL is synced at each commit, so a commit
    survives an OS crash or a power cut too. `checkpoints=False`: no automatic checkpoint on commit; the owner runs
    them."""
    if path != ":memory:":
        owner_only(Path(path))
    conn = sqlite3.connect(path, check_same_thread=False, timeout=busy_timeout_ms / 1000, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
    conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    if not checkpoints:
        conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("PRAGMA secure_delete=ON")  # erased personal data is overwritten, not left in free pages
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def owner_only(path: Path) -> None:
    """Create the database file readable by its owner only (SQLite gives its -wal and -shm the same mode), and take
    the group's and others' access away from any of the three that has some, saying so. The directory is the
    operator's: it is left as it is."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, OWNER_ONLY))
    for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if not file.is_file():
            continue
        mode = stat.S_IMODE(file.stat().st_mode)
        if not mode & OTHERS:
            continue
        try:
            file.chmod(mode & ~OTHERS)
        except PermissionError:
            log.warning("%s is open to others (mode %o) and orderbot may not change that: chmod 600 it", file, mode)
        else:
            log.warning("%s was open to others (mode %o): orderbot made it owner-only", file, mode)


def in_transaction(db: sqlite_utils.Database, fn: Callable[[sqlite_utils.Database], T]) -> T:
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


def set_version(db: sqlite_utils.Database, number: int) -> None:
    db.execute(f"PRAGMA user_version = {int(number)}")


def insert(db: sqlite_utils.Database, table: str, row: dict[str, Any]) -> int:
    columns = ", ".join(row)
    marks = ", ".join("?" * len(row))
    return db.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", list(row.values())).lastrowid


def bump_counter(db: sqlite_utils.Database, day: str, name: str, by: int) -> None:
    db.execute(
        "INSERT INTO counters (day, name, value) VALUES (?, ?, ?)"
        " ON CONFLICT(day, name) DO UPDATE SET value = value + excluded.value",
        [day, name, by],
    )
