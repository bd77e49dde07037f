"""Older state never overwrites newer: a verdict an inbox batch computed before a snooze, or before a scan stored a
newer copy of the order, is not written at the batch's commit; and a delivery with the stored version's updated_at
(one-second resolution) but other content is neither dropped as a repeat nor trusted blindly: Shopify settles it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.domain.orders import Money, Order
from bot.domain.rules import Policy, classify
from bot.flows.service import Service
from bot.sandbox.shopify import SandboxShopify
from bot.store import Classified, Store
from tests.conftest import Server, World, example_payload, order_gid_of, running_world, wait_for
from tests.shopify_gate import ShopifyGate, gated_sandbox


@pytest.fixture
async def gated(now: datetime) -> AsyncIterator[tuple[ShopifyGate, tuple[SandboxShopify, str]]]:
    async with gated_sandbox(now) as started:
        yield started


def fulfillment_of(order_id: str) -> dict:
    body = example_payload("fulfillments/create")
    body["order_id"] = int(order_id.rsplit("/", 1)[1])
    return body


def alert_state(world: World, order_id: str) -> str | None:
    rows = world.rows("SELECT state FROM alerts WHERE order_id = ?", (order_id,))
    return rows[0][0] if rows else None


def in_slack(world: World, order_id: str) -> bool:
    """Slack has every message about the order that was queued (the scan queues others' alerts too, paced)."""
    return world.rows(
        "SELECT count(*) FROM outbox WHERE order_id = ? AND status IN ('pending', 'sending')", (order_id,)
    ) == [(0,)]


# --- a verdict computed before a snooze, an action or a newer copy ----------------------------------------------


@pytest.mark.parametrize("meanwhile", ["snooze", "scan"])
async def test_a_batch_never_writes_a_verdict_older_than_what_happened_while_it_ran(
    gated, tmp_path: Path, meanwhile: str
):
    """A real interleaving, stopped at known points by a gate in front of Shopify: batch 1 is held at a Shopify read
    while two deliveries arrive, so they make batch 2: a repeat of #1001's version (classified at once: stuck) and a
    fulfillment of #1004, whose read is held in turn. Then someone snoozes #1001, or Shopify ships it and a scan
    stores that; batch 2 commits after. Before, its stuck verdict replaced theirs and the thread said "stuck again"."""
    gate, sandbox = gated
    shop = sandbox[0]
    order_id = order_gid_of(shop, 1001)
    async with running_world(sandbox, tmp_path) as world:
        await world.order_webhook(1001)
        await world.wait_for_alert(1001)
        assert alert_state(world, order_id) == "stuck"

        first = gate.hold(order_gid_of(shop, 1003))
        await world.post_webhook("fulfillments/create", fulfillment_of(order_gid_of(shop, 1003)))
        await wait_for(first.arrived.is_set)
        second = gate.hold(order_gid_of(shop, 1004))
        await world.post_webhook("orders/paid", shop.webhook_payload(order_id))
        await world.post_webhook("fulfillments/create", fulfillment_of(order_gid_of(shop, 1004)))
        first.release()
        await wait_for(second.arrived.is_set)  # batch 2 has classified #1001 and waits for Shopify

        if meanwhile == "snooze":
            await world.click(1001, "snooze", option=f"{order_id}|1d")
            expected = "snoozed"
        else:
            shop.fulfill_externally(order_id, tracking_number="1Z999AA10123456784", company="UPS")
            await world.command("scan")
            expected = "resolved"
        await wait_for(lambda: alert_state(world, order_id) == expected and in_slack(world, order_id), timeout=30)
        thread_before = world.alert(1001)["replies"]

        second.release()
        await world.settled()
        await wait_for(lambda: in_slack(world, order_id), timeout=30)
        assert alert_state(world, order_id) == expected
        ((status, stuck),) = world.rows("SELECT status, stuck FROM verdicts WHERE order_id = ?", (order_id,))
        assert stuck == 0 and (status == "snoozed") == (meanwhile == "snooze")
        assert world.alert(1001)["replies"] == thread_before, "no 'stuck again' in the thread"


async def test_of_two_verdicts_of_the_same_order_the_one_computed_later_stays(tmp_path):
    """Through the Store: the verdict of an older record, or of a snooze since changed, or computed earlier than the
    one written, is not written; the current one is."""
    store = await Store(str(tmp_path / "o.db")).open()
    now = datetime(2026, 11, 1, 12, tzinfo=UTC)
    placed = now - timedelta(days=5)
    old = Order("gid://shopify/Order/1", "#1", placed, placed, "PAID", "UNFULFILLED", Money("1.00", "EUR"))
    new = Order("gid://shopify/Order/1", "#1", placed, now, "PAID", "FULFILLED", Money("1.00", "EUR"))
    try:
        await store.save_orders([old], from_webhook=True)
        stale = Classified(old, classify(old, now, Policy()), now, None)
        await store.save_orders([new], from_webhook=True)
        current = Classified(new, classify(new, now, Policy()), now, None)
        await store.save_verdicts([current], found_by="webhook")
        await store.save_verdicts([stale], found_by="webhook")
        assert (await store.verdict_of(new.id))["status"] == current.verdict.status, "an older record's verdict"

        await store.snooze(new.id, now + timedelta(days=1), "U0SAM")
        await store.save_verdicts([replace_at(current, now + timedelta(minutes=1))], found_by="webhook")
        assert (await store.verdict_of(new.id))["computed_ts"] == now.timestamp(), "computed before the snooze"

        snoozes = await store.snoozes()
        later = Classified(
            new, classify(new, now, Policy(), snoozes[new.id]), now + timedelta(minutes=2), snoozes[new.id]
        )
        earlier = Classified(new, later.verdict, now + timedelta(minutes=1), snoozes[new.id])
        await store.save_verdicts([later], found_by="webhook")
        await store.save_verdicts([earlier], found_by="webhook")
        assert (await store.verdict_of(new.id))["computed_ts"] == later.at.timestamp(), "computed earlier"
        assert (await store.verdict_of(new.id))["status"] == "snoozed"
    finally:
        await store.close()


def replace_at(classified: Classified, at: datetime) -> Classified:
    return Classified(classified.order, classified.verdict, at, classified.snoozed_until)


# --- same-second deliveries ----------------------------------------------------------------------------------------


def add_tag(shop: SandboxShopify, order_id: str, tag: str) -> None:
    """A change in Shopify within the same second as the last: updated_at stays."""
    shop.orders[order_id]["tags"] = [*shop.orders[order_id]["tags"], tag]


def stored_tags(server: Server, order_id: str) -> list[str]:
    return json.loads(server.rows("SELECT record FROM orders WHERE id = ?", (order_id,))[0][0])["tags"]


async def test_a_same_second_delivery_with_other_content_is_stored_and_an_identical_replay_is_not(server: Server):
    order_id = order_gid_of(server.sandbox, 1001)
    first = server.sandbox.webhook_payload(order_id)
    assert (await server.post_webhook("orders/updated", first)).status == 200
    await server.settled()
    add_tag(server.sandbox, order_id, "vip")
    second = server.sandbox.webhook_payload(order_id)
    assert second["updated_at"] == first["updated_at"]

    answers = []
    for _ in range(2):
        response = await server.post_webhook("orders/updated", second)  # under a fresh webhook id each time
        answers.append((response.status, (await response.json())["duplicate"]))
    assert answers == [(200, False), (200, True)], "the same second's other content is new; its replay is a repeat"
    await server.settled()
    assert "vip" in stored_tags(server, order_id)
    assert server.rows("SELECT count(*) FROM inbox") == [(2,)]


async def test_same_second_content_is_applied_and_shopify_settles_which_is_current(server: Server):
    """Other topics (no repeat by their bytes) with the stored version's updated_at: the newer content is applied, and
    when the older content arrives last it is stored, then Shopify's copy replaces it."""
    shop = server.sandbox
    order_id = order_gid_of(shop, 1001)
    before = shop.webhook_payload(order_id)
    await server.post_webhook("orders/updated", before)
    await server.settled()
    add_tag(shop, order_id, "vip")

    await server.post_webhook("orders/paid", shop.webhook_payload(order_id))
    await server.settled()
    assert "vip" in stored_tags(server, order_id), "the same second's other content was applied"

    reads = len([op for op in shop.operations if op.operation_name == "Order"])
    await server.post_webhook("orders/create", before)  # the older content, arriving last
    await server.settled()
    assert "vip" in stored_tags(server, order_id), "Shopify's copy settled it"
    assert len([op for op in shop.operations if op.operation_name == "Order"]) == reads + 1

    await server.post_webhook("orders/fulfilled", shop.webhook_payload(order_id))  # what is stored: a repeat
    await server.settled()
    assert len([op for op in shop.operations if op.operation_name == "Order"]) == reads + 1


async def test_settings_forgotten_while_they_are_read_still_give_the_reader_a_policy(tmp_path):
    """A snooze (forget_policy) landing while a batch reads the policy: the reader gets what it read, never None (it
    got None once the read grew a third await: 'cannot unpack non-iterable NoneType object' parked a delivery), and
    what it read is not kept for the next reader, which may need the snooze."""
    store = await Store(str(tmp_path / "o.db")).open()
    service = Service(store, None)
    try:
        reading = asyncio.create_task(service.policy())
        forgotten = 0
        while not reading.done():
            service.forget_policy()
            forgotten += 1
            await asyncio.sleep(0)
        _, snoozes = reading.result()
        assert forgotten > 1, "the read finished before any forget: the test did not test it"
        assert snoozes == {}
        await store.snooze("gid://shopify/Order/1", datetime(2030, 1, 1, tzinfo=UTC), by="U1")
        assert "gid://shopify/Order/1" in (await service.policy())[1]
    finally:
        await store.close()
