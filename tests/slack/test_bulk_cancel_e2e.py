"""`/orders cancel <selection>`, end to end through the real server: the preview lists each order with its amount and
payment state → an admin's Confirm opens one form (reason, refund, restock, notify; past 20 orders the number typed)
→ the run asks Shopify to cancel each order (one audit row each) → the summary counts requested and cancelled apart,
and is drawn again in place as Shopify's background jobs complete.

The sandbox Shopify holds its cancellation jobs until the test lets them run (`finish_jobs`, or a job made due); the
follow-up checks every 50-200 ms here."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from bot.sandbox.seed import generate_orders
from bot.sandbox.serving import serve
from bot.sandbox.slack_payloads import block_actions_body
from bot.sandbox.state import order_total
from bot.slack.bulk_blocks import BULK_CANCEL, BULK_CONFIRM, BULK_FORM, BULK_STOP
from bot.store import Store
from bot.web import create_app
from tests.conftest import ADMIN, CHANNEL, STAFF, World, order_gid_of, wait_for
from tests.slack.test_actions_e2e import opened_view
from tests.slack.test_cancellation_e2e import FAST, held_jobs_world
from tests.test_bulk import buttons, click, item_counts, progress, run_row, shown, slow_shopify

CHOICES = {
    "reason": {"reason": ("static_select", "CUSTOMER")},
    "restock": {"restock": ("checkboxes", ["restock"])},
    "refund": {"refund": ("radio_buttons", "original")},
    "notify_customer": {"notify_customer": ("checkboxes", [])},
}


@pytest.fixture
async def world(sandbox, tmp_path) -> AsyncIterator[World]:
    """Jobs held, and about 150 generated open orders known to orderbot besides the seeded ones."""
    async with held_jobs_world(sandbox, tmp_path) as started:
        now = datetime.now(UTC)
        for generated in generate_orders(300, now):
            if generated["closed_at"] is None and generated["cancelled_at"] is None:
                generated["updated_at"] = now - timedelta(hours=1)
                started.sandbox.add_order(generated)
        await started.service.reconcile()
        yield started


def open_names(world: World, count: int) -> list[str]:
    rows = world.rows("SELECT name FROM orders WHERE is_open = 1 AND name LIKE '#3%' ORDER BY created_ts")
    assert len(rows) >= count, f"only {len(rows)} open orders"
    return [name for (name,) in rows[:count]]


def cancel_sent(world: World) -> list[dict]:
    return [
        op.variables for op in world.sandbox.operations if op.operation_name == "OrderCancel" and op.outcome == "ok"
    ]


def gid(world: World, name: str) -> str:
    return order_gid_of(world.sandbox, int(name.lstrip("#")))


async def open_form(world: World, preview: dict, *, user: str = ADMIN) -> dict:
    """Click the preview's Confirm (`bulk_form`): the form Slack opened."""
    before = len(world.slack.opened_views)
    body = block_actions_body(
        action_id=BULK_FORM,
        user_id=user,
        channel_id=CHANNEL,
        message_ts="1700000000.000100",
        message=preview,
        response_url=world.slack.response_url(CHANNEL, user),
    )
    assert (await world.post_slack(body)).status == 200
    await wait_for(lambda: len(world.slack.opened_views) > before)
    return await opened_view(world, "bulk_cancel_modal")


async def submit(world: World, view: dict, values: dict, *, user: str = ADMIN) -> dict:
    """Send the form: Slack's answer to the submission ({} when it closes, else `errors` on its inputs)."""
    response = await world.submit(view, values, user=user)
    assert response.status == 200
    return json.loads(response.text_body) if response.text_body else {}


async def summary_says(world: World, run_id: int, words: str, timeout: float = 30) -> str:
    await wait_for(lambda: run_row(world, run_id)["status"] in ("done", "stopped"), timeout)
    await wait_for(lambda: words in shown(progress(world, run_id)), timeout)
    return shown(progress(world, run_id))


def bulk_audit(world: World) -> list[tuple[str, str, dict]]:
    return [
        (a, o, json.loads(i))
        for a, o, i in world.rows("SELECT actor, outcome, inputs FROM audit WHERE action = 'bulk'")
    ]


# --- preview and permission ---------------------------------------------------------------------------------------


async def test_the_preview_lists_each_order_with_its_amount_and_payment_state(world: World):
    names = open_names(world, 12)
    preview = await world.command(f"cancel {' '.join(names)}")
    text = shown(preview)
    assert "Cancelling *12 orders*, together" in text
    for name in names:
        order = world.sandbox.orders[gid(world, name)]
        state = order["financial_status"].replace("_", " ").lower()
        total = order_total(order).quantize(Decimal("0.01"))
        assert f"|{name}> · {total} {world.sandbox.currency} · {state}" in text, name
    assert "refund (to the original payment method, as store credit, or none)" in text
    form_button = buttons(preview)[BULK_FORM]
    assert form_button["text"]["text"] == "Cancel 12 orders…" and BULK_CONFIRM not in buttons(preview)
    assert buttons(preview)[BULK_CANCEL]["text"]["text"] == "Not now"
    assert not cancel_sent(world), "a preview changes nothing"


