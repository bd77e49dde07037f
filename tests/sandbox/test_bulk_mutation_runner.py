"""The bulk mutation runner against the sandbox Shopify over HTTP: upload, start, poll, results mapped to their keys."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.sandbox.seed import generate_orders
from bot.sandbox.serving import serve
from bot.sandbox.shopify import SandboxShopify
from bot.shopify import operations
from bot.shopify.client import ShopifyClient, ShopifyUserError
from tests.perf.bulk_mutation import run_bulk_mutation


@pytest.fixture
async def shop_and_client(now) -> AsyncIterator[tuple[SandboxShopify, ShopifyClient]]:
    shop = SandboxShopify(generate_orders(30, now))
    runner, url = await serve(shop.app)
    client = ShopifyClient(graphql_url=f"{url}/admin/api/2026-04/graphql.json", access_token=shop.access_token)
    yield shop, client
    await client.close()
    await runner.cleanup()


def open_orders(shop: SandboxShopify) -> list[str]:
    return [o["id"] for o in shop.orders.values() if o["closed_at"] is None and o["cancelled_at"] is None]


async def test_each_order_gets_its_own_lines_result(shop_and_client) -> None:
    shop, client = shop_and_client
    ids = [*open_orders(shop)[:5], "gid://shopify/Order/1"]
    lines = [(order_id, {"input": {"id": order_id}}) for order_id in ids]

    outcome = await run_bulk_mutation(client, operations.ORDER_CLOSE, lines, poll_every=0.01)

    assert (outcome.status, outcome.error_code, outcome.object_count) == ("COMPLETED", None, 6)
    assert set(outcome.results) == set(ids)
    for order_id in ids[:5]:
        result = outcome.results[order_id]
        assert result.ok and result.payload["order"]["id"] == order_id and result.payload["order"]["closed"]
        assert shop.orders[order_id]["closed_at"] is not None
    missing = outcome.results["gid://shopify/Order/1"]
    assert not missing.ok and missing.user_errors == [{"field": ["input", "id"], "message": "Order does not exist"}]


async def test_polls_until_the_operation_ends_each_through_the_clients_budget(shop_and_client) -> None:
    shop, client = shop_and_client
    shop.bulk.set_rate(0)  # held until the third poll
    polls = []

    async def sleep(seconds: float) -> None:
        polls.append(seconds)
        if len(polls) == 2:
            shop.bulk.set_rate(float("inf"))

    order_id = open_orders(shop)[0]
    outcome = await run_bulk_mutation(
        client, operations.ORDER_CLOSE, [(order_id, {"input": {"id": order_id}})], poll_every=7.0, sleep=sleep
    )
    assert outcome.status == "COMPLETED" and outcome.results[order_id].ok
    assert polls[:2] == [7.0, 7.0]
    names = [op.operation_name for op in shop.operations]
    assert names[:2] == ["StagedUploadsCreate", "BulkOperationRunMutation"]
    assert set(names[2:]) == {"BulkOperation"} and all(op.outcome == "ok" for op in shop.operations)


async def test_a_failed_operation_gives_the_lines_it_ran_and_none_for_the_rest(shop_and_client) -> None:
    shop, client = shop_and_client
    shop.bulk.fail_at_line = 2
    ids = open_orders(shop)[:4]

    outcome = await run_bulk_mutation(client, operations.ORDER_CLOSE, [(i, {"input": {"id": i}}) for i in ids])

    assert (outcome.status, outcome.error_code) == ("FAILED", "INTERNAL_SERVER_ERROR")
    assert [outcome.results[i] is not None and outcome.results[i].ok for i in ids] == [True, True, False, False]
    assert outcome.results[ids[2]] is None and outcome.results[ids[3]] is None


async def test_a_refused_start_is_a_user_error(shop_and_client) -> None:
    _, client = shop_and_client
    with pytest.raises(ShopifyUserError, match="expected a single mutation"):
        await run_bulk_mutation(client, operations.ORDER_STATES, [("x", {"ids": []})])
