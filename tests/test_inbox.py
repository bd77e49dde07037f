"""The inbox never stalls: a delivery that cannot be read, or keeps failing, ends in its own outcome (tried again later,
then parked, visible in /healthz and the digest) while the others go on; and a customer's redaction while deliveries
are pending leaves every other body as it was and the pending ones processable."""

from __future__ import annotations

import asyncio
import copy
import json
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest
import sqlite_utils

from bot.domain.orders import order_gid
from bot.domain.retries import MAX_TRIES, RETRY_DELAYS
from bot.flows.digests import build_digest_from
from bot.flows.service import Service
from bot.sandbox.serving import serve
from bot.sandbox.shopify import SandboxShopify
from bot.slack.digest_blocks import digest_message
from bot.store import MIGRATIONS, Delivery, Store, connect
from bot.store.sql import set_version
from bot.web import create_app
from tests.conftest import SHOP, Server, example_payload, order_gid_of, server_settings, wait_for
from tests.shopify_gate import ShopifyGate, gated_sandbox

ERASED_EMAIL = "liam_oconnor@example.com"  # `_` is LIKE's any-character: it matched liam.oconnor@example.com
ERASED_ORDER = "gid://shopify/Order/58304"  # its number begins #1001's id, 5830419926919


class Clock:
    """The server's clock: it moves only when the test says so."""

    def __init__(self, start: datetime):
        self.at = start

    def __call__(self) -> datetime:
        return self.at

    def advance(self, by: timedelta) -> None:
        self.at += by


@pytest.fixture
async def gated(now: datetime) -> AsyncIterator[tuple[ShopifyGate, tuple[SandboxShopify, str]]]:
    async with gated_sandbox(now) as started:
        yield started


@asynccontextmanager
async def clocked_server(sandbox: tuple[SandboxShopify, str], tmp_path: Path, clock: Clock) -> AsyncIterator[Server]:
    """The real server against the sandbox Shopify, on `clock`."""
    shop, shop_url = sandbox
    db_path = tmp_path / "orderbot.db"
    runner, url = await serve(create_app(server_settings(shop, shop_url, db_path), reconcile=False, now=clock))
    try:
        async with aiohttp.ClientSession() as http:
            yield Server(url, runner.app, shop, db_path, http)
    finally:
        await runner.cleanup()


def fulfillment_of(order_id: str) -> dict:
    """A fulfillments/create body: orderbot re-reads the order it belongs to."""
    body = example_payload("fulfillments/create")
    body["order_id"] = int(order_id.rsplit("/", 1)[1])
    return body


def inbox(server: Server) -> dict[str, tuple]:
    """webhook id -> (status, attempts, error)."""
    return {row[0]: row[1:] for row in server.rows("SELECT webhook_id, status, attempts, error FROM inbox")}


def erase_body(db_path: Path, webhook_id: str) -> None:
    """What an older orderbot's redaction (or an operator) did to a pending delivery."""
    with closing(sqlite3.connect(db_path, timeout=10)) as conn, conn:
        conn.execute("UPDATE inbox SET body = NULL WHERE webhook_id = ?", [webhook_id])


async def healthz(server: Server) -> dict:
    async with server.http.get(f"{server.url}/healthz") as response:
        assert response.status == 200
        return await response.json()


# --- 1. an unreadable body ------------------------------------------------------------------------------------------


