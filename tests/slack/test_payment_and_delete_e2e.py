"""Capture payment, Mark as paid and Delete, end to end: signed Slack click → permission (admins by default; the
`payment_actions` setting opens the money ones to everyone) → the mutation the sandbox Shopify executes against the
schema → the alert updated and a thread reply naming the person, an audit row for every attempt; and `/orders delete`
over many orders."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta

from bot.sandbox.views import authorization_id
from bot.slack.bulk_blocks import BULK_CONFIRM
from tests.conftest import ADMIN, CHANNEL, STAFF, World, order_gid_of, wait_for
from tests.slack.test_actions_e2e import action_ids, alert_text, ephemeral_to, mutations, stuck_alert
from tests.test_bulk import buttons, click, finished


def button(alert: dict, action_id: str) -> dict:
    return next(
        e for b in alert["blocks"] if b["type"] == "actions" for e in b["elements"] if e["action_id"] == action_id
    )


def audit_of(world: World, order_id: str, action: str) -> list[dict]:
    """The order's audit rows for `action`, by its id: they outlive the order (a deleted one is forgotten)."""
    with closing(sqlite3.connect(world.db_path)) as conn:
        conn.row_factory = sqlite3.Row
        rows = conn.execute("SELECT * FROM audit WHERE order_id = ? AND action = ? ORDER BY id", (order_id, action))
        return [dict(r) for r in rows]


def message_at(world: World, order_id: str) -> dict:
    """The order's alert as Slack shows it, found by the order's id (the order row goes once it is deleted)."""
    with closing(sqlite3.connect(world.db_path)) as conn:
        channel, ts = conn.execute("SELECT channel, ts FROM alerts WHERE order_id = ?", (order_id,)).fetchone()
    return world.slack.message(channel, ts)


# --- Capture payment ------------------------------------------------------------------------------------------------


async def test_capture_is_confirmed_with_amount_and_expiry_refused_to_staff_and_done_for_an_admin(world: World):
    order_id = order_gid_of(world.sandbox, 1004)  # authorized 146 hours ago, not captured
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=20)
    world.sandbox.orders[order_id]["authorization_expires_at"] = expires
    alert = await stuck_alert(world, 1004)
    assert action_ids(alert)[0] == "capture_payment"
    confirm = button(alert, "capture_payment")["confirm"]
    assert confirm["title"]["text"] == "Capture 108.95 USD for #1004?"
    assert "108.95 USD" in confirm["text"]["text"]
    assert f"expires on {expires:%d %b %Y %H:%M} UTC" in confirm["text"]["text"]

    await world.click(1004, "capture_payment", user=STAFF)
    refusal = await ephemeral_to(world, STAFF)
    assert refusal.startswith("You can't capture the payment for this order: only orderbot admins can.")
    assert "/orders settings set payment_actions everyone" in refusal
    await wait_for(lambda: audit_of(world, order_id, "capture_payment"))
    assert [r["outcome"] for r in audit_of(world, order_id, "capture_payment")] == ["refused"]
    assert not mutations(world, "OrderCapture")

    await world.click(1004, "capture_payment", user=ADMIN)
    await wait_for(lambda: mutations(world, "OrderCapture"))
    (variables,) = mutations(world, "OrderCapture")
    assert variables == {
        "input": {
            "id": order_id,
            "parentTransactionId": authorization_id(world.sandbox.orders[order_id]),
            "amount": "108.95",
            "currency": "USD",
        }
    }
    assert world.sandbox.orders[order_id]["financial_status"] == "PAID"
    # Paid now: the alert, the same message, drops the payment reason and its button (the order is still unshipped).
    after = await world.wait_for_alert(1004, lambda a: "capture_payment" not in action_ids(a))
    assert after["ts"] == alert["ts"] and "Unfulfilled" in alert_text(after)
    await wait_for(lambda: world.alert(1004)["replies"])
    assert world.alert(1004)["replies"][0]["text"] == "<@U0ADMIN> captured the payment for #1004 (108.95 USD)."
    done = audit_of(world, order_id, "capture_payment")[-1]
    assert (done["outcome"], done["actor"], done["channel"], done["ts"]) == ("done", ADMIN, CHANNEL, alert["ts"])