async def test_a_long_preview_lists_a_hundred_orders_within_slacks_limits(world: World):
    names = open_names(world, 130)
    preview = await world.command(f"cancel {' '.join(names)}")
    sections = [b["text"]["text"] for b in preview["blocks"] if b["type"] == "section"]
    assert len(preview["blocks"]) <= 50 and all(len(text) <= 3000 for text in sections)
    listed = [line for text in sections for line in text.splitlines() if line.startswith("• ")]
    assert len(listed) == 100 and "…and 30 more." in shown(preview)
    assert buttons(preview)[BULK_FORM]["text"]["text"] == "Cancel 130 orders…"


async def test_a_non_admin_is_refused_in_words_and_audited_and_opens_no_form(world: World):
    preview = await world.command("cancel #1001-#1005", user=STAFF)
    assert BULK_FORM not in buttons(preview) and "Only orderbot admins" in shown(preview)
    run_id = world.rows("SELECT max(id) FROM bulk_runs")[0][0]
    reply = await click(world, preview, BULK_FORM, user=STAFF, value=str(run_id))  # a forged click
    assert reply["text"].startswith("You can't") and "only orderbot admins can" in reply["text"]
    assert not world.slack.opened_views
    admin_preview = await world.command("cancel #1001-#1005")
    view = await open_form(world, admin_preview)
    answer = await submit(world, view, CHOICES, user=STAFF)  # the admin's form, sent by someone else
    assert "only orderbot admins can" in answer["errors"]["reason"]
    assert [(actor, outcome) for actor, outcome, _ in bulk_audit(world)] == [(STAFF, "refused")] * 3
    assert not cancel_sent(world) and run_row(world, run_id)["status"] == "previewed"


# --- the run --------------------------------------------------------------------------------------------------------


async def test_more_than_20_orders_need_their_number_typed_then_each_is_requested_and_counted_as_it_completes(
    world: World,
):
    names = open_names(world, 25)
    preview = await world.command(f"cancel {' '.join(names)}")
    run_id = int(buttons(preview)[BULK_FORM]["value"])
    assert "You will type 25 to confirm" in shown(preview)
    view = await open_form(world, preview)
    assert view["blocks"][-1]["block_id"] == "confirm_count"

    missing = await submit(world, view, CHOICES)
    assert missing == {
        "response_action": "errors",
        "errors": {"confirm_count": "Type 25, the number of orders, to cancel them."},
    }
    wrong = await submit(world, view, {**CHOICES, "confirm_count": {"confirm_count": ("plain_text_input", "52")}})
    assert wrong["errors"] == {
        "confirm_count": "That is 52, not 25. Type 25 to cancel all 25 orders, or close the form."
    }
    assert run_row(world, run_id)["status"] == "previewed" and not cancel_sent(world), "the form stays open"

    responses = len(world.slack.responses)
    assert await submit(world, view, {**CHOICES, "confirm_count": {"confirm_count": ("plain_text_input", "25")}}) == {}
    await wait_for(lambda: len(world.slack.responses) > responses)
    started = world.slack.responses[responses].body
    assert started["replace_original"] is True and "started `/orders cancel" in started["text"]

    waiting = await summary_says(world, run_id, "Shopify is still cancelling 25")
    assert "Shopify was asked to cancel 25 orders of 25; 0 cancelled so far" in waiting
    assert "Reason customer · refund to the original payment method · restocked · customers not emailed" in waiting
    sent = cancel_sent(world)
    assert sorted(v["orderId"] for v in sent) == sorted(gid(world, n) for n in names), "one orderCancel per order"
    assert {(v["reason"], v["restock"], v["notifyCustomer"], json.dumps(v["refundMethod"])) for v in sent} == {
        ("CUSTOMER", True, False, '{"originalPaymentMethodsRefund": true}')
    }
    audit = world.rows("SELECT actor, outcome FROM audit WHERE action = 'cancel_order'")
    assert Counter(audit) == Counter({(ADMIN, "done"): 25}), "one audit row per order"
    ((actor, outcome, inputs),) = bulk_audit(world)
    assert (actor, outcome, inputs["choices"]["refund"], inputs["orders"]) == (ADMIN, "done", "original", 25)

    world.sandbox.finish_jobs()
    done = await summary_says(world, run_id, "25 orders cancelled of 25")
    assert "still cancelling" not in done and BULK_STOP not in buttons(progress(world, run_id))
    assert world.rows("SELECT count(*) FROM bulk_items WHERE run_id = ? AND settled = 'cancelled'", (run_id,)) == [
        (25,)
    ]


