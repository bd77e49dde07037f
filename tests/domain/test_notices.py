"""The customer's delay notice: one honest template per reason, greeting by name, signed by the shop, no prices."""

from __future__ import annotations

import re
from dataclasses import FrozenInstanceError, replace
from datetime import UTC, datetime

import pytest

from bot.domain.notices import Notice, customer_notice
from bot.domain.orders import Customer, Fulfillment, FulfillmentOrder, FulfillmentOrderLine, Hold, Money, Order
from bot.domain.rules import REASONS

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)
SHOP_NAME = "Juniper & Oak"


def held_out_of_stock(*titles: str) -> FulfillmentOrder:
    return FulfillmentOrder(
        "gid://shopify/FulfillmentOrder/1",
        "ON_HOLD",
        "UNSUBMITTED",
        NOW,
        NOW,
        holds=(Hold("gid://shopify/FulfillmentHold/1", "INVENTORY_OUT_OF_STOCK"),),
        lines=tuple(
            FulfillmentOrderLine(f"gid://shopify/FulfillmentOrderLineItem/{n}", title, None, 1, 1)
            for n, title in enumerate(titles)
        ),
    )


ORDER = Order(
    id="gid://shopify/Order/5830419926919",
    name="#1001",
    created_at=NOW,
    updated_at=NOW,
    financial_status="PAID",
    fulfillment_status="UNFULFILLED",
    total=Money("102.95", "USD"),
    customer=Customer("Maya Thompson", "maya.thompson@example.com"),
    fulfillment_orders=(held_out_of_stock("Wool Blend Blanket - Oat"),),
)

# Words each reason's notice must use, so every template is the one written for it.
EXPECTED = {
    "request_rejected": "preparing it",
    "payment_pending": "check with your bank",
    "out_of_stock": "out of stock",
    "on_hold": "checking a detail",
    "unfulfilled_overdue": "preparing it",
    "partially_fulfilled": "already on its way",
    "request_pending": "preparing it",
    "awaiting_tracking": "tracking number has not reached us",
}


def test_every_reason_has_its_own_words():
    assert set(EXPECTED) == set(REASONS)


@pytest.mark.parametrize("reason", [*REASONS, None, "something_new"])
def test_a_notice_for_every_reason(reason):
    notice = customer_notice(ORDER, reason, shop_name=SHOP_NAME)
    assert isinstance(notice, Notice)
    assert "#1001" in notice.subject and "#1001" in notice.body
    assert notice.body.startswith("Hello Maya Thompson,\n\n")
    assert notice.body.endswith(f"\n\nBest wishes,\n{SHOP_NAME}")
    assert "102.95" not in notice.body and "$" not in notice.body  # no prices
    assert not re.search(r"\{\w+\}", notice.subject + notice.body)  # every placeholder filled
    assert len(notice.body) < 1000 and len(notice.subject) < 80
    if reason in EXPECTED and reason != "awaiting_tracking":
        assert EXPECTED[reason] in notice.body


def test_awaiting_tracking_says_on_its_way_only_when_it_has_shipped():
    accepted = customer_notice(ORDER, "awaiting_tracking", shop_name=SHOP_NAME)  # nothing shipped yet
    assert "on its way" not in accepted.subject + accepted.body and "preparing it" in accepted.body
    shipped = replace(ORDER, fulfillments=(Fulfillment("gid://shopify/Fulfillment/1", "SUCCESS", NOW, NOW, ()),))
    notice = customer_notice(shipped, "awaiting_tracking", shop_name=SHOP_NAME)
    assert notice.subject == "Your order #1001 is on its way"
    assert EXPECTED["awaiting_tracking"] in notice.body


def test_unknown_reasons_get_the_generic_notice():
    assert customer_notice(ORDER, None, shop_name=SHOP_NAME) == customer_notice(ORDER, "nope", shop_name=SHOP_NAME)
    assert "taking longer than we expected" in customer_notice(ORDER, None, shop_name=SHOP_NAME).body


def test_no_name_no_problem():
    anonymous = replace(ORDER, customer=Customer(None, "someone@example.com"))
    assert customer_notice(anonymous, "on_hold", shop_name=SHOP_NAME).body.startswith("Hello,\n\n")
    nobody = replace(ORDER, customer=None)
    assert customer_notice(nobody, "on_hold", shop_name=SHOP_NAME).body.startswith("Hello,\n\n")


def test_out_of_stock_names_the_items_when_known_and_promises_no_date():
    one = customer_notice(ORDER, "out_of_stock", shop_name=SHOP_NAME).body
    assert "Part of your order #1001 is out of stock at the moment (Wool Blend Blanket - Oat)." in one
    assert not re.search(r"\d+ (day|week)s?|by (Monday|tomorrow)", one)
    many = replace(ORDER, fulfillment_orders=(held_out_of_stock("A", "B", "C", "D", "E"),))
    assert "(A, B, C, 2 more)" in customer_notice(many, "out_of_stock", shop_name=SHOP_NAME).body
    unknown = replace(ORDER, fulfillment_orders=None)
    assert "is out of stock at the moment. " in customer_notice(unknown, "out_of_stock", shop_name=SHOP_NAME).body


def test_on_hold_does_not_reveal_why():
    body = customer_notice(ORDER, "on_hold", shop_name=SHOP_NAME).body
    assert "fraud" not in body.lower() and "risk" not in body.lower()


def test_a_notice_is_immutable():
    notice = customer_notice(ORDER, "on_hold", shop_name=SHOP_NAME)
    with pytest.raises(FrozenInstanceError):
        notice.subject = "x"
