"""Which stored webhook bodies name a customer being erased: exact fields, never a substring. Pure."""

from __future__ import annotations

from bot.domain.orders import order_from_webhook
from bot.domain.redaction import names_customer, without_customer
from tests.conftest import example_payload

ERASED_EMAIL = "ada_l@example.com"
ORDER = "gid://shopify/Order/4501"


def order_body(order_number: int, email: str) -> dict:
    body = example_payload("orders/updated")
    body.update(id=order_number, admin_graphql_api_id=f"gid://shopify/Order/{order_number}", email=email)
    body["contact_email"] = email
    body["customer"]["email"] = email
    return body


def test_an_email_matches_whole_and_ignoring_case_only():
    assert names_customer("orders/updated", order_body(1, "ADA_L@example.com"), ERASED_EMAIL, set())
    assert not names_customer("orders/updated", order_body(1, "adaxl@example.com"), ERASED_EMAIL, set())
    assert not names_customer("orders/updated", order_body(1, "grand.ada_l@example.com"), ERASED_EMAIL, set())


def test_an_order_matches_by_its_own_fields_never_by_a_number_inside_another():
    assert names_customer("orders/updated", order_body(4501, "x@example.com"), None, {ORDER})
    assert not names_customer("orders/updated", order_body(45012, "x@example.com"), None, {ORDER})
    fulfillment = example_payload("fulfillments/create") | {"order_id": 4501}
    assert names_customer("fulfillments/create", fulfillment, None, {ORDER})
    edit = {"order_edit": {"id": 9, "order_id": 4501}}
    assert names_customer("orders/edited", edit, None, {ORDER})
    assert names_customer("customers/data_request", {"orders_requested": [4501]}, None, {ORDER})
    # A fulfillment's own id is not its order's, even when the numbers are equal.
    assert not names_customer("fulfillments/create", fulfillment | {"id": 4501, "order_id": 7}, None, {ORDER})


def test_what_is_left_is_processable_and_names_no_one():
    body = order_body(4501, ERASED_EMAIL)
    left = without_customer(body)
    assert ERASED_EMAIL not in str(left) and "customer" not in left
    assert order_from_webhook(left) == order_from_webhook(
        body | {"customer": None, "email": None, "contact_email": None}
    )
