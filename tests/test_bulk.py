"""Bulk actions end to end: `/orders <action> <selection>` → the preview → a signed click on Confirm → one progress
message updated in place → the summary; with Shopify refusing some orders, Stop, a restart mid-run and throttling.
What changed is read from the sandbox Shopify's operation log, the audit table and the sandbox Slack."""

from __future__ import annotations

import itertools
import json
import math
import sqlite3
from collections import Counter
from contextlib import closing
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from bot.sandbox.seed import generate_orders
from bot.sandbox.serving import serve
from bot.sandbox.slack_payloads import block_actions_body
from bot.slack.bulk_blocks import BULK_CANCEL, BULK_CONFIRM, BULK_STOP
from bot.web import create_app
from tests.conftest import ADMIN, CHANNEL, STAFF, World, wait_for

ORDER_REQUESTED_COST = 593  # what the sandbox charges up front for the `Order` re-read (its requestedQueryCost)


# --- helpers ------------------------------------------------------------------------------------------------------


def buttons(message: dict) -> dict[str, dict]:
    return {e["action_id"]: e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]}


def shown(message: dict) -> str:
    return message["text"] + " " + json.dumps(message["blocks"], ensure_ascii=False)


async def click(world: World, message: dict, action_id: str, *, user: str = ADMIN, value: str | None = None) -> dict:
    """Click a button of `message` (a preview, or the progress message); return the answer posted to the click's
    response_url."""
    before = len(world.slack.responses)
    body = block_actions_body(
        action_id=action_id,
        user_id=user,
        channel_id=CHANNEL,
        message_ts=message.get("ts", "1700000000.000100"),
        message=message,
        value=value,
        response_url=world.slack.response_url(CHANNEL, user),
    )
    response = await world.post_slack(body)
    assert response.status == 200
    await wait_for(lambda: len(world.slack.responses) > before)
    return world.slack.responses[before].body


def run_row(world: World, run_id: int) -> dict:
    columns = ("status", "total", "confirmed_by", "stopped_by", "channel", "message_ts")
    (row,) = world.rows(f"SELECT {', '.join(columns)} FROM bulk_runs WHERE id = ?", (run_id,))
    return dict(zip(columns, row, strict=True))


def item_counts(world: World, run_id: int) -> Counter:
    return Counter(dict(world.rows("SELECT status, count(*) FROM bulk_items WHERE run_id = ? GROUP BY 1", (run_id,))))


def closed_ids(world: World) -> list[str]:
    """The order ids of every orderClose Shopify applied (answered without userErrors)."""
    return [
        op.variables["input"]["id"]
        for op in world.sandbox.operations
        if op.operation_name == "OrderClose" and op.outcome == "ok"
    ]


def progress(world: World, run_id: int) -> dict:
    row = run_row(world, run_id)
    return world.slack.message(row["channel"], row["message_ts"])


async def finished(world: World, run_id: int, timeout: float = 60) -> dict:
    await wait_for(lambda: run_row(world, run_id)["status"] in ("done", "stopped"), timeout)
    await wait_for(lambda: "Finished" in shown(progress(world, run_id)) or "stopped" in shown(progress(world, run_id)))
    return progress(world, run_id)


def slow_shopify(world: World, orders_per_second: float) -> None:
    """A shop whose cost budget lets about `orders_per_second` archives through (each: two Order re-reads and an
    orderClose, about 40 points), with a bucket just big enough for one re-read."""
    world.sandbox.bucket_size = ORDER_REQUESTED_COST + 20
    world.sandbox.restore_rate = 40 * orders_per_second
    world.sandbox._available = world.sandbox.bucket_size


@pytest.fixture
async def known(world: World) -> World:
    """The seeded orders and about 60 generated ones that can be archived (fully shipped, still open; touched in
    the last days, so that reconciliation reads them), all known to orderbot."""
    now = datetime.now(UTC)
    for generated in generate_orders(300, now):
        is_open = generated["closed_at"] is None and generated["cancelled_at"] is None
        if (
            is_open
            and generated["fulfillments"]
            and all(fo["status"] == "CLOSED" for fo in generated["fulfillment_orders"])
        ):
            generated["updated_at"] = now - timedelta(hours=1)
            world.sandbox.add_order(generated)
    await world.service.reconcile()
    return world


def archivable(world: World, count: int) -> list[str]:
    """Names of `count` generated orders orderbot knows as fulfilled and open, by number."""
    rows = world.rows(
        "SELECT name FROM orders WHERE is_open = 1 AND fulfillment_status = 'FULFILLED' AND name LIKE '#3%'"
        " ORDER BY created_ts"
    )
    assert len(rows) >= count, f"only {len(rows)} archivable orders"
    return [name for (name,) in rows[:count]]


