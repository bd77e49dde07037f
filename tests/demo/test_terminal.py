"""The terminal renderer on real payloads: alerts, modals, replies and the Home board built by
bot/slack/alert_blocks.py, modal_blocks.py and home_blocks.py from the seeded store's orders as the bot reads them,
and an email as bot/mail/smtp.py builds it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest

from bot.demo.terminal import (
    block_lines,
    card,
    confirm_lines,
    email_lines,
    message_lines,
    mrkdwn,
    view_lines,
    view_title,
)
from bot.domain.action_words import action_reply, refusal
from bot.domain.home import Board, Health, ReasonTrend, UrgentOrder
from bot.domain.orders import Order
from bot.domain.rules import Policy, classify
from bot.slack import alert_blocks, home_blocks, modal_blocks
from tests.conftest import fetch_seeded_orders

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)
SHOP = "juniper-oak.myshopify.com"
USERS = {"U0SAM": "Sam Okoye", "U0ALEX": "Alex Rivera"}


@pytest.fixture(scope="module")
def seeded() -> dict[str, Order]:
    return asyncio.run(fetch_seeded_orders(NOW, SHOP))


def stuck_alert(order: Order) -> dict:
    return alert_blocks.alert_message(order, classify(order, NOW, Policy()), shop=SHOP, now=NOW)


# --- mrkdwn -----------------------------------------------------------------------------------------------------------


def test_mrkdwn_shows_links_mentions_and_dates_as_a_reader_sees_them():
    text = (
        "*<https://admin.shopify.com/store/x/orders/1|#1001>* · <@U0SAM> · <#C0ORDERS|orders> · "
        "<!date^1795511375^{date_short_pretty} at {time}|24 Nov 2026 09:09 UTC> · <https://example.com> · <!here>"
    )
    assert mrkdwn(text, USERS) == "#1001 · @Sam Okoye · #orders · 24 Nov 2026 09:09 UTC · https://example.com · @here"


def test_mrkdwn_unescapes_entities_after_links_so_escaped_text_cannot_become_a_link():
    assert mrkdwn("Juniper &amp; Oak &lt;@U0SAM&gt;", USERS) == "Juniper & Oak <@U0SAM>"


def test_mrkdwn_draws_emoji_and_bold_only_with_ansi():
    assert mrkdwn(":warning: *Out of stock* for 2d", {}) == "⚠️ Out of stock for 2d"
    assert mrkdwn("*Out of stock*", {}, ansi=True) == "\033[1mOut of stock\033[0m"
    assert mrkdwn("a * b * c and :not_an_emoji_we_know:", {}) == "a * b * c and :not_an_emoji_we_know:"


def test_an_unknown_user_keeps_its_id():
    assert mrkdwn("<@U0NOBODY> did it", USERS) == "@U0NOBODY did it"


# --- alerts -----------------------------------------------------------------------------------------------------------


def test_a_stuck_alert_shows_order_reason_steps_facts_and_buttons(seeded: dict[str, Order]):
    lines = message_lines(stuck_alert(seeded["#1001"]), USERS)
    assert lines[0] == "⚠️ #1001 · Maya Thompson · 102.95 USD"
    assert lines[1].startswith("Unfulfilled for 2d 22h, since ") and lines[1].endswith(" UTC")
    assert "Next steps" in lines
    assert "• Ship it from Juniper & Oak Warehouse and add the tracking number" in lines
    assert "Ships from: Juniper & Oak Warehouse  ·  Tracking: no tracking number yet" in lines
    assert lines[-1] == "[ Mark as fulfilled ]  [ Email customer ]  [ Snooze… ▾ ]  [ Archive ]  [ Cancel order ]"


def test_every_stuck_seeded_alert_renders_its_buttons_and_no_raw_mrkdwn(seeded: dict[str, Order]):
    for order in seeded.values():
        verdict = classify(order, NOW, Policy())
        if not verdict.stuck:
            continue
        payload = alert_blocks.alert_message(order, verdict, shop=SHOP, now=NOW)
        shown = "\n".join(message_lines(payload, USERS))
        elements = [e for b in payload["blocks"] if b["type"] == "actions" for e in b["elements"]]
        for element in elements:
            label = element["text"]["text"] if element["type"] == "button" else element["placeholder"]["text"]
            assert f"[ {label}" in shown, (order.name, label)
        assert "<http" not in shown and "&amp;" not in shown and "*" not in shown, order.name


def test_a_destructive_buttons_confirm_dialog_shows_its_question_and_choices(seeded: dict[str, Order]):
    payload = stuck_alert(seeded["#1003"])
    (archive,) = [
        e for b in payload["blocks"] if b["type"] == "actions" for e in b["elements"] if e["action_id"] == "archive"
    ]
    lines = confirm_lines(archive["confirm"])
    assert lines[0] == "Archive #1003?"
    assert lines[2].startswith("Archiving hides #1003 from open orders in Shopify.")
    assert lines[-1] == "[ Go back ]  [ Archive ]"


def test_a_resolved_alert_names_the_person(seeded: dict[str, Order]):
    order = seeded["#1014"]  # shipped, then archived
    resolution = "<@U0ALEX> archived #1014."
    payload = alert_blocks.alert_message(
        order, classify(order, NOW, Policy()), shop=SHOP, now=NOW, resolution=resolution
    )
    assert message_lines(payload, USERS) == [
        "✅ #1014 · James Whitaker · 50.95 USD",
        "Resolved: @Alex Rivera archived #1014.",
        "Now fulfilled and archived.",
        "",
        "[ Delete ]",
    ]


def test_thread_replies_and_refusals_are_text_only_messages():
    reply = action_reply("fulfill", "U0SAM", "tracking UPS 1Z999", order_name="#1001")
    assert message_lines({"text": reply}, USERS) == ["@Sam Okoye marked #1001 as fulfilled (tracking UPS 1Z999)."]
    refused = refusal("cancel_order", "only admins can. Ask one to add you to `SLACK_ADMINS`.")
    assert message_lines({"text": refused}, USERS) == [
        "You can't cancel this order: only admins can. Ask one to add you to `SLACK_ADMINS`."
    ]


# --- modals -----------------------------------------------------------------------------------------------------------


def test_the_fulfil_form_shows_what_ships_its_inputs_and_its_buttons(seeded: dict[str, Order]):
    view = modal_blocks.fulfill_modal(seeded["#1001"], private_metadata="m")
    lines = view_lines(view, USERS)
    assert view_title(view) == "Mark as fulfilled"
    assert "• Linen Throw Pillow - Sage × 2" in lines
    assert "Tracking number (optional): [ ________________ ]" in lines
    assert "Carrier (optional): [ Choose a carrier ▾ ]" in lines
    assert "No tracking number? (optional): ☐ Ship without a tracking number" in lines
    assert "Customer (optional): ☑ Email the customer the shipping confirmation" in lines
    assert lines[-1] == "[ Cancel ]  [ Mark fulfilled ]"


def test_the_notify_form_shows_the_drafted_email_in_full(seeded: dict[str, Order]):
    body = "Hello Liam,\n\nYour blanket is back-ordered.\n\nJuniper & Oak"
    view = modal_blocks.notify_modal(
        seeded["#1002"], to_email="liam@example.com", subject="Your order #1002", body=body, private_metadata="m"
    )
    lines = view_lines(view, USERS)
    assert "To: Liam O'Connor <liam@example.com>" in lines
    assert "Subject: [ Your order #1002 ]" in lines
    start = lines.index("Message:")
    assert lines[start + 1 : start + 6] == [
        "    Hello Liam,",
        "",
        "    Your blanket is back-ordered.",
        "",
        "    Juniper & Oak",
    ]


def test_the_cancel_form_shows_the_reason_select_and_ticked_boxes(seeded: dict[str, Order]):
    lines = view_lines(modal_blocks.cancel_order_modal(seeded["#1004"], private_metadata="m"), USERS)
    assert "Why cancel?: [ Choose a reason ▾ ]" in lines
    assert "Stock (optional): ☑ Restock the items" in lines
    assert lines[-1] == "[ Keep order ]  [ Cancel order ]"


# --- other blocks, email, cards ---------------------------------------------------------------------------------------


def test_the_home_board_shows_counts_urgent_orders_with_buttons_actions_and_health(seeded: dict[str, Order]):
    urgent = []
    for name in ("#1004", "#1001"):
        verdict = classify(seeded[name], NOW, Policy())
        urgent.append(UrgentOrder(seeded[name], verdict.reason, verdict.severity, verdict.since, verdict.actions[:2]))
    mine = [{"at": NOW.isoformat(), "actor": "U0SAM", "action": "fulfill", "order_id": "1", "order_name": "#1001",
             "outcome": "done", "error": None}]  # fmt: skip
    board = Board(
        viewer="U0SAM",
        now=NOW,
        trends=[ReasonTrend("unfulfilled_overdue", 3, 1), ReasonTrend("payment_pending", 1, 1)],
        urgent=urgent,
        more=4,
        my_actions=mine,
        health=Health(last_delivery=NOW, last_scan=None, last_scan_error=None, parked=0, pending=0),
        settings=None,
    )
    lines = view_lines(home_blocks.home_view(board, shop=SHOP), USERS)
    assert lines[:4] == [
        "STUCK ORDERS",
        "",
        "Unfulfilled: 3 (⬆️ 2 since yesterday)",
        "Payment pending: 1 (same as yesterday)",
    ]
    assert any(line.startswith("🚨 #1004 · Payment pending for ") for line in lines)
    assert "4 more: `/orders stuck`" in lines
    assert "27 Nov 2026 12:00 UTC @Sam Okoye fulfil #1001: done" in lines
    assert "Last scan: none yet" in lines and "Parked deliveries: 0" in lines
    buttons = [line for line in lines if line.startswith("[ ")]
    assert len(buttons) == 2 and all(line.count("[ ") == 2 for line in buttons)


def test_headers_dividers_fields_and_accessories_as_slack_documents_them():
    shown = block_lines(
        [
            {"type": "header", "text": {"type": "plain_text", "text": "Daily digest"}},
            {"type": "divider"},
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": "*8 stuck*"},
                "fields": [{"type": "mrkdwn", "text": "*Out of stock:* 2"}],
                "accessory": {"type": "button", "text": {"type": "plain_text", "text": "More"}, "action_id": "more"},
            },
        ]
    )
    assert shown == ["DAILY DIGEST", "", "─" * 40, "", "8 stuck", "Out of stock: 2", "[ More ]"]


def test_an_email_shows_its_headers_and_plain_body():
    message = EmailMessage()
    message["From"] = "orders@juniperandoak.example"
    message["To"] = "liam@example.com"
    message["Subject"] = "An update on your order #1002"
    message.set_content("Hello Liam,\n\nIt is back-ordered.\n")
    assert email_lines(message) == [
        "From: orders@juniperandoak.example",
        "To: liam@example.com",
        "Subject: An update on your order #1002",
        "",
        "Hello Liam,",
        "",
        "It is back-ordered.",
    ]


def test_a_card_wraps_long_lines_under_its_title_with_bullets_indented():
    text = card("Slack #orders", ["• " + "word " * 30, "", "short"], width=40)
    lines = text.splitlines()
    assert lines[0].startswith("┌─ Slack #orders ") and len(lines[0]) == 40
    assert lines[1].startswith("│ • word") and lines[2].startswith("│   word")
    assert all(len(line) <= 40 for line in lines)
    assert "│" in lines and lines[-2] == "│ short" and lines[-1] == "└" + "─" * 39


def test_channel_mentions_read_as_the_channels_name_when_known():
    assert mrkdwn("Posted in <#C0ORDERS>.", {"C0ORDERS": "orders"}) == "Posted in #orders."
    assert mrkdwn("Posted in <#C0ORDERS|ops>.", {"C0ORDERS": "orders"}) == "Posted in #ops."
    assert mrkdwn("Posted in <#C0OTHER>.", {}) == "Posted in #C0OTHER."