async def test_deliveries_whose_bodies_were_erased_are_parked_and_the_rest_of_the_batch_is_processed(tmp_path):
    """Through the Store and the Service: one batch, with erased bodies of both kinds (an order's, applied as it is,
    and a fulfillment's, which makes orderbot re-read Shopify) and one body that is not an object, before a good one.
    Before, the fulfillment's erased body raised out of the batch, which was then tried again every 5 s, forever."""
    store = await Store(str(tmp_path / "o.db")).open()
    cancelled = example_payload("orders/cancelled")
    deliveries = [
        Delivery("erased-order", None, "orders/updated", SHOP, None, None, json.dumps(example_payload("orders/paid"))),
        Delivery(
            "erased-fulfillment",
            None,
            "fulfillments/create",
            SHOP,
            None,
            None,
            json.dumps(fulfillment_of(order_gid(1))),
        ),
        Delivery("a-list", None, "fulfillments/update", SHOP, None, None, "[1, 2]"),
        Delivery("good", None, "orders/cancelled", SHOP, None, None, json.dumps(cancelled)),
    ]
    await store.add_deliveries(deliveries)
    await store.write(lambda db: db.execute("UPDATE inbox SET body = NULL WHERE webhook_id LIKE 'erased-%'"))
    service = Service(store, None)
    try:
        assert await service.process_inbox() == 4
        rows = await store.read(lambda db: db.execute("SELECT webhook_id, status, error FROM inbox").fetchall())
        verdict = await store.verdict_of(cancelled["admin_graphql_api_id"])
    finally:
        await store.close()
    assert rows == [
        ("erased-order", "parked", "unexpected payload: the body was erased before it was processed"),
        ("erased-fulfillment", "parked", "unexpected payload: the body was erased before it was processed"),
        ("a-list", "parked", "unexpected payload: the body is not a JSON object"),
        ("good", "processed", None),
    ]
    assert verdict["status"] == "cancelled"


async def test_a_body_the_database_refuses_is_parked_and_the_other_orders_of_its_batch_are_stored(tmp_path):
    """Order bodies are stored together in one commit; when SQLite refuses one (a name with a lone surrogate, which
    UTF-8 cannot encode), the batch's orders are stored one by one and only that delivery is parked."""
    store = await Store(str(tmp_path / "o.db")).open()
    good = example_payload("orders/cancelled")
    refused = copy.deepcopy(good) | {"id": 4242, "admin_graphql_api_id": "gid://shopify/Order/4242", "name": "#\ud800"}
    await store.add_deliveries(
        [
            Delivery("refused", None, "orders/cancelled", SHOP, None, None, json.dumps(refused)),
            Delivery("good", None, "orders/cancelled", SHOP, None, None, json.dumps(good)),
        ]
    )
    try:
        assert await Service(store, None).process_inbox() == 2
        rows = await store.read(lambda db: db.execute("SELECT webhook_id, status, error FROM inbox").fetchall())
        stored = await store.read(lambda db: db.execute("SELECT id FROM orders").fetchall())
    finally:
        await store.close()
    assert [(webhook_id, status) for webhook_id, status, _ in rows] == [("refused", "parked"), ("good", "processed")]
    assert "surrogates not allowed" in rows[0][2]
    assert stored == [(good["admin_graphql_api_id"],)]


async def test_a_body_erased_while_pending_does_not_stall_the_server(gated, tmp_path: Path, now: datetime):
    """Through the running server: the first batch is held at its Shopify read while the next deliveries arrive and
    one of them loses its body; the next batch parks that one and processes the one after it."""
    gate, sandbox = gated
    shop = sandbox[0]
    async with clocked_server(sandbox, tmp_path, Clock(now)) as server:
        first = gate.hold(order_gid_of(shop, 1003))
        assert (
            await server.post_webhook("fulfillments/create", fulfillment_of(order_gid_of(shop, 1003)))
        ).status == 200
        await wait_for(first.arrived.is_set)
        await server.post_webhook("fulfillments/create", fulfillment_of(order_gid_of(shop, 1004)), webhook_id="erased")
        erase_body(server.db_path, "erased")
        await server.post_webhook("orders/cancelled", example_payload("orders/cancelled"), webhook_id="after")
        first.release()

        await wait_for(lambda: inbox(server).get("after", ("",))[0] == "processed")
        assert inbox(server)["erased"][:2] == ("parked", 1)
        assert (await healthz(server))["inbox_parked"] == 1


async def test_an_existing_database_upgrades_in_place_and_its_failed_deliveries_count_as_parked(tmp_path: Path):
    """Before, a failed delivery was never tried again: it is parked, and counted so."""
    path = str(tmp_path / "o.db")
    db = sqlite_utils.Database(connect(path))
    for number, migrate in enumerate(MIGRATIONS[:3], start=1):  # the schema before retries and parking
        migrate(db)
        set_version(db, number)
    db.execute(
        "INSERT INTO inbox (topic, received_at, status, error, body) VALUES (?, ?, 'failed', 'HTTP 500', '{}')",
        ["fulfillments/create", datetime.now(UTC).isoformat()],
    )
    db.conn.close()
    store = await Store(path).open()
    try:
        health = await store.health()
        rows = await store.read(lambda db: db.execute("SELECT status, retry_at FROM inbox").fetchall())
    finally:
        await store.close()
    assert (health["inbox_parked"], health["inbox_pending"]) == (1, 0)
    assert rows == [("parked", None)]