# --- preview ------------------------------------------------------------------------------------------------------


async def test_preview_counts_lists_and_names_what_orderbot_does_not_know(known: World):
    answer = await known.command("archive #1001-#1005 #1099")
    text = shown(answer)
    assert "Archiving *5 orders*" in text
    for number in range(1001, 1006):
        assert f"#{number}" in text
    assert "orderbot does not know #1099" in text
    assert "archived in Shopify" in text, "says what will happen"
    confirm, cancel = buttons(answer)[BULK_CONFIRM], buttons(answer)[BULK_CANCEL]
    assert confirm["text"]["text"] == "Archive 5 orders" and confirm["confirm"]["title"]["text"]
    run_id = int(confirm["value"])
    assert cancel["value"] == str(run_id)
    assert run_row(known, run_id)["status"] == "previewed" and run_row(known, run_id)["total"] == 5
    names = known.rows("SELECT order_name FROM bulk_items WHERE run_id = ? ORDER BY position", (run_id,))
    assert sorted(n for (n,) in names) == [f"#{n}" for n in range(1001, 1006)]
    assert not closed_ids(known), "a preview changes nothing"


async def test_preview_shows_the_first_ten_oldest_first(known: World):
    names = archivable(known, 14)
    answer = await known.command(f"archive {' '.join(names)}")
    text = shown(answer)
    assert "Archiving *14 orders*" in text and "and 4 more" in text
    listed = [line for line in answer["blocks"][0]["text"]["text"].splitlines() if line.startswith("•")]
    assert len(listed) == 10
    assert all(f"|{name}>" in line for name, line in zip(names, listed, strict=False)), "the ten oldest, in order"


async def test_a_non_admin_sees_no_confirm_and_a_forged_confirm_is_refused_and_audited(known: World):
    answer = await known.command("archive #1001-#1003", user=STAFF)
    assert BULK_CONFIRM not in buttons(answer)
    assert "Only orderbot admins" in shown(answer)
    run_id = known.rows("SELECT max(id) FROM bulk_runs")[0][0]
    audit = known.rows("SELECT actor, action, outcome FROM audit WHERE action = 'bulk'")
    assert audit == [(STAFF, "bulk", "refused")], "asking is an attempt, audited"

    reply = await click(known, answer, BULK_CONFIRM, user=STAFF, value=str(run_id))
    assert "only orderbot admins can" in reply["text"] and reply["replace_original"] is False
    assert run_row(known, run_id)["status"] == "previewed"
    audit = known.rows("SELECT actor, action, outcome FROM audit WHERE action = 'bulk'")
    assert audit == [(STAFF, "bulk", "refused")] * 2
    assert not closed_ids(known)


async def test_cancel_changes_nothing_and_a_stale_or_forged_value_is_answered(known: World):
    answer = await known.command("archive #1001-#1003")
    reply = await click(known, answer, BULK_CANCEL)
    assert reply["replace_original"] is True and "Cancelled" in reply["text"]
    run_id = int(buttons(answer)[BULK_CONFIRM]["value"])
    assert run_row(known, run_id)["status"] == "cancelled"
    again = await click(known, answer, BULK_CONFIRM)
    assert "cancelled" in again["text"]
    forged = await click(known, answer, BULK_CONFIRM, value="99999")
    assert "no longer known" in forged["text"]
    assert not closed_ids(known)


async def test_only_the_person_who_asked_or_an_admin_may_cancel_a_preview(known: World):
    answer = await known.command("archive #1001-#1003")
    run_id = int(buttons(answer)[BULK_CONFIRM]["value"])
    reply = await click(known, answer, BULK_CANCEL, user=STAFF)  # forged: the preview was the admin's, ephemeral
    assert "only orderbot admins can" in reply["text"] and reply["replace_original"] is False
    assert run_row(known, run_id)["status"] == "previewed"
    assert known.rows("SELECT actor, outcome FROM audit WHERE action = 'bulk'") == [(STAFF, "refused")]


# --- the run ------------------------------------------------------------------------------------------------------


