"""Block Kit builders: every seeded order's alert (stuck, resolved, snoozed) and modals pass Slack's limits, carry
the ids Slack's app and the README bind to, and stay within limits for the largest order Shopify returns."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from slack_sdk.models.blocks import Block, DividerBlock
from slack_sdk.models.views import View

from bot.domain.moves import LocationForMove
from bot.domain.mrkdwn import escape_mrkdwn
from bot.domain.orders import (
    Customer,
    Fulfillment,
    FulfillmentOrder,
    FulfillmentOrderLine,
    Hold,
    Money,
    Order,
    Tracking,
)
from bot.domain.rules import REASON_TITLES, REASONS, Policy, Verdict, classify
from bot.slack import blocks
from bot.slack.alert_blocks import alert_message
from bot.slack.blocks import message_payload
from bot.slack.metadata import ModalContext, pack
from bot.slack.modal_blocks import (
    bulk_cancel_modal,
    cancel_order_modal,
    fulfill_modal,
    move_modal,
    notify_modal,
    offered_locations,
)
from tests.conftest import fetch_seeded_orders

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)
SHOP = "juniper-oak.myshopify.com"
NAMES = [f"#{number}" for number in range(1001, 1019)]
BOUND_ACTION_IDS = (
    "fulfill",
    "request_fulfillment",
    "cancel_request",
    "release_hold",
    "archive",
    "unarchive",
    "notify_customer",
    "cancel_order",
    "snooze",
    "capture_payment",
    "mark_as_paid",
    "delete",
    "move",
)
DESTRUCTIVE = (
    "cancel_request",
    "release_hold",
    "archive",
    "cancel_order",
    "capture_payment",
    "mark_as_paid",
    "delete",
)
RESOLUTION = "<@U0ADMIN> fulfilled it from Slack (tracking 1Z999)"


@pytest.fixture(scope="module")
def seeded() -> dict[str, Order]:
    """The seeded shop's orders as the bot reads them (operations.ORDER through the sandbox), lines included."""
    return asyncio.run(fetch_seeded_orders(NOW, SHOP))


def verdict_of(order: Order, snoozed_until: datetime | None = None) -> Verdict:
    return classify(order, NOW, Policy(), snoozed_until)


# --- checks ---------------------------------------------------------------------------------------------------------


def assert_valid_message(payload: dict) -> None:
    assert set(payload) == {"text", "blocks"} and payload["text"]
    assert 0 < len(payload["blocks"]) <= 50
    for block in payload["blocks"]:
        assert Block.parse(block).to_dict() == block


def assert_valid_modal(view: dict, callback_id: str) -> None:
    assert view["type"] == "modal" and view["callback_id"] == callback_id
    assert len(view["title"]["text"]) <= 24
    assert view["submit"] and view["close"]
    assert len(view["blocks"]) <= 100
    assert View(**view).to_dict() == view
    for block in view["blocks"]:
        assert Block.parse(block).to_dict() == block


def actions_block(payload: dict) -> dict | None:
    found = [block for block in payload["blocks"] if block["type"] == "actions"]
    assert len(found) <= 1
    return found[0] if found else None


def inputs(view: dict) -> dict[str, dict]:
    """Input blocks by block_id, each checked to hold an element with the same action_id."""
    found = {block["block_id"]: block for block in view["blocks"] if block["type"] == "input"}
    for block_id, block in found.items():
        assert block["element"]["action_id"] == block_id
    return found


def all_text(payload: dict) -> str:
    return repr(payload)


# --- alerts for every seeded order ----------------------------------------------------------------------------------


def test_the_seeded_shop_covers_every_reason(seeded):
    stuck = {verdict_of(order).status for order in seeded.values() if verdict_of(order).stuck}
    assert stuck == set(REASONS)


