"""What a bulk run does to each order, and how its outcomes are told. Pure: no I/O.

Bulk `fulfill` has no form to type a tracking number into, so it only ships orders whose tracking number orderbot
already knows: open fulfillment work that orderbot may fulfil (`Order.fulfillable()`) and exactly one tracking number
on the order's live shipments — what a fulfillment app syncs to Shopify when it has shipped part of an order, or
created the shipment before Shopify's fulfillment order closed. That number (with its carrier and link) goes on the
new fulfillment, and the customer is not emailed. Any other order is refused with the reason and not touched: a
bulk run never ships without a tracking number, and never guesses between two.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.domain.orders import Order, Tracking

# Outcome.status of Actions.run → the item's status
ITEM_STATUS = {"done": "done", "already": "skipped", "refused": "skipped", "busy": "skipped", "failed": "failed"}
ALREADY_DONE = "already done"
NO_TRACKING = "no tracking number known; fulfil it from its alert"
SEVERAL_TRACKING = "more than one tracking number known; fulfil it from its alert with the right one"
NOTHING_TO_SHIP = "nothing orderbot may ship is left open; see its alert"
_LIVE = frozenset({"SUCCESS", "OPEN", "PENDING"})


def known_tracking(order: Order) -> list[Tracking]:
    """The distinct tracking numbers on the order's live shipments (first of each number)."""
    found: dict[str, Tracking] = {}
    for fulfillment in order.fulfillments:
        if fulfillment.status in _LIVE:
            for tracking in fulfillment.tracking:
                if tracking.number:
                    found.setdefault(tracking.number, tracking)
    return list(found.values())


def fulfill_inputs(order: Order) -> dict[str, Any] | str:
    """The inputs for a bulk `fulfill` of the order, or the reason it is refused."""
    if not order.fulfillable():
        return NOTHING_TO_SHIP
    numbers = known_tracking(order)
    if not numbers:
        return NO_TRACKING
    if len(numbers) > 1:
        return SEVERAL_TRACKING
    tracking = numbers[0]
    inputs: dict[str, Any] = {"tracking_number": tracking.number, "notify_customer": False}
    if tracking.company:
        inputs["tracking_company"] = tracking.company
    if tracking.url:
        inputs["tracking_url"] = tracking.url
    return inputs


def reason_of(item: Mapping[str, Any]) -> str:
    """Why an item was skipped or failed, without its order's name, so that items can be grouped by it."""
    if item.get("outcome") == "already":
        return ALREADY_DONE
    message = str(item.get("message") or "no reason given")
    name = item.get("order_name")
    return message.replace(name, "the order") if name else message


@dataclass(frozen=True, slots=True)
class Group:
    reason: str
    names: tuple[str, ...]  # the orders' names, in run order


def grouped(items: Iterable[Mapping[str, Any]]) -> list[Group]:
    """Items by reason, the largest group first (ties: the reason met first)."""
    by_reason: dict[str, list[str]] = {}
    for item in items:
        by_reason.setdefault(reason_of(item), []).append(str(item.get("order_name") or item["order_id"]))
    ordered = sorted(by_reason.items(), key=lambda pair: -len(pair[1]))
    return [Group(reason, tuple(names)) for reason, names in ordered]
