"""Moving an order to another location: which fulfillment order moves, the places Shopify says it may go
(`FulfillmentOrder.locationsForMove`), and how the Move form words each one. Pure: no I/O.

orderbot moves a whole fulfillment order (every item still to ship), so a location can take it only when it stocks
every one of them: Shopify's `movable`. One fulfillment order moves at a time: the held one first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.domain.orders import FINISHED_FO_STATUSES, FulfillmentOrder, Order

OUT_OF_STOCK_HOLD = "INVENTORY_OUT_OF_STOCK"


@dataclass(frozen=True, slots=True)
class LocationForMove:
    id: str  # gid://shopify/Location/…
    name: str
    movable: bool
    message: str | None  # Shopify's reason it cannot take the fulfillment order (or some of its items)
    stocked: int | None  # items of the fulfillment order the location stocks (availableLineItemsCount)
    missing: int | None  # items it does not (unavailableLineItemsCount)

    @property
    def words(self) -> str:
        """What the form says of it: "has all 3 items", "1 of 3 items not stocked here", or Shopify's reason."""
        stocked, missing = self.stocked, self.missing
        if stocked is not None and missing is not None and stocked + missing > 0:
            total = stocked + missing
            if missing == 0:
                return "has the item" if total == 1 else f"has all {total} items"
            if stocked == 0:
                return "stocks none of the items" if total > 1 else "does not stock the item"
            return f"{missing} of {total} {_items(total)} not stocked here"
        if self.message:
            return self.message.rstrip(".")
        return "can take it" if self.movable else "cannot take it"


def fulfillment_order_to_move(order: Order) -> FulfillmentOrder | None:
    """The fulfillment order the Move button moves: an open one Shopify lets move (MOVE in its supportedActions),
    held for stock first, then the first."""
    movable = [
        fo
        for fo in order.fulfillment_orders or ()
        if fo.status not in FINISHED_FO_STATUSES and "MOVE" in fo.supported_actions
    ]
    held = [fo for fo in movable if any(hold.reason == OUT_OF_STOCK_HOLD for hold in fo.holds)]
    return (held or movable or [None])[0]


def out_of_stock_holds(fo: FulfillmentOrder) -> list[str]:
    return [hold.id for hold in fo.holds if hold.reason == OUT_OF_STOCK_HOLD]


def locations_for_move_from_graphql(node: dict[str, Any] | None) -> list[LocationForMove]:
    """A `LocationsForMove` answer's fulfillment order → its locations, as Shopify lists them."""
    found = []
    for place in ((node or {}).get("locationsForMove") or {}).get("nodes") or ():
        location = place.get("location") or {}
        found.append(
            LocationForMove(
                id=location["id"],
                name=location.get("name") or "an unnamed location",
                movable=bool(place.get("movable")),
                message=place.get("message"),
                stocked=_count(place.get("availableLineItemsCount")),
                missing=_count(place.get("unavailableLineItemsCount")),
            )
        )
    return found


def elsewhere(fo: FulfillmentOrder, locations: Sequence[LocationForMove]) -> list[LocationForMove]:
    """The locations other than the one the fulfillment order is at: those that can take it first, the ones that
    stock most of its items next."""
    others = [place for place in locations if place.id != fo.location_id and place.name != fo.location]
    return sorted(others, key=lambda place: (not place.movable, place.missing or 0))


def nowhere_to_move(order: Order, fo: FulfillmentOrder, locations: Sequence[LocationForMove]) -> str:
    """What to do when no location can take the fulfillment order."""
    where = f" than {fo.location}" if fo.location else ""
    if not locations:
        return (
            f"{order.name} has nowhere to move: Shopify lists no other location{where}. Restock it, or add a location "
            "in Shopify."
        )
    return (
        f"No other location{where} stocks every item of {order.name}, so Shopify cannot move it. Restock it, or "
        "stock its items at another location in Shopify, then try again."
    )


def _items(count: int) -> str:
    return "item" if count == 1 else "items"


def _count(value: Any) -> int | None:
    return value.get("count") if isinstance(value, dict) else None
