"""Bulk runs and their orders (`bulk_runs`, `bulk_items`): what a restart needs to resume a run without repeating
finished orders.

An item is marked finished only after `Actions.run` returned for it, in one write with its outcome; a run resumed
after a restart re-runs only items still `pending` (an order changed just before a crash is re-read by
`Actions.run` and comes back as "already done"). Status changes of a run are conditional updates, so two clicks on
Confirm (or Stop) change it once.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlite_utils

from bot.store.sql import insert, now_iso

ACTIVE = ("running", "stopping")  # runs a restart resumes (a stopping run ends as stopped)
PREVIEW_KEPT = timedelta(days=1)  # a preview nobody confirmed expires after this (Slack's own answer is long gone)


class BulkTables:
    """Mixed into `Store` (which provides `read` and `write`)."""

    async def create_bulk_run(
        self, *, action: str, command: str, inputs: dict[str, Any], actor: str, orders: list[tuple[str, str]]
    ) -> int:
        """A previewed run over `orders` ((id, name), in the order they will run); returns its id. Previews older
        than PREVIEW_KEPT that were never confirmed expire in the same transaction: their orders are deleted, the run
        row stays (an id is never reused, so an old Confirm button cannot start another run)."""

        def create(db: sqlite_utils.Database) -> int:
            _expire_old_previews(db, (datetime.now(UTC) - PREVIEW_KEPT).isoformat())
            run = {
                "action": action,
                "command": command,
                "inputs": json.dumps(inputs),
                "actor": actor,
                "status": "previewed",
                "total": len(orders),
                "created_at": now_iso(),
            }
            run_id = insert(db, "bulk_runs", run)
            db.conn.executemany(
                "INSERT INTO bulk_items (run_id, position, order_id, order_name) VALUES (?, ?, ?, ?)",
                [(run_id, position, order_id, name) for position, (order_id, name) in enumerate(orders)],
            )
            return run_id

        return await self.write(create)

    async def bulk_run(self, run_id: int) -> dict[str, Any] | None:
        def select(db: sqlite_utils.Database) -> dict[str, Any] | None:
            row = next(db.query("SELECT * FROM bulk_runs WHERE id = ?", [run_id]), None)
            if row is not None:
                row["inputs"] = json.loads(row["inputs"] or "{}")
            return row

        return await self.read(select)

    async def start_bulk_run(self, run_id: int, confirmed_by: str, inputs: dict[str, Any] | None = None) -> bool:
        """previewed → running, with the inputs every order shares when they were chosen at the confirmation (a
        bulk cancel's form); False when the run is not waiting for a confirmation (a second click)."""
        assignments = "status = 'running', confirmed_by = ?, started_at = ?"
        params: list[Any] = [confirmed_by, now_iso()]
        if inputs is not None:
            assignments += ", inputs = ?"
            params.append(json.dumps(inputs))
        return await self._change_run(run_id, ("previewed",), assignments, params)

    async def cancel_bulk_run(self, run_id: int) -> bool:
        """previewed → cancelled."""
        return await self._change_run(run_id, ("previewed",), "status = 'cancelled', finished_at = ?", [now_iso()])

    async def stop_bulk_run(self, run_id: int, stopped_by: str) -> bool:
        """running → stopping: the run finishes the orders in flight, then ends as stopped."""
        return await self._change_run(run_id, ("running",), "status = 'stopping', stopped_by = ?", [stopped_by])

    async def end_bulk_run(self, run_id: int) -> str:
        """running → done, stopping → stopped; returns the final status."""

        def end(db: sqlite_utils.Database) -> str:
            db.execute(
                "UPDATE bulk_runs SET finished_at = ?,"
                " status = CASE status WHEN 'stopping' THEN 'stopped' ELSE 'done' END"
                " WHERE id = ? AND status IN ('running', 'stopping')",
                [now_iso(), run_id],
            )
            return db.execute("SELECT status FROM bulk_runs WHERE id = ?", [run_id]).fetchone()[0]

        return await self.write(end)

    async def set_bulk_message(self, run_id: int, channel: str, ts: str) -> None:
        await self.write(
            lambda db: db.execute(
                "UPDATE bulk_runs SET channel = ?, message_ts = ? WHERE id = ?", [channel, ts, run_id]
            )
        )

    async def _change_run(self, run_id: int, states: tuple[str, ...], assignments: str, params: list[Any]) -> bool:
        marks = ", ".join("?" * len(states))
        sql = f"UPDATE bulk_runs SET {assignments} WHERE id = ? AND status IN ({marks})"
        return await self.write(lambda db: db.execute(sql, [*params, run_id, *states]).rowcount == 1)

    async def active_bulk_runs(self) -> list[int]:
        """Runs a restart interrupted, oldest first."""
        marks = ", ".join("?" * len(ACTIVE))
        sql = f"SELECT id FROM bulk_runs WHERE status IN ({marks}) ORDER BY id"
        return await self.read(lambda db: [r[0] for r in db.execute(sql, ACTIVE)])

    # --- items ----------------------------------------------------------------------------------------------

    async def bulk_items(self, run_id: int, *, status: str | None = None) -> list[dict[str, Any]]:
        """The run's items in run order (only those with `status`, if given)."""
        where, params = ("AND status = ?", [status]) if status else ("", [])
        sql = f"SELECT * FROM bulk_items WHERE run_id = ? {where} ORDER BY position"
        return await self.read(lambda db: list(db.query(sql, [run_id, *params])))

    async def finish_bulk_item(self, run_id: int, position: int, *, status: str, outcome: str, message: str) -> None:
        await self.write(
            lambda db: db.execute(
                "UPDATE bulk_items SET status = ?, outcome = ?, message = ?, finished_at = ?"
                " WHERE run_id = ? AND position = ?",
                [status, outcome, message, now_iso(), run_id, position],
            )
        )

    async def settle_bulk_items(self, order_id: str, settled: str) -> list[int]:
        """A cancellation a bulk cancel requested has settled: its item keeps how (the latest run's, if the order
        was in several; a pending item's settlement counts only once the run marks it done). Returns the runs whose
        item changed."""

        def settle(db: sqlite_utils.Database) -> list[int]:
            row = db.execute(  # pending too: the follower may settle it before the run has marked it done
                "SELECT i.run_id, i.position FROM bulk_items i JOIN bulk_runs r ON r.id = i.run_id"
                " WHERE i.order_id = ? AND r.action = 'cancel_order' AND r.status != 'previewed'"
                " AND i.status IN ('pending', 'done') AND i.settled IS NULL"
                " ORDER BY i.run_id DESC LIMIT 1",
                [order_id],
            ).fetchone()
            if row is None:
                return []
            db.execute("UPDATE bulk_items SET settled = ? WHERE run_id = ? AND position = ?", [settled, *row])
            return [row[0]]

        return await self.write(settle)

    async def bulk_counts(self, run_id: int) -> dict[str, int]:
        """Items by status: pending, done, skipped, failed."""
        sql = "SELECT status, count(*) FROM bulk_items WHERE run_id = ? GROUP BY status"
        return await self.read(lambda db: dict(db.execute(sql, [run_id]).fetchall()))

    async def summary_shown(self, run_id: int, settled: int) -> None:
        """A bulk cancel's summary was drawn showing `settled` settled cancellations."""
        await self.write(
            lambda db: db.execute("UPDATE bulk_runs SET settled_shown = ? WHERE id = ?", [settled, run_id])
        )

    async def stale_summaries(self) -> list[int]:
        """Ended bulk cancels whose summary shows fewer settled cancellations than are settled, oldest first."""
        sql = (
            "SELECT r.id FROM bulk_runs r WHERE r.action = 'cancel_order' AND r.status IN ('done', 'stopped')"
            " AND r.message_ts IS NOT NULL AND coalesce(r.settled_shown, -1) != (SELECT count(*) FROM bulk_items i"
            " WHERE i.run_id = r.id AND i.status = 'done' AND i.settled IS NOT NULL) ORDER BY r.id"
        )
        return await self.read(lambda db: [r[0] for r in db.execute(sql)])


def _expire_old_previews(db: sqlite_utils.Database, before: str) -> None:
    old = "SELECT id FROM bulk_runs WHERE status IN ('previewed', 'cancelled') AND created_at < ?"
    db.execute(f"DELETE FROM bulk_items WHERE run_id IN ({old})", [before])
    db.execute("UPDATE bulk_runs SET status = 'expired' WHERE status = 'previewed' AND created_at < ?", [before])
