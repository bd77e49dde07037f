"""The series behind the digest's chart: stuck orders per day over the last CHART_DAYS days, by reason, and the
median time to resolve per day. Pure: no I/O; the store's rows come in, `today` is passed.

Days are UTC days, as the store keeps them (the `stuck_days` snapshots and the daily counters). A day's stuck counts
are its snapshot: the stuck orders by reason at the day's last snapshot (taken at each successful scan and each
digest). A day without one (the server was down, or the table is newer than the day) is not recorded: it is drawn
as a gap, not as a day with nothing stuck. A day's time to resolve is the median over the orders resolved that day.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from bot.domain.rules import REASONS

CHART_DAYS = 30


@dataclass(frozen=True, slots=True)
class StuckSnapshot:
    """One row of `stuck_days`: how many orders were stuck for `reason` at the day's last snapshot."""

    day: date
    reason: str
    count: int


@dataclass(frozen=True, slots=True)
class Resolution:
    """One row of `resolutions`: when a stuck order stopped being stuck, and how long it had been stuck."""

    resolved_at: datetime
    took: timedelta


@dataclass(frozen=True, slots=True)
class ChartSeries:
    days: tuple[date, ...]  # oldest first, `today` last
    recorded: tuple[bool, ...]  # per day: whether a snapshot exists (False: a gap in the chart)
    stuck: tuple[tuple[str, tuple[int, ...]], ...]  # (reason, count per day), in the rules' order
    resolved: tuple[int, ...]  # orders resolved per day
    median_to_resolve: tuple[timedelta | None, ...]  # per day; None when none was resolved

    def total_stuck(self, index: int) -> int:
        return sum(counts[index] for _, counts in self.stuck)

    @property
    def has_data(self) -> bool:
        return any(self.recorded) or any(self.resolved)


def chart_days(today: date, days: int = CHART_DAYS) -> tuple[date, ...]:
    """The `days` days ending with `today`, oldest first."""
    return tuple(today - timedelta(days=back) for back in range(days - 1, -1, -1))


def chart_series(
    snapshots: Iterable[StuckSnapshot], resolutions: Iterable[Resolution], *, today: date, days: int = CHART_DAYS
) -> ChartSeries:
    """The chart's series from the store's rows; rows outside the window are left out."""
    shown = chart_days(today, days)
    index = {day: i for i, day in enumerate(shown)}
    recorded = [False] * len(shown)
    counts: dict[str, list[int]] = defaultdict(lambda: [0] * len(shown))
    for row in snapshots:
        i = index.get(row.day)
        if i is None:
            continue
        recorded[i] = True
        if row.count:
            counts[row.reason][i] += row.count
    took: list[list[timedelta]] = [[] for _ in shown]
    for resolution in resolutions:
        i = index.get(resolution.resolved_at.astimezone(UTC).date())
        if i is not None:
            took[i].append(resolution.took)
    order = {reason: i for i, reason in enumerate(REASONS)}
    reasons = sorted(counts, key=lambda r: (order.get(r, len(order)), r))
    return ChartSeries(
        days=shown,
        recorded=tuple(recorded),
        stuck=tuple((reason, tuple(counts[reason])) for reason in reasons),
        resolved=tuple(len(day) for day in took),
        median_to_resolve=tuple(statistics.median(day) if day else None for day in took),
    )