async def test_confirm_runs_each_order_through_actions_with_progress_and_a_summary(known: World):
    names = archivable(known, 12)
    answer = await known.command(f"archive {' '.join(names)}")
    run_id = int(buttons(answer)[BULK_CONFIRM]["value"])
    reply = await click(known, answer, BULK_CONFIRM)
    assert reply["replace_original"] is True and "started" in reply["text"]
    summary = await finished(known, run_id)

    ids = dict(known.rows("SELECT name, id FROM orders"))
    assert sorted(closed_ids(known)) == sorted(ids[n] for n in names), "one orderClose per order"
    audit = known.rows("SELECT o.name, a.actor, a.outcome FROM audit a JOIN orders o ON o.id = a.order_id")
    assert sorted(audit) == sorted((n, ADMIN, "done") for n in names), "one audit row per order"
    assert item_counts(known, run_id) == Counter({"done": 12})
    assert "12 orders archived of 12" in shown(summary) and BULK_STOP not in buttons(summary)

    posts = [c for c in known.slack.calls_to("chat.postMessage") if "Archiving 12 orders" in c.args.get("text", "")]
    assert len(posts) == 1 and BULK_STOP in shown(posts[0].args | {"blocks": posts[0].args.get("blocks", [])})
    updates = [
        c for c in known.slack.calls_to("chat.update") if c.args.get("ts") == run_row(known, run_id)["message_ts"]
    ]
    assert updates, "the progress message is updated in place"
    moments = [posts[0].at] + [c.at for c in updates]
    assert all(b - a >= 0.95 for a, b in itertools.pairwise(moments)), "at most one update a second"
    assert known.rows("SELECT count(*) FROM bulk_runs WHERE id = ? AND confirmed_by = ?", (run_id, ADMIN)) == [(1,)]


async def test_an_archive_checks_its_orders_in_batches_and_reads_in_full_only_one_that_changed(known: World):
    """N orders cost at most ceil(N/14) batch checks and N orderCloses: no full Order read per order before or after
    its archive (the stored copy stands while the check finds it current, the alert catches up from orderClose's
    payload); only an order edited in Shopify since orderbot stored it is read in full, and still archived."""
    names = archivable(known, 30)
    ids = dict(known.rows("SELECT name, id FROM orders"))
    answer = await known.command(f"archive {' '.join(names)}")
    run_id = int(buttons(answer)[BULK_CONFIRM]["value"])
    edited = known.sandbox.orders[ids[names[5]]]
    edited["updated_at"] = datetime.now(UTC)  # edited in the Shopify admin after the preview
    edited["tags"] = [*edited.get("tags", []), "vip"]
    first_op = len(known.sandbox.operations)
    await click(known, answer, BULK_CONFIRM)
    await finished(known, run_id)

    during = Counter(op.operation_name for op in known.sandbox.operations[first_op:] if op.outcome == "ok")
    assert item_counts(known, run_id) == Counter({"done": 30})
    assert sorted(closed_ids(known)) == sorted(ids[n] for n in names), "one orderClose per order"
    assert during["Order"] == 0, "no full read with line items"
    assert during["OrderWithoutLines"] == 1, "only the edited order is read in full"
    assert during["OrderStates"] <= math.ceil(30 / 14)
    assert sum(during.values()) <= math.ceil(30 / 14) + 30 + 1
    still_open = known.rows(
        f"SELECT name FROM orders WHERE is_open = 1 AND name IN ({','.join('?' * len(names))})", tuple(names)
    )
    assert still_open == [], "the stored orders show the archive"


async def test_a_second_confirm_does_not_start_the_run_twice(known: World):
    names = archivable(known, 3)
    answer = await known.command(f"archive {' '.join(names)}")
    run_id = int(buttons(answer)[BULK_CONFIRM]["value"])
    await click(known, answer, BULK_CONFIRM)
    second = await click(known, answer, BULK_CONFIRM)
    assert "already started" in second["text"]
    await finished(known, run_id)
    assert len(closed_ids(known)) == 3


async def test_orders_shopify_refuses_fail_with_the_reason_and_the_rest_are_done(known: World):
    names = archivable(known, 8)
    answer = await known.command(f"archive {' '.join(names)}")
    run_id = int(buttons(answer)[BULK_CONFIRM]["value"])
    known.sandbox.fail_next("user_errors", times=3, message="Order is locked by an app")
    await click(known, answer, BULK_CONFIRM)
    summary = shown(await finished(known, run_id))

    assert item_counts(known, run_id) == Counter({"done": 5, "failed": 3})
    assert len(closed_ids(known)) == 5
    failed = [
        n for (n,) in known.rows("SELECT order_name FROM bulk_items WHERE run_id = ? AND status = 'failed'", (run_id,))
    ]
    assert "Failed 3" in summary and "Order is locked by an app. Fix that in Shopify, then try again. (3)" in summary
    assert all(name in summary for name in failed)
    outcomes = Counter(o for (o,) in known.rows("SELECT outcome FROM audit WHERE action = 'archive'"))
    assert outcomes == Counter({"done": 5, "failed": 3})


