"""domain.selection: which orders a Selection means and in what order; domain.bulk: bulk fulfil's tracking and the
grouping of a run's outcomes. Pure: orders built here, times relative to a fixed NOW."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bot.domain import bulk, selection
from bot.domain.commands import Selection
from bot.domain.orders import Fulfillment, FulfillmentOrder, Money, Order, Tracking

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
D = timedelta(days=1)


def order(number: int, *, age: timedelta = 3 * D, **changes) -> Order:
    base = Order(
        id=f"gid://shopify/Order/{number * 10}",
        name=f"#{number}",
        created_at=NOW - age,
        updated_at=NOW - age,
        financial_status="PAID",
        fulfillment_status="UNFULFILLED",
        total=Money("10.00", "USD"),
    )
    return replace(base, **changes)


def stuck(reason: str = "awaiting_tracking", since: timedelta = 2 * D) -> dict:
    return {"stuck": 1, "reason": reason, "since": (NOW - since).isoformat()}


def shipment(ago: timedelta, number: str | None = "1Z1", status: str = "SUCCESS", company: str | None = "UPS"):
    tracking = (Tracking(number, company, f"https://track/{number}"),) if number else ()
    return Fulfillment(f"gid://shopify/Fulfillment/{ago.days}{number}", status, NOW - ago, NOW - ago, tracking)


def open_fo(actions: tuple[str, ...] = ("CREATE_FULFILLMENT",), status: str = "IN_PROGRESS") -> FulfillmentOrder:
    return FulfillmentOrder(
        "gid://shopify/FulfillmentOrder/1", status, "UNSUBMITTED", NOW - D, NOW - D, supported_actions=actions
    )


def test_names_and_ids_find_orders_whatever_their_state():
    chosen = Selection(numbers=(1001, 1002), ids=("gid://shopify/Order/10030",))
    archived = order(1001, closed_at=NOW - D)
    cancelled = order(1003, cancelled_at=NOW - D, closed_at=NOW - D)
    assert selection.matches(chosen, archived, None, NOW)
    assert selection.matches(chosen, cancelled, None, NOW)
    assert not selection.matches(chosen, order(1004), None, NOW)


def test_a_filter_alone_considers_open_orders_only():
    tagged = Selection(tag="Wholesale")
    assert selection.matches(tagged, order(1, tags=("wholesale",)), None, NOW)
    assert not selection.matches(tagged, order(2, tags=("wholesale",), closed_at=NOW), None, NOW)
    assert not selection.matches(tagged, order(3, tags=("retail",)), None, NOW)


def test_stuck_needs_a_stuck_verdict_and_the_reason_asked_for():
    assert selection.matches(Selection(stuck=True), order(1), stuck(), NOW)
    assert not selection.matches(Selection(stuck=True), order(1), {"stuck": 0, "reason": None, "since": None}, NOW)
    assert not selection.matches(Selection(stuck=True), order(1), None, NOW)
    assert selection.matches(Selection(stuck=True, reason="out_of_stock"), order(1), stuck("out_of_stock"), NOW)
    assert not selection.matches(Selection(stuck=True, reason="out_of_stock"), order(1), stuck(), NOW)


def test_names_and_a_filter_combine_as_and():
    chosen = Selection(numbers=(1, 2), stuck=True)
    assert selection.matches(chosen, order(1), stuck(), NOW)
    assert not selection.matches(chosen, order(2), None, NOW)
    assert not selection.matches(chosen, order(3), stuck(), NOW)


def test_older_measures_from_stuck_since_with_stuck():
    chosen = Selection(stuck=True, older=7 * D)
    created_long_ago = order(1, age=30 * D)
    assert not selection.matches(chosen, created_long_ago, stuck(since=6 * D), NOW)
    assert selection.matches(chosen, created_long_ago, stuck(since=8 * D), NOW)


def test_older_measures_from_the_last_shipment_with_fulfilled():
    chosen = Selection(fulfilled=True, older=30 * D)
    shipped_recently = order(1, age=60 * D, fulfillment_status="FULFILLED", fulfillments=(shipment(10 * D),))
    shipped_long_ago = order(2, age=60 * D, fulfillment_status="FULFILLED", fulfillments=(shipment(40 * D),))
    assert not selection.matches(chosen, shipped_recently, None, NOW)
    assert selection.matches(chosen, shipped_long_ago, None, NOW)
    assert not selection.matches(chosen, replace(shipped_long_ago, closed_at=NOW), None, NOW), "archived already"
    assert not selection.matches(chosen, order(3, age=60 * D), None, NOW), "not shipped"


def test_older_alone_measures_from_creation():
    assert selection.matches(Selection(older=2 * D), order(1, age=3 * D), None, NOW)
    assert not selection.matches(Selection(older=2 * D), order(1, age=D), None, NOW)


def test_select_orders_oldest_first_by_what_older_measures():
    rows = [
        (order(1, age=10 * D), stuck(since=1 * D)),
        (order(2, age=2 * D), stuck(since=2 * D)),
        (order(3, age=5 * D), None),
    ]
    found = selection.select(Selection(stuck=True), rows, NOW)
    assert [o.name for o, _ in found] == ["#2", "#1"]
    by_creation = selection.select(Selection(numbers=(1, 2, 3)), rows, NOW)
    assert [o.name for o, _ in by_creation] == ["#1", "#3", "#2"]


def test_names_keep_the_order_given_without_repeats():
    assert selection.names(Selection(numbers=(1003, 1001, 1003))) == ["#1003", "#1001"]


# --- bulk fulfil and the run's groups -----------------------------------------------------------------------------


def test_bulk_fulfil_uses_the_one_tracking_number_already_on_the_order():
    shipped_part = order(1, fulfillments=(shipment(D, "1Z9", company="UPS"),), fulfillment_orders=(open_fo(),))
    assert bulk.fulfill_inputs(shipped_part) == {
        "tracking_number": "1Z9",
        "tracking_company": "UPS",
        "tracking_url": "https://track/1Z9",
        "notify_customer": False,
    }


def test_bulk_fulfil_refuses_without_one_known_number_or_anything_to_ship():
    no_number = order(1, fulfillment_orders=(open_fo(),))
    assert bulk.fulfill_inputs(no_number) == bulk.NO_TRACKING
    untracked_shipment = order(2, fulfillments=(shipment(D, None),), fulfillment_orders=(open_fo(),))
    assert bulk.fulfill_inputs(untracked_shipment) == bulk.NO_TRACKING
    two = order(3, fulfillments=(shipment(D, "A"), shipment(2 * D, "B")), fulfillment_orders=(open_fo(),))
    assert bulk.fulfill_inputs(two) == bulk.SEVERAL_TRACKING
    cancelled_shipment = order(4, fulfillments=(shipment(D, "A", status="CANCELLED"),), fulfillment_orders=(open_fo(),))
    assert bulk.fulfill_inputs(cancelled_shipment) == bulk.NO_TRACKING
    at_a_service = order(5, fulfillments=(shipment(D, "A"),), fulfillment_orders=(open_fo(("REQUEST_CANCELLATION",)),))
    assert bulk.fulfill_inputs(at_a_service) == bulk.NOTHING_TO_SHIP


def test_outcomes_group_by_reason_without_the_order_names():
    items = [
        {"order_id": "a", "order_name": "#1", "outcome": "already", "message": "#1 is archived already."},
        {"order_id": "b", "order_name": "#2", "outcome": "failed", "message": "Shopify refused to change #2: No."},
        {"order_id": "c", "order_name": "#3", "outcome": "already", "message": "#3 is archived already."},
        {"order_id": "d", "order_name": "#4", "outcome": "failed", "message": "Shopify refused to change #4: No."},
        {"order_id": "e", "order_name": "#5", "outcome": "failed", "message": "Shopify refused to change #5: Gone."},
        {"order_id": "f", "order_name": "#6", "outcome": "already", "message": "#6 is archived already."},
    ]
    groups = bulk.grouped(items)
    assert groups[0] == bulk.Group(bulk.ALREADY_DONE, ("#1", "#3", "#6"))
    assert groups[1] == bulk.Group("Shopify refused to change the order: No.", ("#2", "#4"))
    assert groups[2] == bulk.Group("Shopify refused to change the order: Gone.", ("#5",))
