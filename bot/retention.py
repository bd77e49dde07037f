"""The database does not grow forever: a background task deletes finished history older than its window
(bot/domain/retention.py says how long, bot/store/retention.py what) and gives the freed pages back to the disk.

Off the hot path: every step is one short transaction on the database thread (CHUNK_ROWS rows or CHUNK_PAGES pages,
a few milliseconds), and between two steps the task sleeps at least as long as the step took, so pruning never holds
the write lock for long nor takes more than half the database thread: a webhook's commit or a click's write waits for
one step at most.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bot.domain.retention import Retention
from bot.store import Store
from bot.store.retention import RULES, Rule, give_back_pages, prune_chunk

log = logging.getLogger(__name__)

CHUNK_ROWS = 300
CHUNK_PAGES = 200
MIN_PAUSE = 0.005  # seconds between two steps, however quick the step was


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
            cutoff = (
                self.retention.history_cutoff(now) if rule.window == "history" else self.retention.audit_cutoff(now)
            )
            if cutoff is not None:
                report.deleted[rule.table] = await self._prune_rule(rule, cutoff)
        while True:
            freed = await self._step(lambda db: give_back_pages(db, CHUNK_PAGES))
            report.pages_given_back += freed
            if freed < CHUNK_PAGES:
                break
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
            count = await self._step(lambda db: prune_chunk(db, rule, cutoff, CHUNK_ROWS))
            deleted += count
            if count < CHUNK_ROWS:
                return deleted

    async def _step(self, fn: Callable) -> int:
        """One transaction, then a pause at least as long as it took."""
        started = time.monotonic()
        result = await self.store.write(fn)
        await asyncio.sleep(max(time.monotonic() - started, MIN_PAUSE))
        return result