async def test_orders_done_meanwhile_are_skipped_as_already_done(known: World):
    names = archivable(known, 4)
    answer = await known.command(f"archive {' '.join(names)}")
    run_id = int(buttons(answer)[BULK_CONFIRM]["value"])
    ids = dict(known.rows("SELECT name, id FROM orders"))
    known.sandbox.orders[ids[names[0]]]["closed_at"] = datetime.now(UTC)  # archived in the Shopify admin meanwhile
    await click(known, answer, BULK_CONFIRM)
    summary = shown(await finished(known, run_id))
    assert item_counts(known, run_id) == Counter({"done": 3, "skipped": 1})
    assert "Skipped 1" in summary and f"already done (1): {names[0]}" in summary
    assert ids[names[0]] not in closed_ids(known)


async def test_stop_mid_run_leaves_the_rest_untouched_and_the_summary_says_so(known: World):
    names = archivable(known, 20)
    slow_shopify(known, orders_per_second=2)
    answer = await known.command(f"archive {' '.join(names)}")
    run_id = int(buttons(answer)[BULK_CONFIRM]["value"])
    await click(known, answer, BULK_CONFIRM)
    await wait_for(lambda: item_counts(known, run_id)["done"] >= 3, 30)

    reply = await click(known, progress(known, run_id), BULK_STOP)
    assert "Stopping" in reply["text"] and reply["replace_original"] is False
    summary = shown(await finished(known, run_id))

    counts = item_counts(known, run_id)
    assert run_row(known, run_id)["status"] == "stopped" and run_row(known, run_id)["stopped_by"] == ADMIN
    assert counts["pending"] > 0 and counts["done"] + counts["pending"] == 20
    assert len(closed_ids(known)) == counts["done"], "nothing changed on the orders not started"
    assert f"{counts['pending']} orders not started because of the stop" in summary
    assert f"<@{ADMIN}> stopped" in summary


async def test_a_restart_mid_run_resumes_without_repeating_finished_orders(known: World):
    names = archivable(known, 16)
    slow_shopify(known, orders_per_second=2)
    answer = await known.command(f"archive {' '.join(names)}")
    run_id = int(buttons(answer)[BULK_CONFIRM]["value"])
    await click(known, answer, BULK_CONFIRM)
    await wait_for(lambda: item_counts(known, run_id)["done"] >= 3, 30)

    await known.stop_server()  # a deploy: orders in flight finish, the run stays active
    done_before = item_counts(known, run_id)["done"]
    assert run_row(known, run_id)["status"] == "running" and done_before < 16
    assert len(closed_ids(known)) == done_before

    app = create_app(known.settings(), reconcile=False)
    known.runner, known.url = await serve(app)
    known.app = app
    summary = shown(await finished(known, run_id))

    ids = dict(known.rows("SELECT name, id FROM orders"))
    assert sorted(closed_ids(known)) == sorted(ids[n] for n in names), "each order closed exactly once"
    assert item_counts(known, run_id) == Counter({"done": 16})
    archive_audit = Counter(o for (o,) in known.rows("SELECT order_id FROM audit WHERE action = 'archive'"))
    assert set(archive_audit.values()) == {1}, "one audit row per order"
    assert "16 orders archived of 16" in summary


async def test_throttling_never_fails_an_order(known: World):
    names = archivable(known, 6)
    slow_shopify(known, orders_per_second=3)
    answer = await known.command(f"archive {' '.join(names)}")
    run_id = int(buttons(answer)[BULK_CONFIRM]["value"])
    known.sandbox.fail_next("throttled", times=4)
    await click(known, answer, BULK_CONFIRM)
    await finished(known, run_id)
    assert item_counts(known, run_id) == Counter({"done": 6})
    assert any(op.outcome == "throttled" for op in known.sandbox.operations)
    assert len(closed_ids(known)) == 6


# --- other actions ------------------------------------------------------------------------------------------------


async def test_bulk_snooze_gives_every_order_the_same_length(known: World):
    answer = await known.command("snooze #1001-#1003 1d")
    run_id = int(buttons(answer)[BULK_CONFIRM]["value"])
    assert "snoozed for 1d" in shown(answer)
    await click(known, answer, BULK_CONFIRM)
    await finished(known, run_id)
    snoozed = known.rows("SELECT o.name FROM snoozes s JOIN orders o ON o.id = s.order_id ORDER BY o.name")
    assert snoozed == [("#1001",), ("#1002",), ("#1003",)]
    inputs = {json.loads(i)["for"] for (i,) in known.rows("SELECT inputs FROM audit WHERE action = 'snooze'")}
    assert inputs == {"1d"}


