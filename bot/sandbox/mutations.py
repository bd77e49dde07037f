"""The mutation handlers: each applies its effect to a sandbox's orders and answers with the mutation's payload."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from bot.sandbox.state import (
    can_mark_as_paid,
    capturable,
    legacy_id,
    move_refusal,
    order_total,
    record_fulfillment,
    refresh_fulfillment_order_status,
    supported_actions,
    tracking_entries,
    unfulfilled_lines,
)
from bot.sandbox.views import authorization_id, fo_view, fulfillment_view, money_view, order_view

if TYPE_CHECKING:
    from bot.sandbox.shopify import SandboxShopify


def order_close(shop: SandboxShopify, input: dict) -> dict:
    order = shop.orders.get(input["id"])
    if order is None:
        return {"order": None, "userErrors": [_error(["input", "id"], "Order does not exist")]}
    if order["closed_at"] is None:
        order["closed_at"] = shop.now()
    shop.touch(order)
    return {"order": order_view(order, shop.currency), "userErrors": []}


def order_open(shop: SandboxShopify, input: dict) -> dict:
    order = shop.orders.get(input["id"])
    if order is None:
        return {"order": None, "userErrors": [_error(["input", "id"], "Order does not exist")]}
    if order["cancelled_at"] is not None:
        return {"order": None, "userErrors": [_error(["input", "id"], "Cancelled orders cannot be opened")]}
    order["closed_at"] = None
    shop.touch(order)
    return {"order": order_view(order, shop.currency), "userErrors": []}


def fulfillment_create(shop: SandboxShopify, fulfillment: dict, message: str | None = None) -> dict:
    picks, errors = _fulfillment_picks(shop, fulfillment["lineItemsByFulfillmentOrder"])
    if errors:
        return {"fulfillment": None, "userErrors": errors}
    tracking_input = fulfillment.get("trackingInfo") or {}
    tracking = tracking_entries(
        tracking_input.get("number"),
        tracking_input.get("company"),
        tracking_input.get("url"),
        numbers=tracking_input.get("numbers") or (),
        urls=tracking_input.get("urls") or (),
    )
    order = shop.fulfillment_order(picks[0][0]["id"])[0]
    created = record_fulfillment(order, picks, tracking, shop.now(), shop.gid("Fulfillment"))
    return {"fulfillment": fulfillment_view(order, created, shop.currency), "userErrors": []}


def tracking_info_update(
    shop: SandboxShopify, fulfillmentId: str, trackingInfoInput: dict, notifyCustomer: bool | None = None
) -> dict:
    order, fulfillment = shop.fulfillment(fulfillmentId)
    if fulfillment is None:
        return {"fulfillment": None, "userErrors": [_error(["fulfillmentId"], "Fulfillment does not exist.")]}
    if fulfillment["status"] == "CANCELLED":
        error = _error(["fulfillmentId"], "Cannot update tracking info of a cancelled fulfillment.")
        return {"fulfillment": None, "userErrors": [error]}
    fulfillment["tracking"] = tracking_entries(
        trackingInfoInput.get("number"),
        trackingInfoInput.get("company"),
        trackingInfoInput.get("url"),
        numbers=trackingInfoInput.get("numbers") or (),
        urls=trackingInfoInput.get("urls") or (),
    )
    fulfillment["updated_at"] = shop.now()
    shop.touch(order)
    return {"fulfillment": fulfillment_view(order, fulfillment, shop.currency), "userErrors": []}


def _fulfillment_picks(shop: SandboxShopify, groups: list[dict]) -> tuple[list[tuple[dict, dict, int]], list[dict]]:
    """What fulfillmentCreate would ship, or the userErrors Shopify gives for a bad request."""
    picks, owners = [], set()
    for index, group in enumerate(groups):
        path = ["fulfillment", "lineItemsByFulfillmentOrder", str(index), "fulfillmentOrderId"]
        order, fo = shop.fulfillment_order(group["fulfillmentOrderId"])
        if fo is None:
            return [], [_error(path, "Fulfillment order does not exist.")]
        if fo["status"] not in ("OPEN", "IN_PROGRESS") or "CREATE_FULFILLMENT" not in supported_actions(fo):
            status = fo["status"].lower()
            return [], [_error(path, f"Fulfillment order {legacy_id(fo['id'])} has an unfulfillable status= {status}.")]
        owners.add(order["id"])
        lines = {line["id"]: line for line in fo["line_items"]}
        requested = group.get("fulfillmentOrderLineItems")
        if requested is None:
            picks += [(fo, line, line["remaining_quantity"]) for line in fo["line_items"] if line["remaining_quantity"]]
            continue
        for item in requested:
            line = lines.get(item["id"])
            if line is None or not 0 < item["quantity"] <= line["remaining_quantity"]:
                return [], [_error(["fulfillment"], "Invalid fulfillment order line item quantity requested.")]
            picks.append((fo, line, item["quantity"]))
    if len(owners) > 1:
        return [], [_error(["fulfillment"], "All fulfillment orders must belong to the same order.")]
    if not picks:
        return [], [_error(["fulfillment"], "Line items are already fulfilled.")]
    return picks, []


def _fo_action(
    shop: SandboxShopify, fo_id: str, action: str, refusal: str
) -> tuple[dict | None, dict | None, list[dict]]:
    order, fo = shop.fulfillment_order(fo_id)
    if fo is None:
        return None, None, [_error(["id"], "Fulfillment order does not exist.", "FULFILLMENT_ORDER_NOT_FOUND")]
    if action not in supported_actions(fo):
        return None, None, [_error(["id"], refusal)]
    return order, fo, []


def submit_request(
    shop: SandboxShopify, id: str, message: str | None = None, notifyCustomer: bool | None = None, **_: Any
) -> dict:
    order, fo, errors = _fo_action(shop, id, "REQUEST_FULFILLMENT", "Fulfillment order is not in a requestable state.")
    if errors:
        return {"originalFulfillmentOrder": None, "submittedFulfillmentOrder": None, "userErrors": errors}
    fo["request_status"] = "SUBMITTED"
    fo["request_message"] = message
    shop.touch(order, fo)
    view = fo_view(order, fo, shop.currency)
    return {"originalFulfillmentOrder": view, "submittedFulfillmentOrder": view, "userErrors": []}


def submit_cancellation(shop: SandboxShopify, id: str, message: str | None = None) -> dict:
    order, fo, errors = _fo_action(
        shop, id, "REQUEST_CANCELLATION", "Fulfillment order does not have a cancellable fulfillment request."
    )
    if errors:
        return {"fulfillmentOrder": None, "userErrors": errors}
    fo["request_status"] = "CANCELLATION_REQUESTED"
    fo["cancellation_message"] = message
    shop.touch(order, fo)
    return {"fulfillmentOrder": fo_view(order, fo, shop.currency), "userErrors": []}


def release_hold(
    shop: SandboxShopify, id: str, holdIds: list[str] | None = None, externalId: str | None = None
) -> dict:
    order, fo, errors = _fo_action(shop, id, "RELEASE_HOLD", "The fulfillment order is not on hold.")
    if errors:
        return {"fulfillmentOrder": None, "userErrors": errors}
    releasing = set(holdIds) if holdIds is not None else {h["id"] for h in fo["holds"]}
    fo["holds"] = [h for h in fo["holds"] if h["id"] not in releasing]
    if not fo["holds"]:
        fo["status"] = "OPEN"
        refresh_fulfillment_order_status(fo)
    shop.touch(order, fo)
    return {"fulfillmentOrder": fo_view(order, fo, shop.currency), "userErrors": []}


def fulfillment_cancel(shop: SandboxShopify, id: str) -> dict:
    order, fulfillment = shop.fulfillment(id)
    if fulfillment is None:
        return {"fulfillment": None, "userErrors": [_error(["id"], "Fulfillment does not exist.")]}
    if fulfillment["status"] == "CANCELLED":
        return {"fulfillment": None, "userErrors": [_error(["id"], "Fulfillment has already been cancelled.")]}
    fulfillment["status"] = "CANCELLED"
    fulfillment["updated_at"] = shop.now()
    lines = {line["id"]: (fo, line) for fo in order["fulfillment_orders"] for line in fo["line_items"]}
    reopened = []
    for shipped in fulfillment["line_items"]:
        fo, line = lines[shipped["fulfillment_order_line_item_id"]]
        line["remaining_quantity"] += shipped["quantity"]
        if fo["status"] == "CLOSED":
            fo["status"] = "OPEN"
        reopened.append(fo)
    for fo in reopened:
        refresh_fulfillment_order_status(fo)
    shop.touch(order, *reopened)
    return {"fulfillment": fulfillment_view(order, fulfillment, shop.currency), "userErrors": []}


def order_cancel(
    shop: SandboxShopify, orderId: str, reason: str, restock: bool, refundMethod: dict | None = None, **_: Any
) -> dict:
    order = shop.orders.get(orderId)
    if order is None:
        return {"job": None, "orderCancelUserErrors": [_error(["orderId"], "Order does not exist", "NOT_FOUND")]}
    if order["cancelled_at"] is not None:
        error = _error(["orderId"], "Cannot cancel an order that has already been cancelled", "INVALID")
        return {"job": None, "orderCancelUserErrors": [error]}
    if "storeCreditRefund" in (refundMethod or {}) and not order.get("customer"):
        message = "A store credit order refund was requested but the order has no customer."
        error = _error(["refundMethod", "storeCreditRefund"], message, "STORE_CREDIT_REFUND_MISSING_CUSTOMER")
        return {"job": None, "orderCancelUserErrors": [error]}

    def cancel() -> None:  # Shopify cancels in the background: the order shows it once the job has run
        if order["cancelled_at"] is not None:
            return
        at = shop.now()
        order.update(cancelled_at=at, cancel_reason=reason, closed_at=order["closed_at"] or at)
        order["financial_status"] = _cancelled_financial_status(order["financial_status"], refundMethod)
        for fo in order["fulfillment_orders"]:
            if fo["status"] not in ("CLOSED", "CANCELLED"):
                fo.update(status="CLOSED", holds=[], updated_at=at)
        shop.touch(order)

    return {"job": shop.start_job(cancel), "orderCancelUserErrors": [], "userErrors": []}


def order_capture(shop: SandboxShopify, input: dict) -> dict:
    """Capture an authorization, once (the sandbox's are not multi-capturable): all of it pays the order, part of it
    leaves the order partly paid and the rest is released."""
    order = shop.orders.get(input["id"])
    if order is None:
        return {"transaction": None, "userErrors": [_error(["input", "id"], "Order does not exist")]}
    if not capturable(order) or input["parentTransactionId"] != authorization_id(order):
        error = _error(["input", "parentTransactionId"], "The transaction is not capturable.")
        return {"transaction": None, "userErrors": [error]}
    if input.get("currency") not in (None, shop.currency):
        error = _error(["input", "currency"], f"Currency must be the order's presentment currency, {shop.currency}.")
        return {"transaction": None, "userErrors": [error]}
    total = order_total(order)
    try:
        amount = Decimal(str(input["amount"]))
    except InvalidOperation:
        return {"transaction": None, "userErrors": [_error(["input", "amount"], "Amount is invalid.")]}
    if not Decimal(0) < amount <= total:
        error = _error(["input", "amount"], "Amount must be more than 0 and at most the authorized amount.")
        return {"transaction": None, "userErrors": [error]}
    order["financial_status"] = "PAID" if amount == total else "PARTIALLY_PAID"
    shop.touch(order)
    transaction = {
        "__typename": "OrderTransaction",
        "id": shop.gid("OrderTransaction"),
        "kind": "CAPTURE",
        "status": "SUCCESS",
        "gateway": "shopify_payments",
        "amountSet": money_view(amount, shop.currency),
        "parentTransaction": {"__typename": "OrderTransaction", "id": input["parentTransactionId"]},
        "test": order["test"],
    }
    return {"transaction": transaction, "userErrors": []}


def order_mark_as_paid(shop: SandboxShopify, input: dict) -> dict:
    order = shop.orders.get(input["id"])
    if order is None:
        return {"order": None, "userErrors": [_error(["input", "id"], "Order does not exist")]}
    if not can_mark_as_paid(order):
        return {"order": None, "userErrors": [_error(["input", "id"], "Order cannot be marked as paid.")]}
    order["financial_status"] = "PAID"
    shop.touch(order)
    return {"order": order_view(order, shop.currency), "userErrors": []}


def order_delete(shop: SandboxShopify, orderId: str) -> dict:
    """Shopify deletes only archived or cancelled orders, for good."""
    order = shop.orders.get(orderId)
    if order is None:
        return {"deletedId": None, "userErrors": [_error(["orderId"], "Order does not exist", "NOT_FOUND")]}
    if order["closed_at"] is None and order["cancelled_at"] is None:
        error = _error(["orderId"], "Only archived or canceled orders can be deleted.", "INVALID")
        return {"deletedId": None, "userErrors": [error]}
    del shop.orders[orderId]
    return {"deletedId": orderId, "userErrors": []}


def fulfillment_order_move(
    shop: SandboxShopify, id: str, newLocationId: str, fulfillmentOrderLineItems: list[dict] | None = None
) -> dict:
    """Assign unfulfilled items to another location. When all of a fulfillment order's items move and none of it has
    shipped, the fulfillment order itself moves (same id, new assignedLocation; its status and holds stay); otherwise
    the moved items go to a new fulfillment order there, and the original keeps the rest (closed once it has nothing
    left to ship). Shopify refuses a closed fulfillment order, one without MOVE in its supportedActions (a request
    out at a fulfillment service, work under way), and a location that does not stock every item moved."""
    nothing = {"movedFulfillmentOrder": None, "originalFulfillmentOrder": None, "remainingFulfillmentOrder": None}
    order, fo = shop.fulfillment_order(id)
    if fo is None:
        return {**nothing, "userErrors": [_error(["id"], "Fulfillment order does not exist.")]}
    if fo["status"] in ("CLOSED", "CANCELLED", "INCOMPLETE"):
        return {**nothing, "userErrors": [_error(["id"], "Cannot move a fulfillment order that is closed.")]}
    if "MOVE" not in supported_actions(fo):
        error = _error(["id"], "Cannot move a fulfillment order in its current state.")
        return {**nothing, "userErrors": [error]}
    location = shop.locations.get(newLocationId)
    if location is None:
        return {**nothing, "userErrors": [_error(["newLocationId"], "Location does not exist.")]}
    moving, errors = _lines_to_move(fo, fulfillmentOrderLineItems)
    if errors:
        return {**nothing, "userErrors": errors}
    refusal = move_refusal(order, fo, [line for line, _ in moving], location)
    if refusal is not None:
        return {**nothing, "userErrors": [_error(["newLocationId"], refusal)]}
    place = {key: location[key] for key in ("id", "name", "service")}
    untouched = all(line["remaining_quantity"] == line["total_quantity"] for line in fo["line_items"])
    everything = sum(quantity for _, quantity in moving) == sum(line["remaining_quantity"] for line in fo["line_items"])
    if untouched and everything:
        fo["location"] = place
        shop.touch(order, fo)
        view = fo_view(order, fo, shop.currency)
        return {**nothing, "movedFulfillmentOrder": view, "originalFulfillmentOrder": view, "userErrors": []}
    moved = _split(shop, fo, moving, place)
    order["fulfillment_orders"].append(moved)
    if unfulfilled_lines(fo):
        refresh_fulfillment_order_status(fo)
    else:  # what is left of it shipped already
        fo.update(status="CLOSED", holds=[])
    shop.touch(order, fo, moved)
    return {
        "movedFulfillmentOrder": fo_view(order, moved, shop.currency),
        "originalFulfillmentOrder": fo_view(order, fo, shop.currency),
        "remainingFulfillmentOrder": None,
        "userErrors": [],
    }


def _lines_to_move(fo: dict, requested: list[dict] | None) -> tuple[list[tuple[dict, int]], list[dict]]:
    """(line, quantity) pairs to move: every unfulfilled line in full, or the ones asked for."""
    if requested is None:
        return [(line, line["remaining_quantity"]) for line in unfulfilled_lines(fo)], []
    lines = {line["id"]: line for line in fo["line_items"]}
    moving = []
    for index, item in enumerate(requested):
        line = lines.get(item["id"])
        if line is None or not 0 < item["quantity"] <= line["remaining_quantity"]:
            path = ["fulfillmentOrderLineItems", str(index), "quantity"]
            return [], [_error(path, "Invalid fulfillment order line item quantity requested.")]
        moving.append((line, item["quantity"]))
    return moving, []


def _split(shop: SandboxShopify, fo: dict, moving: list[tuple[dict, int]], place: dict) -> dict:
    """A new fulfillment order at `place` with the moved quantities, taken off the original's lines."""
    at = shop.now()
    lines = []
    for line, quantity in moving:
        line["remaining_quantity"] -= quantity
        line["total_quantity"] -= quantity
        lines.append(
            {
                "id": shop.gid("FulfillmentOrderLineItem"),
                "line_item_id": line["line_item_id"],
                "total_quantity": quantity,
                "remaining_quantity": quantity,
            }
        )
    held = fo["status"] in ("ON_HOLD", "SCHEDULED")
    return {
        "id": shop.gid("FulfillmentOrder"),
        "status": fo["status"] if held else "OPEN",
        "request_status": "UNSUBMITTED",
        "created_at": at,
        "updated_at": at,
        "fulfill_at": fo.get("fulfill_at"),
        "fulfill_by": fo.get("fulfill_by"),
        "location": place,
        "holds": [dict(hold, id=shop.gid("FulfillmentHold")) for hold in fo["holds"]] if held else [],
        "line_items": lines,
    }


def tags_add(shop: SandboxShopify, id: str, tags: list[str]) -> dict:
    order = shop.orders.get(id)
    if order is None:
        return {"node": None, "userErrors": [_error(["id"], "Resource not found")]}
    known = {t.lower() for t in order["tags"]}
    for tag in (t.strip() for t in tags):
        if tag and tag.lower() not in known:
            order["tags"].append(tag)
            known.add(tag.lower())
    shop.touch(order)
    return {"node": order_view(order, shop.currency), "userErrors": []}


def _error(path: list[str], message: str, code: str | None = None) -> dict:
    return {"field": path, "message": message, "code": code}


def _cancelled_financial_status(status: str | None, refund_method: dict | None) -> str | None:
    """An authorization is voided whatever the refund; a payment is refunded to the card or as store credit."""
    refund_method = refund_method or {}
    if status in ("PENDING", "AUTHORIZED"):
        return "VOIDED"
    refunded = refund_method.get("originalPaymentMethodsRefund") or refund_method.get("storeCreditRefund") is not None
    if status in ("PAID", "PARTIALLY_PAID") and refunded:
        return "REFUNDED"
    return status


# Mutation field → (handler, the payload's user-errors key, the error field an injected `user_errors` failure names).
HANDLERS: dict[str, tuple[Callable[..., dict], str, list[str]]] = {
    "orderClose": (order_close, "userErrors", ["input", "id"]),
    "orderOpen": (order_open, "userErrors", ["input", "id"]),
    "fulfillmentCreate": (fulfillment_create, "userErrors", ["fulfillment"]),
    "fulfillmentTrackingInfoUpdate": (tracking_info_update, "userErrors", ["fulfillmentId"]),
    "fulfillmentOrderSubmitFulfillmentRequest": (submit_request, "userErrors", ["id"]),
    "fulfillmentOrderSubmitCancellationRequest": (submit_cancellation, "userErrors", ["id"]),
    "fulfillmentOrderReleaseHold": (release_hold, "userErrors", ["id"]),
    "fulfillmentCancel": (fulfillment_cancel, "userErrors", ["id"]),
    "orderCancel": (order_cancel, "orderCancelUserErrors", ["orderId"]),
    "tagsAdd": (tags_add, "userErrors", ["id"]),
    "orderCapture": (order_capture, "userErrors", ["input", "parentTransactionId"]),
    "orderMarkAsPaid": (order_mark_as_paid, "userErrors", ["input", "id"]),
    "orderDelete": (order_delete, "userErrors", ["orderId"]),
    "fulfillmentOrderMove": (fulfillment_order_move, "userErrors", ["id"]),
}
