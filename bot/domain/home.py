"""The App Home board's pure parts: the stuck counts by reason against yesterday's, the most urgent stuck orders,
who still watches their Home, and when a viewer's board may be published again. Pure: no I/O, times passed in."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.domain.orders import Order
from bot.domain.rules import REASONS, SEVERITIES

URGENT_SHOWN = 10  # stuck orders listed; the rest are "N more"
MY_ACTIONS_SHOWN = 5
WATCHING_FOR = timedelta(hours=24)  # a viewer's board is kept current this long after they last opened it
REFRESH_EVERY = 5.0  # seconds: at most one views.publish per viewer this often, however many changes


@dataclass(frozen=True, slots=True)
class ReasonTrend:
    """Stuck orders of one reason now, and in yesterday's snapshot (None: no snapshot of yesterday)."""

    reason: str
    now: int
    yesterday: int | None

    @property
    def change(self) -> int | None:
        return None if self.yesterday is None else self.now - self.yesterday


@dataclass(frozen=True, slots=True)
class StuckRow:
    """A stuck order as the verdicts table has it."""

    order_id: str
    name: str
    reason: str
    severity: str
    since: datetime
    actions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class UrgentOrder:
    """A stuck order on the board, with the buttons its viewer may use (in the alert's order)."""

    order: Order
    reason: str
    severity: str
    since: datetime
    actions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Health:
    last_delivery: datetime | None  # the newest webhook received
    last_scan: datetime | None
    last_scan_error: str | None
    parked: int  # deliveries failed for good
    pending: int  # deliveries waiting to be processed


@dataclass(frozen=True, slots=True)
class Board:
    """Everything one viewer's Home shows. `settings` only for admins (None otherwise)."""

    viewer: str
    now: datetime
    trends: list[ReasonTrend]
    urgent: list[UrgentOrder]
    more: int  # stuck orders not listed
    my_actions: list[Mapping[str, Any]]  # audit rows, newest first, with `order_name`
    health: Health
    settings: Mapping[str, str] | None
    notice: str | None = None  # the outcome of the viewer's last click, at the top


def trends(now: Mapping[str, int], yesterday: Mapping[str, int] | None) -> list[ReasonTrend]:
    """Every reason stuck now or yesterday, in REASONS order (then any other reason the store holds)."""
    before = yesterday or {}
    reasons = dict.fromkeys([*REASONS, *now, *before])
    return [
        ReasonTrend(reason, now.get(reason, 0), None if yesterday is None else before.get(reason, 0))
        for reason in reasons
        if now.get(reason) or before.get(reason)
    ]


def most_urgent(rows: Iterable[StuckRow], limit: int = URGENT_SHOWN) -> tuple[list[StuckRow], int]:
    """The stuck orders most in need: critical before warning, then the longest stuck; and how many are left out."""
    rank = {severity: index for index, severity in enumerate(SEVERITIES)}
    ordered = sorted(rows, key=lambda row: (-rank.get(row.severity, 0), row.since, row.name))
    return ordered[:limit], max(len(ordered) - limit, 0)


def watching(opened: Mapping[str, float], now: float, within: float = WATCHING_FOR.total_seconds()) -> list[str]:
    """The viewers who opened their Home within `within` seconds of `now` (a monotonic clock)."""
    return [viewer for viewer, at in opened.items() if now - at < within]


def due_at(last_published: float | None, every: float = REFRESH_EVERY) -> float:
    """When a viewer's board may be published again: `every` seconds after the last time (at once if never)."""
    return float("-inf") if last_published is None else last_published + every


def due_now(
    waiting: Sequence[str], published: Mapping[str, float], now: float, every: float = REFRESH_EVERY
) -> tuple[list[str], float | None]:
    """Of the viewers whose board is out of date, those that may be published now; and when the next of the others
    may (None: none left)."""
    ready = [viewer for viewer in waiting if due_at(published.get(viewer), every) <= now]
    later = [due_at(published.get(viewer), every) for viewer in waiting if viewer not in ready]
    return ready, min(later, default=None)
