"""The Shopify client against the sandbox over HTTP: throttling, retries, errors, pagination, auth."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from bot.sandbox.seed import generate_orders
from bot.sandbox.serving import serve
from bot.sandbox.shopify import SandboxShopify
from bot.shopify import operations
from bot.shopify.client import (
    ShopifyAuthError,
    ShopifyClient,
    ShopifyQueryError,
    ShopifyUnavailable,
    ShopifyUserError,
)
from bot.shopify.version import API_VERSION
from tests.conftest import free_port, wait_for

PAGE = {"first": 10, "query": "status:any"}


class FakeClock:
    """Time that passes only when someone sleeps: throttling tests run instantly and exactly."""

    def __init__(self):
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


async def start(
    shop: SandboxShopify, version: str = API_VERSION, **client_options
) -> tuple[ShopifyClient, aiohttp.web.AppRunner]:
    runner, url = await serve(shop.app)
    options = {"access_token": shop.access_token, **client_options}
    return ShopifyClient(graphql_url=f"{url}/admin/api/{version}/graphql.json", **options), runner


@pytest.fixture
async def shop_and_client(now):
    clock = FakeClock()
    shop = SandboxShopify(generate_orders(120, now), bucket_size=1000.0, restore_rate=50.0, clock=clock)
    client, runner = await start(shop, clock=clock, sleep=clock.sleep, backoff=0.01)
    yield shop, client, clock
    await client.close()
    await runner.cleanup()


@pytest.fixture
async def held_budget(now):
    """A client whose every wait for budget lasts until the test sets the event it yields, after it has learned what
    a scan page and a click's read cost: pages sent then queue for budget while the test sends a click."""
    clock = FakeClock()
    budget_restored = asyncio.Event()

    async def sleep(seconds: float) -> None:
        clock.slept.append(seconds)
        await budget_restored.wait()
        clock.now += seconds

    shop = SandboxShopify(generate_orders(120, now), bucket_size=1000.0, restore_rate=50.0, clock=clock)
    client, runner = await start(shop, clock=clock, sleep=sleep)
    await client.execute(operations.ORDERS_PAGE, PAGE)
    await client.fetch_order_without_lines(next(iter(shop.orders)))
    try:
        yield shop, client, clock, budget_restored
    finally:
        budget_restored.set()
        await client.close()
        await runner.cleanup()