@pytest.mark.parametrize("name", NAMES)
def test_alert(seeded, name):
    order = seeded[name]
    verdict = verdict_of(order)
    payload = alert_message(order, verdict, shop=SHOP, now=NOW)
    assert_valid_message(payload)
    first = payload["blocks"][0]["text"]["text"]
    assert f"<https://admin.shopify.com/store/juniper-oak/orders/{order.legacy_id}|{order.name}>" in first
    assert escape_mrkdwn(order.customer.name) in first
    assert f"{order.total.amount} {order.total.currency}" in first
    actions = actions_block(payload)
    if not verdict.stuck:
        assert actions is None
        return
    assert REASON_TITLES[verdict.reason] in first and "<!date^" in first
    assert payload["text"].startswith(f"{order.name} is stuck: {REASON_TITLES[verdict.reason]} (")
    assert [element["action_id"] for element in actions["elements"]] == list(verdict.actions)
    for element in actions["elements"]:
        if element["action_id"] == "snooze":
            assert element["type"] == "static_select"
            assert [option["value"] for option in element["options"]] == [
                f"{order.id}|{code}" for code in ("4h", "1d", "3d", "1w")
            ]
            continue
        assert element["type"] == "button" and element["value"] == order.id
        if element["action_id"] in DESTRUCTIVE:
            confirm = element["confirm"]
            assert {confirm[key]["type"] for key in ("title", "text", "confirm", "deny")} == {"plain_text"}
            assert order.name in confirm["title"]["text"]
        else:
            assert "confirm" not in element
    styles = {element["action_id"]: element.get("style") for element in actions["elements"]}
    assert styles.get("fulfill", "primary") == "primary"
    assert styles.get("cancel_order") == "danger"


@pytest.mark.parametrize("name", NAMES)
def test_resolved_alert(seeded, name):
    order = seeded[name]
    verdict = verdict_of(order)
    payload = alert_message(order, verdict, shop=SHOP, now=NOW, resolution=RESOLUTION)
    assert_valid_message(payload)
    if verdict.stuck:  # still stuck: the alert stays open whatever the caller says
        assert actions_block(payload) is not None
        return
    actions = actions_block(payload)
    if verdict.status in ("closed", "cancelled"):  # Shopify can delete it: Delete, confirmed
        (delete,) = actions["elements"]
        assert (delete["action_id"], delete["value"], delete["style"]) == ("delete", order.id, "danger")
        assert delete["confirm"]["title"]["text"] == f"Delete {order.name}?"
        assert "cannot be undone" in delete["confirm"]["text"]["text"]
    else:
        assert actions is None
    text = payload["blocks"][0]["text"]["text"]
    assert f"*Resolved:* {RESOLUTION}" in text and text.startswith(":white_check_mark:")
    assert f"/orders/{order.legacy_id}|{order.name}>" in text
    assert payload["text"] == f"{order.name} resolved: {RESOLUTION}"


def test_capture_confirms_the_authorized_amount_and_its_expiry(seeded):
    order = replace(seeded["#1004"], authorization_expires_at=NOW + timedelta(hours=20))
    (button,) = [e for e in actions_block(alert_message(order, verdict_of(order), shop=SHOP, now=NOW))["elements"]
                 if e["action_id"] == "capture_payment"]  # fmt: skip
    amount = f"{order.capturable_amount.amount} {order.capturable_amount.currency}"
    assert button["confirm"]["title"]["text"] == f"Capture {amount} for #1004?"
    assert amount in button["confirm"]["text"]["text"]
    assert "expires on 28 Nov 2026 08:00 UTC" in button["confirm"]["text"]["text"]


def test_mark_as_paid_names_the_manual_method(seeded):
    order = seeded["#1003"]
    (button,) = [e for e in actions_block(alert_message(order, verdict_of(order), shop=SHOP, now=NOW))["elements"]
                 if e["action_id"] == "mark_as_paid"]  # fmt: skip
    assert button["confirm"]["title"]["text"] == "Mark #1003 as paid?"
    assert "(Bank Deposit)" in button["confirm"]["text"]["text"]


