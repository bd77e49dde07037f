"""The chart's series from the store's rows: pure, on a fixed day."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.domain.digest_chart import CHART_DAYS, Resolution, StuckSnapshot, chart_days, chart_series

TODAY = date(2026, 3, 10)


def resolved(day: date, hour: int, took_hours: float, zone=UTC) -> Resolution:
    return Resolution(datetime(day.year, day.month, day.day, hour, tzinfo=zone), timedelta(hours=took_hours))


def test_the_window_is_the_thirty_days_ending_today_oldest_first():
    days = chart_days(TODAY)
    assert len(days) == CHART_DAYS == 30
    assert days[0] == date(2026, 2, 9) and days[-1] == TODAY


def test_counts_per_day_by_reason_in_the_rules_order_and_a_day_without_a_snapshot_is_a_gap():
    yesterday = TODAY - timedelta(days=1)
    snapshots = [
        StuckSnapshot(TODAY, "awaiting_tracking", 4),
        StuckSnapshot(TODAY, "unfulfilled_overdue", 2),
        StuckSnapshot(TODAY, "out_of_stock", 0),
        StuckSnapshot(yesterday, "out_of_stock", 0),  # recorded, nothing stuck
        StuckSnapshot(TODAY - timedelta(days=3), "awaiting_tracking", 7),
        StuckSnapshot(TODAY - timedelta(days=30), "awaiting_tracking", 99),  # before the window
    ]
    series = chart_series(snapshots, [], today=TODAY)
    assert [reason for reason, _ in series.stuck] == ["unfulfilled_overdue", "awaiting_tracking"]
    counts = dict(series.stuck)
    assert counts["awaiting_tracking"][-1] == 4 and counts["awaiting_tracking"][-4] == 7
    assert counts["unfulfilled_overdue"][-1] == 2
    assert series.total_stuck(-1) == 6 and series.total_stuck(-2) == 0
    assert series.recorded[-3:] == (False, True, True)
    assert series.recorded.count(True) == 3
    assert sum(sum(c) for _, c in series.stuck) == 13


def test_the_median_time_to_resolve_per_utc_day():
    rows = [
        resolved(TODAY, 1, 2),
        resolved(TODAY, 5, 10),
        resolved(TODAY, 9, 4),
        resolved(TODAY - timedelta(days=2), 12, 1),
        resolved(TODAY - timedelta(days=2), 13, 3),
        # 20:00 in New York on the 9th is 01:00 UTC on the 10th: today's
        resolved(TODAY - timedelta(days=1), 20, 6, zone=ZoneInfo("America/New_York")),
        resolved(TODAY - timedelta(days=40), 1, 5),  # before the window
    ]
    series = chart_series([], rows, today=TODAY)
    assert series.resolved[-3:] == (2, 0, 4)
    assert series.median_to_resolve[-1] == timedelta(hours=5)  # median of 2, 4, 6, 10
    assert series.median_to_resolve[-2] is None
    assert series.median_to_resolve[-3] == timedelta(hours=2)
    assert sum(series.resolved) == 6
    assert series.has_data and not any(series.recorded)


def test_nothing_recorded_is_an_empty_chart():
    series = chart_series([], [], today=TODAY)
    assert not series.has_data and series.stuck == () and set(series.median_to_resolve) == {None}