# --- 2. a delivery that keeps failing --------------------------------------------------------------------------------


async def test_a_delivery_that_keeps_failing_is_tried_five_times_then_parked_and_never_holds_back_the_others(
    gated, tmp_path: Path, now: datetime
):
    gate, sandbox = gated
    shop = sandbox[0]
    refused = order_gid_of(shop, 1003)
    gate.refused.add(refused)
    clock = Clock(now)
    async with clocked_server(sandbox, tmp_path, clock) as server:
        await server.post_webhook("fulfillments/create", fulfillment_of(refused), webhook_id="failing")
        await wait_for(lambda: inbox(server)["failing"][1] == 1)
        status, _, error = inbox(server)["failing"]
        assert status == "pending" and "Shopify rejected the request" in error

        await server.post_webhook("fulfillments/create", fulfillment_of(order_gid_of(shop, 1004)), webhook_id="other")
        await wait_for(lambda: inbox(server).get("other", ("",))[0] == "processed")
        assert inbox(server)["failing"][:2] == ("pending", 1), "waiting for its next try, not holding the other back"
        assert (await healthz(server))["inbox_retrying"] == 1

        for tries, delay in enumerate(RETRY_DELAYS, start=2):
            clock.advance(delay)
            server.service.inbox_changed()
            await wait_for(lambda tries=tries: inbox(server)["failing"][1] == tries)

        status, tries, error = inbox(server)["failing"]
        assert (status, tries) == ("parked", MAX_TRIES) and "Shopify rejected the request" in error
        health = await healthz(server)
        assert (health["inbox_parked"], health["inbox_retrying"], health["inbox_pending"]) == (1, 0, 0)

        digest = await build_digest_from(server.service.store, now=clock(), zone=ZoneInfo("UTC"), shop=SHOP)
        assert digest.webhooks.parked == 1
        (webhooks_line,) = [b for b in digest_message(digest)["blocks"] if "Webhooks:" in json.dumps(b)]
        assert "1 delivery could not be processed and was set aside" in json.dumps(webhooks_line)


async def test_a_delivery_waiting_for_its_next_try_is_processed_once_shopify_answers(
    gated, tmp_path: Path, now: datetime
):
    gate, sandbox = gated
    shop = sandbox[0]
    order_id = order_gid_of(shop, 1003)
    gate.refused.add(order_id)
    clock = Clock(now)
    async with clocked_server(sandbox, tmp_path, clock) as server:
        await server.post_webhook("fulfillments/create", fulfillment_of(order_id), webhook_id="w")
        await wait_for(lambda: inbox(server)["w"][1] == 1)
        gate.refused.clear()
        clock.advance(RETRY_DELAYS[0] - timedelta(seconds=1))
        server.service.inbox_changed()
        await server.post_webhook("orders/cancelled", example_payload("orders/cancelled"), webhook_id="later")
        await wait_for(lambda: inbox(server).get("later", ("",))[0] == "processed")
        assert inbox(server)["w"][:2] == ("pending", 1), "not before its time"

        clock.advance(timedelta(seconds=1))
        server.service.inbox_changed()
        await wait_for(lambda: inbox(server)["w"] == ("processed", 2, None))
        assert server.rows("SELECT count(*) FROM orders WHERE id = ?", (order_id,)) == [(1,)]


# --- 3. a redaction while deliveries are pending ----------------------------------------------------------------------


