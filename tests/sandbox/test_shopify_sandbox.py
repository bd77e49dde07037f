"""The sandbox Shopify, over real HTTP: documents, cost throttling, failures, mutations, OAuth, webhook bodies."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from bot.domain.orders import Money, order_from_graphql, order_from_webhook
from bot.sandbox.search import search_predicate
from bot.sandbox.seed import SHIPBOB, STOREFRONT, WAREHOUSE, generate_orders, seed_orders
from bot.sandbox.serving import serve
from bot.sandbox.shopify import SandboxShopify, load_schema
from bot.sandbox.state import order_total
from bot.sandbox.views import authorization_id
from bot.shopify import operations
from tests.conftest import wait_for

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
TOKEN = "shpat_sandbox"
GRAPHQL_PATH = "/admin/api/2026-04/graphql.json"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module", autouse=True)
def schema_loaded_once() -> None:
    load_schema()


def by_name(shopify: SandboxShopify, name: str) -> dict:
    return next(o for o in shopify.orders.values() if o["name"] == name)


def first_fo(shopify: SandboxShopify, name: str) -> str:
    return by_name(shopify, name)["fulfillment_orders"][0]["id"]


class Api:
    """A minimal client: what the bot's client does, without its retries."""

    def __init__(self, session: aiohttp.ClientSession, url: str):
        self.session = session
        self.url = url

    async def post(self, document: str, variables: dict | None = None, *, token: str = TOKEN, **kw) -> tuple[int, dict]:
        headers = {"X-Shopify-Access-Token": token}
        body = {"query": document, "variables": variables or {}}
        async with self.session.post(self.url + GRAPHQL_PATH, json=body, headers=headers, **kw) as response:
            return response.status, await response.json()

    async def data(self, document: str, variables: dict | None = None) -> dict:
        status, answer = await self.post(document, variables)
        assert status == 200 and "errors" not in answer, answer
        return answer["data"]

    async def order(self, shopify: SandboxShopify, name: str):
        return order_from_graphql((await self.data(operations.ORDER, {"id": by_name(shopify, name)["id"]}))["order"])


@contextlib.asynccontextmanager
async def running(shopify: SandboxShopify) -> AsyncIterator[Api]:
    runner, url = await serve(shopify.app)
    try:
        async with aiohttp.ClientSession() as session:
            yield Api(session, url)
    finally:
        await runner.cleanup()


@pytest.fixture
def shopify() -> SandboxShopify:
    return SandboxShopify(seed_orders(NOW), now=lambda: NOW)


@pytest.fixture
async def server(shopify: SandboxShopify) -> AsyncIterator[str]:
    runner, url = await serve(shopify.app)
    yield url
    await runner.cleanup()


@pytest.fixture
async def api(server: str) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(session, server)


# --- every document ---------------------------------------------------------------------------------------------


def document_variables(shopify: SandboxShopify) -> dict[str, dict]:
    order_1001 = by_name(shopify, "#1001")["id"]
    return {
        "OrdersPage": {"first": 10, "query": "status:open"},
        "OrdersById": {"ids": [order_1001, by_name(shopify, "#1013")["id"]]},
        "ChangedFulfillmentOrders": {"first": 250, "query": "updated_at:>=2020-01-01T00:00:00Z"},
        "OrderStates": {"ids": [order_1001, by_name(shopify, "#1014")["id"]]},
        "Order": {"id": order_1001},
        "OrderWithoutLines": {"id": order_1001},
        "OrderOfFulfillmentOrder": {"id": first_fo(shopify, "#1002")},
        "OrderFulfillments": {"id": by_name(shopify, "#1013")["id"]},
        "ShopAndScopes": {},
        "LocationsForMove": {"id": first_fo(shopify, "#1002"), "first": operations.LOCATIONS_FOR_MOVE_FIRST},
        "Job": {"id": "gid://shopify/Job/00000000-0000-0000-0000-000000000000"},
        "FulfillmentCreate": {
            "fulfillment": {
                "lineItemsByFulfillmentOrder": [{"fulfillmentOrderId": first_fo(shopify, "#1001")}],
                "trackingInfo": {"number": "1Z999", "company": "UPS"},
                "notifyCustomer": False,
            }
        },
        "TrackingInfoUpdate": {
            "fulfillmentId": by_name(shopify, "#1018")["fulfillments"][0]["id"],
            "trackingInfoInput": {"number": "LX123456789SE", "company": "PostNord SE"},
            "notifyCustomer": True,
        },
        "FulfillmentRequestSubmit": {
            "id": first_fo(shopify, "#1008"),
            "message": "Please ship",
            "notifyCustomer": False,
        },
        "CancellationRequestSubmit": {"id": first_fo(shopify, "#1007"), "message": "Customer cancelled"},
        "HoldRelease": {
            "id": first_fo(shopify, "#1005"),
            "holdIds": [by_name(shopify, "#1005")["fulfillment_orders"][0]["holds"][0]["id"]],
        },
        "OrderClose": {"input": {"id": by_name(shopify, "#1014")["id"]}},
        "OrderOpen": {"input": {"id": by_name(shopify, "#1014")["id"]}},
        "FulfillmentCancel": {"id": by_name(shopify, "#1013")["fulfillments"][0]["id"]},
        "OrderCancel": {"orderId": by_name(shopify, "#1012")["id"], "reason": "CUSTOMER", "restock": True},
        "OrderCapture": {"input": capture_all(shopify, "#1004")},
        "OrderMarkAsPaid": {"input": {"id": by_name(shopify, "#1003")["id"]}},
        "OrderDelete": {"orderId": by_name(shopify, "#1015")["id"]},
        "FulfillmentOrderMove": {"id": first_fo(shopify, "#1016"), "newLocationId": STOREFRONT["id"]},
        "TagsAdd": {"id": order_1001, "tags": ["orderbot-alerted"]},
        "WebhookSubscriptions": {"first": 100},
        "WebhookSubscriptionCreate": {
            "topic": "ORDERS_CREATE",
            "webhookSubscription": {"uri": "https://orderbot.example.com/shopify/webhooks", "format": "JSON"},
        },
        "WebhookSubscriptionDelete": {
            "id": shopify.webhook_subscriptions.add("ORDERS_UPDATED", "https://old.example.com/shopify/webhooks")["id"]
        },
    }


