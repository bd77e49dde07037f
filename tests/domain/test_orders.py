"""The order model: parsed from Shopify's documented webhook bodies and from GraphQL nodes, stored and read back."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.domain.orders import (
    ORDER_TOPICS,
    Customer,
    Money,
    fields_read,
    order_from_record,
    order_from_webhook,
    order_to_record,
)
from bot.flows.service import _fulfillment_order_ids
from bot.sandbox.seed import generate_orders
from bot.sandbox.serving import serve
from bot.sandbox.shopify import SandboxShopify
from bot.shopify.client import ShopifyClient
from tests.conftest import WEBHOOK_EXAMPLES, example_payload


@pytest.mark.parametrize("topic", sorted(ORDER_TOPICS))
def test_documented_order_webhooks_parse(topic):
    payload = example_payload(topic)
    order = order_from_webhook(payload)
    assert order.id == payload["admin_graphql_api_id"]
    assert order.name == payload["name"]
    assert order.total == Money(payload["total_price"], payload["currency"])
    assert order.updated_at == datetime.fromisoformat(payload["updated_at"])
    assert order.fulfillment_orders is None, "webhooks carry no fulfillment orders"
    assert order.tags == tuple(t.strip() for t in payload["tags"].split(",") if t.strip())
    assert order.customer == Customer("John Smith", payload["email"])


def test_the_cancelled_example_is_cancelled_and_a_test_order():
    order = order_from_webhook(example_payload("orders/cancelled"))
    assert order.cancelled and order.test
    assert order.financial_status == "VOIDED"


def test_webhook_enumerations_use_graphql_spelling():
    payload = example_payload("orders/updated") | {"fulfillment_status": "partial", "financial_status": "authorized"}
    order = order_from_webhook(payload)
    assert (order.fulfillment_status, order.financial_status) == ("PARTIALLY_FULFILLED", "AUTHORIZED")


def test_a_fulfillment_webhook_parses_tracking():
    from bot.domain.orders import fulfillment_from_webhook

    payload = example_payload("fulfillments/create")
    fulfillment = fulfillment_from_webhook(payload)
    assert fulfillment.status == payload["status"].upper()
    assert [t.number for t in fulfillment.tracking] == payload["tracking_numbers"]
    assert fulfillment.has_tracking == bool(payload["tracking_numbers"])


async def test_graphql_nodes_and_stored_records_round_trip():
    now = datetime(2026, 11, 27, 12, tzinfo=UTC)
    shop = SandboxShopify(generate_orders(40, now), now=lambda: now)
    runner, url = await serve(shop.app)
    client = ShopifyClient(graphql_url=f"{url}/admin/api/2026-04/graphql.json", access_token=shop.access_token)
    try:
        for order_id in shop.orders:
            order = await client.fetch_order(order_id)
            assert order is not None and order.id == order_id
            assert order.fulfillment_orders is not None
            assert order_from_record(order_to_record(order)) == order
    finally:
        await client.close()
        await runner.cleanup()


def test_the_stored_record_names_every_field_of_the_model():
    """A field added to the model but not to order_to_record would be lost on the way through the store."""
    from dataclasses import fields

    from bot.domain.orders import Fulfillment, FulfillmentOrder, Hold, Order, Tracking

    now = datetime(2026, 11, 27, 12, tzinfo=UTC)
    fo = FulfillmentOrder("fo", "OPEN", "UNSUBMITTED", now, now, holds=(Hold("h", "OTHER"),))
    fulfillment = Fulfillment("f", "SUCCESS", now, now, tracking=(Tracking("1Z", "UPS", None),))
    order = Order(
        "gid://shopify/Order/1",
        "#1",
        now,
        now,
        "PAID",
        "UNFULFILLED",
        Money("1.00", "EUR"),
        fulfillments=(fulfillment,),
        fulfillment_orders=(fo,),
    )
    record = order_to_record(order)
    assert set(record) == {f.name for f in fields(Order)}
    assert set(record["fulfillment_orders"][0]) == {f.name for f in fields(FulfillmentOrder)}
    assert set(record["fulfillments"][0]) == {f.name for f in fields(Fulfillment)}
    assert set(record["fulfillment_orders"][0]["holds"][0]) == {f.name for f in fields(Hold)}


def _what_service_reads(payload: dict) -> tuple:
    """What service.on_event takes from a body of a topic other than the order topics."""
    customer = payload.get("customer") or {}
    return (
        (payload.get("order_edit") or {}).get("order_id"),
        payload.get("order_id"),
        payload.get("id"),
        _fulfillment_order_ids(payload),
        customer.get("email") if isinstance(customer, dict) else None,
        payload.get("orders_to_redact"),
        payload.get("orders_requested"),
    )


def _personal_values(value: Any) -> set[str]:
    """Street addresses, phone numbers and IP addresses anywhere in a body."""
    if isinstance(value, list):
        return set().union(*map(_personal_values, value)) if value else set()
    if not isinstance(value, dict):
        return set()
    found = {value[k] for k in ("address1", "address2", "phone", "browser_ip") if isinstance(value.get(k), str)}
    return found.union(*map(_personal_values, value.values()))


@pytest.mark.parametrize("path", sorted(WEBHOOK_EXAMPLES.glob("*.json")), ids=lambda p: p.stem)
def test_what_is_kept_of_a_webhook_body_processes_the_same_and_holds_no_address_or_phone(path: Path):
    payload = json.loads(path.read_text())
    kept = fields_read(payload)
    if path.stem.replace(".", "/") in ORDER_TOPICS:
        assert order_from_webhook(kept) == order_from_webhook(payload)
    assert _what_service_reads(kept) == _what_service_reads(payload)
    assert not {v for v in _personal_values(payload) if v in json.dumps(kept)}
