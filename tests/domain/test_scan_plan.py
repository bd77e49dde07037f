"""plan_scan: a full sweep first and once a day, only what changed in between, with an overlap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.domain.scan_plan import CHANGES_OVERLAP, FULL_SWEEP_EVERY, plan_scan

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


def test_the_first_scan_sweeps_the_open_orders_and_those_shipped_in_the_last_two_weeks():
    plan = plan_scan(NOW, None, None)
    assert plan.kind == "full"
    assert plan.order_queries == (
        "status:open -fulfillment_status:shipped",
        "status:open fulfillment_status:shipped updated_at:>=2025-02-24T12:00:00Z",
    )
    assert plan.fulfillment_order_queries == ()


def test_between_sweeps_only_what_changed_since_the_last_scan_with_an_overlap():
    plan = plan_scan(NOW, NOW - timedelta(minutes=15), NOW - timedelta(hours=3))
    assert plan.kind == "changes"
    since = NOW - timedelta(minutes=15) - CHANGES_OVERLAP
    assert plan.order_queries == plan.fulfillment_order_queries == (f"updated_at:>={since:%Y-%m-%dT%H:%M:%SZ}",)


def test_changes_after_a_long_outage_reach_back_to_the_last_successful_scan():
    plan = plan_scan(NOW, NOW - timedelta(hours=20), NOW - timedelta(hours=23))
    assert plan.order_queries == (f"updated_at:>={NOW - timedelta(hours=20) - CHANGES_OVERLAP:%Y-%m-%dT%H:%M:%SZ}",)


def test_a_sweep_of_the_open_orders_not_shipped_once_a_day():
    plan = plan_scan(NOW, NOW - timedelta(minutes=15), NOW - FULL_SWEEP_EVERY)
    assert plan.kind == "full"
    assert plan.order_queries == ("status:open -fulfillment_status:shipped",)


def test_the_first_sweep_again_when_none_succeeded_yet():
    assert plan_scan(NOW, NOW - timedelta(minutes=15), None) == plan_scan(NOW, None, None)


def test_a_last_scan_in_the_future_clock_going_back_still_overlaps_now():
    plan = plan_scan(NOW, NOW + timedelta(hours=1), NOW - timedelta(hours=1))
    assert plan.order_queries == (f"updated_at:>={NOW - CHANGES_OVERLAP:%Y-%m-%dT%H:%M:%SZ}",)