def capture_all(shopify: SandboxShopify, name: str) -> dict:
    """OrderCaptureInput for all an order's authorization holds."""
    order = by_name(shopify, name)
    return {
        "id": order["id"],
        "parentTransactionId": authorization_id(order),
        "amount": str(order_total(order)),
        "currency": shopify.currency,
    }


def orders_in(data: dict) -> list[dict]:
    """Every Order node in an answer (anything with a name and fulfillment orders)."""
    found = []
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            if "fulfillmentOrders" in value and "name" in value:
                found.append(value)
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return found


async def test_every_document_executes_and_its_orders_parse(shopify: SandboxShopify, api: Api) -> None:
    variables = document_variables(shopify)
    assert set(variables) == set(operations.ALL_DOCUMENTS)
    for name, document in operations.ALL_DOCUMENTS.items():
        status, answer = await api.post(document, variables[name])
        assert status == 200 and "errors" not in answer, (name, answer)
        assert answer["extensions"]["cost"]["actualQueryCost"] <= answer["extensions"]["cost"]["requestedQueryCost"]
        for payload in answer["data"].values():
            payload = payload if isinstance(payload, dict) else {}  # nodes(ids:) answers a list
            assert not (payload or {}).get("userErrors") and not (payload or {}).get("orderCancelUserErrors"), name
        for node in orders_in(answer["data"]):
            order_from_graphql(node)
    assert [op.outcome for op in shopify.operations] == ["ok"] * len(operations.ALL_DOCUMENTS)


async def test_every_seeded_order_parses_and_the_cases_are_all_there(api: Api) -> None:
    data = await api.data(operations.ORDERS_PAGE, {"first": 14, "query": "status:any"})
    data2 = await api.data(
        operations.ORDERS_PAGE, {"first": 14, "query": "status:any", "after": data["orders"]["pageInfo"]["endCursor"]}
    )
    orders = {o.name: o for o in map(order_from_graphql, data["orders"]["nodes"] + data2["orders"]["nodes"])}
    assert len(orders) == 18 and not data2["orders"]["pageInfo"]["hasNextPage"]
    assert orders["#1001"].fulfillment_orders[0].supported_actions == ("CREATE_FULFILLMENT", "HOLD", "MOVE")
    assert orders["#1002"].fulfillment_orders[0].holds[0].reason == "INVENTORY_OUT_OF_STOCK"
    assert orders["#1002"].fulfillment_status == "ON_HOLD"
    assert {orders["#1003"].financial_status, orders["#1004"].financial_status} == {"PENDING", "AUTHORIZED"}
    assert orders["#1003"].can_mark_as_paid and orders["#1003"].payment_gateways == ("Bank Deposit",)
    assert not orders["#1003"].capturable and orders["#1003"].authorization_id is None
    assert orders["#1004"].capturable and orders["#1004"].authorization_id is not None
    assert orders["#1004"].capturable_amount is None  # a page leaves the amount out (its cost); one order's read has it
    assert orders["#1006"].fulfillment_orders[0].holds[0].reason == "HIGH_RISK_OF_FRAUD"
    assert orders["#1007"].fulfillment_orders[0].request_status == "SUBMITTED"
    assert orders["#1007"].fulfillment_orders[0].service == "DSers"
    assert orders["#1008"].fulfillment_orders[0].request_status == "REJECTED"
    assert orders["#1009"].fulfillment_orders[0].supported_actions == ("REQUEST_CANCELLATION",)
    assert orders["#1010"].fulfillment_status == "PARTIALLY_FULFILLED"
    assert orders["#1011"].fulfillment_orders[0].fulfill_at > NOW
    assert orders["#1013"].fulfillments[0].has_tracking
    assert orders["#1014"].closed and orders["#1015"].cancelled and orders["#1016"].test
    assert orders["#1017"].has_tag("orderbot-ignore")
    assert orders["#1018"].fulfillments and not orders["#1018"].fulfillments[0].has_tracking


async def test_unknown_ids_are_null(api: Api) -> None:
    data = await api.data(operations.ORDER, {"id": "gid://shopify/Order/1"})
    assert data == {"order": None}
    data = await api.data(operations.ORDER_OF_FULFILLMENT_ORDER, {"id": "gid://shopify/FulfillmentOrder/1"})
    assert data == {"fulfillmentOrder": None}


async def test_shop_and_scopes(shopify: SandboxShopify, api: Api) -> None:
    data = await api.data(operations.SHOP_AND_SCOPES)
    assert data["shop"]["myshopifyDomain"] == "orderbot-demo.myshopify.com"
    assert [s["handle"] for s in data["currentAppInstallation"]["accessScopes"]] == list(operations.REQUIRED_SCOPES)


# --- invalid requests -------------------------------------------------------------------------------------------


async def test_an_invalid_document_fails_validation_like_production(api: Api) -> None:
    status, answer = await api.post("query { shop { name notAField } }")
    assert status == 200 and "data" not in answer
    [error] = answer["errors"]
    assert "notAField" in error["message"]
    assert error["locations"] == [{"line": 1, "column": 21}]
    assert error["extensions"]["code"] == "undefinedField"


async def test_a_syntax_error_and_a_bad_variable_are_errors(api: Api) -> None:
    _, answer = await api.post("query { shop { name }")
    assert answer["errors"][0]["extensions"]["code"] == "parseError"
    _, answer = await api.post(operations.ORDER, {"id": None})
    assert answer["errors"][0]["extensions"]["code"] == "INVALID_VARIABLE"