async def test_bulk_fulfil_ships_only_orders_with_a_known_tracking_number(known: World):
    answer = await known.command("fulfill #1001 #1010")
    text = shown(answer)
    assert "1 order will be skipped, no tracking number known" in text and "#1001" in text
    run_id = int(buttons(answer)[BULK_CONFIRM]["value"])
    await click(known, answer, BULK_CONFIRM)
    summary = shown(await finished(known, run_id))

    created = [
        op.variables["fulfillment"]
        for op in known.sandbox.operations
        if op.operation_name == "FulfillmentCreate" and op.outcome == "ok"
    ]
    shipped = known.rows("SELECT record FROM orders WHERE name = '#1010'")[0][0]
    number = json.loads(shipped)["fulfillments"][0]["tracking"][0]["number"]
    assert len(created) == 1 and created[0]["trackingInfo"]["number"] == number
    assert created[0]["notifyCustomer"] is False
    refused = known.rows("SELECT outcome, error FROM audit a JOIN orders o ON o.id = a.order_id WHERE o.name = '#1001'")
    assert refused == [("refused", "no tracking number known; fulfil it from its alert")]
    assert "Skipped 1" in summary and "#1001" in summary


async def test_bulk_notify_sends_each_customer_the_notice_for_their_reason(known: World):
    answer = await known.command("notify #1002 #1003")
    run_id = int(buttons(answer)[BULK_CONFIRM]["value"])
    await click(known, answer, BULK_CONFIRM)
    await finished(known, run_id)
    assert item_counts(known, run_id) == Counter({"done": 2})
    subjects = sorted(m.message["Subject"] for m in known.smtp.messages)
    assert subjects == ["An update on your order #1002", "Please check the payment for your order #1003"]


async def test_healthz_still_answers_during_a_run(known: World):
    names = archivable(known, 6)
    slow_shopify(known, orders_per_second=2)
    answer = await known.command(f"archive {' '.join(names)}")
    run_id = int(buttons(answer)[BULK_CONFIRM]["value"])
    await click(known, answer, BULK_CONFIRM)
    async with aiohttp.ClientSession() as http, http.get(f"{known.url}/healthz") as response:
        assert response.status == 200
    await finished(known, run_id)


async def test_what_a_bulk_run_did_reaches_slack_after_news_and_clicks(known: World):
    """A run over hundreds of orders queues an alert update and a thread reply for each: they wait behind new alerts
    (priority 1) and what a person just clicked (0), ahead only of re-worded old alerts."""

    def posted() -> list[str]:
        return [n for (n,) in known.rows("SELECT o.name FROM alerts a JOIN orders o ON o.id = a.order_id WHERE a.ts")]

    await wait_for(lambda: len(posted()) >= 4, 20)  # alerts are posted one a second; a reply needs a posted alert
    *in_bulk, single = sorted(posted())[:4]
    answer = await known.command("archive " + " ".join(in_bulk))
    run_id = int(buttons(answer)[BULK_CONFIRM]["value"])
    await click(known, answer, BULK_CONFIRM)
    await finished(known, run_id)
    await known.command(f"archive {single}")  # one order, typed: as a click
    replies = known.rows(
        "SELECT o.name, x.priority FROM outbox x JOIN orders o ON o.id = x.order_id WHERE kind = 'reply'"
    )
    assert sorted(replies) == sorted([*((name, 2) for name in in_bulk), (single, 0)])
    news = known.rows(
        "SELECT DISTINCT priority FROM outbox WHERE kind = 'alert' AND order_id NOT IN"
        " (SELECT id FROM orders WHERE name IN (?, ?, ?, ?))",
        (*in_bulk, single),
    )
    assert news == [(1,)]


async def test_a_preview_never_confirmed_is_forgotten_after_a_day(known: World):
    stale = await known.command("archive #1001 #1002")
    stale_id = int(buttons(stale)[BULK_CONFIRM]["value"])
    day_ago = (datetime.now(UTC) - timedelta(days=1, minutes=1)).isoformat()
    with closing(sqlite3.connect(known.db_path)) as conn, conn:
        conn.execute("UPDATE bulk_runs SET created_at = ? WHERE id = ?", (day_ago, stale_id))
    fresh = await known.command("archive #1003 #1004")  # the next preview expires the old ones
    assert int(buttons(fresh)[BULK_CONFIRM]["value"]) != stale_id
    assert known.rows("SELECT count(*) FROM bulk_items WHERE run_id = ?", (stale_id,)) == [(0,)]
    reply = await click(known, stale, BULK_CONFIRM)
    assert "That preview has expired" in reply["text"]
    assert not closed_ids(known)
