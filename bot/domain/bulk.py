"""What a bulk run does to each order, and how its outcomes are told. Pure: no I/O.

Bulk `fulfill` has no form to type a tracking number into, so it only ships orders whose tracking number orderbot
already knows: open fulfillment work that orderbot may fulfil (`Order.fulfillable()`) and exactly one tracking number
on the order's live shipments — what a fulfillment app syncs to Shopify when it has shipped part of an order, or
created the shipment before Shopify's fulfillment order closed. That number (with its carrier and link) goes on the
new fulfillment, and the customer is not emailed. Any other order is refused with the reason and not touched: a
bulk run never ships without a tracking number, and never guesses between two.

A bulk cancel takes its choices from one form, for every order; more than CONFIRM_BY_TYPING_OVER orders are confirmed
by typing their number. Shopify cancels in the background, so an order done by the run is only requested: its
cancellation settles later (bot/flows/cancellations.py), and `CancelTally` counts the two apart.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from bot.domain.orders import Money, Order, Tracking

# Outcome.status of Actions.run → the item's status
ITEM_STATUS = {"done": "done", "already": "skipped", "refused": "skipped", "busy": "skipped", "failed": "failed"}
ALREADY_DONE = "already done"
NO_TRACKING = "no tracking number known; fulfil it from its alert"
SEVERAL_TRACKING = "more than one tracking number known; fulfil it from its alert with the right one"
NOTHING_TO_SHIP = "nothing orderbot may ship is left open; see its alert"
_LIVE = frozenset({"SUCCESS", "OPEN", "PENDING"})
CONFIRM_BY_TYPING_OVER = 20  # a bulk cancel of more orders than this is confirmed by typing their number
_TYPED_COUNT = re.compile(r"([0-9]{1,3}(?:,[0-9]{3})+|[0-9]{1,12})(?:\s*orders?)?", re.IGNORECASE)
# How a requested cancellation settled (bot/flows/cancellations.py), as a bulk item keeps it.
SETTLEMENTS = ("cancelled", "not_cancelled", "unconfirmed", "gone")


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


def typed_count(text: str) -> int | None:
    """The number typed to confirm a bulk cancel ("25", "1,200", "25 orders"); None when it is not a number."""
    match = _TYPED_COUNT.fullmatch(text.strip())
    return int(match[1].replace(",", "")) if match else None


def amounts(totals: Iterable[Money]) -> str:
    """What orders add up to, per currency, largest first: "2,180.00 USD" or "120.00 EUR + 80.00 GBP"."""
    by_currency: dict[str, Decimal] = {}
    for money in totals:
        try:
            by_currency[money.currency] = by_currency.get(money.currency, Decimal(0)) + Decimal(money.amount)
        except InvalidOperation:
            continue
    if not by_currency:
        return "nothing to pay"
    ordered = sorted(by_currency.items(), key=lambda pair: -pair[1])
    return " + ".join(f"{amount:,.2f} {currency}".strip() for currency, amount in ordered)


def payment_states(orders: Iterable[Order]) -> list[tuple[str, int]]:
    """How many orders are in each payment state (Shopify's displayFinancialStatus, in words), most first."""
    counted = Counter(payment_state(order) for order in orders)
    return sorted(counted.items(), key=lambda pair: -pair[1])


def payment_state(order: Order) -> str:
    return (order.financial_status or "unknown").replace("_", " ").lower()


@dataclass(frozen=True, slots=True)
class CancelTally:
    """A bulk cancel's orders as Shopify settles them: `requested` (orderCancel taken), of which each settlement's
    orders' names (SETTLEMENTS), in run order; the rest are still being cancelled."""

    requested: int
    settled: Mapping[str, Sequence[str]]

    @property
    def cancelled(self) -> int:
        return len(self.settled.get("cancelled", ()))

    @property
    def settled_count(self) -> int:
        return sum(len(names) for names in self.settled.values())

    @property
    def waiting(self) -> int:
        return self.requested - self.settled_count


def cancel_tally(items: Iterable[Mapping[str, Any]]) -> CancelTally:
    """From a run's items (their `status` and `settled`): what was requested, and how each request settled."""
    requested = 0
    settled: dict[str, list[str]] = {}
    for item in items:
        if item.get("status") != "done":
            continue
        requested += 1
        if item.get("settled") in SETTLEMENTS:
            settled.setdefault(item["settled"], []).append(str(item.get("order_name") or item["order_id"]))
    return CancelTally(requested, {outcome: tuple(names) for outcome, names in settled.items()})
