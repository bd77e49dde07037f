"""The audit log (who did what to which order, and how it went), the scans and the daily counters. Mixed into
Store, which provides `read` and `write`."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import sqlite_utils

from bot.store.digests import snapshot_stuck_counts
from bot.store.sql import bump_counter, insert, now_iso


class AuditTables:
    """The audit, scan and counter methods of Store."""

    read: Callable[..., Awaitable[Any]]
    write: Callable[..., Awaitable[Any]]

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