async def test_shopifys_refusal_to_capture_reaches_the_person_in_words(world: World):
    await stuck_alert(world, 1004)
    world.sandbox.fail_next("user_errors", message="The transaction is not capturable.")  # it expired meanwhile
    await world.click(1004, "capture_payment")
    text = await ephemeral_to(world, ADMIN)
    assert text.startswith("Shopify refused to change #1004: The transaction is not capturable")
    assert text.endswith("Fix that in Shopify, then try again.")
    order_id = order_gid_of(world.sandbox, 1004)
    await wait_for(lambda: audit_of(world, order_id, "capture_payment"))
    (row,) = audit_of(world, order_id, "capture_payment")
    assert row["outcome"] == "failed" and "not capturable" in row["error"]
    assert world.sandbox.orders[order_id]["financial_status"] == "AUTHORIZED"


# --- Mark as paid ---------------------------------------------------------------------------------------------------


async def test_mark_as_paid_opens_to_everyone_by_setting_and_records_the_bank_deposit(world: World):
    order_id = order_gid_of(world.sandbox, 1003)  # a bank deposit not received for 76 hours
    alert = await stuck_alert(world, 1003)
    assert action_ids(alert)[0] == "mark_as_paid"
    confirm = button(alert, "mark_as_paid")["confirm"]
    assert confirm["title"]["text"] == "Mark #1003 as paid?" and "(Bank Deposit)" in confirm["text"]["text"]

    await world.click(1003, "mark_as_paid", user=STAFF)
    assert (await ephemeral_to(world, STAFF)).startswith("You can't mark this order as paid: only orderbot admins can.")
    assert not mutations(world, "OrderMarkAsPaid")

    refused = await world.command("settings set payment_actions everyone", user=STAFF)
    assert "admin" in refused["text"]
    changed = await world.command("settings set payment_actions everyone")
    assert "payment_actions" in str(changed)

    await world.click(1003, "mark_as_paid", user=STAFF)
    await wait_for(lambda: mutations(world, "OrderMarkAsPaid"))
    assert mutations(world, "OrderMarkAsPaid") == [{"input": {"id": order_id}}]
    assert world.sandbox.orders[order_id]["financial_status"] == "PAID"
    await world.wait_for_alert(1003, lambda a: "mark_as_paid" not in action_ids(a))
    await wait_for(lambda: world.alert(1003)["replies"])
    assert world.alert(1003)["replies"][0]["text"] == "<@U0STAFF> marked #1003 as paid (Bank Deposit)."
    assert [r["outcome"] for r in audit_of(world, order_id, "mark_as_paid")] == ["refused", "done"]

    await world.click(1003, "mark_as_paid", user=STAFF, message=alert)  # again, from a screen not yet refreshed
    assert await ephemeral_to(world, STAFF, 3) == "#1003 is paid already."
    assert len(mutations(world, "OrderMarkAsPaid")) == 1


# --- Delete ---------------------------------------------------------------------------------------------------------


async def test_delete_on_the_resolved_alert_of_an_archived_order(world: World):
    order_id = order_gid_of(world.sandbox, 1003)
    stuck = await stuck_alert(world, 1003)
    assert "delete" not in action_ids(stuck)  # an open order: Shopify would not delete it
    await world.click(1003, "archive")
    archived = await world.wait_for_alert(1003, lambda a: action_ids(a) == ["delete"])
    assert "Resolved" in alert_text(archived) and "<@U0ADMIN> archived #1003" in alert_text(archived)
    confirm = button(archived, "delete")["confirm"]
    assert confirm["title"]["text"] == "Delete #1003?" and "cannot be undone" in confirm["text"]["text"]
    assert button(archived, "delete")["style"] == "danger"

    await world.click(1003, "delete", user=STAFF)
    assert (await ephemeral_to(world, STAFF)).startswith("You can't delete this order: only orderbot admins can.")
    await wait_for(lambda: audit_of(world, order_id, "delete"))
    assert not mutations(world, "OrderDelete") and order_id in world.sandbox.orders

    await world.click(1003, "delete", user=ADMIN)
    await wait_for(lambda: order_id not in world.sandbox.orders)
    assert mutations(world, "OrderDelete") == [{"orderId": order_id}]
    await wait_for(lambda: "deleted #1003" in alert_text(message_at(world, order_id)))
    gone = message_at(world, order_id)
    assert gone["ts"] == stuck["ts"] and not action_ids(gone)  # the same message: no button left on it
    assert "*Resolved:* <@U0ADMIN> deleted #1003" in alert_text(gone)
    assert [r["outcome"] for r in audit_of(world, order_id, "delete")] == ["refused", "done"]  # the rows stay
    assert not world.rows("SELECT 1 FROM orders WHERE id = ?", (order_id,))


