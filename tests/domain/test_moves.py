"""Moving an order: which fulfillment order moves, how the Move form words each location, and where none can take
it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from bot.domain.moves import (
    LocationForMove,
    elsewhere,
    fulfillment_order_to_move,
    locations_for_move_from_graphql,
    nowhere_to_move,
)
from bot.domain.orders import FulfillmentOrder, Hold, Money, Order

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)
HERE = "gid://shopify/Location/1"


def fo(number: int, *, holds: tuple[Hold, ...] = (), actions: tuple[str, ...] = ("MOVE",)) -> FulfillmentOrder:
    return FulfillmentOrder(
        f"gid://shopify/FulfillmentOrder/{number}", "OPEN", "UNSUBMITTED", NOW, NOW, location="Warehouse",
        location_id=HERE, holds=holds, supported_actions=actions,
    )  # fmt: skip


def order(*fos: FulfillmentOrder) -> Order:
    return Order("gid://shopify/Order/1", "#1001", NOW, NOW, "PAID", "UNFULFILLED", Money("1.00", "USD"),
                 fulfillment_orders=fos)  # fmt: skip


def place(name: str, movable: bool, stocked: int, missing: int, message: str | None = None) -> LocationForMove:
    return LocationForMove(f"gid://shopify/Location/{name}", name, movable, message, stocked, missing)


def test_the_fulfillment_order_held_for_stock_moves_first_and_one_without_move_never():
    plain, held = fo(1), fo(2, holds=(Hold("h", "INVENTORY_OUT_OF_STOCK"),))
    assert fulfillment_order_to_move(order(plain, held)) == held
    assert fulfillment_order_to_move(order(plain)) == plain
    assert fulfillment_order_to_move(order(fo(3, actions=("CREATE_FULFILLMENT",)))) is None
    assert fulfillment_order_to_move(order(replace(plain, status="CLOSED"))) is None


@pytest.mark.parametrize(
    ("location", "words"),
    [
        (place("A", True, 3, 0), "has all 3 items"),
        (place("B", True, 1, 0), "has the item"),
        (place("C", False, 2, 1), "1 of 3 items not stocked here"),
        (place("D", False, 0, 2), "stocks none of the items"),
        (place("E", False, 0, 1), "does not stock the item"),
        (LocationForMove("x", "F", False, "Current location.", None, None), "Current location"),
    ],
)
def test_what_the_form_says_of_each_location(location, words):
    assert location.words == words


def test_the_other_locations_those_that_can_take_it_first():
    here = LocationForMove(HERE, "Warehouse", False, "Current location.", 2, 0)
    near, far, none = place("Near", False, 1, 1), place("Store", True, 2, 0), place("Kiosk", False, 0, 2)
    assert elsewhere(fo(1), [here, none, near, far]) == [far, near, none]


def test_a_graphql_answer_read_as_locations():
    node = {
        "locationsForMove": {
            "nodes": [
                {
                    "location": {"id": "gid://shopify/Location/2", "name": "Store"},
                    "movable": True,
                    "message": None,
                    "availableLineItemsCount": {"count": 2, "precision": "EXACT"},
                    "unavailableLineItemsCount": {"count": 0, "precision": "EXACT"},
                }
            ]
        }
    }
    assert locations_for_move_from_graphql(node) == [LocationForMove("gid://shopify/Location/2", "Store", True, None,
                                                                     2, 0)]  # fmt: skip
    assert locations_for_move_from_graphql(None) == []


def test_nowhere_to_move_says_what_to_do_instead():
    assert nowhere_to_move(order(fo(1)), fo(1), []) == (
        "#1001 has nowhere to move: Shopify lists no other location than Warehouse. Restock it, or add a location in "
        "Shopify."
    )
    assert "No other location than Warehouse stocks every item of #1001" in nowhere_to_move(
        order(fo(1)), fo(1), [place("Kiosk", False, 0, 1)]
    )
