"""Views of the sandbox's internal state: the GraphQL-shaped objects the schema resolves, and the REST-shaped
webhook body."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from bot.sandbox.pagination import positional
from bot.sandbox.state import (
    MANUAL_GATEWAYS,
    can_mark_as_paid,
    capturable,
    display_fulfillment_status,
    gateway,
    legacy_id,
    move_refusal,
    order_total,
    supported_actions,
    unfulfilled_lines,
    unstocked,
)

# --- GraphQL-shaped views -----------------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _money(amount: Decimal, currency: str) -> dict:
    money = {"amount": str(amount.quantize(Decimal("0.01"))), "currencyCode": currency}
    return {"shopMoney": money, "presentmentMoney": dict(money)}


def order_view(order: dict, currency: str) -> dict:
    customer = order.get("customer")
    total = _money(order_total(order), currency)
    return {
        "__typename": "Order",
        "id": order["id"],
        "legacyResourceId": str(legacy_id(order["id"])),
        "name": order["name"],
        "createdAt": _iso(order["created_at"]),
        "processedAt": _iso(order["created_at"]),
        "updatedAt": _iso(order["updated_at"]),
        "closed": order["closed_at"] is not None,
        "closedAt": _iso(order["closed_at"]),
        "cancelledAt": _iso(order["cancelled_at"]),
        "cancelReason": order.get("cancel_reason"),
        "test": order["test"],
        "displayFinancialStatus": order["financial_status"],
        "displayFulfillmentStatus": display_fulfillment_status(order),
        "tags": list(order["tags"]),
        "email": order.get("email"),
        "note": order.get("note"),
        "currencyCode": currency,
        "customer": _customer_view(customer) if customer else None,
        "totalPriceSet": total,
        "currentTotalPriceSet": total,
        "capturable": capturable(order),
        "totalCapturableSet": total if capturable(order) else _money(Decimal(0), currency),
        "canMarkAsPaid": can_mark_as_paid(order),
        "paymentGatewayNames": [gateway(order)],
        "fulfillments": lambda info, first=None, **_: [
            fulfillment_view(order, f, currency) for f in order["fulfillments"]
        ][:first],
        "fulfillmentsCount": {"count": len(order["fulfillments"]), "precision": "EXACT"},
        "transactions": lambda info, first=None, capturable=None, **_: [
            t for t in _transactions_view(order, total) if capturable is None or t["manuallyCapturable"] == capturable
        ][:first],
        "fulfillmentOrders": lambda info, **args: positional(
            [fo_view(order, fo, currency) for fo in order["fulfillment_orders"]], args
        ),
        "lineItems": lambda info, **args: positional([_line_item_view(li) for li in order["line_items"]], args),
    }


def fo_view(order: dict, fo: dict, currency: str) -> dict:
    location = fo["location"]
    service = location.get("service")
    items_by_id = {li["id"]: li for li in order["line_items"]}
    return {
        "__typename": "FulfillmentOrder",
        "id": fo["id"],
        "status": fo["status"],
        "requestStatus": fo["request_status"],
        "createdAt": _iso(fo["created_at"]),
        "updatedAt": _iso(fo["updated_at"]),
        "fulfillAt": _iso(fo.get("fulfill_at")),
        "fulfillBy": _iso(fo.get("fulfill_by")),
        "orderId": order["id"],
        "orderName": order["name"],
        "orderProcessedAt": _iso(order["created_at"]),
        "assignedLocation": {
            "name": location["name"],
            "countryCode": "US",
            "location": {
                "id": location["id"],
                "name": location["name"],
                "fulfillmentService": _service_view(service) if service else None,
            },
        },
        "fulfillmentHolds": [_hold_view(h) for h in fo["holds"]],
        "supportedActions": [{"action": a, "externalUrl": None} for a in supported_actions(fo)],
        "lineItems": lambda info, **args: positional(
            [_fo_line_view(line, items_by_id[line["line_item_id"]]) for line in fo["line_items"]], args
        ),
        "locationsForMove": lambda info, **args: positional(_locations_for_move(order, fo, info, args), args),
        "order": lambda info: order_view(order, currency),
    }


def _locations_for_move(order: dict, fo: dict, info: object, args: dict) -> list[dict]:
    """FulfillmentOrder.locationsForMove: the shop's locations (`info.context["locations"]`, in the shop's order),
    each movable when it stocks every unfulfilled item asked about (`lineItemIds`, else all) and the fulfillment order
    can move at all; `locationIds` narrows the list."""
    locations = (getattr(info, "context", None) or {}).get("locations") or ()
    wanted = set(args.get("locationIds") or ()) or None
    asked = set(args.get("lineItemIds") or ())
    lines = [line for line in unfulfilled_lines(fo) if not asked or line["id"] in asked]
    items_by_id = {li["id"]: li for li in order["line_items"]}
    can_move = "MOVE" in supported_actions(fo)
    found = []
    for place in locations:
        if wanted is not None and place["id"] not in wanted:
            continue
        missing = unstocked(order, lines, place)
        message = move_refusal(order, fo, lines, place) if can_move else "The fulfillment order can't be moved."
        available = [line for line in lines if line not in missing]
        found.append(
            {
                "location": {"__typename": "Location", "id": place["id"], "name": place["name"]},
                "movable": can_move and message is None and bool(lines),
                "message": message,
                "availableLineItems": lambda info, rows=available, **page: positional(
                    [_fo_line_view(line, items_by_id[line["line_item_id"]]) for line in rows], page
                ),
                "unavailableLineItems": lambda info, rows=missing, **page: positional(
                    [_fo_line_view(line, items_by_id[line["line_item_id"]]) for line in rows], page
                ),
                "availableLineItemsCount": {"count": len(available), "precision": "EXACT"},
                "unavailableLineItemsCount": {"count": len(missing), "precision": "EXACT"},
            }
        )
    return found


def fulfillment_view(order: dict, fulfillment: dict, currency: str) -> dict:
    return {
        "__typename": "Fulfillment",
        "id": fulfillment["id"],
        "legacyResourceId": str(legacy_id(fulfillment["id"])),
        "name": f"{order['name']}-F{order['fulfillments'].index(fulfillment) + 1}",
        "status": fulfillment["status"],
        "createdAt": _iso(fulfillment["created_at"]),
        "updatedAt": _iso(fulfillment["updated_at"]),
        "totalQuantity": sum(line["quantity"] for line in fulfillment["line_items"]),
        "requiresShipping": True,
        "trackingInfo": lambda info, first=None: [dict(t) for t in fulfillment["tracking"]][:first],
        "order": lambda info: order_view(order, currency),
    }


# displayFinancialStatus -> (kind, status) of the order's one payment transaction.
_PAYMENT_TRANSACTIONS = {
    "AUTHORIZED": ("AUTHORIZATION", "SUCCESS"),
    "PENDING": ("SALE", "PENDING"),
    "PAID": ("SALE", "SUCCESS"),
    "PARTIALLY_PAID": ("SALE", "SUCCESS"),
    "PARTIALLY_REFUNDED": ("SALE", "SUCCESS"),
    "REFUNDED": ("SALE", "SUCCESS"),
}


def _transactions_view(order: dict, total: dict) -> list[dict]:
    """The order's payment as one transaction. An authorization not yet captured is capturable; its expiry is
    `authorization_expires_at`, which Shopify gives only to stores on Shopify Plus (None: a store on another plan)."""
    kind, status = _PAYMENT_TRANSACTIONS.get(order["financial_status"], (None, None))
    if kind is None:
        return []
    is_capturable = kind == "AUTHORIZATION" and capturable(order)
    name = gateway(order)
    return [
        {
            "__typename": "OrderTransaction",
            "id": authorization_id(order),
            "kind": kind,
            "status": status,
            "gateway": name,
            "formattedGateway": "Shopify Payments" if name == "shopify_payments" else name,
            "createdAt": _iso(order["created_at"]),
            "processedAt": _iso(order["created_at"]),
            "amountSet": total,
            "authorizationExpiresAt": _iso(order.get("authorization_expires_at")) if is_capturable else None,
            "manuallyCapturable": is_capturable,
            "multiCapturable": False,
            "manualPaymentGateway": name in MANUAL_GATEWAYS,
            "test": order["test"],
            "fees": [],
        }
    ]


def authorization_id(order: dict) -> str:
    """The id of the order's one payment transaction (its authorization, while it is AUTHORIZED)."""
    return f"gid://shopify/OrderTransaction/{legacy_id(order['id']) + 1}"


