"""Webhook → classification → alert in Slack, over real HTTP against the sandboxes (the whole server runs): one
alert per order, updated in place, resolved by what happens in Shopify, paced, and never lost to a Slack failure."""

from __future__ import annotations

import itertools
import json
import logging
import time

from bot.sandbox.serving import serve
from bot.sandbox.slack_payloads import block_actions_body, sign_request
from bot.web import SLACK, create_app
from tests.conftest import ADMIN, CHANNEL, SIGNING_SECRET, World, order_gid_of, wait_for


def action_ids(message: dict) -> list[str]:
    return [e["action_id"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]


def everything(message: dict) -> str:
    return message["text"] + " " + json.dumps(message["blocks"])


async def test_a_stuck_order_webhook_posts_one_alert_with_the_buttons_its_verdict_allows(world: World):
    await world.order_webhook(1001)  # unfulfilled, paid, 70 h old: unfulfilled_overdue
    alert = await world.wait_for_alert(1001)
    ((reason, actions),) = world.rows(
        "SELECT reason, actions FROM verdicts v JOIN orders o ON o.id = v.order_id WHERE o.name = '#1001'"
    )
    assert reason == "unfulfilled_overdue"
    assert action_ids(alert) == json.loads(actions)
    assert "#1001" in alert["text"]
    await world.order_webhook(1001)  # the same state again
    assert len(world.slack.calls_to("chat.postMessage")) == 1
    assert not world.slack.calls_to("chat.update")  # nothing changed, so nothing was sent


async def test_orders_that_are_not_stuck_get_no_alert(world: World):
    for number in (1011, 1012, 1013, 1014, 1015, 1016, 1017):
        await world.order_webhook(number)
    assert not world.slack.calls_to("chat.postMessage")
    assert world.rows("SELECT count(*) FROM outbox") == [(0,)]


async def test_a_later_webhook_showing_the_order_shipped_resolves_the_alert_in_place(world: World):
    await world.order_webhook(1009)  # ShipBob accepted, no tracking
    alert = await world.wait_for_alert(1009, lambda a: bool(action_ids(a)))
    world.sandbox.fulfill_externally(order_gid_of(world.sandbox, 1009), tracking_number="SB-7781", company="USPS")
    await world.order_webhook(1009, topic="orders/fulfilled")
    done = await world.wait_for_alert(1009, lambda a: not action_ids(a))
    assert done["ts"] == alert["ts"]
    assert "SB-7781" in everything(done)  # who or what resolved it: the fulfillment app, with its tracking
    assert len(world.slack.calls_to("chat.postMessage")) == 1


async def test_a_change_of_state_updates_the_same_message(world: World):
    await world.order_webhook(1001)
    alert = await world.wait_for_alert(1001)
    fo = world.sandbox.orders[order_gid_of(world.sandbox, 1001)]["fulfillment_orders"][0]
    world.sandbox.set_fulfillment_order(
        fo["id"], status="ON_HOLD", holds=[{"reason": "INVENTORY_OUT_OF_STOCK", "reason_notes": "Mill is late"}]
    )
    await world.order_webhook(1001)
    # Someone put it on hold for stock: a new reason, not yet past its own threshold, so orderbot now waits.
    updated = await world.wait_for_alert(1001, lambda a: not action_ids(a))
    assert updated["ts"] == alert["ts"] and "stock" in everything(updated).lower()
    assert len(world.slack.calls_to("chat.postMessage")) == 1


async def test_slack_rate_limits_and_outages_delay_alerts_but_lose_none(world: World):
    world.slack.fail_next("chat.postMessage", "rate_limited", retry_after=1)
    world.slack.fail_next("chat.postMessage", "http_503", times=2)
    started = time.monotonic()
    await world.order_webhook(1001)
    await world.order_webhook(1002)
    await world.wait_for_alert(1001, timeout=20)
    await world.wait_for_alert(1002, timeout=20)
    assert time.monotonic() - started >= 1.0  # Retry-After was honoured
    posted = [c for c in world.slack.calls_to("chat.postMessage") if c.status == 200]
    assert len(posted) == 2  # one alert per order, after the failures
    assert world.rows("SELECT status, count(*) FROM outbox GROUP BY status") == [("sent", 2)]


async def test_a_channel_the_bot_cannot_post_in_keeps_the_alert_and_says_so_on_healthz(world: World):
    world.slack.fail_next("chat.postMessage", "invalid_auth")
    await world.order_webhook(1001)
    await wait_for(lambda: world.slack.calls_to("chat.postMessage"))
    async with world.http.get(f"{world.url}/healthz") as response:
        health = await response.json()
    assert response.status == 503 and health["slack_error"].startswith("invalid_auth: Check SLACK_BOT_TOKEN")
    assert world.rows("SELECT status, error FROM outbox") == [("pending", "invalid_auth")]


async def test_an_alert_queued_while_slack_is_down_is_posted_after_a_restart(world: World, tmp_path):
    world.slack.fail_next("chat.postMessage", "http_500", times=1000)
    await world.order_webhook(1001)
    await wait_for(lambda: world.rows("SELECT status, attempts FROM outbox") == [("pending", 1)])  # the 500 noted
    await world.stop_server()
    # Waiting for its retry, or stopped during the retry's call (then it is looked up in the channel at start).
    assert world.rows("SELECT status FROM outbox") in ([("pending",)], [("sending",)])

    world.slack._failures.clear()  # Slack is back
    runner, _ = await serve(create_app(world.settings(), reconcile=False))
    try:
        await wait_for(lambda: world.rows("SELECT status FROM outbox") == [("sent",)], timeout=70)
        assert world.alert(1001) is not None
        assert len([c for c in world.slack.calls_to("chat.postMessage") if c.status == 200]) == 1
    finally:
        await runner.cleanup()


async def test_the_outbox_posts_at_most_once_per_pace_per_channel(world: World):
    world.app[SLACK].outbox.pacer.pace = 0.25  # Slack's limit is 1 s; a quarter keeps the test short, the rule the same
    for number in (1001, 1002, 1003, 1004, 1005, 1006):
        await world.order_webhook(number)
    await wait_for(lambda: len(world.slack.calls_to("chat.postMessage")) == 6, timeout=20)
    times = [c.at for c in world.slack.calls_to("chat.postMessage")]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.24


async def test_slack_requests_with_a_bad_signature_or_an_old_timestamp_are_refused(world: World):
    await world.order_webhook(1001)
    alert = await world.wait_for_alert(1001)
    body = block_actions_body(
        action_id="archive", user_id=ADMIN, channel_id=CHANNEL, message_ts=alert["ts"], message=alert
    )
    url = f"{world.url}/slack/events"
    cases = {
        "wrong secret": sign_request(body, "not-the-secret"),
        "six minutes old": sign_request(body, SIGNING_SECRET, timestamp=int(time.time()) - 360),
        "timestamp not a number": {**sign_request(body, SIGNING_SECRET), "X-Slack-Request-Timestamp": "abc"},
        "no signature": {"X-Slack-Request-Timestamp": str(int(time.time()))},
        "non-ASCII signature": {**sign_request(body, SIGNING_SECRET), "X-Slack-Signature": "v0=ä" + "0" * 63},
    }
    for case, headers in cases.items():
        async with world.http.post(url, data=body, headers=headers) as response:
            assert response.status == 401, case
    tampered = body.replace(b"archive", b"cancel_order")
    async with world.http.post(url, data=tampered, headers=sign_request(body, SIGNING_SECRET)) as response:
        assert response.status == 401
    assert not [op for op in world.sandbox.operations if op.operation_name == "OrderClose"]
    assert world.rows("SELECT count(*) FROM audit") == [(0,)]


async def test_a_refused_slack_request_is_not_logged_with_its_body(world: World, caplog):
    caplog.set_level(logging.DEBUG)
    body = block_actions_body(
        action_id="archive",
        user_id=ADMIN,
        channel_id=CHANNEL,
        message_ts="1.000001",
        message={"type": "message", "ts": "1.000001", "text": "maya.thompson@example.com", "blocks": []},
    )
    async with world.http.post(
        f"{world.url}/slack/events", data=body, headers=sign_request(body, "not-the-secret")
    ) as response:
        assert response.status == 401
    assert "maya.thompson@example.com" not in caplog.text


async def test_an_order_deleted_in_shopify_resolves_its_alert(world: World):
    await world.order_webhook(1001)
    alert = await world.wait_for_alert(1001, lambda a: bool(action_ids(a)))
    gid = order_gid_of(world.sandbox, 1001)
    await world.post_webhook("orders/delete", {"id": int(gid.rsplit("/", 1)[1])})
    await world.settled()
    done = await wait_for_message(world, alert["ts"], lambda m: not action_ids(m))
    assert "deleted in Shopify" in everything(done) and "Now " not in everything(done)
    assert world.rows("SELECT count(*) FROM orders WHERE id = ?", (gid,)) == [(0,)]


async def wait_for_message(world: World, ts: str, condition) -> dict:
    await wait_for(lambda: condition(world.slack.message(CHANNEL, ts)))
    return world.slack.message(CHANNEL, ts)
