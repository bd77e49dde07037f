"""`/orders`, end to end: a signed slash command to the real server → what the person sees (the ack, or the post to
the command's response_url), what changed in the sandbox store, and the audit log."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest

from bot.domain.commands import EXAMPLES, USAGE
from bot.sandbox.seed import generate_orders
from bot.sandbox.serving import serve
from bot.sandbox.slack_payloads import block_actions_body, slash_command_body
from bot.web import SLACK, create_app
from tests.conftest import ADMIN, CHANNEL, STAFF, World, order_gid_of, wait_for


async def slash_form(world: World, text: str, callback_id: str, *, user: str = ADMIN) -> dict:
    """Type a command that opens a modal; return the modal."""
    body = slash_command_body(
        text=text, user_id=user, channel_id=CHANNEL, response_url=world.slack.response_url(CHANNEL, user)
    )
    response = await world.post_slack(body)
    assert response.status == 200 and not response.text_body
    await wait_for(lambda: any(v["callback_id"] == callback_id for v in world.slack.opened_views))
    return [v for v in world.slack.opened_views if v["callback_id"] == callback_id][-1]


def dump(payload: dict) -> str:
    return json.dumps(payload, ensure_ascii=False)


def shown(answer: dict) -> str:
    return answer.get("text", "") + " " + dump(answer.get("blocks", []))


def mutations(world: World, name: str) -> list[dict]:
    return [op.variables for op in world.sandbox.operations if op.operation_name == name]


@pytest.fixture
async def known(world: World) -> World:
    """Every seeded order known to orderbot, as after the first reconciliation."""
    await world.service.reconcile()
    return world


async def test_help_lists_every_subcommand(world: World):
    answer = await world.command("help")
    assert answer["response_type"] == "ephemeral"
    for name in USAGE:
        assert f"/orders {USAGE[name]}" in shown(answer), name


async def test_help_about_one_command_gives_its_usage_and_example(world: World):
    answer = await world.command("help archive")
    assert answer["text"] == f"`/orders {USAGE['archive']}` e.g. `/orders {EXAMPLES['archive']}`"


async def test_an_unknown_subcommand_is_answered_in_the_ack_with_a_suggestion(world: World):
    answer = await world.command("archve #1001")
    assert "archive" in answer["text"] and "Usage:" in answer["text"]
    assert answer["response_type"] == "ephemeral"
    assert world.rows("SELECT count(*) FROM audit") == [(0,)]


async def test_stuck_lists_the_stuck_orders_oldest_first_and_pages(known: World):
    answer = await known.command("stuck")
    text = shown(answer)
    stuck = known.rows("SELECT o.name FROM verdicts v JOIN orders o ON o.id = v.order_id WHERE v.stuck = 1")
    assert f"{len(stuck)} stuck orders" in answer["text"]
    for (name,) in stuck:
        assert name in text
    assert "#1012" not in text  # fresh, not stuck
    assert text.index("#1004") < text.index("#1001")  # 146 h before 70 h


async def test_stuck_filters_by_reason(known: World):
    text = shown(await known.command("stuck awaiting_tracking"))
    assert "#1009" in text and "#1018" in text and "#1001" not in text


async def test_show_gives_the_card_with_its_buttons_and_last_actions(known: World):
    await known.command("snooze #1001 4h")
    answer = await known.command("show #1001")
    text = shown(answer)
    assert "#1001" in text and "Maya Thompson" in text
    assert "Last actions" in text and "snooze" in text


async def test_show_of_a_stuck_order_has_the_alert_buttons(known: World):
    answer = await known.command("show #1005")
    ids = [e.get("action_id") for b in answer["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert "release_hold" in ids and "archive" in ids


async def test_show_of_an_unknown_order_says_so(known: World):
    answer = await known.command("show #9999")
    assert "Neither orderbot nor Shopify knows #9999" in answer["text"]


async def test_archive_one_order_runs_the_buttons_path(known: World):
    answer = await known.command("archive #1001")
    assert answer["text"].startswith(f"<@{ADMIN}> archived #1001")
    assert mutations(known, "OrderClose") == [{"input": {"id": order_gid_of(known.sandbox, 1001)}}]
    (row,) = known.audit(1001)
    assert (row["actor"], row["action"], row["outcome"], row["channel"]) == (ADMIN, "archive", "done", CHANNEL)


async def test_fulfill_with_tracking_words_fulfils_at_once(known: World):
    answer = await known.command("fulfill #1001 1Z999AA10123456784 UPS")
    assert "marked #1001 as fulfilled" in answer["text"]
    (variables,) = mutations(known, "FulfillmentCreate")
    assert variables["fulfillment"]["trackingInfo"] == {"number": "1Z999AA10123456784", "company": "UPS"}


async def test_fulfill_without_tracking_opens_the_fulfill_form(known: World):
    view = await slash_form(known, "fulfill #1001", "fulfill_modal")
    assert "#1001" in dump(view)


async def test_notify_opens_the_notice_form(known: World):
    view = await slash_form(known, "notify #1009", "notify_modal")
    assert "chloe" in dump(view).lower()


async def test_cancel_by_staff_is_refused_in_the_commands_answer_and_audited(known: World):
    answer = await known.command("cancel #1001", user=STAFF)  # no form to fill in first: it would only be refused
    assert "only orderbot admins" in answer["text"]
    assert not known.slack.opened_views
    assert [r["outcome"] for r in known.audit(1001)] == ["refused"]
    assert not mutations(known, "OrderCancel")


async def test_notify_without_an_email_address_says_so_instead_of_opening_the_form(known: World):
    order = known.sandbox.orders[order_gid_of(known.sandbox, 1005)]
    order["customer"]["email"] = order["email"] = None
    known.sandbox.touch(order)  # the edit moves its updatedAt, as any change in Shopify does: the next scan reads it
    await known.service.reconcile()
    answer = await known.command("notify #1005")
    assert "has no customer email address" in answer["text"]
    assert not known.slack.opened_views


async def test_unfulfill_cancels_the_latest_fulfillment_for_admins_only(known: World):
    refused = await known.command("unfulfill #1013", user=STAFF)
    assert "only orderbot admins" in refused["text"]
    answer = await known.command("unfulfill #1013")
    assert "cancelled the fulfillment of #1013" in answer["text"]
    assert len(mutations(known, "FulfillmentCancel")) == 1


async def test_snooze_release_hold_and_request(known: World):
    assert "snoozed #1002" in (await known.command("snooze #1002 1d"))["text"]
    assert "released the hold on #1005" in (await known.command("release-hold #1005"))["text"]
    assert len(mutations(known, "HoldRelease")) == 1
    answer = await known.command("request #1001")
    assert "no fulfillment left to request" in answer["text"] or "asked the fulfillment service" in answer["text"]


async def test_unarchive_finds_an_order_orderbot_never_saw_in_shopify(world: World):
    answer = await world.command("unarchive #1014")  # archived long ago: no webhook, not in the open-orders scan
    assert "unarchived #1014" in answer["text"]
    assert mutations(world, "OrderOpen") == [{"input": {"id": order_gid_of(world.sandbox, 1014)}}]


async def test_log_by_order_and_by_person_newest_first(known: World):
    await known.command("snooze #1002 1d")
    await known.command("archive #1001")
    await known.command("archive #1006", user=STAFF)
    by_order = shown(await known.command("log #1001"))
    assert "archive" in by_order and "#1002" not in by_order
    mine = shown(await known.command(f"log <@{ADMIN}|admin>"))
    assert mine.index("#1001") < mine.index("#1002")  # newest first
    assert "#1006" not in mine


async def test_settings_show_and_change_reclassifies(known: World):
    answer = await known.command("settings")
    assert "threshold.awaiting_tracking" in shown(answer)
    refused = await known.command("settings set threshold.unfulfilled_overdue 1h", user=STAFF)
    assert "only orderbot admins" in refused["text"]
    bad = await known.command("settings set threshold.unfulfilled_overdue soon")
    assert "not saved" in bad["text"]
    assert known.rows(
        "SELECT count(*) FROM verdicts WHERE order_id = ? AND stuck = 1", (order_gid_of(known.sandbox, 1012),)
    ) == [(0,)]
    changed = await known.command("settings set threshold.unfulfilled_overdue 1h")
    assert "set `threshold.unfulfilled_overdue` to `1h` (was `48h`)" in changed["text"]
    gid = order_gid_of(known.sandbox, 1012)  # 3 h old: stuck once the threshold is 1 h
    assert known.rows("SELECT stuck FROM verdicts WHERE order_id = ?", (gid,)) == [(1,)]
    audit = known.rows("SELECT actor, action, outcome FROM audit WHERE action = 'settings' ORDER BY id")
    assert audit == [(STAFF, "settings", "refused"), (ADMIN, "settings", "done")]


async def test_scan_says_what_it_found(world: World):
    answer = await world.command("scan")
    assert "Checked" in answer["text"] and "stuck" in answer["text"]
    assert "No webhook had told orderbot about" in answer["text"]


async def test_share_answers_in_the_channel(known: World):
    answer = await known.command("show #1001 --share")
    assert answer["response_type"] == "in_channel"


async def test_more_button_shows_the_next_page(known: World):
    for order in generate_orders(120, datetime.now(UTC)):  # more stuck orders than one page holds
        known.sandbox.add_order(order)
        known.sandbox.touch(known.sandbox.orders[order["id"]])  # new in Shopify since the last scan
    await known.service.reconcile()
    first = await known.command("stuck")
    more = next(e for b in first["blocks"] if b["type"] == "actions" for e in b["elements"])
    before = len(known.slack.responses)
    body = block_actions_body(
        action_id=more["action_id"],
        user_id=ADMIN,
        channel_id=CHANNEL,
        message_ts="1.000001",
        message={"type": "message", "ts": "1.000001", "text": first["text"], "blocks": first["blocks"]},
        response_url=known.slack.response_url(CHANNEL, ADMIN),
    )
    assert (await known.post_slack(body)).status == 200
    await wait_for(lambda: len(known.slack.responses) > before)
    second = known.slack.responses[before].body
    assert second["replace_original"] is True
    assert "Showing 21–" in shown(second)


async def test_digest_previews_to_the_person_and_posts_to_the_channel(known: World):
    preview = await known.command("digest")
    assert preview["response_type"] == "ephemeral" and "stuck" in shown(preview).lower()
    assert not [m for m in known.slack.messages(CHANNEL) if m["blocks"][0]["type"] == "header"]
    posted = await known.command("digest post")
    assert posted["text"] == f"Posted today's digest in <#{CHANNEL}>."
    (digest,) = [m for m in known.slack.messages(CHANNEL) if m["blocks"][0]["type"] == "header"]
    assert "show_stuck" in dump(digest)


async def test_a_digest_post_slack_refuses_is_told_in_words(world: World):
    world.slack.fail_next("chat.postMessage", "channel_not_found")  # no alerts queued (no orders yet) to take it
    answer = await world.command("digest post")
    assert answer["text"] == "Slack refused the digest (channel_not_found); try again."


async def test_the_digests_buttons_show_the_stuck_list_and_preview_the_suggestion(known: World):
    for action_id, value in (("show_stuck", "stuck"), ("bulk_suggestion", "archive #1013 #1014")):
        before = len(known.slack.responses)
        body = block_actions_body(
            action_id=action_id,
            user_id=ADMIN,
            channel_id=CHANNEL,
            message_ts="1.000002",
            message={
                "type": "message",
                "ts": "1.000002",
                "text": "digest",
                "blocks": [
                    {"type": "actions", "elements": [{"type": "button", "action_id": action_id, "value": value}]}
                ],
            },
            response_url=known.slack.response_url(CHANNEL, ADMIN, "1.000002"),
        )
        assert (await known.post_slack(body)).status == 200
        await wait_for(lambda before=before: len(known.slack.responses) > before)
        answer = known.slack.responses[before].body
        assert answer["response_type"] == "ephemeral" and answer["replace_original"] is False
        assert ("stuck orders" if action_id == "show_stuck" else "#1013") in shown(answer)


async def test_a_bulk_command_answers_with_its_preview_and_changes_nothing(known: World):
    answer = await known.command("archive #1001-#1003")
    assert "3 orders" in shown(answer) and "bulk_confirm" in shown(answer)
    assert not mutations(known, "OrderClose")


async def test_injection_looking_text_gets_a_usage_line_and_nothing_runs(known: World):
    orders = known.rows("SELECT count(*) FROM orders")
    answer = await known.command("archive '; DROP TABLE orders; -- <script>")
    assert "Usage:" in answer["text"] and "<script>" not in answer["text"]
    assert known.rows("SELECT count(*) FROM orders") == orders
    assert known.rows("SELECT count(*) FROM audit") == [(0,)]


async def test_the_digest_time_is_a_setting_admins_can_change(world: World):
    digests = world.app[SLACK].digests
    assert "`digest_time` = `09:00`" in shown(await world.command("settings"))
    assert "not a time of day" in (await world.command("settings set digest_time 25:00"))["text"]
    changed = await world.command("settings set digest_time 7:15")
    assert changed["text"].startswith(f"<@{ADMIN}> set `digest_time` to `07:15` (was `09:00`). The next digest comes")
    assert f"{digests.digest_time:%H:%M}" == "07:15"
    assert world.rows("SELECT value, updated_by FROM settings WHERE key = 'digest_time'") == [("07:15", ADMIN)]
    await world.stop_server()
    restarted = create_app(world.settings(), reconcile=False)  # DIGEST_TIME is still 09:00 there
    runner, _ = await serve(restarted)
    try:
        await wait_for(lambda: f"{restarted[SLACK].digests.digest_time:%H:%M}" == "07:15")
    finally:
        await runner.cleanup()


async def test_cancel_request_asks_the_service_to_cancel_for_admins_only(known: World):
    refused = await known.command("cancel-request #1009", user=STAFF)
    assert "only orderbot admins" in refused["text"]
    answer = await known.command("cancel-request #1009")
    assert "asked the fulfillment service to cancel its request for #1009" in answer["text"]
    (variables,) = mutations(known, "CancellationRequestSubmit")
    assert variables["message"] == "Cancelled from orderbot"
    assert [r["outcome"] for r in known.audit(1009)] == ["refused", "done"]


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("archive " + "#1001 " * 800, "That command is too long"),
        ("show #１００１", "#1001"),  # full-width digits, as a phone keyboard may type them
        ("snooze #1001 forever", "Usage:"),
        ("  ARCHIVE   ", "Usage:"),
    ],
)
async def test_odd_text_gets_an_answer_in_words_and_changes_nothing(known: World, text: str, said: str):
    answer = await known.command(text)
    assert said in answer["text"] or said in shown(answer)
    assert known.rows("SELECT count(*) FROM audit") == [(0,)]
    assert not mutations(known, "OrderClose")


async def test_two_scans_at_once_share_one_pass_over_shopify(world: World):
    await world.command("scan")  # the first scan sweeps; the next ones read what changed since
    before = len(world.sandbox.operations)
    await world.command("scan")
    one_pass = len([op for op in world.sandbox.operations[before:] if op.operation_name == "OrdersPage"])
    before = len(world.sandbox.operations)
    answered = len(world.slack.responses)
    await asyncio.gather(world.command("scan"), world.command("scan", user=STAFF))
    await wait_for(lambda: {r.user for r in world.slack.responses[answered:]} == {ADMIN, STAFF})
    first, second = (r.body for r in world.slack.responses[answered:])
    assert first["text"] == second["text"]
    pages = [op for op in world.sandbox.operations[before:] if op.operation_name == "OrdersPage"]
    assert len(pages) == one_pass