def money_view(amount: Decimal, currency: str) -> dict:
    return _money(amount, currency)


def _customer_view(customer: dict) -> dict:
    return {
        "id": customer["id"],
        "firstName": customer["first_name"],
        "lastName": customer["last_name"],
        "displayName": f"{customer['first_name']} {customer['last_name']}".strip(),
        "defaultEmailAddress": {"emailAddress": customer["email"]} if customer.get("email") else None,
    }


def _service_view(name: str) -> dict:
    handle = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return {
        "id": f"gid://shopify/FulfillmentService/{int(hashlib.sha256(handle.encode()).hexdigest()[:8], 16)}",
        "serviceName": name,
        "handle": handle,
        "inventoryManagement": True,
        "trackingSupport": True,
        "requiresShippingMethod": True,
        "type": "THIRD_PARTY",
    }


def _hold_view(hold: dict) -> dict:
    return {
        "id": hold["id"],
        "reason": hold["reason"],
        "reasonNotes": hold.get("reason_notes"),
        "displayReason": hold["reason"].replace("_", " ").capitalize(),
        "heldByRequestingApp": False,
        "handle": None,
    }


def _line_item_view(line: dict) -> dict:
    return {
        "id": line["id"],
        "title": line["title"],
        "name": line["title"],
        "sku": line.get("sku"),
        "quantity": line["quantity"],
    }