async def test_requested_and_cancelled_are_counted_apart_with_what_shopify_refused_or_did_not_do(world: World):
    """Four orders: one cancelled by its job, one whose job ends without cancelling it, one already cancelled (skipped,
    nothing sent), and one Shopify refuses (store credit for an order without a customer)."""
    cancelled_one, not_cancelled, already, no_customer = names = open_names(world, 4)
    world.sandbox.orders[gid(world, already)]["cancelled_at"] = datetime.now(UTC)
    world.sandbox.orders[gid(world, no_customer)]["customer"] = None
    preview = await world.command(f"cancel {' '.join(names)}")
    run_id = int(buttons(preview)[BULK_FORM]["value"])
    view = await open_form(world, preview)
    assert "confirm_count" not in json.dumps(view["blocks"]), "20 orders or fewer: no number to type"
    assert await submit(world, view, {**CHOICES, "refund": {"refund": ("radio_buttons", "store_credit")}}) == {}

    first = await summary_says(world, run_id, "Shopify was asked to cancel 2 orders of 4")
    assert "Skipped 1" in first and f"already done (1): {already}" in first
    assert "Failed 1" in first and "the order has no customer" in first and no_customer in first
    assert item_counts(world, run_id) == Counter({"done": 2, "skipped": 1, "failed": 1})
    assert {v["orderId"] for v in cancel_sent(world)} == {gid(world, cancelled_one), gid(world, not_cancelled)}

    (job_id,) = world.rows("SELECT job_id FROM cancellations WHERE order_id = ?", (gid(world, cancelled_one),))[0]
    world.sandbox.jobs[job_id].due = 0  # Shopify's worker runs it by the next request
    partly = await summary_says(world, run_id, "1 cancelled so far")
    assert "Shopify is still cancelling 1" in partly
    world.sandbox.finish_jobs(succeed=False)  # the other job ends without cancelling its order
    settled = await summary_says(world, run_id, "Not cancelled 1")
    assert "1 order cancelled of 4" in settled and not_cancelled in settled and "still cancelling" not in settled
    outcomes = Counter(o for (o,) in world.rows("SELECT outcome FROM audit WHERE action = 'cancel_order'"))
    assert outcomes == Counter({"done": 2, "already": 1, "failed": 1}), "one audit row per order"


async def test_stop_mid_run_leaves_the_rest_untouched_and_the_requested_ones_still_settle(world: World):
    names = open_names(world, 22)
    slow_shopify(world, orders_per_second=2)
    preview = await world.command(f"cancel {' '.join(names)}")
    run_id = int(buttons(preview)[BULK_FORM]["value"])
    view = await open_form(world, preview)
    assert await submit(world, view, {**CHOICES, "confirm_count": {"confirm_count": ("plain_text_input", "22")}}) == {}
    await wait_for(lambda: item_counts(world, run_id)["done"] >= 3, 30)
    reply = await click(world, progress(world, run_id), BULK_STOP)
    assert "Stopping" in reply["text"]

    stopped = await summary_says(world, run_id, "stopped")
    counts = item_counts(world, run_id)
    assert counts["pending"] > 0 and counts["done"] + counts["pending"] == 22
    assert len(cancel_sent(world)) == counts["done"], "nothing sent for the orders not started"
    assert f"{counts['pending']} orders not started because of the stop" in stopped
    assert f"Shopify is still cancelling {counts['done']}" in stopped

    world.sandbox.finish_jobs()
    await summary_says(world, run_id, f"{counts['done']} orders cancelled of 22")
    assert run_row(world, run_id)["status"] == "stopped"


async def test_settlements_stored_by_a_process_that_stopped_before_drawing_them_are_drawn_at_the_next_start(
    world: World,
):
    """A crash can come between a settlement's write and the summary's redraw. The restarted followers then find
    each item settled already and tell no run: the start itself sees a summary showing fewer than are settled."""
    names = open_names(world, 3)
    preview = await world.command(f"cancel {' '.join(names)}")
    run_id = int(buttons(preview)[BULK_FORM]["value"])
    assert await submit(world, await open_form(world, preview), CHOICES) == {}
    await summary_says(world, run_id, "Shopify is still cancelling 3")
    await world.stop_server()

    died_after_storing = await Store(world.db_path).open()  # what the stopped process wrote, and did not draw
    for name in names:
        assert await died_after_storing.settle_bulk_items(gid(world, name), "cancelled") == [run_id]
    await died_after_storing.close()
    world.sandbox.finish_jobs()
    world.runner, world.url = await serve(create_app(world.settings(), reconcile=False, cancel_follow_up=FAST))

    await summary_says(world, run_id, "3 orders cancelled of 3")
    # written once Slack has answered the update, so it can trail what Slack shows
    await wait_for(lambda: world.rows("SELECT settled_shown FROM bulk_runs WHERE id = ?", (run_id,)) == [(3,)])
    await wait_for(lambda: world.rows("SELECT count(*) FROM cancellations") == [(0,)])  # the followers settled too
