"""The database does not grow forever: a background task deletes finished history older than its window
(bot/domain/retention.py says how long, bot/store/retention.py what) and gives the freed pages back to the disk.

Off the hot path: every step is one short transaction on the database thread (at most CHUNK_ROWS rows or CHUNK_PAGES
pages, and it stops early after CHUNK_SECONDS), and between two steps the task sleeps at least as long as the step
took, so pruning never holds the write lock for long nor takes more than half the database thread: a webhook's commit
or a click's write waits for one step at most.

The WAL stays small too. Deleting a row rewrites a page of each index it is in, and the inbox's webhook and event ids
are random, so a first pass over a year of deliveries writes tens of megabytes a second. SQLite starts the WAL over
only when a write begins after every frame was copied into the file, and while webhooks keep coming one usually lands
during the Store's once-a-second checkpoint of that much, so the WAL would grow until the Store's scrub truncates it
(after a quiet second, or SCRUB_MAX_DELAY): 351 MB beside a 46 MB file in tests/perf/bench_retention.py. So each step
is followed by a passive checkpoint of its own few frames (it never blocks a writer), and past WAL_LIMIT bytes
pruning waits until all of it is copied, for WAL_WAIT_MAX at most. On a disk whose fsync is slow, webhooks committing
every few milliseconds keep a checkpoint from ever finding all of it copied, and the WAL grows until the scrub: 115 MB
in tests/perf/bench_retention.py on such a disk (docs/benchmarks.md), against 30 MB on a fast one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlite_utils

from bot.domain.retention import Retention
from bot.store import Store
from bot.store.retention import RULES, Rule, give_back_pages, prune_chunk

log = logging.getLogger(__name__)

CHUNK_ROWS = 300
CHUNK_PAGES = 200
CHUNK_SECONDS = 0.01  # a step stops after this long, with fewer rows or pages
MIN_PAUSE = 0.005  # seconds between two steps, however quick the step was
WAL_LIMIT = 32 * 2**20
WAL_WAIT_MAX = 10.0  # past this pruning goes on anyway (another process reading holds the checkpoint back)
WAL_POLL = 0.05


@dataclass(frozen=True, slots=True)
class PruneTimer:
    """When pruning runs: `first_after` seconds after start (the start's own work goes first), then `every` seconds."""

    first_after: float = 120.0
    every: float = 3600.0


@dataclass(slots=True)
class PruneReport:
    deleted: dict[str, int] = field(default_factory=dict)  # rows per table
    pages_given_back: int = 0
    seconds: float = 0.0


class Pruner:
    def __init__(self, store: Store, retention: Retention, *, now: Callable[[], datetime] | None = None):
        self.store = store
        self.retention = retention
        self.now = now or (lambda: datetime.now(UTC))
        self.last: PruneReport | None = None  # the last finished pass
        self.passes = 0

    async def run_forever(self, timer: PruneTimer) -> None:
        await asyncio.sleep(timer.first_after)
        while True:
            try:
                await self.prune()
            except Exception:  # another process held the database past the busy timeout: try at the next pass
                log.exception("pruning old history failed; trying again in %.0f s", timer.every)
            await asyncio.sleep(timer.every)

    async def prune(self) -> PruneReport:
        """One pass: every rule's old rows, then the freed pages."""
        started = time.monotonic()
        now = self.now()
        report = PruneReport()
        for rule in RULES:
            cutoff = {
                "history": self.retention.history_cutoff,
                "chart": self.retention.chart_cutoff,
                "audit": self.retention.audit_cutoff,
            }[rule.window](now)
            if cutoff is not None:
                report.deleted[rule.table] = await self._prune_rule(rule, cutoff)
        while freed := await self._step(lambda db: give_back_pages(db, CHUNK_PAGES, CHUNK_SECONDS)):
            report.pages_given_back += freed
        report.seconds = time.monotonic() - started
        if any(report.deleted.values()):
            log.info(
                "pruned history older than its window: %s; %d pages given back in %.1f s",
                ", ".join(f"{n} {table}" for table, n in report.deleted.items() if n),
                report.pages_given_back,
                report.seconds,
            )
        self.last = report
        self.passes += 1
        return report

    async def _prune_rule(self, rule: Rule, cutoff: datetime) -> int:
        deleted = 0
        while True:
            count = await self._step(lambda db: prune_chunk(db, rule, cutoff, CHUNK_ROWS, CHUNK_SECONDS))
            deleted += count
            if count == 0:
                return deleted

    async def _step(self, fn: Callable) -> int:
        """One transaction and a checkpoint, then a pause at least as long as they took, and until the WAL is small
        enough or all copied (the next write then starts it over)."""
        started = time.monotonic()
        result = await self.store.write(fn)
        wal = await self.store.read(_checkpoint)
        await asyncio.sleep(max(time.monotonic() - started, MIN_PAUSE))
        for _ in range(int(WAL_WAIT_MAX / WAL_POLL)):
            if wal.bytes <= WAL_LIMIT or wal.copied:
                break
            await asyncio.sleep(WAL_POLL)
            wal = await self.store.read(_checkpoint)
        return result


@dataclass(frozen=True, slots=True)
class WalState:
    bytes: int  # frames in the WAL (since it last started over) times the page size
    copied: bool  # every frame is in the database file


def _checkpoint(db: sqlite_utils.Database) -> WalState:
    """A passive checkpoint: copies what it can without waiting for anyone."""
    _, frames, copied = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    return WalState(max(frames, 0) * page_size, frames == copied)