def _fo_line_view(line: dict, item: dict) -> dict:
    return {
        "id": line["id"],
        "productTitle": item["title"],
        "sku": item.get("sku"),
        "remainingQuantity": line["remaining_quantity"],
        "totalQuantity": line["total_quantity"],
        "requiresShipping": True,
        "lineItem": _line_item_view(item),
    }


# --- the REST-shaped webhook body ---------------------------------------------------------------------------------


def _webhook_time(value: datetime | None, zone: ZoneInfo) -> str | None:
    return value.astimezone(zone).isoformat(timespec="seconds") if value else None


def _webhook_fulfillment_status(order: dict) -> str | None:
    return {"FULFILLED": "fulfilled", "PARTIALLY_FULFILLED": "partial"}.get(display_fulfillment_status(order))


def webhook_order(order: dict, zone: ZoneInfo, currency: str) -> dict:
    customer = order.get("customer") or None
    total = str(order_total(order).quantize(Decimal("0.01")))
    number = int(order["name"].lstrip("#"))
    return {
        "id": legacy_id(order["id"]),
        "admin_graphql_api_id": order["id"],
        "name": order["name"],
        "order_number": number,
        "number": number - 1000,
        "email": order.get("email"),
        "contact_email": order.get("email"),
        "created_at": _webhook_time(order["created_at"], zone),
        "processed_at": _webhook_time(order["created_at"], zone),
        "updated_at": _webhook_time(order["updated_at"], zone),
        "closed_at": _webhook_time(order["closed_at"], zone),
        "cancelled_at": _webhook_time(order["cancelled_at"], zone),
        "cancel_reason": (order.get("cancel_reason") or "").lower() or None,
        "financial_status": (order["financial_status"] or "").lower() or None,
        "fulfillment_status": _webhook_fulfillment_status(order),
        "tags": ", ".join(order["tags"]),
        "test": order["test"],
        "note": order.get("note"),
        "currency": currency,
        "presentment_currency": currency,
        "total_price": total,
        "current_total_price": total,
        "customer": _webhook_customer(customer) if customer else None,
        "line_items": [_webhook_line_item(order, line) for line in order["line_items"]],
        "fulfillments": [_webhook_fulfillment(order, f, zone) for f in order["fulfillments"]],
    }


def _webhook_customer(customer: dict) -> dict:
    return {
        "id": legacy_id(customer["id"]),
        "admin_graphql_api_id": customer["id"],
        "first_name": customer["first_name"],
        "last_name": customer["last_name"],
        "email": customer.get("email"),
    }


def _webhook_line_item(order: dict, line: dict) -> dict:
    fo_lines = [
        fo_line
        for fo in order["fulfillment_orders"]
        for fo_line in fo["line_items"]
        if fo_line["line_item_id"] == line["id"]
    ]
    fulfillable = sum(fo_line["remaining_quantity"] for fo_line in fo_lines) if order["cancelled_at"] is None else 0
    status = None if fulfillable == line["quantity"] else ("fulfilled" if fulfillable == 0 else "partial")
    return {
        "id": legacy_id(line["id"]),
        "admin_graphql_api_id": line["id"],
        "title": line["title"],
        "name": line["title"],
        "sku": line.get("sku"),
        "quantity": line["quantity"],
        "current_quantity": line["quantity"],
        "fulfillable_quantity": fulfillable,
        "fulfillment_status": status if order["cancelled_at"] is None else None,
        "price": line["price"],
        "requires_shipping": True,
    }


def _webhook_fulfillment(order: dict, fulfillment: dict, zone: ZoneInfo) -> dict:
    tracking = fulfillment["tracking"]
    numbers = [t["number"] for t in tracking if t["number"]]
    urls = [t["url"] for t in tracking if t["url"]]
    return {
        "id": legacy_id(fulfillment["id"]),
        "admin_graphql_api_id": fulfillment["id"],
        "order_id": legacy_id(order["id"]),
        "status": fulfillment["status"].lower(),
        "created_at": _webhook_time(fulfillment["created_at"], zone),
        "updated_at": _webhook_time(fulfillment["updated_at"], zone),
        "tracking_company": tracking[0]["company"] if tracking else None,
        "tracking_number": numbers[0] if numbers else None,
        "tracking_numbers": numbers,
        "tracking_url": urls[0] if urls else None,
        "tracking_urls": urls,
    }