async def test_a_redaction_leaves_other_bodies_intact_and_the_customers_pending_delivery_processable(
    gated, tmp_path: Path, now: datetime
):
    """The customer's email holds `_` and their order's number begins another order's id. Their delivery and two
    others wait for a retry (Shopify refused to answer) when customers/redact arrives. The others' bodies are left
    byte for byte; theirs loses the customer's name and email and is processed on its next try."""
    gate, sandbox = gated
    shop = sandbox[0]
    erased = copy.deepcopy(shop.orders[order_gid_of(shop, 1003)])
    erased.update(id=ERASED_ORDER, name="#1103")
    erased["customer"].update(first_name="Lia", last_name="Erased", email=ERASED_EMAIL)
    shop.add_order(erased)
    others = [order_gid_of(shop, 1001), order_gid_of(shop, 1002)]  # 5830419926919; liam.oconnor@example.com
    gate.refused.update([ERASED_ORDER, *others])
    clock = Clock(now)
    async with clocked_server(sandbox, tmp_path, clock) as server:
        for order_id in (ERASED_ORDER, *others):
            await server.post_webhook("orders/updated", shop.webhook_payload(order_id), webhook_id=order_id)
        await wait_for(lambda: [row[1] for row in inbox(server).values()] == [1, 1, 1])
        bodies_before = dict(server.rows("SELECT webhook_id, body FROM inbox"))
        gate.refused.clear()

        redaction = example_payload("customers/redact")
        redaction["customer"] = {"id": 1, "email": ERASED_EMAIL, "phone": None}
        redaction["orders_to_redact"] = [int(ERASED_ORDER.rsplit("/", 1)[1])]
        await server.post_webhook("customers/redact", redaction, webhook_id="redact")
        await wait_for(lambda: inbox(server).get("redact", ("",))[0] == "processed")

        bodies = dict(server.rows("SELECT webhook_id, body FROM inbox WHERE webhook_id != 'redact'"))
        assert {o: bodies[o] for o in others} == {o: bodies_before[o] for o in others}, "untouched, byte for byte"
        left = json.loads(bodies[ERASED_ORDER])
        assert ERASED_EMAIL not in bodies[ERASED_ORDER] and "Erased" not in bodies[ERASED_ORDER]
        assert (left["admin_graphql_api_id"], left["updated_at"]) == (ERASED_ORDER, erased_updated_at(shop))

        shop.orders[ERASED_ORDER].update(customer=None, email=None)  # Shopify erases the customer too
        clock.advance(RETRY_DELAYS[0])
        server.service.inbox_changed()
        await server.settled()
        assert {status for status, _, _ in inbox(server).values()} == {"processed"}
        customers = dict(server.rows("SELECT id, customer_email FROM orders"))
        assert customers[ERASED_ORDER] is None
        assert customers[others[1]] == "liam.oconnor@example.com"
        assert (
            json.loads(server.rows("SELECT record FROM orders WHERE id = ?", (ERASED_ORDER,))[0][0])["customer"] is None
        )
        assert server.rows("SELECT count(*) FROM inbox WHERE instr(body, ?)", (ERASED_EMAIL,)) == [(0,)]


def erased_updated_at(shop: SandboxShopify) -> str:
    return shop.webhook_payload(ERASED_ORDER)["updated_at"]


async def test_a_parked_delivery_an_operator_requeues_is_processed_without_waiting_for_another_webhook(tmp_path):
    """docs/operations.md tells an operator to re-queue parked deliveries with an UPDATE, server running: the processor
    looks at the inbox again every `idle_recheck` even when nothing arrives and nothing is due."""
    store = await Store(str(tmp_path / "o.db")).open()
    cancelled = example_payload("orders/cancelled")
    await store.add_deliveries(
        [Delivery("requeued", None, "orders/cancelled", SHOP, None, None, json.dumps(cancelled))]
    )
    await store.write(lambda db: db.execute("UPDATE inbox SET status = 'parked', error = 'as if it had failed'"))

    async def processed() -> bool:
        return await store.read(lambda db: db.execute("SELECT status FROM inbox").fetchone()[0]) == "processed"

    service = Service(store, None, idle_recheck=timedelta(seconds=0.05))
    processor = asyncio.create_task(service.process_inbox_forever())
    try:
        with closing(sqlite3.connect(tmp_path / "o.db")) as operator:  # another program, as the docs say
            operator.execute(
                "UPDATE inbox SET status = 'pending', retry_at = NULL, attempts = 0 WHERE status = 'parked'"
            )
            operator.commit()
        await wait_for(processed)
    finally:
        processor.cancel()
        await asyncio.gather(processor, return_exceptions=True)
        await store.close()
