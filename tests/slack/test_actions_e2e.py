"""Each button and modal, end to end: signed Slack request → the right Shopify mutation with the right variables →
the alert updated in place and a thread reply naming the person; refusals, double clicks and Shopify's errors."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from contextlib import closing

from bot.sandbox.slack_payloads import block_actions_body
from bot.web import SLACK
from tests.conftest import ADMIN, CHANNEL, STAFF, World, order_gid_of, wait_for


def action_ids(message: dict) -> list[str]:
    return [e["action_id"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]


def mutations(world: World, name: str) -> list[dict]:
    return [op.variables for op in world.sandbox.operations if op.operation_name == name]


def alert_text(message: dict) -> str:
    return message["text"] + " " + str(message["blocks"])


async def stuck_alert(world: World, number: int) -> dict:
    await world.order_webhook(number)
    return await world.wait_for_alert(number, lambda a: bool(action_ids(a)))


async def resolved(world: World, number: int) -> dict:
    # resolved: no button left but Delete (an archived or cancelled order's, which Shopify can delete)
    return await world.wait_for_alert(
        number, lambda a: set(action_ids(a)) <= {"delete"} and "Resolved" in alert_text(a)
    )


async def opened_view(world: World, callback_id: str) -> dict:
    await wait_for(lambda: any(v["callback_id"] == callback_id for v in world.slack.opened_views))
    return [v for v in world.slack.opened_views if v["callback_id"] == callback_id][-1]


async def ephemeral_to(world: World, user: str, count: int = 1) -> str:
    await wait_for(lambda: len(world.slack.ephemerals(user)) >= count)
    return world.slack.ephemerals(user)[count - 1]["text"]


async def test_fulfill_opens_the_modal_and_submitting_it_fulfills_with_tracking(world: World):
    alert = await stuck_alert(world, 1001)
    response = await world.click(1001, "fulfill")
    assert response.status == 200
    view = await opened_view(world, "fulfill_modal")

    response = await world.submit(
        view,
        {
            "tracking_number": {"tracking_number": ("plain_text_input", "1Z999AA10123456784")},
            "tracking_company": {"tracking_company": ("static_select", "UPS")},
            "notify_customer": {"notify_customer": ("checkboxes", ["notify_customer"])},
        },
    )
    assert response.status == 200 and response.text_body == ""  # the modal closes

    await wait_for(lambda: mutations(world, "FulfillmentCreate"))  # the action runs once the modal has closed
    (variables,) = mutations(world, "FulfillmentCreate")
    fulfillment = variables["fulfillment"]
    assert fulfillment["trackingInfo"] == {"number": "1Z999AA10123456784", "company": "UPS"}
    assert fulfillment["notifyCustomer"] is True
    order = world.sandbox.orders[order_gid_of(world.sandbox, 1001)]
    assert [g["fulfillmentOrderId"] for g in fulfillment["lineItemsByFulfillmentOrder"]] == [
        fo["id"] for fo in order["fulfillment_orders"]
    ]
    done = await resolved(world, 1001)
    assert done["ts"] == alert["ts"]  # the same message, updated in place
    assert "<@U0ADMIN>" in alert_text(done)
    await wait_for(lambda: world.alert(1001)["replies"])
    (reply,) = world.alert(1001)["replies"]
    assert "<@U0ADMIN>" in reply["text"] and "1Z999AA10123456784" in reply["text"]
    (row,) = [r for r in world.audit(1001) if r["action"] == "fulfill"]
    assert row["outcome"] == "done" and row["actor"] == ADMIN and row["channel"] == CHANNEL and row["ts"] == alert["ts"]
    assert row["duration_ms"] > 0 and "1Z999AA10123456784" in row["inputs"]


async def test_fulfill_without_tracking_needs_the_box_ticked_and_says_so_on_the_modal(world: World):
    await stuck_alert(world, 1001)
    await world.click(1001, "fulfill")
    view = await opened_view(world, "fulfill_modal")
    response = await world.submit(view, {"tracking_number": {"tracking_number": ("plain_text_input", None)}})
    assert response.status == 200
    answer = __import__("json").loads(response.text_body)
    assert answer["response_action"] == "errors" and "tracking_number" in answer["errors"]
    assert not mutations(world, "FulfillmentCreate")

    await world.submit(view, {"no_tracking": {"no_tracking": ("checkboxes", ["no_tracking"])}})
    await wait_for(lambda: mutations(world, "FulfillmentCreate"))
    assert "trackingInfo" not in mutations(world, "FulfillmentCreate")[0]["fulfillment"]


async def test_request_fulfillment_resubmits_the_rejected_request(world: World):
    await stuck_alert(world, 1008)
    await world.click(1008, "request_fulfillment")
    await wait_for(lambda: mutations(world, "FulfillmentRequestSubmit"))
    (variables,) = mutations(world, "FulfillmentRequestSubmit")
    order = world.sandbox.orders[order_gid_of(world.sandbox, 1008)]
    assert variables["id"] == order["fulfillment_orders"][0]["id"]
    # A new request: orderbot now waits for the service, without buttons, in the same message.
    await world.wait_for_alert(1008, lambda a: not action_ids(a) and bool(a["replies"]))


async def test_cancel_request_is_for_admins_and_staff_are_refused_with_an_audit_row(world: World):
    await stuck_alert(world, 1007)
    await world.click(1007, "cancel_request", user=STAFF)
    text = await ephemeral_to(world, STAFF)
    assert "admin" in text.lower()
    assert not mutations(world, "CancellationRequestSubmit")
    await wait_for(lambda: any(r["outcome"] == "refused" for r in world.audit(1007)))

    await world.click(1007, "cancel_request", user=ADMIN)
    await wait_for(lambda: mutations(world, "CancellationRequestSubmit"))
    await wait_for(lambda: world.alert(1007)["replies"])
    assert "may still ship" in world.alert(1007)["replies"][0]["text"]


async def test_release_hold_passes_the_hold_ids(world: World):
    await stuck_alert(world, 1002)
    await world.click(1002, "release_hold")
    await wait_for(lambda: mutations(world, "HoldRelease"))
    (variables,) = mutations(world, "HoldRelease")
    fo = world.sandbox.orders[order_gid_of(world.sandbox, 1002)]["fulfillment_orders"][0]
    assert variables["id"] == fo["id"] and variables["holdIds"]


async def test_archive_resolves_the_alert_and_a_second_click_does_nothing_twice(world: World):
    alert = await stuck_alert(world, 1003)
    first, second = await asyncio.gather(world.click(1003, "archive"), world.click(1003, "archive"))
    assert first.status == second.status == 200
    await resolved(world, 1003)
    await world.click(1003, "archive", message=alert)  # after it succeeded, from a screen not yet refreshed
    await wait_for(lambda: len([r for r in world.audit(1003) if r["action"] == "archive"]) == 3)
    assert len(mutations(world, "OrderClose")) == 1
    outcomes = sorted(r["outcome"] for r in world.audit(1003) if r["action"] == "archive")
    assert outcomes.count("done") == 1 and set(outcomes) <= {"done", "busy", "already"}


async def test_notify_customer_emails_the_customer_and_tags_the_order(world: World):
    await stuck_alert(world, 1002)
    await world.click(1002, "notify_customer")
    view = await opened_view(world, "notify_modal")
    response = await world.submit(
        view,
        {
            "subject": {"subject": ("plain_text_input", "Your order #1002")},
            "message": {"message": ("plain_text_input", "Hi Liam, the blanket is back-ordered; we will write again.")},
        },
    )
    assert response.status == 200
    await wait_for(lambda: world.smtp.messages)
    (mail,) = world.smtp.messages
    assert mail.message["Subject"] == "Your order #1002"
    assert "back-ordered" in mail.message.get_content()
    order = world.sandbox.orders[order_gid_of(world.sandbox, 1002)]
    assert mail.message["To"] == order["email"]
    await wait_for(lambda: mutations(world, "TagsAdd"))
    assert mutations(world, "TagsAdd")[0]["tags"] == ["orderbot-notified"]


async def test_cancel_order_sends_refund_method_not_the_removed_refund_argument(world: World):
    await stuck_alert(world, 1004)
    await world.click(1004, "cancel_order")
    view = await opened_view(world, "cancel_order_modal")
    await world.submit(
        view,
        {
            "reason": {"reason": ("static_select", "CUSTOMER")},
            "restock": {"restock": ("checkboxes", ["restock"])},
            "refund": {"refund": ("radio_buttons", "original")},
            "staff_note": {"staff_note": ("plain_text_input", "Customer asked by phone")},
        },
    )
    await wait_for(lambda: mutations(world, "OrderCancel"))
    (variables,) = mutations(world, "OrderCancel")
    assert variables["reason"] == "CUSTOMER" and variables["restock"] is True
    assert variables["refundMethod"] == {"originalPaymentMethodsRefund": True}
    assert variables["notifyCustomer"] is False and variables["staffNote"] == "Customer asked by phone"
    assert "refund" not in variables
    await resolved(world, 1004)


async def test_cancel_order_refunds_as_store_credit_when_chosen(world: World):
    order_id = order_gid_of(world.sandbox, 1004)
    world.sandbox.orders[order_id]["financial_status"] = "PAID"
    await stuck_alert(world, 1004)
    await world.click(1004, "cancel_order")
    view = await opened_view(world, "cancel_order_modal")
    await world.submit(
        view,
        {"reason": {"reason": ("static_select", "CUSTOMER")}, "refund": {"refund": ("radio_buttons", "store_credit")}},
    )
    await wait_for(lambda: mutations(world, "OrderCancel"))
    assert mutations(world, "OrderCancel")[0]["refundMethod"] == {"storeCreditRefund": {}}
    done = await resolved(world, 1004)
    assert "refunded as store credit" in alert_text(done)
    assert world.sandbox.orders[order_id]["financial_status"] == "REFUNDED"


async def test_cancel_order_button_refuses_staff_without_opening_the_modal(world: World):
    await stuck_alert(world, 1004)
    await world.click(1004, "cancel_order", user=STAFF)
    assert "admin" in (await ephemeral_to(world, STAFF)).lower()
    assert not world.slack.opened_views


async def test_snooze_hides_the_buttons_and_says_until_when(world: World):
    await stuck_alert(world, 1005)
    await world.click(1005, "snooze", user=STAFF, option=f"{order_gid_of(world.sandbox, 1005)}|1d")
    snoozed = await world.wait_for_alert(1005, lambda a: not action_ids(a))
    assert "Snoozed" in alert_text(snoozed)
    assert world.rows("SELECT by FROM snoozes") == [(STAFF,)]


async def test_shopify_user_errors_reach_the_person_and_the_alert_stays_actionable(world: World):
    alert = await stuck_alert(world, 1001)
    world.sandbox.fail_next("user_errors", message="Fulfillment order is locked by another app.")
    await world.click(1001, "archive", user=STAFF)
    text = await ephemeral_to(world, STAFF)
    assert "locked by another app" in text
    assert action_ids(world.alert(1001)) == action_ids(alert)
    (row,) = world.audit(1001)
    assert row["outcome"] == "failed" and "locked by another app" in row["error"]


async def test_an_action_already_done_in_the_admin_is_reported_not_repeated(world: World):
    await stuck_alert(world, 1001)
    gid = order_gid_of(world.sandbox, 1001)
    world.sandbox.fulfill_externally(gid, tracking_number="TRACK-1")
    await world.click(1001, "fulfill")
    view = await opened_view(world, "fulfill_modal")
    await world.submit(view, {"tracking_number": {"tracking_number": ("plain_text_input", "X1")}})
    text = await ephemeral_to(world, ADMIN)
    assert "already" in text
    assert not mutations(world, "FulfillmentCreate")
    await resolved(world, 1001)  # the re-read state resolved the alert


async def test_a_modal_whose_metadata_was_tampered_with_is_refused(world: World):
    await stuck_alert(world, 1004)
    await stuck_alert(world, 1001)
    await world.click(1004, "cancel_order")
    view = await opened_view(world, "cancel_order_modal")
    forged = view["private_metadata"].replace(order_gid_of(world.sandbox, 1004), order_gid_of(world.sandbox, 1001))
    response = await world.submit(
        {**view, "private_metadata": forged}, {"reason": {"reason": ("static_select", "FRAUD")}}
    )
    assert response.status == 200
    assert json.loads(response.text_body)["response_action"] == "errors"
    await wait_for(lambda: world.rows("SELECT 1 FROM audit WHERE outcome = 'refused'"))  # the refusal is done
    assert not mutations(world, "OrderCancel")


async def test_fulfill_on_a_shipment_without_tracking_adds_the_number_to_it(world: World):
    alert = await stuck_alert(world, 1018)  # the app marked it shipped 4 days ago; no tracking number ever came
    assert action_ids(alert)[0] == "fulfill"
    await world.click(1018, "fulfill")
    view = await opened_view(world, "fulfill_modal")
    assert view["title"]["text"] == "Add tracking"
    assert "no_tracking" not in str(view["blocks"])  # it has shipped: only the number is missing
    response = await world.submit(view, {"tracking_number": {"tracking_number": ("plain_text_input", None)}})
    assert json.loads(response.text_body)["errors"] == {
        "tracking_number": "Enter the tracking number to add to the shipment."
    }
    await world.submit(
        view,
        {
            "tracking_number": {"tracking_number": ("plain_text_input", "LX123456789SE")},
            "tracking_company": {"tracking_company": ("static_select", "PostNord SE")},
        },
    )
    await wait_for(lambda: mutations(world, "TrackingInfoUpdate"))
    (variables,) = mutations(world, "TrackingInfoUpdate")
    shipment = world.sandbox.orders[order_gid_of(world.sandbox, 1018)]["fulfillments"][0]
    assert variables["fulfillmentId"] == shipment["id"]
    assert variables["trackingInfoInput"] == {"number": "LX123456789SE", "company": "PostNord SE"}
    assert not mutations(world, "FulfillmentCreate")
    done = await resolved(world, 1018)
    assert "LX123456789SE" in alert_text(done)


async def test_when_the_snooze_ends_the_buttons_come_back_and_the_thread_hears_of_it(world: World):
    alert = await stuck_alert(world, 1005)
    await world.click(1005, "snooze", user=STAFF, option=f"{order_gid_of(world.sandbox, 1005)}|4h")
    await world.wait_for_alert(1005, lambda a: not action_ids(a))
    with closing(sqlite3.connect(world.db_path)) as conn, conn:  # four hours pass
        conn.execute("UPDATE snoozes SET until = '2000-01-01T00:00:00+00:00'")
    await world.service.reconcile()  # the periodic scan finds it stuck again
    back = await world.wait_for_alert(1005, lambda a: bool(action_ids(a)) and len(a["replies"]) == 2)
    assert back["ts"] == alert["ts"]
    assert "stuck again" in back["replies"][1]["text"]


async def test_a_shopify_outage_reaches_the_person_in_words_and_nothing_is_half_done(world: World):
    alert = await stuck_alert(world, 1001)
    world.sandbox.fail_next("http_503", times=4)  # every attempt of the re-read before acting
    await world.click(1001, "archive", user=STAFF)
    text = await ephemeral_to(world, STAFF)
    assert ("Shopify could not be reached" in text and "#1001" not in text) or "try again" in text
    assert not mutations(world, "OrderClose")
    assert action_ids(world.alert(1001)) == action_ids(alert)
    (row,) = world.audit(1001)
    assert row["outcome"] == "failed" and row["error"]


async def test_notify_without_email_set_up_says_how_to_set_it_up_and_is_audited(world: World):
    world.app[SLACK].actions.mailer = None
    await stuck_alert(world, 1002)
    await world.click(1002, "notify_customer", user=STAFF)
    assert "SMTP_URL" in await ephemeral_to(world, STAFF)
    assert not world.slack.opened_views
    await wait_for(lambda: world.audit(1002))
    assert world.audit(1002)[0]["outcome"] == "refused"


async def test_a_tag_shopify_refuses_after_the_email_went_out_does_not_make_it_look_unsent(world: World):
    await stuck_alert(world, 1002)
    await world.click(1002, "notify_customer")
    view = await opened_view(world, "notify_modal")
    world.sandbox.fail_next("user_errors", message="Tags are locked on this order.")  # the next mutation: tagsAdd
    await world.submit(
        view,
        {
            "subject": {"subject": ("plain_text_input", "Your order #1002")},
            "message": {"message": ("plain_text_input", "It is back-ordered; we will write again.")},
        },
    )
    await wait_for(lambda: [r for r in world.audit(1002) if r["action"] == "notify_customer"])
    (row,) = [r for r in world.audit(1002) if r["action"] == "notify_customer"]
    assert row["outcome"] == "done" and len(world.smtp.messages) == 1
    await wait_for(lambda: world.alert(1002)["replies"])
    assert "tag could not be added" in world.alert(1002)["replies"][0]["text"]


async def test_a_forged_or_unknown_order_in_a_button_is_answered_and_nothing_is_done(world: World):
    alert = await stuck_alert(world, 1001)

    async def click_with(value: str) -> None:
        body = block_actions_body(
            action_id="archive", value=value, user_id=STAFF, channel_id=CHANNEL, message_ts=alert["ts"]
        )
        assert (await world.post_slack(body)).status == 200

    await click_with("gid://shopify/Order/1001; DROP TABLE orders")
    assert "names no order" in await ephemeral_to(world, STAFF)
    await click_with("gid://shopify/Order/999999999")  # well formed, but not an order of this shop
    assert "does not know that order" in await ephemeral_to(world, STAFF, 2)
    assert not mutations(world, "OrderClose")
    assert world.rows("SELECT outcome FROM audit WHERE order_id = 'gid://shopify/Order/999999999'") == [("refused",)]
