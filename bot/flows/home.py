"""What one person's App Home board shows, gathered from the store: the stuck counts against yesterday's snapshot, the
most urgent stuck orders with the buttons this person may use, their last actions, webhook and scan health, and, for
admins, the settings. Returns data (bot/domain/home.py's Board); the Slack side draws and publishes it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.domain.home import (
    MY_ACTIONS_SHOWN,
    Board,
    Health,
    ReasonTrend,
    StuckRow,
    UrgentOrder,
    most_urgent,
    trends,
)
from bot.domain.orders import Order
from bot.flows.slash import SlashCommands
from bot.store.digests import stuck_counts
from bot.store.home import day_counts, last_delivery, orders_by_id, stuck_rows
from bot.store.lookup import audit_log


@dataclass(frozen=True, slots=True)
class StoreView:
    """What every viewer's board shows alike, read once for a round of publishes: 20 people watching read the stuck
    orders once, not 20 times. The per-viewer parts (their actions, their buttons, the settings) are read per board."""

    now: datetime
    trends: list[ReasonTrend]
    urgent: list[tuple[StuckRow, Order]]  # the most urgent stuck orders still known, with the order
    more: int
    health: Health


class HomeBoards:
    def __init__(self, slash: SlashCommands):
        self.slash = slash
        self.store = slash.store
        self.permissions = slash.permissions
        self.now = slash.service.now

    async def store_view(self) -> StoreView:
        now = self.now()
        yesterday = (now.astimezone(UTC) - timedelta(days=1)).date()  # stuck_days keeps UTC days
        counts, before, rows, delivered = await self.store.read(
            lambda db: (stuck_counts(db), day_counts(db, yesterday), stuck_rows(db), last_delivery(db))
        )
        shown, more = most_urgent(rows)
        orders = await self.store.read(lambda db: orders_by_id(db, [row.order_id for row in shown]))
        urgent = [(row, orders[row.order_id]) for row in shown if row.order_id in orders]
        more = max(more - (len(shown) - len(urgent)), 0)  # forgotten since the read (a privacy webhook)
        health = await self.store.health()
        return StoreView(
            now=now,
            trends=trends(counts, before),
            urgent=urgent,
            more=more,
            health=Health(
                last_delivery=delivered,
                last_scan=_time(health["last_scan"]),
                last_scan_error=health["last_scan_error"],
                parked=health["inbox_parked"],
                pending=health["inbox_pending"],
            ),
        )

    async def board(self, viewer: str, *, notice: str | None = None, seen: StoreView | None = None) -> Board:
        """The viewer's board; `seen`: the store as read for this round (read now when not given)."""
        seen = seen or await self.store_view()
        mine = await self.store.read(lambda db: audit_log(db, actor=viewer, limit=MY_ACTIONS_SHOWN))
        urgent = []
        for row, order in seen.urgent:
            actions = tuple([a for a in row.actions if await self.permissions.may(viewer, a)])
            urgent.append(UrgentOrder(order, row.reason, row.severity, row.since, actions))
        is_admin = await self.permissions.may(viewer, "settings")
        return Board(
            viewer=viewer,
            now=seen.now,
            trends=seen.trends,
            urgent=urgent,
            more=seen.more,
            my_actions=mine,
            health=seen.health,
            settings=await self.slash.setting_values() if is_admin else None,
            notice=notice,
        )


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None