@pytest.mark.parametrize("name", NAMES)
def test_snoozed_alert(seeded, name):
    order = seeded[name]
    until = NOW + timedelta(days=1)
    verdict = verdict_of(order, snoozed_until=until)
    payload = alert_message(order, verdict, shop=SHOP, now=NOW, snoozed_until=until, snoozed_by="U0ADMIN")
    assert_valid_message(payload)
    assert actions_block(payload) is None
    text = payload["blocks"][0]["text"]["text"]
    assert f"Snoozed until <!date^{int(until.timestamp())}^" in text and "by <@U0ADMIN>" in text


@pytest.mark.parametrize("name", NAMES)
def test_modals(seeded, name):
    order = seeded[name]
    fulfill = fulfill_modal(order, private_metadata=order.id)
    assert_valid_modal(fulfill, "fulfill_modal")
    assert fulfill["private_metadata"] == order.id
    shipping = ["no_tracking"] if not order.needs_tracking_only() else []  # adding tracking: it has shipped
    assert list(inputs(fulfill)) == [
        "tracking_number",
        "tracking_company",
        "tracking_url",
        *shipping,
        "notify_customer",
    ]

    notify = notify_modal(
        order, to_email=order.customer.email, subject="About your order", body="Hello", private_metadata=order.id
    )
    assert_valid_modal(notify, "notify_modal")
    assert list(inputs(notify)) == ["subject", "message"]
    assert order.customer.email in notify["blocks"][0]["text"]["text"]

    cancel = cancel_order_modal(order, private_metadata=order.id)
    assert_valid_modal(cancel, "cancel_order_modal")
    assert list(inputs(cancel)) == ["reason", "restock", "refund", "notify_customer", "staff_note"]


# --- the alert in detail --------------------------------------------------------------------------------------------


def test_a_stuck_alert_says_what_to_do(seeded):
    order = seeded["#1002"]  # out of stock, critical
    payload = alert_message(order, verdict_of(order), shop=SHOP, now=NOW)
    text = all_text(payload)
    assert payload["text"].startswith("#1002 is stuck: Out of stock (")
    assert ":rotating_light:" in text and "(critical)" in text
    assert "*Next steps*" in text and "• Release the hold once it can ship" in text
    assert "*Holds:* Out of stock (“Oat blanket back-ordered from the mill”)" in text
    assert "*Tracking:* no tracking number yet" in text
    move, release = actions_block(payload)["elements"][:2]
    assert (move["action_id"], move["text"]["text"], "confirm" in move) == ("move", "Move…", False)  # its form asks
    assert release["action_id"] == "release_hold"
    assert "Out of stock" in release["confirm"]["text"]["text"]


def test_tracking_and_other_reasons_are_shown(seeded):
    partial = alert_message(seeded["#1010"], verdict_of(seeded["#1010"]), shop=SHOP, now=NOW)
    assert "*Tracking:* FedEx 94000" in all_text(partial)
    pending = alert_message(seeded["#1003"], verdict_of(seeded["#1003"]), shop=SHOP, now=NOW)
    assert verdict_of(seeded["#1003"]).other_reasons == ("unfulfilled_overdue",)
    assert "*Also:*" not in all_text(pending)  # an unpaid order is not shipped on purpose: no need to say so
    both = replace(verdict_of(seeded["#1002"]), other_reasons=("on_hold", "unfulfilled_overdue"))
    assert "*Also:* On hold, Unfulfilled" in all_text(alert_message(seeded["#1002"], both, shop=SHOP, now=NOW))


def test_a_shipment_without_tracking_offers_add_tracking(seeded):
    payload = alert_message(seeded["#1018"], verdict_of(seeded["#1018"]), shop=SHOP, now=NOW)
    assert actions_block(payload)["elements"][0]["text"]["text"] == "Add tracking"
    closed = replace(seeded["#1001"], closed_at=NOW)
    archived = alert_message(closed, verdict_of(closed), shop=SHOP, now=NOW, resolution="<@U0ADMIN> archived #1001.")
    assert "Now archived; archiving leaves it unfulfilled." in all_text(archived)