async def test_a_wrong_token_is_401(shopify: SandboxShopify, api: Api) -> None:
    status, answer = await api.post(operations.SHOP_AND_SCOPES, token="shpat_wrong")
    assert status == 401
    assert answer == {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}
    assert shopify.operations[-1].outcome == "unauthorized"


# --- cost and throttling ----------------------------------------------------------------------------------------


async def test_throttled_when_the_bucket_is_empty_then_restored_as_time_passes() -> None:
    clock = FakeClock()
    shopify = SandboxShopify(seed_orders(NOW), bucket_size=10.0, restore_rate=1.0, clock=clock, now=lambda: NOW)
    async with running(shopify) as api:
        costs = [(await api.post(operations.SHOP_AND_SCOPES))[1]["extensions"]["cost"] for _ in range(3)]
        assert [c["throttleStatus"]["currentlyAvailable"] for c in costs] == [7, 4, 1]
        assert costs[0]["requestedQueryCost"] == costs[0]["actualQueryCost"] == 3

        status, answer = await api.post(operations.SHOP_AND_SCOPES)
        assert status == 200 and "data" not in answer
        assert answer["errors"][0]["extensions"]["code"] == "THROTTLED"
        assert answer["extensions"]["cost"] == {
            "requestedQueryCost": 3,
            "actualQueryCost": None,
            "throttleStatus": {"maximumAvailable": 10.0, "currentlyAvailable": 1, "restoreRate": 1.0},
        }

        clock.now += 2.0
        status, answer = await api.post(operations.SHOP_AND_SCOPES)
        assert "errors" not in answer and answer["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 0
        clock.now += 100.0
        _, answer = await api.post(operations.SHOP_AND_SCOPES)
        assert answer["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 7  # capped at the bucket
    assert [op.outcome for op in shopify.operations] == ["ok", "ok", "ok", "throttled", "ok", "ok"]


async def test_actual_cost_counts_what_was_returned(api: Api, shopify: SandboxShopify) -> None:
    _, answer = await api.post(operations.ORDER, {"id": by_name(shopify, "#1001")["id"]})
    cost = answer["extensions"]["cost"]
    # 1 + 2 + 2 + 2 + 1 + 1 + (2 + 10 × (1 + 3 + 1 + 1 + (2 + 50))), and 2 for what can be captured
    assert cost["requestedQueryCost"] == 593
    # no fulfillments (their count is 1), no capturable transaction (an empty list is 1), 2 lines, nothing to capture
    assert cost["actualQueryCost"] == 1 + 2 + 2 + 0 + 1 + 1 + (2 + 1 * (1 + 3 + 1 + 1 + (2 + 2))) + 2
    assert cost["throttleStatus"]["currentlyAvailable"] == 2000 - cost["actualQueryCost"]


async def test_a_query_over_1000_points_is_refused(api: Api) -> None:
    status, answer = await api.post(operations.ORDERS_PAGE, {"first": 50})
    assert status == 200
    [error] = answer["errors"]
    assert error["extensions"] == {"code": "MAX_COST_EXCEEDED", "cost": 2 + 50 * 71, "maxCost": 1000}
    assert answer["extensions"]["cost"]["requestedQueryCost"] == 3552


async def test_a_connection_without_first_or_last_is_an_error(api: Api) -> None:
    _, answer = await api.post("query { orders { nodes { id } } }")
    assert answer["errors"][0]["message"] == "you must provide one of first or last"


async def test_nodes_is_sized_by_its_ids_and_charges_only_the_orders_it_found(
    api: Api, shopify: SandboxShopify
) -> None:
    ids = [by_name(shopify, "#1001")["id"], "gid://shopify/Order/1", by_name(shopify, "#1013")["id"]]
    status, answer = await api.post(operations.ORDERS_BY_ID, {"ids": ids})
    found = answer["data"]["nodes"]
    assert status == 200 and [node and node["name"] for node in found] == ["#1001", None, "#1013"]
    cost = answer["extensions"]["cost"]
    assert cost["requestedQueryCost"] == 3 * 71
    # #1001: no fulfillments; #1013: one with one tracking number; each has one fulfillment order at the warehouse (no
    # fulfillment service: 1 + location 2 + holds 1 + actions 1); the unknown id is free
    assert cost["actualQueryCost"] == (1 + 2 + 2 + 1 + 1 + 1 + (2 + 5)) + (1 + 2 + 2 + 2 + 1 + 1 + (2 + 5))


async def test_nodes_refuses_more_than_250_ids(api: Api) -> None:
    ids = [f"gid://shopify/Order/{i}" for i in range(251)]
    _, answer = await api.post("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": ids})
    assert "greater than the maximum allowed of 250" in answer["errors"][0]["message"]


async def test_fulfillment_orders_are_searched_by_update_time_closed_ones_on_request(
    api: Api, shopify: SandboxShopify
) -> None:
    held = by_name(shopify, "#1002")
    shopify.set_fulfillment_order(held["fulfillment_orders"][0]["id"], status="OPEN", holds=[])  # touched at NOW
    closed = by_name(shopify, "#1014")["fulfillment_orders"][0]
    closed["updated_at"] = NOW + timedelta(seconds=1)
    since = {"first": 250, "query": "updated_at:>=2026-03-10T15:00:00Z"}

    changed = await api.data(operations.CHANGED_FULFILLMENT_ORDERS, since)
    open_only = await api.data(
        "query($query: String) { fulfillmentOrders(first: 250, query: $query) { nodes { orderId } } }",
        {"query": since["query"]},
    )

    assert [n["orderId"] for n in changed["fulfillmentOrders"]["nodes"]] == [held["id"], closed_order_id(shopify)]
    assert [n["orderId"] for n in open_only["fulfillmentOrders"]["nodes"]] == [held["id"]]


def closed_order_id(shopify: SandboxShopify) -> str:
    return by_name(shopify, "#1014")["id"]


# --- injected failures ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind,status", [("http_500", 500), ("http_503", 503)])
async def test_fail_next_http_errors(shopify: SandboxShopify, api: Api, kind: str, status: int) -> None:
    shopify.fail_next(kind, times=2)
    assert (await api.post(operations.SHOP_AND_SCOPES))[0] == status
    assert (await api.post(operations.SHOP_AND_SCOPES))[0] == status
    assert (await api.post(operations.SHOP_AND_SCOPES))[0] == 200
    assert [op.outcome for op in shopify.operations] == [kind, kind, "ok"]


async def test_fail_next_throttled_reports_a_drained_bucket() -> None:
    clock = FakeClock()
    shopify = SandboxShopify(seed_orders(NOW), clock=clock, now=lambda: NOW)
    shopify.fail_next("throttled")
    async with running(shopify) as api:
        status, answer = await api.post(operations.ORDER, {"id": by_name(shopify, "#1001")["id"]})
        assert status == 200 and answer["errors"][0]["extensions"]["code"] == "THROTTLED"
        cost = answer["extensions"]["cost"]
        assert cost["throttleStatus"]["currentlyAvailable"] == cost["requestedQueryCost"] - 100
        clock.now += 1.0
        assert "errors" not in (await api.post(operations.ORDER, {"id": by_name(shopify, "#1001")["id"]}))[1]
    assert [op.outcome for op in shopify.operations] == ["throttled", "ok"]


async def test_fail_next_timeout_answers_late(shopify: SandboxShopify, api: Api) -> None:
    shopify.fail_next("timeout", delay=0.3)
    with pytest.raises(asyncio.TimeoutError):
        await api.post(operations.SHOP_AND_SCOPES, timeout=aiohttp.ClientTimeout(total=0.05))
    await wait_for(lambda: shopify.operations and shopify.operations[-1].outcome == "timeout")  # answered late
    assert (await api.post(operations.SHOP_AND_SCOPES))[0] == 200


async def test_fail_next_user_errors_waits_for_a_mutation_and_changes_nothing(
    shopify: SandboxShopify, api: Api
) -> None:
    shopify.fail_next("user_errors", message="Order is locked")
    order_id = by_name(shopify, "#1001")["id"]
    await api.data(operations.ORDER, {"id": order_id})  # queries pass
    data = await api.data(operations.ORDER_CLOSE, {"input": {"id": order_id}})
    assert data["orderClose"] == {
        "order": None,
        "userErrors": [{"field": ["input", "id"], "message": "Order is locked"}],
    }
    assert shopify.orders[order_id]["closed_at"] is None
    assert [op.outcome for op in shopify.operations] == ["ok", "user_errors"]
    assert (await api.data(operations.ORDER_CLOSE, {"input": {"id": order_id}}))["orderClose"]["order"]["closed"]


async def test_fail_next_on_mutation_lets_the_reads_before_it_pass(shopify: SandboxShopify, api: Api) -> None:
    shopify.fail_next("http_503", on_mutation=True)
    order_id = by_name(shopify, "#1001")["id"]
    await api.data(operations.ORDER, {"id": order_id})
    assert (await api.post(operations.ORDER_CLOSE, {"input": {"id": order_id}}))[0] == 503
    assert shopify.orders[order_id]["closed_at"] is None
    assert (await api.data(operations.ORDER_CLOSE, {"input": {"id": order_id}}))["orderClose"]["order"]["closed"]
    assert [op.outcome for op in shopify.operations] == ["ok", "http_503", "ok"]


def test_fail_next_rejects_unknown_kinds(shopify: SandboxShopify) -> None:
    with pytest.raises(ValueError, match="unknown failure kind"):
        shopify.fail_next("http_418")


# --- search and pagination --------------------------------------------------------------------------------------


async def test_pagination_with_the_search_syntax(shopify: SandboxShopify, api: Api) -> None:
    query = "status:open AND fulfillment_status:unshipped -tag:orderbot-ignore -financial_status:pending"
    names, after, pages = [], None, 0
    while True:
        data = await api.data(operations.ORDERS_PAGE, {"first": 3, "after": after, "query": query})
        page = data["orders"]
        names += [n["name"] for n in page["nodes"]]
        updated = [n["updatedAt"] for n in page["nodes"]]
        assert updated == sorted(updated)
        pages += 1
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    expected = ["#1001", "#1002", "#1004", "#1005", "#1006", "#1007", "#1008", "#1009", "#1011", "#1012", "#1016"]
    assert sorted(names) == expected and pages == 4


@pytest.mark.parametrize(
    "query,expected",
    [
        ("name:#1003", {"#1003"}),
        ("name:1003", {"#1003"}),
        ("financial_status:authorized", {"#1004"}),
        ("status:closed -status:cancelled", {"#1014"}),
        ("status:cancelled", {"#1015"}),
        ("fulfillment_status:partial", {"#1010"}),
        ("fulfillment_status:shipped status:open", {"#1013", "#1018"}),
        ("fulfillment_status:scheduled", {"#1011"}),
        ("fulfillment_status:request_declined", {"#1008"}),
        ("tag:Wholesale", {"#1017"}),
        ("created_at:>=2026-03-10T10:00:00Z", {"#1012"}),
        ("created_at:<2026-03-01", {"#1014"}),
        ("updated_at:>=2026-03-10T12:00:00Z", {"#1012"}),
        ("thompson", {"#1001"}),
    ],
)
def test_search_syntax(query: str, expected: set[str]) -> None:
    matches = search_predicate(query)
    assert {o["name"] for o in seed_orders(NOW) if matches(o)} == expected


async def test_generated_orders_page_through_and_parse() -> None:
    generated = generate_orders(120, NOW, seed=7)
    assert generated == generate_orders(120, NOW, seed=7)
    shopify = SandboxShopify(generated, bucket_size=100_000.0, now=lambda: NOW)
    parsed, after = [], None
    async with running(shopify) as api:
        while True:
            variables = {"first": 14, "after": after, "query": "status:any"}
            page = (await api.data(operations.ORDERS_PAGE, variables))["orders"]
            parsed += [order_from_graphql(n) for n in page["nodes"]]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
    assert len(parsed) == 120 and len({o.id for o in parsed}) == 120
    assert len({o.fulfillment_status for o in parsed}) >= 6


# --- mutations ----------------------------------------------------------------------------------------------------


async def test_fulfillment_create_ships_everything_left(shopify: SandboxShopify, api: Api) -> None:
    variables = document_variables(shopify)["FulfillmentCreate"]
    created = (await api.data(operations.FULFILLMENT_CREATE, variables))["fulfillmentCreate"]
    assert created["fulfillment"]["status"] == "SUCCESS"
    assert created["fulfillment"]["trackingInfo"] == [{"number": "1Z999", "company": "UPS", "url": None}]
    order = await api.order(shopify, "#1001")
    assert order.fulfillment_status == "FULFILLED" and order.updated_at == NOW
    assert order.fulfillment_orders[0].status == "CLOSED" and order.fulfillment_orders[0].supported_actions == ()
    again = (await api.data(operations.FULFILLMENT_CREATE, variables))["fulfillmentCreate"]
    assert again["fulfillment"] is None and "unfulfillable status= closed" in again["userErrors"][0]["message"]


async def test_fulfillment_create_with_quantities_is_partial(shopify: SandboxShopify, api: Api) -> None:
    fo = by_name(shopify, "#1001")["fulfillment_orders"][0]
    line = fo["line_items"][0]
    variables = {
        "fulfillment": {
            "lineItemsByFulfillmentOrder": [
                {"fulfillmentOrderId": fo["id"], "fulfillmentOrderLineItems": [{"id": line["id"], "quantity": 1}]}
            ],
            "trackingInfo": {"numbers": ["A1", "A2"], "urls": ["https://t.example/A1"], "company": "USPS"},
        }
    }
    created = (await api.data(operations.FULFILLMENT_CREATE, variables))["fulfillmentCreate"]
    assert [t["number"] for t in created["fulfillment"]["trackingInfo"]] == ["A1", "A2"]
    order = await api.order(shopify, "#1001")
    assert order.fulfillment_status == "PARTIALLY_FULFILLED"
    assert order.fulfillment_orders[0].status == "IN_PROGRESS"
    too_many = variables["fulfillment"]["lineItemsByFulfillmentOrder"][0]["fulfillmentOrderLineItems"][0]
    too_many["quantity"] = 5
    refused = (await api.data(operations.FULFILLMENT_CREATE, variables))["fulfillmentCreate"]
    assert refused["userErrors"][0]["message"] == "Invalid fulfillment order line item quantity requested."


@pytest.mark.parametrize("name", ["#1002", "#1009", "#1011"])  # on hold, at a 3PL, scheduled
async def test_fulfillment_create_refuses_what_cannot_be_fulfilled(
    shopify: SandboxShopify, api: Api, name: str
) -> None:
    variables = {"fulfillment": {"lineItemsByFulfillmentOrder": [{"fulfillmentOrderId": first_fo(shopify, name)}]}}
    refused = (await api.data(operations.FULFILLMENT_CREATE, variables))["fulfillmentCreate"]
    assert refused["fulfillment"] is None and refused["userErrors"][0]["field"][0] == "fulfillment"
    assert not by_name(shopify, name)["fulfillments"] or name == "#1009"
    assert shopify.operations[-1].outcome == "user_errors"


async def test_fulfillment_request_submit(shopify: SandboxShopify, api: Api) -> None:
    done = await api.data(operations.FULFILLMENT_REQUEST_SUBMIT, {"id": first_fo(shopify, "#1008")})
    assert done["fulfillmentOrderSubmitFulfillmentRequest"]["submittedFulfillmentOrder"]["requestStatus"] == "SUBMITTED"
    assert (await api.order(shopify, "#1008")).fulfillment_orders[0].supported_actions == ("REQUEST_CANCELLATION",)
    refused = await api.data(operations.FULFILLMENT_REQUEST_SUBMIT, {"id": first_fo(shopify, "#1001")})
    assert refused["fulfillmentOrderSubmitFulfillmentRequest"]["userErrors"][0]["field"] == ["id"]


async def test_cancellation_request_submit(shopify: SandboxShopify, api: Api) -> None:
    done = await api.data(operations.CANCELLATION_REQUEST_SUBMIT, {"id": first_fo(shopify, "#1009")})
    assert done["fulfillmentOrderSubmitCancellationRequest"]["fulfillmentOrder"]["requestStatus"] == (
        "CANCELLATION_REQUESTED"
    )
    again = await api.data(operations.CANCELLATION_REQUEST_SUBMIT, {"id": first_fo(shopify, "#1009")})
    assert again["fulfillmentOrderSubmitCancellationRequest"]["userErrors"]


async def test_hold_release_named_holds_then_all(shopify: SandboxShopify, api: Api) -> None:
    fo_id = first_fo(shopify, "#1002")
    shopify.set_fulfillment_order(
        fo_id, holds=[*by_name(shopify, "#1002")["fulfillment_orders"][0]["holds"], {"reason": "OTHER"}]
    )
    first_hold = by_name(shopify, "#1002")["fulfillment_orders"][0]["holds"][0]["id"]
    released = await api.data(operations.HOLD_RELEASE, {"id": fo_id, "holdIds": [first_hold]})
    assert released["fulfillmentOrderReleaseHold"]["fulfillmentOrder"]["status"] == "ON_HOLD"
    released = await api.data(operations.HOLD_RELEASE, {"id": fo_id})
    assert released["fulfillmentOrderReleaseHold"]["fulfillmentOrder"]["status"] == "OPEN"
    order = await api.order(shopify, "#1002")
    assert (
        order.fulfillment_orders[0].holds == ()
        and "CREATE_FULFILLMENT" in order.fulfillment_orders[0].supported_actions
    )
    refused = await api.data(operations.HOLD_RELEASE, {"id": fo_id})
    assert refused["fulfillmentOrderReleaseHold"]["userErrors"][0]["message"] == "The fulfillment order is not on hold."


async def test_fulfillment_cancel_reopens_the_items(shopify: SandboxShopify, api: Api) -> None:
    fulfillment_id = by_name(shopify, "#1013")["fulfillments"][0]["id"]
    done = await api.data(operations.FULFILLMENT_CANCEL, {"id": fulfillment_id})
    assert done["fulfillmentCancel"]["fulfillment"] == {"id": fulfillment_id, "status": "CANCELLED"}
    order = await api.order(shopify, "#1013")
    assert order.fulfillment_status == "UNFULFILLED" and order.fulfillment_orders[0].status == "OPEN"
    assert order.fulfillment_orders[0].remaining_quantity == 3
    again = await api.data(operations.FULFILLMENT_CANCEL, {"id": fulfillment_id})
    assert again["fulfillmentCancel"]["userErrors"][0]["message"] == "Fulfillment has already been cancelled."


async def test_order_close_and_open(shopify: SandboxShopify, api: Api) -> None:
    order_id = by_name(shopify, "#1001")["id"]
    closed = (await api.data(operations.ORDER_CLOSE, {"input": {"id": order_id}}))["orderClose"]["order"]
    assert closed["closed"] and closed["closedAt"] == "2026-03-10T15:00:00Z"
    assert (await api.order(shopify, "#1001")).fulfillment_status == "UNFULFILLED"  # archiving ships nothing
    opened = (await api.data(operations.ORDER_OPEN, {"input": {"id": order_id}}))["orderOpen"]["order"]
    assert opened == {"id": order_id, "closed": False, "closedAt": None, "updatedAt": "2026-03-10T15:00:00Z"}
    missing = await api.data(operations.ORDER_CLOSE, {"input": {"id": "gid://shopify/Order/1"}})
    assert missing["orderClose"]["userErrors"][0]["message"] == "Order does not exist"


async def test_order_cancel_then_again(shopify: SandboxShopify, api: Api) -> None:
    variables = {"orderId": by_name(shopify, "#1003")["id"], "reason": "DECLINED", "restock": True}
    done = (await api.data(operations.ORDER_CANCEL, variables))["orderCancel"]
    assert done["job"]["id"].startswith("gid://shopify/Job/") and done["job"]["done"] is False
    assert done["orderCancelUserErrors"] == []
    order = await api.order(shopify, "#1003")  # the job ran meanwhile (job_delay 0: by the next request)
    assert order.cancelled and order.closed and order.financial_status == "VOIDED"
    assert order.fulfillment_orders[0].status == "CLOSED"
    again = (await api.data(operations.ORDER_CANCEL, variables))["orderCancel"]
    assert again["job"] is None and again["orderCancelUserErrors"][0]["code"] == "INVALID"


async def test_order_cancel_runs_in_the_background_and_its_job_says_when_it_is_done() -> None:
    """As Shopify does: orderCancel answers a job that is not done, the order is cancelled later, and job(id:)
    answers done (with its `query` root) once it has run. Here the jobs wait until the test lets them run."""
    shopify = SandboxShopify(seed_orders(NOW), now=lambda: NOW, job_delay=math.inf)
    async with running(shopify) as api:
        variables = {"orderId": by_name(shopify, "#1003")["id"], "reason": "CUSTOMER", "restock": False}
        job = (await api.data(operations.ORDER_CANCEL, variables))["orderCancel"]["job"]
        assert job["done"] is False
        assert (await api.data(operations.JOB, {"id": job["id"]}))["job"] == {"id": job["id"], "done": False}
        assert not (await api.order(shopify, "#1003")).cancelled

        assert shopify.finish_jobs() == 1
        assert (await api.data(operations.JOB, {"id": job["id"]}))["job"]["done"] is True
        assert (await api.order(shopify, "#1003")).cancelled
        unknown = await api.data(operations.JOB, {"id": "gid://shopify/Job/00000000-0000-0000-0000-000000000000"})
        assert unknown["job"] is None

        other = {"orderId": by_name(shopify, "#1004")["id"], "reason": "CUSTOMER", "restock": False}
        failed = (await api.data(operations.ORDER_CANCEL, other))["orderCancel"]["job"]
        shopify.finish_jobs(succeed=False)  # Shopify gave up: the job is done, the order is not cancelled
        assert (await api.data(operations.JOB, {"id": failed["id"]}))["job"]["done"] is True
        assert not (await api.order(shopify, "#1004")).cancelled


async def test_order_capture_charges_the_authorization_once(shopify: SandboxShopify, api: Api) -> None:
    before = await api.order(shopify, "#1004")
    assert before.capturable and before.capturable_amount == Money(str(order_total(by_name(shopify, "#1004"))), "USD")
    done = (await api.data(operations.ORDER_CAPTURE, {"input": capture_all(shopify, "#1004")}))["orderCapture"]
    assert done["userErrors"] == [] and (done["transaction"]["kind"], done["transaction"]["status"]) == (
        "CAPTURE",
        "SUCCESS",
    )
    after = await api.order(shopify, "#1004")
    assert after.financial_status == "PAID" and not after.capturable and after.capturable_amount == Money("0.00", "USD")
    again = (await api.data(operations.ORDER_CAPTURE, {"input": capture_all(shopify, "#1004")}))["orderCapture"]
    assert again["transaction"] is None and again["userErrors"][0]["message"] == "The transaction is not capturable."
    too_much = {**capture_all(shopify, "#1010"), "parentTransactionId": "gid://shopify/OrderTransaction/1"}
    refused = (await api.data(operations.ORDER_CAPTURE, {"input": too_much}))["orderCapture"]
    assert refused["userErrors"][0]["field"] == ["input", "parentTransactionId"]  # a paid order: nothing to capture


async def test_order_mark_as_paid_only_where_shopify_allows_it(shopify: SandboxShopify, api: Api) -> None:
    manual = {"input": {"id": by_name(shopify, "#1003")["id"]}}  # a bank deposit not received
    done = (await api.data(operations.ORDER_MARK_AS_PAID, manual))["orderMarkAsPaid"]
    assert done["userErrors"] == [] and done["order"]["displayFinancialStatus"] == "PAID"
    assert not (await api.order(shopify, "#1003")).can_mark_as_paid
    again = (await api.data(operations.ORDER_MARK_AS_PAID, manual))["orderMarkAsPaid"]
    assert again["order"] is None and again["userErrors"][0]["message"] == "Order cannot be marked as paid."
    shopify.orders[by_name(shopify, "#1012")["id"]]["financial_status"] = "PENDING"  # a card payment processing
    card = {"input": {"id": by_name(shopify, "#1012")["id"]}}
    assert (await api.data(operations.ORDER_MARK_AS_PAID, card))["orderMarkAsPaid"]["userErrors"]


async def test_order_delete_only_archived_or_cancelled_orders(shopify: SandboxShopify, api: Api) -> None:
    open_order = {"orderId": by_name(shopify, "#1001")["id"]}
    refused = (await api.data(operations.ORDER_DELETE, open_order))["orderDelete"]
    assert refused["deletedId"] is None and refused["userErrors"][0]["code"] == "INVALID"
    for name in ("#1014", "#1015"):  # archived, cancelled
        order_id = by_name(shopify, name)["id"]
        done = (await api.data(operations.ORDER_DELETE, {"orderId": order_id}))["orderDelete"]
        assert done == {"deletedId": order_id, "userErrors": []}
        assert (await api.data(operations.ORDER_WITHOUT_LINES, {"id": order_id}))["order"] is None
        gone = (await api.data(operations.ORDER_DELETE, {"orderId": order_id}))["orderDelete"]
        assert gone["userErrors"][0]["code"] == "NOT_FOUND"


NOT_STOCKED = "can't be changed because it isn't stocked at this location."


async def test_locations_for_move_say_which_stock_every_item_and_why_not(shopify: SandboxShopify, api: Api) -> None:
    fo_id = first_fo(shopify, "#1001")  # a pillow and a candle trio, at the warehouse
    shopify.locations[SHIPBOB["id"]]["stocked"] = ["JO-PIL-SAGE"]
    variables = {"id": fo_id, "first": operations.LOCATIONS_FOR_MOVE_FIRST}
    found = (await api.data(operations.LOCATIONS_FOR_MOVE, variables))["fulfillmentOrder"]["locationsForMove"]
    assert [
        (n["location"]["name"], n["movable"], n["message"], n["availableLineItemsCount"]["count"],
         n["unavailableLineItemsCount"]["count"])
        for n in found["nodes"]
    ] == [
        ("Juniper & Oak Warehouse", False, "Current location.", 2, 0),
        ("Juniper & Oak Storefront", True, None, 2, 0),
        ("ShipBob Fulfillment", False, f"Beeswax Candle Trio {NOT_STOCKED}", 1, 1),
        ("DSers", False, "No items are stocked at this location.", 0, 2),
    ]  # fmt: skip
    requested = first_fo(shopify, "#1007")  # with DSers, requested: Shopify lets it move nowhere
    nowhere = (await api.data(operations.LOCATIONS_FOR_MOVE, {**variables, "id": requested}))["fulfillmentOrder"]
    assert not any(n["movable"] for n in nowhere["locationsForMove"]["nodes"])


async def test_fulfillment_order_move_moves_the_whole_fulfillment_order_keeping_its_id_and_holds(
    shopify: SandboxShopify, api: Api
) -> None:
    fo_id = first_fo(shopify, "#1002")  # held for stock at the warehouse
    answer = (await api.data(operations.FULFILLMENT_ORDER_MOVE, {"id": fo_id, "newLocationId": STOREFRONT["id"]}))[
        "fulfillmentOrderMove"
    ]
    assert answer["userErrors"] == []
    assert answer["movedFulfillmentOrder"]["id"] == answer["originalFulfillmentOrder"]["id"] == fo_id
    assert answer["movedFulfillmentOrder"]["assignedLocation"]["location"]["id"] == STOREFRONT["id"]
    (moved,) = (await api.order(shopify, "#1002")).fulfillment_orders
    assert (moved.location, moved.location_id, moved.status) == (
        "Juniper & Oak Storefront",
        STOREFRONT["id"],
        "ON_HOLD",
    )
    assert [hold.reason for hold in moved.holds] == ["INVENTORY_OUT_OF_STOCK"]


async def test_fulfillment_order_move_of_a_part_shipped_one_makes_a_new_fulfillment_order(
    shopify: SandboxShopify, api: Api
) -> None:
    fo_id = first_fo(shopify, "#1010")  # the skillet shipped, four towels left, at the warehouse
    shopify.set_fulfillment_order(fo_id, status="ON_HOLD", holds=[{"reason": "INVENTORY_OUT_OF_STOCK"}])
    answer = (await api.data(operations.FULFILLMENT_ORDER_MOVE, {"id": fo_id, "newLocationId": STOREFRONT["id"]}))[
        "fulfillmentOrderMove"
    ]
    assert answer["userErrors"] == [] and answer["originalFulfillmentOrder"] == {"id": fo_id, "status": "CLOSED"}
    new_id = answer["movedFulfillmentOrder"]["id"]
    assert new_id != fo_id and answer["movedFulfillmentOrder"]["status"] == "ON_HOLD"  # the hold goes with them
    original, moved = (await api.order(shopify, "#1010")).fulfillment_orders
    assert [(line.remaining, line.total) for line in original.lines] == [(0, 1), (0, 0)]
    assert (moved.id, moved.location_id, [(line.remaining, line.total) for line in moved.lines]) == (
        new_id,
        STOREFRONT["id"],
        [(4, 4)],
    )


@pytest.mark.parametrize(
    ("name", "location", "field", "message"),
    [
        ("#1013", STOREFRONT, "id", "Cannot move a fulfillment order that is closed."),  # shipped
        ("#1007", WAREHOUSE, "id", "Cannot move a fulfillment order in its current state."),  # requested at DSers
        ("#1002", SHIPBOB, "newLocationId", "No items are stocked at this location."),
        ("#1002", WAREHOUSE, "newLocationId", "Current location."),
        ("#1002", {"id": "gid://shopify/Location/1"}, "newLocationId", "Location does not exist."),
    ],
    ids=["closed", "without-move", "not-stocked", "same-location", "unknown-location"],
)
async def test_fulfillment_order_move_refuses_as_shopify_does(
    shopify: SandboxShopify, api: Api, name: str, location: dict, field: str, message: str
) -> None:
    before = copy.deepcopy(by_name(shopify, name))
    variables = {"id": first_fo(shopify, name), "newLocationId": location["id"]}
    answer = (await api.data(operations.FULFILLMENT_ORDER_MOVE, variables))["fulfillmentOrderMove"]
    assert answer["movedFulfillmentOrder"] is None
    assert [(e["field"], e["message"]) for e in answer["userErrors"]] == [([field], message)]
    assert by_name(shopify, name) == before, "a refused move changes nothing"


async def test_tags_add_merges_case_insensitively(shopify: SandboxShopify, api: Api) -> None:
    order_id = by_name(shopify, "#1017")["id"]
    done = await api.data(operations.TAGS_ADD, {"id": order_id, "tags": ["Wholesale", "orderbot-notified"]})
    assert done["tagsAdd"] == {"node": {"id": order_id}, "userErrors": []}
    assert (await api.order(shopify, "#1017")).tags == ("wholesale", "orderbot-ignore", "orderbot-notified")


# --- OAuth --------------------------------------------------------------------------------------------------------


async def test_client_credentials_grant(api: Api) -> None:
    form = {"grant_type": "client_credentials", "client_id": "sandbox-client", "client_secret": "sandbox-secret"}
    async with api.session.post(api.url + "/admin/oauth/access_token", data=form) as response:
        assert response.status == 200
        granted = await response.json()
    assert granted == {"access_token": TOKEN, "scope": ",".join(operations.REQUIRED_SCOPES), "expires_in": 86399}
    async with api.session.post(api.url + "/admin/oauth/access_token", json=form) as response:
        assert (await response.json())["access_token"] == TOKEN
    async with api.session.post(api.url + "/admin/oauth/access_token", json={**form, "client_secret": "x"}) as response:
        assert response.status == 400 and (await response.json())["error"] == "invalid_client"


# --- webhook bodies and outside changes ---------------------------------------------------------------------------


async def test_webhook_payload_parses_and_agrees_with_graphql(shopify: SandboxShopify, api: Api) -> None:
    for name in ("#1001", "#1010", "#1013", "#1014", "#1015", "#1017"):
        from_webhook = order_from_webhook(shopify.webhook_payload(by_name(shopify, name)["id"]))
        from_graphql = await api.order(shopify, name)
        for attribute in ("id", "name", "created_at", "updated_at", "closed_at", "cancelled_at", "tags", "customer"):
            assert getattr(from_webhook, attribute) == getattr(from_graphql, attribute), (name, attribute)
        assert from_webhook.financial_status == from_graphql.financial_status
        assert from_webhook.total == from_graphql.total
        assert [f.tracking for f in from_webhook.fulfillments] == [f.tracking for f in from_graphql.fulfillments]
    payload = shopify.webhook_payload(by_name(shopify, "#1010")["id"])
    assert payload["fulfillment_status"] == "partial" and payload["financial_status"] == "paid"
    assert payload["updated_at"].endswith("-04:00") or payload["updated_at"].endswith("-05:00")


async def test_fulfill_externally(shopify: SandboxShopify, api: Api) -> None:
    order_id = by_name(shopify, "#1009")["id"]
    shopify.fulfill_externally(order_id, "1Z9999W99999999999", "UPS")
    order = await api.order(shopify, "#1009")
    assert order.fulfillment_status == "FULFILLED" and order.updated_at == NOW
    assert order.fulfillments[-1].tracking[0].number == "1Z9999W99999999999"
    assert order_from_webhook(shopify.webhook_payload(order_id)).fulfillment_status == "FULFILLED"


async def test_set_fulfillment_order(shopify: SandboxShopify, api: Api) -> None:
    shopify.set_fulfillment_order(
        first_fo(shopify, "#1001"), status="ON_HOLD", holds=[{"reason": "AWAITING_PAYMENT", "reason_notes": "Net 30"}]
    )
    fo = (await api.order(shopify, "#1001")).fulfillment_orders[0]
    assert fo.supported_actions == ("RELEASE_HOLD", "HOLD", "MOVE") and fo.holds[0].notes == "Net 30"
    assert fo.updated_at == NOW
    shopify.set_fulfillment_order(first_fo(shopify, "#1008"), requestStatus="SUBMITTED")
    assert (await api.order(shopify, "#1008")).fulfillment_orders[0].supported_actions == ("REQUEST_CANCELLATION",)
    with pytest.raises(KeyError):
        shopify.set_fulfillment_order(first_fo(shopify, "#1001"), colour="red")


def test_seed_ages_follow_now() -> None:
    later = NOW + timedelta(days=3)
    assert [o["created_at"] + timedelta(days=3) for o in seed_orders(NOW)] == [
        o["created_at"] for o in seed_orders(later)
    ]


def test_orders_fulfillment_order_ids(shopify: SandboxShopify) -> None:
    order = by_name(shopify, "#1001")
    assert shopify.orders_fulfillment_order_ids(order["id"]) == [order["fulfillment_orders"][0]["id"]]
