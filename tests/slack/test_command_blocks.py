"""The `/orders` answers' builders: within Slack's limits, paged, and escaping shop and user text."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from bot.domain.commands import STUCK_PAGE_SIZE
from bot.domain.orders import Customer, Money, Order
from bot.domain.rules import Policy, classify
from bot.slack import command_blocks as views

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)
SHOP = "juniper-oak.myshopify.com"


def dump(payload: dict) -> str:
    return json.dumps(payload, ensure_ascii=False)


def order(number: int, customer: str = "Maya Thompson") -> Order:
    return Order(
        id=f"gid://shopify/Order/{number}",
        name=f"#{number}",
        created_at=NOW - timedelta(days=3),
        updated_at=NOW - timedelta(days=3),
        financial_status="PAID",
        fulfillment_status="UNFULFILLED",
        total=Money("49.00", "EUR"),
        customer=Customer(name=customer, email="maya@example.com"),
    )


def verdict_row(hours: int, reason: str = "awaiting_tracking", severity: str = "warning") -> dict:
    return {"reason": reason, "since": (NOW - timedelta(hours=hours)).isoformat(), "severity": severity}


def test_a_full_page_has_a_more_button_carrying_the_command_and_the_next_page():
    rows = [(order(1000 + i), verdict_row(100 - i)) for i in range(STUCK_PAGE_SIZE)]
    message = views.stuck_page(rows, total=45, page=1, command_text="stuck awaiting_tracking", shop=SHOP, now=NOW)
    (button,) = [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert button["action_id"] == views.STUCK_MORE
    assert json.loads(button["value"]) == {"text": "stuck awaiting_tracking", "page": 2}
    assert "Showing 1–20 of 45" in dump(message)
    assert "Awaiting tracking for 4d 4h" in dump(message)


def test_the_last_page_has_no_more_button():
    rows = [(order(1041 + i), verdict_row(10)) for i in range(5)]
    message = views.stuck_page(rows, total=45, page=3, command_text="stuck", shop=SHOP, now=NOW)
    assert not [b for b in message["blocks"] if b["type"] == "actions"]
    assert "Showing 41–45 of 45" in dump(message)


def test_nothing_stuck_says_so():
    assert "No stuck orders" in views.stuck_page([], total=0, page=1, command_text="stuck", shop=SHOP, now=NOW)["text"]


def test_customer_names_are_escaped_in_lists():
    rows = [(order(1001, customer="<!channel> & co"), verdict_row(60))]
    text = dump(views.stuck_page(rows, total=1, page=1, command_text="stuck", shop=SHOP, now=NOW))
    assert "<!channel>" not in text and "&lt;!channel&gt; &amp; co" in text


def test_card_shows_the_verdict_and_the_last_actions():
    o = order(1001)
    verdict = classify(o, NOW, Policy(), None)
    history = [
        {
            "at": NOW.isoformat(),
            "actor": "U0ADMIN",
            "action": "snooze",
            "order_id": o.id,
            "order_name": "#1001",
            "outcome": "done",
            "error": None,
        },
    ]
    text = dump(views.order_card(o, verdict, history, shop=SHOP, now=NOW))
    assert "Last actions" in text and "<@U0ADMIN> snooze: done" in text


def test_log_shows_errors_of_failed_attempts_and_says_when_empty():
    rows = [
        {
            "at": NOW.isoformat(),
            "actor": "U0STAFF",
            "action": "cancel_order",
            "order_id": "gid://shopify/Order/1",
            "order_name": "#1001",
            "outcome": "refused",
            "error": "only admins",
        },
    ]
    text = dump(views.log_message(rows, about="#1001"))
    assert "cancel order #1001: refused (only admins)" in text
    assert "Nothing has been done about #1001" in views.log_message([], about="#1001")["text"]


def test_settings_list_every_key_and_say_how_to_change_them():
    values = Policy().to_settings()
    text = dump(views.settings_message(values, may_change=True))
    for key in values:
        assert f"`{key}`" in text
    assert "/orders settings set" in text
    assert "Only orderbot admins" in dump(views.settings_message(values, may_change=False))


def test_scan_names_what_is_new_and_what_webhooks_missed():
    text = views.scan_message(12, ["#1001", "#1002"], ["#1002"], ["#1002"])["text"]
    assert text.startswith("Checked 12 open orders in Shopify: 2 stuck.")
    assert "Newly stuck: #1002" in text and "No webhook had told orderbot about #1002" in text
    assert "Nothing new" in views.scan_message(3, [], [], [])["text"]


def test_scan_says_how_many_newly_stuck_orders_wait_for_their_alert():
    text = views.scan_message(40, ["#1001", "#1002", "#1003"], ["#1001", "#1002", "#1003"], [], ["#1003"])["text"]
    assert "alerts are on the way for the 2 most urgent, 1 wait for the next scans" in text
    assert "`/orders stuck` lists them all" in text
    text = views.scan_message(40, ["#1001"], ["#1001"], [], ["#1001"])["text"]
    assert "on the way for the 0" not in text and "1 wait for the next scans" in text