def test_the_service_is_named_and_may_still_ship(seeded):
    order = seeded["#1007"]  # DSers never accepted
    payload = alert_message(order, verdict_of(order), shop=SHOP, now=NOW)
    assert "*Ships from:* DSers (fulfillment service)" in all_text(payload)
    cancel = actions_block(payload)["elements"][0]
    assert cancel["action_id"] == "cancel_request"
    assert "DSers may still ship" in cancel["confirm"]["text"]["text"]


def test_confirm_dialogs_name_the_order(seeded):
    order = seeded["#1001"]
    elements = {
        e["action_id"]: e
        for e in actions_block(alert_message(order, verdict_of(order), shop=SHOP, now=NOW))["elements"]
    }
    assert elements["archive"]["confirm"]["title"]["text"] == "Archive #1001?"
    assert "does not change its fulfillment status" in elements["archive"]["confirm"]["text"]["text"]
    assert elements["cancel_order"]["confirm"]["style"] == "danger"
    assert "cannot be undone" in elements["cancel_order"]["confirm"]["text"]["text"]


def test_a_waiting_order_says_what_orderbot_waits_for(seeded):
    order = seeded["#1012"]
    verdict = verdict_of(order)
    payload = alert_message(order, verdict, shop=SHOP, now=NOW)
    assert verdict.status == "waiting" and verdict.actions  # the verdict has actions, the message shows none
    assert actions_block(payload) is None
    assert "it counts as stuck in" in payload["blocks"][0]["text"]["text"]


def test_a_resolved_alert_gives_the_final_status(seeded):
    order = seeded["#1014"]  # shipped, then archived
    payload = alert_message(order, verdict_of(order), shop=SHOP, now=NOW, resolution="Fulfilled in the Shopify admin")
    assert "Now fulfilled and archived." in payload["blocks"][0]["text"]["text"]
    cancelled = seeded["#1015"]
    payload = alert_message(cancelled, verdict_of(cancelled), shop=SHOP, now=NOW, resolution="Cancelled in Shopify")
    assert "Now cancelled." in payload["blocks"][0]["text"]["text"]


def test_customer_and_shop_text_is_escaped(seeded):
    order = replace(seeded["#1001"], customer=Customer("<!channel> & *Bob* <http://x|y>", "bob@example.com"))
    payload = alert_message(order, verdict_of(order), shop=SHOP, now=NOW)
    first = payload["blocks"][0]["text"]["text"]
    assert "&lt;!channel&gt; &amp; *Bob* &lt;http://x|y&gt;" in first
    assert "<!channel>" not in all_text(payload)
    assert "Juniper &amp; Oak Warehouse" in all_text(payload)  # the explanation's location, too
    named = replace(order, name="#1001 <b>")
    assert alert_message(named, verdict_of(named), shop=SHOP, now=NOW)["text"].startswith("#1001 &lt;b&gt; is stuck")
    modal = cancel_order_modal(order, private_metadata="")
    assert "<!channel>" not in all_text(modal)


def test_an_order_from_a_webhook_renders(seeded):
    order = replace(seeded["#1001"], fulfillment_orders=None)
    verdict = verdict_of(order)
    assert verdict.status == "unknown"
    assert_valid_message(alert_message(order, verdict, shop=SHOP, now=NOW))
    assert_valid_modal(fulfill_modal(order, private_metadata=""), "fulfill_modal")


# --- modals in detail -----------------------------------------------------------------------------------------------


def test_fulfill_modal_lists_what_will_ship(seeded):
    view = fulfill_modal(seeded["#1010"], private_metadata="m")
    text = all_text(view)
    assert "Cotton Waffle Towel × 4" in text
    assert "Cast Iron Skillet" not in text  # already shipped
    fields = inputs(view)
    assert all(block["optional"] for block in fields.values())
    carriers = [o["value"] for o in fields["tracking_company"]["element"]["options"]]
    assert carriers[:4] == ["UPS", "USPS", "FedEx", "DHL Express"] and carriers[-1] == "Other"
    assert "Royal Mail" in carriers and "Canada Post" in carriers and "Australia Post" in carriers
    assert "initial_options" not in fields["no_tracking"]["element"]
    assert fields["notify_customer"]["element"]["initial_options"] == fields["notify_customer"]["element"]["options"]


