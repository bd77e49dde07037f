"""Settings (key, value, who set it when) and snoozes. Mixed into Store, which provides `read` and `write`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from bot.store.sql import now_iso


class SettingTables:
    """The settings and snooze methods of Store."""

    read: Callable[..., Awaitable[Any]]
    write: Callable[..., Awaitable[Any]]

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
