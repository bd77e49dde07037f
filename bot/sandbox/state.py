"""State rules over the sandbox's internal orders (plain snake_case dicts, the shape `seed.py` builds): supported
actions, derived statuses and fulfilment bookkeeping."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

# supportedActions, derived the way Shopify does for the requesting app (FulfillmentOrderAction):
#
# | FO status      | request status                   | merchant-managed location    | fulfillment service        |
# |----------------|----------------------------------|------------------------------|----------------------------|
# | OPEN           | UNSUBMITTED, REJECTED, CANC_ACC  | CREATE_FULFILLMENT HOLD MOVE | REQUEST_FULFILLMENT HOLD MOVE |
# | IN_PROGRESS    | UNSUBMITTED (partly fulfilled)   | CREATE_FULFILLMENT HOLD      | REQUEST_FULFILLMENT HOLD MOVE |
# | OPEN, IN_PROG. | SUBMITTED, ACCEPTED, CANC_REJ    | —                            | REQUEST_CANCELLATION       |
# | OPEN, IN_PROG. | CANCELLATION_REQUESTED           | —                            | —                          |
# | ON_HOLD        | any                              | RELEASE_HOLD HOLD MOVE       | RELEASE_HOLD HOLD          |
# | SCHEDULED      | any                              | MARK_AS_OPEN MOVE            | MARK_AS_OPEN               |
# | CLOSED, CANCELLED, INCOMPLETE | any               | —                            | —                          |
#
# Since 2024-10 an app cannot fulfil items assigned to another app's fulfillment service, hence no
# CREATE_FULFILLMENT at a service's location.
_REQUESTABLE = ("UNSUBMITTED", "REJECTED", "CANCELLATION_ACCEPTED")
_CANCELLABLE = ("SUBMITTED", "ACCEPTED", "CANCELLATION_REJECTED")


def supported_actions(fo: dict) -> list[str]:
    status, request = fo["status"], fo["request_status"]
    merchant = fo["location"].get("service") is None
    if status == "ON_HOLD":
        return ["RELEASE_HOLD", "HOLD", "MOVE"] if merchant else ["RELEASE_HOLD", "HOLD"]
    if status == "SCHEDULED":
        return ["MARK_AS_OPEN", "MOVE"] if merchant else ["MARK_AS_OPEN"]
    if status not in ("OPEN", "IN_PROGRESS"):
        return []
    if merchant:
        return ["CREATE_FULFILLMENT", "HOLD", "MOVE"] if status == "OPEN" else ["CREATE_FULFILLMENT", "HOLD"]
    if request in _REQUESTABLE:
        return ["REQUEST_FULFILLMENT", "HOLD", "MOVE"]
    if request in _CANCELLABLE:
        return ["REQUEST_CANCELLATION"]
    return []


def fulfilled_quantity(order: dict) -> int:
    return sum(line["quantity"] for f in order["fulfillments"] if f["status"] == "SUCCESS" for line in f["line_items"])


def ordered_quantity(order: dict) -> int:
    return sum(line["quantity"] for line in order["line_items"])


def display_fulfillment_status(order: dict) -> str:
    """OrderDisplayFulfillmentStatus as Shopify shows it: an unfulfilled order is ON_HOLD or SCHEDULED when all its
    open work is, REQUEST_DECLINED when a service rejected some, IN_PROGRESS once a request is out."""
    shipped = fulfilled_quantity(order)
    if shipped:
        return "FULFILLED" if shipped >= ordered_quantity(order) else "PARTIALLY_FULFILLED"
    active = [fo for fo in order["fulfillment_orders"] if fo["status"] not in ("CLOSED", "CANCELLED")]
    if not active:
        return "UNFULFILLED"
    if all(fo["status"] == "ON_HOLD" for fo in active):
        return "ON_HOLD"
    if all(fo["status"] == "SCHEDULED" for fo in active):
        return "SCHEDULED"
    requests = {fo["request_status"] for fo in active}
    if "REJECTED" in requests:
        return "REQUEST_DECLINED"
    if requests & {"SUBMITTED", "ACCEPTED"}:
        return "IN_PROGRESS"
    return "UNFULFILLED"


def refresh_fulfillment_order_status(fo: dict) -> None:
    """After quantities change: CLOSED when nothing remains, IN_PROGRESS when partly done or accepted, else OPEN."""
    if fo["status"] in ("ON_HOLD", "SCHEDULED", "CANCELLED", "INCOMPLETE"):
        return
    remaining = sum(line["remaining_quantity"] for line in fo["line_items"])
    total = sum(line["total_quantity"] for line in fo["line_items"])
    if remaining == 0:
        fo["status"] = "CLOSED"
    elif remaining < total or fo["request_status"] == "ACCEPTED":
        fo["status"] = "IN_PROGRESS"
    else:
        fo["status"] = "OPEN"


def record_fulfillment(
    order: dict, picks: list[tuple[dict, dict, int]], tracking: list[dict], at: datetime, fulfillment_id: str
) -> dict:
    """Ship `picks` (fulfillment order, its line, quantity): a SUCCESS fulfillment; quantities and statuses follow."""
    for fo, line, quantity in picks:
        line["remaining_quantity"] -= quantity
        fo["updated_at"] = at
    for fo in {id(fo): fo for fo, _, _ in picks}.values():
        refresh_fulfillment_order_status(fo)
    fulfillment = {
        "id": fulfillment_id,
        "status": "SUCCESS",
        "created_at": at,
        "updated_at": at,
        "tracking": tracking,
        "line_items": [{"fulfillment_order_line_item_id": line["id"], "quantity": q} for _, line, q in picks],
    }
    order["fulfillments"].append(fulfillment)
    order["updated_at"] = at
    return fulfillment


def tracking_entries(
    number: str | None = None,
    company: str | None = None,
    url: str | None = None,
    *,
    numbers: Iterable[str] = (),
    urls: Iterable[str] = (),
) -> list[dict]:
    """FulfillmentTrackingInput → the fulfillment's trackingInfo (empty without a number, as Shopify shows it)."""
    all_numbers = list(numbers) or ([number] if number else [])
    all_urls = list(urls) or ([url] if url else [])
    return [
        {"number": n, "company": company, "url": all_urls[i] if i < len(all_urls) else None}
        for i, n in enumerate(all_numbers)
    ]


