"""Reconciliation against the sandbox: every open order found, stored and classified; what webhooks missed counted."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta

import pytest

from bot.domain.orders import order_from_webhook
from bot.domain.scan_plan import FULL_SWEEP_EVERY
from bot.flows.service import Service
from bot.sandbox.seed import generate_orders, seed_orders, shipped_in_parts
from bot.sandbox.serving import serve
from bot.sandbox.shopify import SandboxShopify
from bot.shopify.client import ShopifyClient
from bot.store import Store
from tests.conftest import Server, order_gid_of

UNSHIPPED_DISPLAY_STATUSES = {
    "UNFULFILLED",
    "ON_HOLD",
    "SCHEDULED",
    "IN_PROGRESS",
    "REQUEST_DECLINED",
    "PENDING_FULFILLMENT",
    "OPEN",
}


@contextlib.asynccontextmanager
async def scanner(shop: SandboxShopify, tmp_path, clock) -> AsyncIterator[Service]:
    """A Service scanning the sandbox on its own clock (`clock()`), as the reconcile timer runs it."""
    runner, url = await serve(shop.app)
    client = ShopifyClient(graphql_url=f"{url}/admin/api/2026-04/graphql.json", access_token=shop.access_token)
    store = await Store(str(tmp_path / "scan.db")).open()
    try:
        yield Service(store, client, now=clock)
    finally:
        await client.close()
        await store.close()
        await runner.cleanup()


async def test_reconcile_stores_classifies_and_counts_orders_no_webhook_told_us_about(server: Server):
    shop = server.sandbox
    told = next(oid for oid in shop.orders if not shop.webhook_payload(oid)["closed_at"])
    await server.post_webhook("orders/updated", shop.webhook_payload(told))
    await server.settled()

    report = await server.service.reconcile()

    open_ids = {o.id for o, _ in report.classified}
    expected_open = {
        oid
        for oid in shop.orders
        if not shop.webhook_payload(oid)["closed_at"] and not shop.webhook_payload(oid)["cancelled_at"]
    }
    assert open_ids <= expected_open
    stuck_names = {o.name for o, _ in report.stuck}
    assert stuck_names, "the seeded store has stuck orders"
    told_name = shop.webhook_payload(told)["name"]
    assert set(report.missed_by_webhooks) == stuck_names - {told_name}
    assert server.rows("SELECT count(*) FROM verdicts WHERE stuck = 1") == [(len(stuck_names),)]
    scans = server.rows("SELECT orders_seen, stuck, missed_by_webhooks, error FROM scans")
    assert scans == [(len(report.classified), len(stuck_names), len(report.missed_by_webhooks), None)]
    reasons = {v.reason for _, v in report.stuck}
    assert {
        "unfulfilled_overdue",
        "out_of_stock",
        "payment_pending",
        "on_hold",
        "request_pending",
        "request_rejected",
        "awaiting_tracking",
        "partially_fulfilled",
    } <= reasons


async def test_a_second_scan_finds_nothing_new(server: Server):
    await server.service.reconcile()
    second = await server.service.reconcile()
    assert second.newly_stuck == []
    day = server.rows("SELECT day FROM counters LIMIT 1")[0][0]
    found = dict(server.rows("SELECT name, value FROM counters WHERE day = ?", (day,)))
    assert found["stuck_found_by_reconcile"] == len(second.stuck)


async def test_an_order_fulfilled_without_a_webhook_is_noticed(server: Server):
    first = await server.service.reconcile()
    order, _ = next((o, v) for o, v in first.stuck if v.reason == "unfulfilled_overdue")
    server.sandbox.fulfill_externally(order.id, tracking_number="1Z999", company="UPS")

    await server.service.reconcile()

    status = server.rows("SELECT status, stuck FROM verdicts WHERE order_id = ?", (order.id,))
    assert status == [("ok", 0)]


async def test_a_dry_run_changes_nothing(server: Server):
    report = await server.service.reconcile(dry_run=True)
    assert report.stuck
    assert server.rows("SELECT count(*) FROM orders") == [(0,)]
    assert server.rows("SELECT count(*) FROM scans") == [(0,)]


async def test_reconcile_pages_through_a_large_shop_within_the_cost_budget(now, tmp_path):
    shop = SandboxShopify(generate_orders(300, now), bucket_size=1000.0, restore_rate=500.0)
    async with scanner(shop, tmp_path, lambda: now) as service:
        report = await service.reconcile()
    outcomes = [op.outcome for op in shop.operations]
    assert "throttled" not in outcomes[1:]
    assert max(op.requested_cost for op in shop.operations) <= 1000
    expected = {
        oid
        for oid, o in shop.orders.items()
        if not shop.webhook_payload(oid)["closed_at"] and not shop.webhook_payload(oid)["cancelled_at"]
    }
    assert {o.id for o, _ in report.classified} <= expected


async def test_a_webhook_and_a_graphql_read_of_the_same_order_agree(server: Server):
    """The two parsers build the same model, but for what a webhook lacks (fulfillment orders, and the payment's
    details: what can be captured or marked as paid, by which methods)."""
    shop = server.sandbox
    client = server.service.shopify
    for order_id in shop.orders:
        from_webhook = order_from_webhook(json.loads(json.dumps(shop.webhook_payload(order_id))))
        from_graphql = await client.fetch_order(order_id)
        assert from_webhook.fulfillment_orders is None
        assert from_graphql.fulfillment_orders is not None
        if from_webhook.fulfillment_status == "UNFULFILLED":  # REST says null where GraphQL says why
            assert from_graphql.fulfillment_status in UNSHIPPED_DISPLAY_STATUSES, from_graphql.name
            from_graphql = replace(from_graphql, fulfillment_status="UNFULFILLED")
        payment_unknown = {
            "capturable": False,
            "capturable_amount": None,
            "authorization_id": None,
            "can_mark_as_paid": False,
            "payment_gateways": (),
        }
        assert replace(from_graphql, fulfillment_orders=None, **payment_unknown) == from_webhook, from_graphql.name


async def test_a_cancelled_caller_of_a_shared_scan_leaves_it_running_for_the_other(server: Server):
    server.sandbox.fail_next("timeout", delay=0.3)  # the scan's first page answers late: both callers wait on it
    leaving = asyncio.create_task(server.service.reconcile())
    staying = asyncio.create_task(server.service.reconcile())
    await asyncio.sleep(0)  # both run up to their wait: the first starts the scan, the second joins it

    leaving.cancel()
    report = await staying

    assert leaving.cancelled()
    assert report.stuck, "the scan went on to the end"
    assert server.rows("SELECT count(*), max(error) FROM scans") == [(1, None)]


async def test_an_order_shipped_in_seven_parts_is_read_with_all_of_them(server: Server, now):
    """ORDER_FIELDS reads five fulfillments; the seventh part, shipped without tracking, must not be lost."""
    shop = server.sandbox
    shop.add_order(shipped_in_parts(1101, now, 7, untracked=1))
    order_id = order_gid_of(shop, 1101)

    report = await server.service.reconcile()
    fetched = await server.service.shopify.fetch_order(order_id)

    scanned, verdict = next((o, v) for o, v in report.classified if o.id == order_id)
    assert len(scanned.fulfillments) == len(fetched.fulfillments) == 7
    assert [f.has_tracking for f in scanned.fulfillments] == [True] * 6 + [False]
    assert verdict.reason == "awaiting_tracking" and verdict.stuck


async def test_an_authorization_expiry_is_read_from_shopify_and_guessed_only_when_it_gives_none(server: Server, now):
    shop = server.sandbox
    order_id = order_gid_of(shop, 1004)  # authorized 146 hours ago
    shop.orders[order_id]["authorization_expires_at"] = now + timedelta(days=20)  # an extended authorization
    shop.touch(shop.orders[order_id])

    await server.service.reconcile()
    told = await server.post_webhook("orders/updated", shop.webhook_payload(order_id))  # it carries no expiry
    await server.settled()

    stored = await server.service.store.get_order(order_id)
    assert told.status == 200 and stored.authorization_expires_at == now.replace(microsecond=0) + timedelta(days=20)
    [(explanation,)] = server.rows("SELECT explanation FROM verdicts WHERE order_id = ?", (order_id,))
    assert "the authorization expires on" in explanation and "capture it within 19 days" in explanation

    shop.orders[order_id]["authorization_expires_at"] = None  # a store not on Shopify Plus: no expiry given
    shop.touch(shop.orders[order_id])
    report = await server.service.reconcile()

    verdict = next(v for o, v in report.classified if o.id == order_id)
    assert (await server.service.store.get_order(order_id)).authorization_expires_at is None
    assert "authorizations usually expire after 7 days, so capture it within 21 hours" in verdict.explanation


# --- the cost of a scan follows the open work, not the shop's history --------------------------------------------


async def tell_by_webhook(server: Server, orders: list[dict]) -> None:
    """What webhooks stored of these orders over the months (the bodies Shopify sent), without a scan."""
    bodies = [order_from_webhook(server.sandbox.webhook_payload(order["id"])) for order in orders]
    await server.service.store.save_orders(bodies, from_webhook=True)


@pytest.mark.parametrize("history", [10, 60])
async def test_a_later_scan_of_a_quiet_shop_costs_two_requests_whatever_its_shipped_history(
    server: Server, now, history: int
):
    """Orders shipped long ago and never archived, each stored as open by its webhooks, are not re-read one by one
    on every scan (they were: one query each)."""
    shop = server.sandbox
    shipped = [shipped_in_parts(2001 + k, now, 1, age_hours=24 * 40) for k in range(history)]
    for order in shipped:
        shop.add_order(order)
    await tell_by_webhook(server, shipped)
    first = await server.service.reconcile()
    before = len(shop.operations)

    later = await server.service.reconcile()

    assert [op.operation_name for op in shop.operations[before:]] == ["OrdersPage", "ChangedFulfillmentOrders"]
    assert (first.kind, later.kind) == ("full", "changes")
    assert {o.name for o, _ in later.stuck} == {o.name for o, _ in first.stuck}, "the open work is classified still"
    watched = server.rows("SELECT count(*) FROM orders WHERE watched = 1 AND name >= '#2001'")
    assert watched == [(0,)]


async def test_a_shipped_order_archived_in_shopify_is_noticed_by_the_next_scan(server: Server, now):
    shop = server.sandbox
    shipped = shipped_in_parts(2001, now, 1, age_hours=24 * 40)
    shop.add_order(shipped)
    await tell_by_webhook(server, [shipped])
    await server.service.reconcile()
    assert server.rows("SELECT is_open, watched FROM orders WHERE name = '#2001'") == [(1, 0)]

    shop.orders[shipped["id"]]["closed_at"] = shop.now()  # archived in Shopify; no webhook arrives
    shop.touch(shop.orders[shipped["id"]])
    report = await server.service.reconcile()

    assert report.kind == "changes"
    assert server.rows("SELECT is_open, watched FROM orders WHERE name = '#2001'") == [(0, 0)]


async def test_a_change_to_a_fulfillment_order_alone_is_noticed_by_the_next_scan(server: Server):
    shop = server.sandbox
    await server.service.reconcile()
    order_id = order_gid_of(shop, 1001)
    order = shop.orders[order_id]
    updated = order["updated_at"]
    hold = {"reason": "HIGH_RISK_OF_FRAUD", "reason_notes": None}
    shop.set_fulfillment_order(order["fulfillment_orders"][0]["id"], status="ON_HOLD", holds=[hold])
    order["updated_at"] = updated  # the hold changed the fulfillment order only

    report = await server.service.reconcile()

    assert report.kind == "changes"
    assert next(v for o, v in report.classified if o.id == order_id).reason == "on_hold"


async def test_the_daily_sweep_re_reads_watched_orders_whose_changes_the_searches_missed(now, tmp_path):
    """Shopify's search index can miss a change; the daily sweep re-reads every watched order, in batches."""
    clock = [now]
    shop = SandboxShopify(seed_orders(now), now=lambda: clock[0])
    async with scanner(shop, tmp_path, lambda: clock[0]) as service:
        first = await service.reconcile()
        archived, deleted = order_gid_of(shop, 1002), order_gid_of(shop, 1003)
        assert {archived, deleted} <= {o.id for o, v in first.stuck}
        shop.orders[archived]["closed_at"] = now  # archived with its updatedAt left behind by the search index
        del shop.orders[deleted]

        clock[0] = now + timedelta(hours=1)
        between = await service.reconcile()
        assert between.kind == "changes" and {archived, deleted} <= {o.id for o, v in between.stuck}

        clock[0] = now + FULL_SWEEP_EVERY
        before = len(shop.operations)
        sweep = await service.reconcile()
        forgotten = await service.store.get_order(deleted)

    assert sweep.kind == "full"
    assert "OrdersById" in [op.operation_name for op in shop.operations[before:]]
    verdicts = {o.id: v for o, v in sweep.classified}
    assert verdicts[archived].status == "closed" and deleted not in verdicts and forgotten is None
