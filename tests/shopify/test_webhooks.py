"""POST /shopify/webhooks on the real server, signed as Shopify signs, against the sandbox Shopify."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bot.shopify.webhooks import sign
from tests.conftest import WEBHOOK_EXAMPLES, WEBHOOK_SECRET, Server, example_payload, wait_for


def first_open_order(server: Server) -> str:
    return next(
        oid
        for oid, o in server.sandbox.orders.items()
        if not server.sandbox.webhook_payload(oid)["closed_at"]
        and not server.sandbox.webhook_payload(oid)["cancelled_at"]
    )


def inbox_count(server: Server) -> int:
    return server.rows("SELECT count(*) FROM inbox")[0][0]


async def test_valid_delivery_is_stored_before_the_answer_then_processed(server: Server):
    order_id = first_open_order(server)
    response = await server.post_webhook("orders/updated", server.sandbox.webhook_payload(order_id))
    assert response.status == 200
    # The 200 means the row is on disk: a separate connection sees it at once.
    assert server.rows("SELECT topic FROM inbox") == [("orders/updated",)]
    await server.settled()
    assert server.rows("SELECT status FROM inbox") == [("processed",)]
    stored = server.rows("SELECT record, webhook_seen FROM orders WHERE id = ?", (order_id,))
    assert stored and stored[0][1] == 1
    record = json.loads(stored[0][0])
    assert record["fulfillment_orders"] is not None, "the order's fulfillment orders were fetched"
    assert server.rows("SELECT count(*) FROM verdicts WHERE order_id = ?", (order_id,)) == [(1,)]
    # Processing fetched the fulfillment orders with one query for the whole order.
    fetches = [op for op in server.sandbox.operations if op.operation_name == "Order"]
    assert len(fetches) == 1


@pytest.mark.parametrize(
    ("case", "headers", "body_change"),
    [
        ("wrong secret", {"X-Shopify-Hmac-Sha256": sign(b"{}", "another-secret")}, None),
        ("tampered body", None, b' {"tampered": true}'),
        ("missing header", {"X-Shopify-Hmac-Sha256": ""}, None),
        ("not base64", {"X-Shopify-Hmac-Sha256": "%%% not base64 %%%"}, None),
        ("non-ASCII header", {"X-Shopify-Hmac-Sha256": "ünïcödé=="}, None),
        ("signature of another body", {"X-Shopify-Hmac-Sha256": sign(b'{"id": 1}', WEBHOOK_SECRET)}, None),
    ],
)
async def test_bad_signatures_get_401_and_store_nothing(server: Server, case, headers, body_change):
    body = json.dumps(server.sandbox.webhook_payload(first_open_order(server))).encode()
    if body_change:
        sent_headers = {"X-Shopify-Hmac-Sha256": sign(body, WEBHOOK_SECRET)}
        body += body_change
    else:
        sent_headers = headers
    if case == "missing header":
        async with server.http.post(
            f"{server.url}/shopify/webhooks", data=body, headers={"X-Shopify-Topic": "orders/updated"}
        ) as response:
            status = response.status
    else:
        status = (await server.post_webhook("orders/updated", body, headers=sent_headers)).status
    assert status == 401, case
    assert inbox_count(server) == 0
    assert server.rows("SELECT count(*) FROM orders") == [(0,)]


@pytest.mark.parametrize("style", ["lower", "upper", "mixed"])
async def test_header_names_are_case_insensitive(server: Server, style):
    payload = server.sandbox.webhook_payload(first_open_order(server))
    body = json.dumps(payload).encode()
    names = {"topic": "X-Shopify-Topic", "hmac": "X-Shopify-Hmac-Sha256", "id": "X-Shopify-Webhook-Id"}
    convert = {"lower": str.lower, "upper": str.upper, "mixed": lambda s: s}[style]
    headers = {
        convert(names["topic"]): "orders/updated",
        convert(names["hmac"]): sign(body, WEBHOOK_SECRET),
        convert(names["id"]): f"case-{style}",
    }
    async with server.http.post(f"{server.url}/shopify/webhooks", data=body, headers=headers) as response:
        assert response.status == 200
    assert server.rows("SELECT webhook_id FROM inbox") == [(f"case-{style}",)]


async def test_duplicates_are_answered_200_and_stored_once(server: Server):
    payload = server.sandbox.webhook_payload(first_open_order(server))
    first = await server.post_webhook("orders/updated", payload, webhook_id="w-1", event_id="e-1")
    same_webhook = await server.post_webhook("orders/updated", payload, webhook_id="w-1", event_id="e-1")
    same_event = await server.post_webhook("orders/updated", payload, webhook_id="w-2", event_id="e-1")
    replayed_body = await server.post_webhook("orders/updated", payload, webhook_id="w-3", event_id="e-3")
    assert [r.status for r in (first, same_webhook, same_event, replayed_body)] == [200, 200, 200, 200]
    assert inbox_count(server) == 1
    day = server.rows("SELECT day FROM counters LIMIT 1")[0][0]
    counters = dict(server.rows("SELECT name, value FROM counters WHERE day = ?", (day,)))
    assert counters == {"webhooks_duplicate": 3}


async def test_the_same_event_id_under_another_topic_is_not_a_duplicate(server: Server):
    payload = server.sandbox.webhook_payload(first_open_order(server))
    await server.post_webhook("orders/updated", payload, event_id="e-9")
    await server.post_webhook("orders/paid", payload, event_id="e-9")
    assert inbox_count(server) == 2


async def test_an_older_delivery_never_overwrites_a_newer_one(server: Server):
    order_id = first_open_order(server)
    newer = server.sandbox.webhook_payload(order_id)
    older = json.loads(json.dumps(newer))
    older["updated_at"] = (datetime.fromisoformat(newer["updated_at"]) - timedelta(hours=1)).isoformat()
    older["tags"] = "stale-tag"
    newer["tags"] = "fresh-tag"
    await server.post_webhook("orders/updated", newer)
    await server.settled()
    await server.post_webhook("orders/updated", older)
    await server.settled()
    record = json.loads(server.rows("SELECT record FROM orders WHERE id = ?", (order_id,))[0][0])
    assert "stale-tag" not in record["tags"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"{not json", 400),
        (b"", 400),
        (b"[1, 2, 3]", 400),
        (b'"a string"', 400),
        (b"\xff\xfe{}", 400),
        (b"[" * 100_000 + b"]" * 100_000, 400),
    ],
    ids=["malformed", "empty", "array", "string", "not utf-8", "deeply nested"],
)
async def test_signed_but_unusable_bodies_get_400_and_store_nothing(server: Server, body, expected):
    response = await server.post_webhook("orders/updated", body)
    assert response.status == expected
    assert inbox_count(server) == 0


async def test_a_body_over_the_size_limit_is_refused(server: Server):
    body = json.dumps({"id": 1, "padding": "x" * (3 * 1024 * 1024)}).encode()
    response = await server.post_webhook("orders/updated", body)
    assert response.status == 413
    assert inbox_count(server) == 0


async def test_a_delivery_for_another_shop_is_refused_and_not_stored(server: Server):
    payload = server.sandbox.webhook_payload(first_open_order(server))
    response = await server.post_webhook(
        "orders/updated", payload, headers={"X-Shopify-Shop-Domain": "someone-else.myshopify.com"}
    )
    assert response.status == 403
    assert inbox_count(server) == 0


async def test_a_missing_topic_gets_400(server: Server):
    body = b'{"id": 1}'
    async with server.http.post(
        f"{server.url}/shopify/webhooks", data=body, headers={"X-Shopify-Hmac-Sha256": sign(body, WEBHOOK_SECRET)}
    ) as response:
        assert response.status == 400
    assert inbox_count(server) == 0


async def test_unknown_topics_are_stored_and_ignored(server: Server):
    response = await server.post_webhook("products/update", {"id": 1, "title": "Mug"})
    assert response.status == 200
    await server.settled()
    assert server.rows("SELECT topic, status FROM inbox") == [("products/update", "ignored")]


@pytest.mark.parametrize("path", sorted(WEBHOOK_EXAMPLES.glob("*.json")), ids=lambda p: p.stem)
async def test_every_documented_example_payload_is_accepted_and_processed(server: Server, path: Path):
    topic = path.stem.replace(".", "/")
    response = await server.post_webhook(topic, json.loads(path.read_text()))
    assert response.status == 200
    await server.settled()
    if topic == "shop/redact":
        assert server.rows("SELECT count(*) FROM inbox") == [(0,)], "shop/redact erases the inbox too"
        return
    status, error = server.rows("SELECT status, error FROM inbox")[0]
    assert status == "processed", error


async def test_an_orders_webhook_alone_classifies_a_cancelled_order_without_asking_shopify(server: Server):
    payload = example_payload("orders/cancelled")
    await server.post_webhook("orders/cancelled", payload)
    await server.settled()
    assert server.rows("SELECT status, stuck FROM verdicts") == [("cancelled", 0)]
    assert not [op for op in server.sandbox.operations if op.operation_name == "Order"]


async def test_fulfillment_order_webhooks_refetch_the_order_they_belong_to(server: Server):
    order_id = first_open_order(server)
    fo_id = server.sandbox.orders_fulfillment_order_ids(order_id)[0]
    payload = example_payload("fulfillment_orders/placed_on_hold")
    payload["fulfillment_order"]["id"] = fo_id
    await server.post_webhook("fulfillment_orders/placed_on_hold", payload)
    await server.settled()
    assert server.rows("SELECT count(*) FROM orders WHERE id = ?", (order_id,)) == [(1,)]
    assert [op.operation_name for op in server.sandbox.operations] == ["OrderOfFulfillmentOrder"]


async def test_a_shopify_outage_while_processing_leaves_the_delivery_to_be_tried_again_not_lost(server: Server):
    order_id = first_open_order(server)
    server.sandbox.fail_next("http_500", times=10)
    await server.post_webhook(
        "fulfillments/create",
        {
            "id": 1,
            "order_id": int(order_id.rsplit("/", 1)[1]),
            "status": "success",
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z",
        },
    )
    await wait_for(lambda: server.rows("SELECT attempts FROM inbox") == [(1,)], timeout=20)
    status, error, body, retry_at = server.rows("SELECT status, error, body, retry_at FROM inbox")[0]
    assert status == "pending" and retry_at is not None, "tried again later (tests/test_inbox.py follows it)"
    assert "HTTP 500" in error
    assert json.loads(body)["order_id"], "a delivery waiting for a retry keeps its body"


async def test_customers_redact_erases_the_customer_from_the_database_file(server: Server):
    order_id = first_open_order(server)
    payload = server.sandbox.webhook_payload(order_id)
    email = payload["email"]
    await server.post_webhook("orders/updated", payload)
    await server.settled()
    assert email.encode() in server.db_path.read_bytes() + _wal(server.db_path)
    redact = example_payload("customers/redact")
    redact["customer"]["email"] = email
    redact["orders_to_redact"] = [int(order_id.rsplit("/", 1)[1])]
    await server.post_webhook("customers/redact", redact)
    await server.settled()
    record = json.loads(server.rows("SELECT record FROM orders WHERE id = ?", (order_id,))[0][0])
    assert record["customer"] is None
    assert email.encode() not in server.db_path.read_bytes() + _wal(server.db_path)


async def test_shop_redact_erases_everything(server: Server):
    await server.post_webhook("orders/updated", server.sandbox.webhook_payload(first_open_order(server)))
    await server.settled()
    await server.post_webhook("shop/redact", example_payload("shop/redact"))
    await server.settled()
    tables = [t for (t,) in server.rows("SELECT name FROM sqlite_master WHERE type = 'table'")]
    assert {"orders", "inbox", "audit", "digests", "resolutions", "bulk_runs", "counters"} <= set(tables)
    assert {t: server.rows(f"SELECT count(*) FROM [{t}]")[0][0] for t in tables} == dict.fromkeys(tables, 0)


async def test_healthz_reports_the_database(server: Server):
    async with server.http.get(f"{server.url}/healthz") as response:
        assert response.status == 200
        body = await response.json()
    assert body["ok"] is True
    assert body["inbox_pending"] == 0


def _wal(db_path: Path) -> bytes:
    wal = db_path.with_name(db_path.name + "-wal")
    return wal.read_bytes() if wal.exists() else b""


async def test_deliveries_stored_before_a_restart_are_processed_on_start(sandbox, tmp_path):
    """A delivery answered 200 just before a crash is still pending in the inbox; the next start processes it."""
    from bot.sandbox.serving import serve
    from bot.shopify.webhooks import body_key
    from bot.store import Delivery, Store
    from bot.web import create_app
    from tests.conftest import SHOP, server_settings

    shop, shop_url = sandbox
    db_path = tmp_path / "orderbot.db"
    order_id = next(oid for oid in shop.orders if not shop.webhook_payload(oid)["closed_at"])
    payload = shop.webhook_payload(order_id)
    store = await Store(str(db_path)).open()
    await store.add_deliveries(
        [
            Delivery(
                "w-before-crash",
                None,
                "orders/updated",
                SHOP,
                None,
                body_key("orders/updated", payload, json.dumps(payload).encode()),
                json.dumps(payload),
            )
        ]
    )
    await store.close()

    runner, _ = await serve(create_app(server_settings(shop, shop_url, db_path), reconcile=False))
    check = await Store(str(db_path)).open()

    async def processed() -> bool:
        rows = await check.read(lambda db: db.execute("SELECT status FROM inbox").fetchall())
        return rows == [("processed",)]

    try:
        await wait_for(processed)
        verdicts = await check.read(lambda db: db.execute("SELECT order_id FROM verdicts").fetchall())
        assert verdicts == [(order_id,)]
    finally:
        await check.close()
        await runner.cleanup()