def legacy_id(gid: str) -> int:
    return int(gid.rsplit("/", 1)[1])


def order_total(order: dict) -> Decimal:
    items = sum(Decimal(line["price"]) * line["quantity"] for line in order["line_items"])
    return items + Decimal(order.get("shipping_price", "0"))


# Payment methods a merchant settles by hand; an order paid by one shows no transaction Shopify can process.
MANUAL_GATEWAYS = frozenset({"Bank Deposit", "Cash on Delivery (COD)", "Money Order", "manual"})
DEFAULT_GATEWAY = "shopify_payments"


def gateway(order: dict) -> str:
    return order.get("payment_gateway") or DEFAULT_GATEWAY


def capturable(order: dict) -> bool:
    """Order.capturable: an authorized payment not yet captured (a cancelled order's was voided)."""
    return order["financial_status"] == "AUTHORIZED" and order["cancelled_at"] is None


def can_mark_as_paid(order: dict) -> bool:
    """Order.canMarkAsPaid: something is owed, the order is not cancelled, and no Shopify Payments transaction is
    pending (a manual method's pending payment may be recorded by hand; an authorization may be captured this way)."""
    if order["cancelled_at"] is not None:
        return False
    status = order["financial_status"]
    if status == "PENDING":
        return gateway(order) in MANUAL_GATEWAYS
    return status in ("AUTHORIZED", "PARTIALLY_PAID")


# --- moving a fulfillment order (fulfillmentOrderMove, FulfillmentOrder.locationsForMove) --------------------------


def unstocked(order: dict, lines: list[dict], location: dict) -> list[dict]:
    """The fulfillment order lines whose items `location` does not stock (a location stocks an item once it has an
    inventory level for it, whatever the quantity: `stocked` holds their SKUs)."""
    items = {item["id"]: item for item in order["line_items"]}
    stocked = set(location.get("stocked") or ())
    return [line for line in lines if items[line["line_item_id"]].get("sku") not in stocked]


def move_refusal(order: dict, fo: dict, lines: list[dict], location: dict) -> str | None:
    """Why `lines` of `fo` cannot move to `location`, in Shopify's words (its LocationsForMove messages); None when
    they can."""
    if location["id"] == fo["location"]["id"]:
        return "Current location."
    missing = unstocked(order, lines, location)
    if not missing:
        return None
    if len(missing) == len(lines):
        return "No items are stocked at this location."
    if len(missing) == 1:
        item = next(i for i in order["line_items"] if i["id"] == missing[0]["line_item_id"])
        return f"{item['title']} can't be changed because it isn't stocked at this location."
    return f"{len(missing)} items can't be changed because they aren't stocked at this location."


def unfulfilled_lines(fo: dict) -> list[dict]:
    return [line for line in fo["line_items"] if line["remaining_quantity"] > 0]
