"""A bulk cancel's pure parts: the number typed to confirm, what orders add up to, their payment states, and the
tally of requested and settled cancellations."""

from __future__ import annotations

from bot.domain.bulk import CancelTally, amounts, cancel_tally, typed_count
from bot.domain.orders import Money


def test_the_typed_number_is_read_as_people_type_it():
    assert [typed_count(t) for t in ("25", " 25 ", "25 orders", "1 order", "1,200", "0025")] == [
        25,
        25,
        25,
        1,
        1200,
        25,
    ]
    assert [typed_count(t) for t in ("", "twenty-five", "25.0", "1,20", "-25", "25 or 26")] == [None] * 6


def test_amounts_add_up_per_currency_largest_first():
    assert amounts([Money("10.50", "USD"), Money("1000", "USD")]) == "1,010.50 USD"
    assert amounts([Money("5", "EUR"), Money("80", "GBP"), Money("1.25", "EUR")]) == "80.00 GBP + 6.25 EUR"
    assert amounts([Money("not money", "USD")]) == "nothing to pay" and amounts([]) == "nothing to pay"


def test_requested_and_cancelled_are_counted_apart():
    items = [
        {"order_id": "1", "order_name": "#1", "status": "done", "settled": "cancelled"},
        {"order_id": "2", "order_name": "#2", "status": "done", "settled": None},
        {"order_id": "3", "order_name": "#3", "status": "done", "settled": "not_cancelled"},
        {"order_id": "4", "order_name": "#4", "status": "skipped", "settled": "cancelled"},  # cancelled by someone else
        {"order_id": "5", "order_name": "#5", "status": "pending", "settled": None},
        {"order_id": "6", "order_name": "#6", "status": "done", "settled": "unconfirmed"},
    ]
    tally = cancel_tally(items)
    assert tally == CancelTally(4, {"cancelled": ("#1",), "not_cancelled": ("#3",), "unconfirmed": ("#6",)})
    assert (tally.requested, tally.cancelled, tally.waiting) == (4, 1, 1)
    assert cancel_tally([]) == CancelTally(0, {}) and cancel_tally([]).waiting == 0
