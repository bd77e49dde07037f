"""A calm first day: a scan alerts the most urgent of the stuck orders without an alert, up to `alert_burst`, and
holds back the others, with one summary when it holds back any it had not held back before."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.domain.burst import BurstSummary, from_summary_snapshot, plan_burst, summary_snapshot
from bot.domain.home import StuckRow

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)


def row(number: int, severity: str = "warning", hours: float = 50, reason: str = "unfulfilled_overdue") -> StuckRow:
    return StuckRow(f"gid://shopify/Order/{number}", f"#{number}", reason, severity, NOW - timedelta(hours=hours), ())


def test_up_to_alert_burst_new_alerts_are_all_posted_and_no_summary():
    plan = plan_burst([row(n) for n in range(20)], set(), 20)
    assert plan.held_back == frozenset() and plan.summary is None


def test_over_alert_burst_the_most_urgent_are_alerted_critical_first_then_the_longest_stuck():
    waiting = [row(1, hours=300), row(2, "critical", hours=60), row(3, hours=400), row(4, "critical", hours=70)]
    plan = plan_burst(waiting, set(), 3)
    assert plan.held_back == {"gid://shopify/Order/1"}  # both critical, then the longest stuck warning (#3)


def test_the_summary_counts_the_held_back_orders_by_reason_in_the_rules_order():
    waiting = [row(n, hours=100 + n) for n in range(5)] + [
        row(10 + n, reason="payment_pending", hours=n) for n in range(3)
    ]
    plan = plan_burst(waiting, set(), 2)
    assert plan.summary == BurstSummary(
        alerted=2, held_back=6, by_reason=(("payment_pending", 3), ("unfulfilled_overdue", 3)), alert_burst=2
    )
    assert from_summary_snapshot(summary_snapshot(plan.summary)) == plan.summary


def test_a_later_scan_releases_the_most_urgent_held_back_and_sums_up_only_when_it_holds_back_new_ones():
    held_before = {f"gid://shopify/Order/{n}" for n in range(10)}
    waiting = [row(n, hours=100 - n) for n in range(10)]
    plan = plan_burst(waiting, held_before, 4)
    assert plan.held_back == {f"gid://shopify/Order/{n}" for n in range(4, 10)}
    assert plan.summary is None  # nothing newly held back: no new summary
    newcomer = row(99, hours=51)  # newly stuck, less urgent than every held-back order
    plan = plan_burst([*waiting, newcomer], held_before, 4)
    assert newcomer.order_id in plan.held_back
    assert plan.summary is not None and plan.summary.held_back == 7
