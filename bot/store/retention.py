"""What finished history each table lets go of, as chunked deletes, and giving the freed pages back to the disk.

Plain functions of a `sqlite_utils.Database`, each one short transaction through `Store.write` (bot/flows/retention.py
paces them). Never pruned: pending work (inbox rows still `pending`, outbox messages `pending` or `sending`, bulk runs
not ended), state (orders, verdicts, alerts, settings, unexpired snoozes, action locks), and the newest row of each
table (the health check's last scan, the last posted digest's counts for "change since the last digest"; and an id is
then never handed out twice, which the inbox's and the audit's "newest id" comparisons rely on).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import sqlite_utils

ENDED_RUNS = "('done', 'stopped', 'cancelled', 'expired')"
BATCH = 50  # rows per DELETE statement: a step checks its time after each


@dataclass(frozen=True, slots=True)
class Rule:
    """Rows of `table` that go once older than the `window`'s cutoff: `old` is an SQL condition, `?` the cutoff as
    the store writes times (UTC ISO 8601, so text order is time order)."""

    table: str
    window: Literal["history", "chart", "audit"]
    old: str


def _not_newest(table: str) -> str:
    # `+id`: the time column's index picks the rows, not a scan of the rowids below the newest
    return f"+id < (SELECT max(id) FROM {table})"


RULES: tuple[Rule, ...] = (
    Rule("inbox", "history", f"received_at < ? AND status != 'pending' AND {_not_newest('inbox')}"),
    Rule(
        "outbox", "history", f"created_at < ? AND status IN ('sent', 'failed', 'dropped') AND {_not_newest('outbox')}"
    ),
    Rule("scans", "history", f"started_at < ? AND {_not_newest('scans')}"),
    Rule("resolutions", "chart", f"resolved_at < ? AND {_not_newest('resolutions')}"),
    Rule("stuck_days", "chart", "day < substr(?, 1, 10)"),
    Rule("counters", "history", "day < substr(?, 1, 10)"),
    Rule(
        "digests",
        "history",
        "day < substr(?, 1, 10) AND day < (SELECT max(day) FROM digests)"
        " AND day IS NOT (SELECT day FROM digests WHERE posted_at IS NOT NULL ORDER BY posted_at DESC LIMIT 1)",
    ),
    Rule(
        "bulk_items",
        "history",
        f"run_id IN (SELECT id FROM bulk_runs WHERE status IN {ENDED_RUNS} AND coalesce(finished_at, created_at) < ?)",
    ),
    Rule(  # after its items: a run goes once it has none left
        "bulk_runs",
        "history",
        f"status IN {ENDED_RUNS} AND coalesce(finished_at, created_at) < ? AND {_not_newest('bulk_runs')}"
        " AND NOT EXISTS (SELECT 1 FROM bulk_items i WHERE i.run_id = bulk_runs.id)",
    ),
    Rule("snoozes", "history", "until < ?"),  # long expired: a snooze in the past changes nothing
    Rule("audit", "audit", f"at < ? AND {_not_newest('audit')}"),
)


def prune_chunk(db: sqlite_utils.Database, rule: Rule, cutoff: datetime, limit: int, seconds: float) -> int:
    """Delete at most `limit` of the rule's rows older than `cutoff`, BATCH at a time, stopping early once `seconds`
    have passed (a busy disk); return how many went."""
    sql = f"DELETE FROM {rule.table} WHERE rowid IN (SELECT rowid FROM {rule.table} WHERE {rule.old} LIMIT ?)"
    deadline = time.perf_counter() + seconds
    deleted = 0
    while deleted < limit:
        batch = db.execute(sql, [cutoff.astimezone(UTC).isoformat(), min(BATCH, limit - deleted)]).rowcount
        deleted += batch
        if batch < BATCH or time.perf_counter() > deadline:
            break
    return deleted


def free_pages(db: sqlite_utils.Database) -> int:
    return db.execute("PRAGMA freelist_count").fetchone()[0]


def give_back_pages(db: sqlite_utils.Database, pages: int, seconds: float) -> int:
    """Move up to `pages` free pages to the end of the file and cut them off (auto_vacuum=INCREMENTAL; the file
    shrinks on disk at the next checkpoint), stopping early once `seconds` have passed: a page whose children must all
    learn its new place costs far more than most. Returns how many were given back.

    One statement per page: each step of `PRAGMA incremental_vacuum` frees one page and yields an empty row, and
    Python's sqlite3 steps a statement without result columns only once."""
    before = free_pages(db)
    deadline = time.perf_counter() + seconds
    for _ in range(min(pages, before)):
        db.execute("PRAGMA incremental_vacuum(1)")
        if time.perf_counter() > deadline:
            break
    return before - free_pages(db)
