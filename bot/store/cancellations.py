"""Order cancellations in flight (the `cancellations` table): written before orderCancel is sent, given Shopify's job
id once it answers, deleted once settled (bot/flows/cancellations.py). Mixed into Store, which provides `read` and
`write`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import sqlite_utils


class CancellationTables:
    read: Callable[..., Awaitable[Any]]
    write: Callable[..., Awaitable[Any]]

    async def cancellation_requested(self, order_id: str, *, actor: str, detail: str, at: datetime) -> None:
        await self.write(
            lambda db: db.execute(
                "INSERT OR REPLACE INTO cancellations (order_id, job_id, actor, detail, requested_at)"
                " VALUES (?, NULL, ?, ?, ?)",
                [order_id, actor, detail, at.isoformat()],
            )
        )

    async def cancellation_job(self, order_id: str, job_id: str | None) -> None:
        await self.write(
            lambda db: db.execute("UPDATE cancellations SET job_id = ? WHERE order_id = ?", [job_id, order_id])
        )

    async def cancellation_settled(self, order_id: str) -> None:
        await self.write(lambda db: db.execute("DELETE FROM cancellations WHERE order_id = ?", [order_id]))

    async def cancellation(self, order_id: str) -> dict[str, Any] | None:
        """The order's cancellation in flight (`requested_at` as a datetime), or None."""

        def select(db: sqlite_utils.Database) -> dict[str, Any] | None:
            row = next(db.query("SELECT * FROM cancellations WHERE order_id = ?", [order_id]), None)
            return _with_time(row) if row else None

        return await self.read(select)

    async def cancellations_in_flight(self) -> dict[str, datetime]:
        """Order id -> when its cancellation was asked for."""
        return await self.read(
            lambda db: {
                r[0]: datetime.fromisoformat(r[1])
                for r in db.execute("SELECT order_id, requested_at FROM cancellations")
            }
        )


def _with_time(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "requested_at": datetime.fromisoformat(row["requested_at"])}
