"""customers/redact and the webhook bodies orderbot still holds (deliveries pending, waiting for a retry, or parked):
which of them name the customer, by exact fields rather than by a substring of the text, and what is left of one that
does. Pure: no I/O.

A body names the customer when one of its customer email fields equals the customer's email (ignoring case, as
Shopify does) or one of its order fields is one of the orders to erase. What is left of it is what orderbot reads
(orders.fields_read) without the customer's name and email: a pending delivery stays processable, and is applied
to the order as an order without a customer, which the redacted order is.
"""

from __future__ import annotations

from typing import Any

from bot.domain.mrkdwn import escape_mrkdwn
from bot.domain.orders import fields_read, order_gid

# Where a webhook body holds the email of the customer it is about (orders, fulfillments, customers/*).
EMAIL_FIELDS = ("email", "contact_email")
# Fields of what is left that still name the customer: the order's email fields and its customer (name and email).
CUSTOMER_FIELDS = (*EMAIL_FIELDS, "customer")
ORDER_LIST_FIELDS = ("orders_to_redact", "orders_requested")  # customers/redact and customers/data_request
NO_CUSTOMER = "no customer details"  # what stands in a message or an audit error where the customer was named


def emails_named(payload: dict[str, Any]) -> set[str]:
    """The customer emails a body holds, lower-cased."""
    customer = payload.get("customer")
    values = [payload.get(key) for key in EMAIL_FIELDS]
    if isinstance(customer, dict):
        values.append(customer.get("email"))
    return {value.lower() for value in values if isinstance(value, str) and value}


def orders_named(topic: str, payload: dict[str, Any]) -> set[str]:
    """The orders a body is about, as gids: the order itself for `orders/*` bodies, the order a fulfillment or an
    order edit belongs to, and the orders a customers/* request lists."""
    found: list[Any] = []
    if topic.startswith("orders/") and topic != "orders/edited":
        found += [payload.get("admin_graphql_api_id"), payload.get("id")]
    edit = payload.get("order_edit")
    if isinstance(edit, dict):
        found.append(edit.get("order_id"))
    if topic.startswith("fulfillments/"):
        found.append(payload.get("order_id"))
    for key in ORDER_LIST_FIELDS:
        listed = payload.get(key)
        if isinstance(listed, list):
            found += listed
    return {_gid(value) for value in found if isinstance(value, int | str) and not isinstance(value, bool) and value}


def names_customer(topic: str, payload: Any, email: str | None, order_ids: set[str]) -> bool:
    """Whether a stored body is about the customer being erased (`email`) or one of their orders (`order_ids`)."""
    if not isinstance(payload, dict):
        return False
    if email and email.lower() in emails_named(payload):
        return True
    return bool(orders_named(topic, payload) & order_ids)


def without_customer(payload: dict[str, Any]) -> dict[str, Any]:
    """What orderbot keeps of a body that names an erased customer: the fields it reads, but no name or email."""
    kept = fields_read(payload)
    for key in CUSTOMER_FIELDS:
        kept.pop(key, None)
    return kept


def _gid(value: int | str) -> str:
    text = str(value)
    return text if text.startswith("gid://") else order_gid(text)


def written_forms(personal: list[str | None]) -> list[str]:
    """Each of `personal` as it may stand in a queued message or an audit error: as given, and as a Slack message
    writes it (mrkdwn escapes &, < and >); longest first, so that a longer form is replaced before a part of it."""
    forms = {form for text in personal if text for form in (text, escape_mrkdwn(text))}
    return sorted(forms, key=len, reverse=True)