def test_notify_modal_prefills_the_email(seeded):
    order = seeded["#1003"]
    view = notify_modal(order, to_email="priya@example.com", subject="Your order", body="x" * 5000, private_metadata="")
    fields = inputs(view)
    message = fields["message"]["element"]
    assert message["multiline"] and message["max_length"] == 3000 and len(message["initial_value"]) == 3000
    assert fields["subject"]["element"]["initial_value"] == "Your order"
    assert "Priya Raman &lt;priya@example.com&gt;" in view["blocks"][0]["text"]["text"]


def test_cancel_modal_offers_shopifys_reasons(seeded):
    view = cancel_order_modal(seeded["#1001"], private_metadata="")
    fields = inputs(view)
    reasons = [o["value"] for o in fields["reason"]["element"]["options"]]
    assert reasons == ["CUSTOMER", "DECLINED", "FRAUD", "INVENTORY", "STAFF", "OTHER"]
    assert not fields["reason"]["optional"]
    for checkbox in ("restock", "notify_customer"):
        element = fields[checkbox]["element"]
        assert element["type"] == "checkboxes" and element["initial_options"] == element["options"]
    refund = fields["refund"]["element"]
    assert refund["type"] == "radio_buttons" and [o["value"] for o in refund["options"]] == [
        "original",
        "store_credit",
        "none",
    ]
    assert refund["initial_option"]["value"] == "original" and not fields["refund"]["optional"]
    assert fields["staff_note"]["element"]["max_length"] == 255
    assert "cannot be undone" in view["blocks"][0]["text"]["text"]


def test_a_bulk_cancel_form_asks_once_for_every_order_and_past_20_for_their_number():
    few = bulk_cancel_modal(total=20, paid="2,180.00 USD", confirm_over=20, private_metadata="")
    assert_valid_modal(few, "bulk_cancel_modal")
    assert list(inputs(few)) == ["reason", "restock", "refund", "notify_customer"]
    assert few["title"]["text"] == "Cancel 20 orders" and few["submit"]["text"] == "Cancel 20 orders"
    assert "*20 orders* (2,180.00 USD) cannot be undone" in few["blocks"][0]["text"]["text"]
    many = bulk_cancel_modal(total=1200, paid="9.00 USD", confirm_over=20, private_metadata="")
    assert_valid_modal(many, "bulk_cancel_modal")
    assert list(inputs(many))[-1] == "confirm_count"
    assert inputs(many)["confirm_count"]["label"]["text"] == "Type 1200 to cancel 1,200 orders"
    assert not inputs(many)["confirm_count"]["optional"]


def test_private_metadata_over_3000_characters_is_refused(seeded):
    with pytest.raises(ValueError, match="private_metadata"):
        fulfill_modal(seeded["#1001"], private_metadata="x" * 3001)
    assert fulfill_modal(seeded["#1001"], private_metadata="x" * 3000)["private_metadata"] == "x" * 3000


def test_a_message_over_50_blocks_is_refused():
    with pytest.raises(ValueError, match="at most 50"):
        message_payload("too long", [DividerBlock()] * 51)
    assert len(message_payload("just right", [DividerBlock()] * 50)["blocks"]) == 50


# --- the largest order ----------------------------------------------------------------------------------------------


