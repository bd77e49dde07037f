"""The Home board's pure rules: the trend against yesterday, the order of urgency, who still watches, and when a
viewer's board may be published again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.domain.home import ReasonTrend, StuckRow, due_now, most_urgent, trends, watching
from bot.domain.rules import REASONS

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


def row(name: str, severity: str, hours: int) -> StuckRow:
    return StuckRow(f"gid://shopify/Order/{name}", name, "on_hold", severity, NOW - timedelta(hours=hours), ())


def test_trends_list_each_reason_stuck_now_or_yesterday_in_reason_order():
    found = trends({"on_hold": 3, "unfulfilled_overdue": 1}, {"on_hold": 5, "payment_pending": 2})
    by_reason = {t.reason: t for t in found}
    assert by_reason["on_hold"] == ReasonTrend("on_hold", 3, 5) and by_reason["on_hold"].change == -2
    assert by_reason["payment_pending"].change == -2 and by_reason["unfulfilled_overdue"].change == 1
    assert [t.reason for t in found] == sorted(by_reason, key=REASONS.index)
    assert "out_of_stock" not in by_reason


def test_without_yesterdays_snapshot_there_is_no_change():
    (trend,) = trends({"on_hold": 3}, None)
    assert trend.yesterday is None and trend.change is None


def test_critical_comes_first_then_the_longest_stuck_and_the_rest_are_counted():
    rows = [row("#1", "warning", 100), row("#2", "critical", 10), row("#3", "critical", 50), row("#4", "warning", 5)]
    shown, more = most_urgent(rows, limit=3)
    assert [r.name for r in shown] == ["#3", "#2", "#1"] and more == 1


def test_only_recent_viewers_are_watching():
    assert watching({"U1": 0.0, "U2": 90_000.0}, now=100_000.0, within=86_400.0) == ["U2"]


def test_a_board_is_due_once_its_window_has_passed():
    ready, next_at = due_now(["U1", "U2", "U3"], {"U1": 100.0, "U2": 97.0}, now=103.0, every=5.0)
    assert ready == ["U2", "U3"] and next_at == 105.0
    assert due_now([], {}, now=0.0) == ([], None)
