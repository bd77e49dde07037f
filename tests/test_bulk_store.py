"""Bulk runs in the store: a bulk cancel's choices kept on its run at the confirmation, and each requested
cancellation's settlement kept on its item, whatever order the run and the follower write in."""

from __future__ import annotations

import sqlite_utils

from bot.store import Store
from bot.store.schema import _m11_summary_shown
from tests.old_schema import migrate_to_before

ORDERS = [(f"gid://shopify/Order/{n}", f"#{n}") for n in (1, 2, 3)]
CHOICES = {"reason": "CUSTOMER", "refund": "store_credit", "restock": True, "notify_customer": False}


async def cancel_run(store: Store) -> int:
    return await store.create_bulk_run(
        action="cancel_order", command="cancel #1-#3", inputs={}, actor="U0ADMIN", orders=ORDERS
    )


async def test_the_choices_made_at_the_confirmation_are_kept_on_the_run_once(tmp_path):
    store = await Store(str(tmp_path / "o.db")).open()
    run_id = await cancel_run(store)
    assert await store.start_bulk_run(run_id, "U0ADMIN", CHOICES)
    assert (await store.bulk_run(run_id))["inputs"] == CHOICES
    assert not await store.start_bulk_run(run_id, "U0ADMIN", {**CHOICES, "refund": "none"}), "a second submission"
    assert (await store.bulk_run(run_id))["inputs"] == CHOICES
    await store.close()


async def test_a_settlement_is_kept_on_the_latest_started_runs_item_even_before_the_run_marks_it_done(tmp_path):
    store = await Store(str(tmp_path / "o.db")).open()
    earlier = await cancel_run(store)
    await store.start_bulk_run(earlier, "U0ADMIN", CHOICES)
    await store.finish_bulk_item(earlier, 0, status="failed", outcome="failed", message="refused")
    run_id = await cancel_run(store)
    previewed = await cancel_run(store)  # never confirmed: nothing of it was requested
    await store.start_bulk_run(run_id, "U0ADMIN", CHOICES)
    await store.finish_bulk_item(run_id, 0, status="done", outcome="done", message="asked")

    assert await store.settle_bulk_items(ORDERS[0][0], "cancelled") == [run_id]
    assert await store.settle_bulk_items(ORDERS[0][0], "cancelled") == [], "settled once"
    assert await store.settle_bulk_items(ORDERS[1][0], "not_cancelled") == [run_id]  # the follower came first
    await store.finish_bulk_item(run_id, 1, status="done", outcome="done", message="asked")
    settled = {item["order_id"]: item["settled"] for item in await store.bulk_items(run_id)}
    assert settled == {ORDERS[0][0]: "cancelled", ORDERS[1][0]: "not_cancelled", ORDERS[2][0]: None}
    assert all(item["settled"] is None for item in await store.bulk_items(earlier))
    assert all(item["settled"] is None for item in await store.bulk_items(previewed))
    assert await store.settle_bulk_items("gid://shopify/Order/99", "cancelled") == []
    await store.close()


async def test_a_summary_showing_fewer_settled_cancellations_than_are_settled_is_stale(tmp_path):
    store = await Store(str(tmp_path / "o.db")).open()
    run_id = await cancel_run(store)
    await store.start_bulk_run(run_id, "U0ADMIN", CHOICES)
    for position in range(3):
        await store.finish_bulk_item(run_id, position, status="done", outcome="done", message="asked")
    await store.set_bulk_message(run_id, "C1", "1.000")
    assert await store.stale_summaries() == [], "a run under way draws its own progress"
    await store.end_bulk_run(run_id)
    assert await store.stale_summaries() == [run_id], "ended, and no summary recorded as drawn"
    await store.summary_shown(run_id, 0)
    assert await store.stale_summaries() == []

    await store.settle_bulk_items(ORDERS[0][0], "cancelled")  # the process stops here, before drawing it
    assert await store.stale_summaries() == [run_id]
    await store.summary_shown(run_id, 1)
    assert await store.stale_summaries() == []
    await store.close()


async def test_bulk_cancels_ended_before_the_upgrade_count_as_drawn(tmp_path):
    path = str(tmp_path / "o.db")
    db = sqlite_utils.Database(path)
    migrate_to_before(db, _m11_summary_shown)
    db.execute(
        "INSERT INTO bulk_runs (id, action, actor, status, message_ts)"
        " VALUES (1, 'cancel_order', 'U0ADMIN', 'done', '1.0')"
    )
    db.conn.executemany(
        "INSERT INTO bulk_items (run_id, position, order_id, order_name, status, settled) VALUES (1, ?, ?, ?, ?, ?)",
        [(0, *ORDERS[0], "done", "cancelled"), (1, *ORDERS[1], "done", None), (2, *ORDERS[2], "failed", None)],
    )
    db.conn.commit()
    db.conn.close()

    store = await Store(path).open()
    assert (await store.bulk_run(1))["settled_shown"] == 1
    assert await store.stale_summaries() == []
    await store.close()
