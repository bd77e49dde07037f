"""What one person's App Home board shows, gathered from the store: the stuck counts against yesterday's snapshot, the
most urgent stuck orders with the buttons this person may use, their last actions, webhook and scan health, and, for
admins, the settings. Returns data (bot/domain/home.py's Board); the Slack side draws and publishes it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.domain.home import MY_ACTIONS_SHOWN, Board, Health, UrgentOrder, most_urgent, trends
from bot.flows.slash import SlashCommands
from bot.store.digests import stuck_counts
from bot.store.home import day_counts, last_delivery, orders_by_id, stuck_rows
from bot.store.lookup import audit_log


class HomeBoards:
    def __init__(self, slash: SlashCommands):
        self.slash = slash
        self.store = slash.store
        self.permissions = slash.permissions
        self.now = slash.service.now

    async def board(self, viewer: str, *, notice: str | None = None) -> Board:
        now = self.now()
        yesterday = (now.astimezone(UTC) - timedelta(days=1)).date()  # stuck_days keeps UTC days
        counts, before, rows, mine, delivered = await self.store.read(
            lambda db: (
                stuck_counts(db),
                day_counts(db, yesterday),
                stuck_rows(db),
                audit_log(db, actor=viewer, limit=MY_ACTIONS_SHOWN),
                last_delivery(db),
            )
        )
        shown, more = most_urgent(rows)
        orders = await self.store.read(lambda db: orders_by_id(db, [row.order_id for row in shown]))
        urgent = []
        for row in shown:
            order = orders.get(row.order_id)
            if order is None:  # forgotten since the read (a privacy webhook)
                more = max(more - 1, 0)
                continue
            actions = tuple([a for a in row.actions if await self.permissions.may(viewer, a)])
            urgent.append(UrgentOrder(order, row.reason, row.severity, row.since, actions))
        health = await self.store.health()
        is_admin = await self.permissions.may(viewer, "settings")
        return Board(
            viewer=viewer,
            now=now,
            trends=trends(counts, before),
            urgent=urgent,
            more=more,
            my_actions=mine,
            health=Health(
                last_delivery=delivered,
                last_scan=_time(health["last_scan"]),
                last_scan_error=health["last_scan_error"],
                parked=health["inbox_parked"],
                pending=health["inbox_pending"],
            ),
            settings=await self.slash.setting_values() if is_admin else None,
            notice=notice,
        )


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None