def largest_order() -> Order:
    """10 fulfillment orders (as many as operations.ORDER fetches) of 50 long lines each, half of them held;
    10 fulfillments of 10 tracking numbers each; long names everywhere."""
    long = "Extra Long Product Title " * 10
    ago = NOW - timedelta(days=9)
    fos = tuple(
        FulfillmentOrder(
            id=f"gid://shopify/FulfillmentOrder/{k}",
            status="OPEN" if k % 2 else "ON_HOLD",
            request_status="UNSUBMITTED",
            created_at=ago,
            updated_at=ago,
            location=f"Warehouse {k} " + "x" * 200,
            service=None,
            holds=() if k % 2 else (Hold(f"gid://shopify/FulfillmentHold/{k}", "OTHER", f"note {k} " * 50),),
            supported_actions=("CREATE_FULFILLMENT",) if k % 2 else ("RELEASE_HOLD",),
            lines=tuple(
                FulfillmentOrderLine(f"gid://shopify/FulfillmentOrderLineItem/{k}{n}", f"{long}{n}", "SKU", 999, 999)
                for n in range(50)
            ),
        )
        for k in range(10)
    )
    fulfillments = tuple(
        Fulfillment(
            f"gid://shopify/Fulfillment/{k}",
            "SUCCESS",
            ago,
            ago,
            tuple(Tracking(f"1Z{k}{n:030d}", "UPS " * 20, None) for n in range(10)),
        )
        for k in range(10)
    )
    return Order(
        id="gid://shopify/Order/999999999999999",
        name="#1234567890",
        created_at=ago,
        updated_at=ago,
        financial_status="PAID",
        fulfillment_status="PARTIALLY_FULFILLED",
        total=Money("123456789.99", "USD"),
        customer=Customer("Maximilian " * 30, "max@example.com"),
        fulfillments=fulfillments,
        fulfillment_orders=fos,
    )


def test_the_largest_order_stays_within_limits():
    order = largest_order()
    verdict = verdict_of(order)
    assert verdict.status == "on_hold" and verdict.other_reasons == ("partially_fulfilled",)
    alert = alert_message(order, verdict, shop=SHOP, now=NOW)
    assert_valid_message(alert)
    text = all_text(alert)
    assert "and 97 more" in text  # tracking numbers: 3 shown of 100
    assert "and 2 more" in text  # holds: 3 shown of 5
    assert [e["action_id"] for e in actions_block(alert)["elements"]] == list(verdict.actions)
    fulfill = fulfill_modal(order, private_metadata="m" * 3000)
    assert_valid_modal(fulfill, "fulfill_modal")
    assert "and 42 more" in all_text(fulfill)  # lines: 8 shown of 50, per fulfillment order
    assert_valid_modal(
        notify_modal(order, to_email="max@example.com", subject="s" * 999, body="b" * 9999, private_metadata=""),
        "notify_modal",
    )
    assert_valid_modal(cancel_order_modal(order, private_metadata=""), "cancel_order_modal")


def test_the_move_form_stays_within_limits_with_many_long_named_locations():
    order = largest_order()
    fo = order.fulfillment_orders[0]
    places = [
        LocationForMove(
            f"gid://shopify/Location/{n:013d}", "Warehouse " * 20 + str(n), n % 3 != 0, None, 50, 0 if n % 3 else 2
        )
        for n in range(1, 26)  # a page of locationsForMove
    ]
    offered = offered_locations(places)
    metadata = pack(
        ModalContext(order.id, "C0123456789", "1700000000.000100", None, fo.id, offered), "s" * 32
    )  # the listener keeps the locations offered in the signed metadata
    view = move_modal(order, fo, places, private_metadata=metadata)
    assert_valid_modal(view, "move_modal")
    (radio,) = [b["element"] for b in view["blocks"] if b.get("block_id") == "location"]
    assert len(radio["options"]) == 10  # Slack's most for radio buttons
    assert radio["options"][0]["description"]["text"] == "Has all 50 items"
    assert "and 5 more" in all_text(view)  # the locations that cannot take it: 3 shown of 8


# --- one-line replies -----------------------------------------------------------------------------------------------


def test_the_action_ids_are_the_design_s():
    assert blocks.ACTION_IDS == BOUND_ACTION_IDS
    assert (blocks.FULFILL_MODAL, blocks.NOTIFY_MODAL, blocks.CANCEL_ORDER_MODAL, blocks.MOVE_MODAL) == (
        "fulfill_modal",
        "notify_modal",
        "cancel_order_modal",
        "move_modal",
    )