async def test_delete_of_an_order_unarchived_in_shopify_meanwhile_is_refused_in_words(world: World):
    order_id = order_gid_of(world.sandbox, 1003)
    await stuck_alert(world, 1003)
    await world.click(1003, "archive")
    await world.wait_for_alert(1003, lambda a: action_ids(a) == ["delete"])
    world.sandbox.orders[order_id]["closed_at"] = None  # someone reopened it in the Shopify admin
    await world.click(1003, "delete")
    assert await ephemeral_to(world, ADMIN) == (
        "#1003 is open; Shopify deletes only archived or cancelled orders. Archive or cancel it first."
    )
    assert not mutations(world, "OrderDelete") and order_id in world.sandbox.orders
    await wait_for(lambda: audit_of(world, order_id, "delete"))
    assert audit_of(world, order_id, "delete")[0]["outcome"] == "refused"


async def test_a_delete_whose_answer_was_lost_counts_as_done_when_shopify_no_longer_has_the_order(world: World):
    order_id = order_gid_of(world.sandbox, 1003)
    await stuck_alert(world, 1003)
    await world.click(1003, "archive")
    await world.wait_for_alert(1003, lambda a: action_ids(a) == ["delete"])
    world.sandbox.fail_next("lost_answer")
    await world.click(1003, "delete")
    await wait_for(lambda: audit_of(world, order_id, "delete"))
    (row,) = audit_of(world, order_id, "delete")
    assert row["outcome"] == "done" and order_id not in world.sandbox.orders
    await wait_for(lambda: "<@U0ADMIN> deleted #1003" in alert_text(message_at(world, order_id)))
    assert len(mutations(world, "OrderDelete")) == 1


async def test_orders_delete_over_many_orders_deletes_the_archived_and_cancelled_and_skips_open_ones(world: World):
    ids = {number: order_gid_of(world.sandbox, number) for number in (1012, 1014, 1015)}  # open, archived, cancelled
    for number in ids:
        await world.order_webhook(number)
    staff = await world.command("delete #1012 #1014 #1015", user=STAFF)
    assert BULK_CONFIRM not in buttons(staff)  # shown, without Confirm
    preview = await world.command("delete #1012 #1014 #1015")
    assert "Delete" in str(preview) and "cannot be undone" in str(preview)
    run_id = int(buttons(preview)[BULK_CONFIRM]["value"])
    await click(world, preview, BULK_CONFIRM)
    await finished(world, run_id)
    assert ids[1014] not in world.sandbox.orders and ids[1015] not in world.sandbox.orders
    assert ids[1012] in world.sandbox.orders
    await wait_for(lambda: len(audit_of(world, ids[1012], "delete")) == 1)
    assert audit_of(world, ids[1012], "delete")[0]["outcome"] == "refused"
    for number in (1014, 1015):
        assert [r["outcome"] for r in audit_of(world, ids[number], "delete")] == ["done"]


async def test_orders_delete_of_one_order_still_asks_to_confirm_naming_it(world: World):
    order_id = order_gid_of(world.sandbox, 1015)  # cancelled
    await world.order_webhook(1015)
    preview = await world.command("delete #1015")
    assert "#1015" in str(preview) and "cannot be undone" in str(preview)
    assert order_id in world.sandbox.orders and not mutations(world, "OrderDelete")  # nothing yet
    run_id = int(buttons(preview)[BULK_CONFIRM]["value"])
    await click(world, preview, BULK_CONFIRM)
    await finished(world, run_id)
    assert order_id not in world.sandbox.orders
    assert [r["outcome"] for r in audit_of(world, order_id, "delete")] == ["done"]