async def test_pagination_reads_every_matching_order_once(shop_and_client):
    shop, client, _ = shop_and_client
    seen = []
    pages = 0
    async for page in client.orders("status:open", page_size=10):
        pages += 1
        seen.extend(o.id for o in page)
    expected = [
        oid
        for oid, o in shop.orders.items()
        if not shop.webhook_payload(oid)["closed_at"] and not shop.webhook_payload(oid)["cancelled_at"]
    ]
    assert sorted(seen) == sorted(expected)
    assert len(seen) == len(set(seen))
    assert pages == -(-len(expected) // 10)


async def test_the_client_waits_before_it_would_be_throttled(shop_and_client):
    shop, client, clock = shop_and_client
    async for _ in client.orders("status:any", page_size=10):
        pass
    outcomes = [op.outcome for op in shop.operations]
    assert "throttled" not in outcomes[1:], "after the first answer, the client knows the budget and waits"
    assert clock.slept, "it had to wait: 12 pages cost more than the 1,000-point bucket"


async def test_requests_sent_together_share_the_budget_instead_of_all_counting_on_it(shop_and_client):
    """Eight reads at once (as a bulk run sends them): each takes its cost off the client's estimate before it goes, so
    once the cost is known none is THROTTLED."""
    shop, client, clock = shop_and_client
    ids = list(shop.orders)
    await client.fetch_order(ids[0])  # learn the cost
    for _ in range(3):
        await asyncio.gather(*(client.fetch_order(order_id) for order_id in ids[1:9]))
    assert [op.outcome for op in shop.operations].count("throttled") == 0
    assert clock.slept, "24 reads cost more than the bucket holds: it waited instead"


async def test_a_click_waits_for_no_queued_scan_page(held_budget):
    """Scan pages queued for budget (one waiting for it, one behind): a click's read, which the budget already
    covers, goes first instead of waiting behind them; the pages follow once the budget allows."""
    shop, client, clock, budget_restored = held_budget
    learned = len(shop.operations)
    pages = [asyncio.create_task(client.execute(operations.ORDERS_PAGE, PAGE)) for _ in range(3)]
    await wait_for(lambda: clock.slept)  # a page waits for budget

    await asyncio.wait_for(client.fetch_order_without_lines(next(iter(shop.orders)), urgent=True), timeout=10)
    assert sum(not p.done() for p in pages) == 2, "the click went before the pages waiting for budget"
    sent = [op.operation_name for op in shop.operations[learned:]]
    assert sent.count("OrdersPage") <= 1 and "OrderWithoutLines" in sent
    budget_restored.set()
    await asyncio.gather(*pages)
    assert [op.outcome for op in shop.operations].count("throttled") == 0


async def test_a_page_that_began_waiting_while_priority_was_off_still_lets_a_click_go_first(held_budget):
    """`prioritise` is switched per click by tests/perf/bench_click_during_scan.py: a scan page that began its wait
    for budget while it was off must not hold up a click sent once it is back on."""
    shop, client, clock, budget_restored = held_budget
    client.prioritise = False
    pages = [asyncio.create_task(client.execute(operations.ORDERS_PAGE, PAGE)) for _ in range(3)]
    await wait_for(lambda: clock.slept)  # a page waits for budget, priority off
    client.prioritise = True

    await asyncio.wait_for(client.fetch_order_without_lines(next(iter(shop.orders)), urgent=True), timeout=10)
    assert sum(not p.done() for p in pages) == 2, "the click went before the pages waiting for budget"
    budget_restored.set()
    await asyncio.gather(*pages)


async def test_a_throttled_answer_does_not_make_later_requests_wait_for_their_full_requested_cost(shop_and_client):
    """A THROTTLED answer charges nothing: what the client takes off its estimate stays what Shopify really charges."""
    shop, client, clock = shop_and_client
    ids = list(shop.orders)
    shop.fail_next("throttled")
    await client.fetch_order(ids[0])
    waited = sum(clock.slept)
    await asyncio.gather(*(client.fetch_order(order_id) for order_id in ids[1:9]))
    charged = sum(op.actual_cost or 0 for op in shop.operations[-8:])
    assert sum(clock.slept) - waited <= 2 * charged / shop.restore_rate + 1  # not 8 × the requested 593 points


async def test_a_throttled_answer_is_retried_after_the_computed_wait(shop_and_client):
    shop, client, clock = shop_and_client
    shop.fail_next("throttled")
    order_id = next(iter(shop.orders))
    order = await client.fetch_order(order_id)
    assert order is not None and order.id == order_id
    assert [op.outcome for op in shop.operations] == ["throttled", "ok"]
    assert clock.slept and clock.slept[-1] > 0


async def test_server_errors_are_retried_with_backoff_for_queries(shop_and_client):
    shop, client, clock = shop_and_client
    shop.fail_next("http_500", times=2)
    assert await client.fetch_order(next(iter(shop.orders))) is not None
    assert [op.outcome for op in shop.operations][-3:] == ["http_500", "http_500", "ok"]
    assert len(clock.slept) >= 2 and clock.slept[1] > clock.slept[0] / 2


async def test_persistent_server_errors_become_a_plain_sentence(shop_and_client):
    shop, client, _ = shop_and_client
    shop.fail_next("http_503", times=10)
    with pytest.raises(ShopifyUnavailable, match="HTTP 503; try again in a minute"):
        await client.fetch_order(next(iter(shop.orders)))


async def test_a_mutation_is_not_retried_after_a_server_error(shop_and_client):
    shop, client, _ = shop_and_client
    shop.fail_next("http_500")
    order_id = next(iter(shop.orders))
    with pytest.raises(ShopifyUnavailable):
        await client.mutate(operations.TAGS_ADD, {"id": order_id, "tags": ["x"]}, "tagsAdd")
    assert [op.outcome for op in shop.operations] == ["http_500"]


async def test_user_errors_become_a_typed_error_with_the_messages(shop_and_client):
    shop, client, _ = shop_and_client
    shop.fail_next("user_errors", message="Order is already closed")
    with pytest.raises(ShopifyUserError) as caught:
        await client.mutate(operations.ORDER_CLOSE, {"input": {"id": next(iter(shop.orders))}}, "orderClose")
    assert str(caught.value) == "Order is already closed"
    assert caught.value.errors[0]["message"] == "Order is already closed"


async def test_an_invalid_document_is_a_query_error(shop_and_client):
    _, client, _ = shop_and_client
    with pytest.raises(ShopifyQueryError, match="notAField"):
        await client.execute("query { shop { notAField } }")


async def test_timeouts_are_retried_then_reported(now):
    shop = SandboxShopify(generate_orders(3, now))
    client, runner = await start(shop, timeout=0.2, backoff=0.01, max_attempts=2)
    shop.fail_next("timeout", times=5, delay=1.0)
    started = time.monotonic()
    with pytest.raises(ShopifyUnavailable, match="timed out"):
        await client.fetch_order(next(iter(shop.orders)))
    assert time.monotonic() - started < 2.0
    await client.close()
    await runner.cleanup()


async def test_connection_refused_is_reported_plainly():
    port = free_port()
    client = ShopifyClient(
        graphql_url=f"http://127.0.0.1:{port}/admin/api/2026-04/graphql.json",
        access_token="x",
        backoff=0.01,
        max_attempts=2,
    )
    with pytest.raises(ShopifyUnavailable, match="could not be reached"):
        await client.fetch_order("gid://shopify/Order/1")
    await client.close()


async def test_a_wrong_token_is_an_auth_error(now):
    shop = SandboxShopify(generate_orders(3, now))
    client, runner = await start(shop, access_token="shpat_wrong")
    with pytest.raises(ShopifyAuthError, match="SHOPIFY_ACCESS_TOKEN"):
        await client.fetch_order(next(iter(shop.orders)))
    await client.close()
    await runner.cleanup()


async def test_client_credentials_are_exchanged_for_a_token(now):
    shop = SandboxShopify(generate_orders(3, now))
    client, runner = await start(shop, access_token=None, client_id=shop.client_id, client_secret=shop.client_secret)
    info, scopes = await client.shop_and_scopes()
    assert info["myshopifyDomain"] == shop.shop_domain
    assert set(operations.REQUIRED_SCOPES) <= scopes
    await client.close()
    await runner.cleanup()


async def test_wrong_client_credentials_are_an_auth_error(now):
    shop = SandboxShopify(generate_orders(3, now))
    client, runner = await start(shop, access_token=None, client_id=shop.client_id, client_secret="nope")
    with pytest.raises(ShopifyAuthError, match="client credentials"):
        await client.shop_and_scopes()
    await client.close()
    await runner.cleanup()


async def test_an_answer_from_another_api_version_than_asked_for_is_warned_of_once(now, caplog):
    """Shopify serves a version it no longer supports with the oldest one it does, saying so only in
    X-Shopify-API-Version: the documents were validated against the version asked for, so the operator must hear."""
    shop = SandboxShopify(generate_orders(3, now))
    order_id = next(iter(shop.orders))
    current, current_runner = await start(shop)
    retired, retired_runner = await start(shop, version="2025-07")
    try:
        await current.fetch_order(order_id)
        assert current.served_version == API_VERSION
        assert not [r for r in caplog.records if "API version" in r.getMessage()]
        for _ in range(3):
            await retired.fetch_order(order_id)
        (warning,) = [r for r in caplog.records if "API version" in r.getMessage()]
        assert warning.levelname == "WARNING"
        assert f"API version {API_VERSION}, not the 2025-07" in warning.getMessage()
    finally:
        await current.close()
        await retired.close()
        await current_runner.cleanup()
        await retired_runner.cleanup()
