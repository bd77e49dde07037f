"""A mutation Shopify applied but whose answer never arrived must not be done twice, and the person must be told
what really happened: orderbot re-reads the order and asks the action's own checks, without sending anything.

The sandbox drops the connection after applying the mutation (`lost_answer`) or before applying it (`dropped`); the
client cannot tell the two apart, so only the re-read can."""

from __future__ import annotations

import pytest

from tests.conftest import ADMIN, World, order_gid_of, wait_for
from tests.slack.test_actions_e2e import action_ids, ephemeral_to, opened_view, stuck_alert

CANCEL_VALUES = {"reason": {"reason": ("static_select", "CUSTOMER")}}
FULFILL_VALUES = {"tracking_number": {"tracking_number": ("plain_text_input", "1Z999AA10123456784")}}


def sent(world: World, operation: str) -> list:
    """Every request of `operation` that reached the sandbox, whatever became of its answer."""
    return [op for op in world.sandbox.operations if op.operation_name == operation]


def applied(world: World, operation: str) -> list:
    return [op for op in sent(world, operation) if op.outcome in ("ok", "lost_answer")]


FORMS = {"fulfill": ("fulfill_modal", FULFILL_VALUES), "cancel_order": ("cancel_order_modal", CANCEL_VALUES)}


async def act(world: World, number: int, action: str, *, on: dict | None = None) -> None:
    """Click the button (on `on`, an older copy of the alert: a screen not yet refreshed); for the actions that open
    a form, fill it in and submit it."""
    views_before = len(world.slack.opened_views)
    await world.click(number, action, message=on)
    if action in FORMS:
        callback_id, values = FORMS[action]
        await wait_for(lambda: len(world.slack.opened_views) > views_before)
        await world.submit(await opened_view(world, callback_id), values)


async def audited(world: World, number: int, action: str, count: int) -> list[dict]:
    await wait_for(lambda: len([r for r in world.audit(number) if r["action"] == action]) >= count)
    return [r for r in world.audit(number) if r["action"] == action]


CASES = [
    # order, action, the mutation it sends, how the order shows it applied
    pytest.param(1001, "archive", "OrderClose", lambda o: o["closed_at"] is not None, id="archive"),
    pytest.param(1001, "fulfill", "FulfillmentCreate", lambda o: len(o["fulfillments"]) == 1, id="fulfill"),
    pytest.param(1005, "release_hold", "HoldRelease", None, id="release-hold"),
    pytest.param(1008, "request_fulfillment", "FulfillmentRequestSubmit", None, id="request"),
    pytest.param(1009, "cancel_request", "CancellationRequestSubmit", None, id="cancel-request"),
    pytest.param(1004, "cancel_order", "OrderCancel", lambda o: o["cancelled_at"] is not None, id="cancel-order"),
    pytest.param(1004, "capture_payment", "OrderCapture", lambda o: o["financial_status"] == "PAID", id="capture"),
    pytest.param(1003, "mark_as_paid", "OrderMarkAsPaid", lambda o: o["financial_status"] == "PAID", id="mark-paid"),
]


@pytest.mark.parametrize(("number", "action", "operation", "shows_applied"), CASES)
async def test_an_applied_mutation_whose_answer_was_lost_counts_as_done_and_is_never_sent_again(
    world: World, number, action, operation, shows_applied
):
    alert = await stuck_alert(world, number)
    world.sandbox.fail_next("lost_answer")
    await act(world, number, action)
    (row,) = await audited(world, number, action, 1)
    assert row["outcome"] == "done", row
    await wait_for(lambda: any(ADMIN in r["text"] for r in world.alert(number)["replies"]))  # the thread hears it
    assert len(sent(world, operation)) == 1
    if shows_applied:
        assert shows_applied(world.sandbox.orders[order_gid_of(world.sandbox, number)])

    await act(world, number, action, on=alert)  # a second try, from a screen that still shows the buttons
    rows = await audited(world, number, action, 2)
    assert rows[-1]["outcome"] == "already"
    assert len(sent(world, operation)) == 1, "a mutation that applied was sent again"


# A cancellation is not among them: Shopify cancels in the background, so a re-read cannot tell a request that never
# arrived from one under way (tests/slack/test_cancellation_e2e.py).
@pytest.mark.parametrize(
    ("number", "action", "operation", "shows_applied"), [case for case in CASES if case.id != "cancel-order"]
)
async def test_a_mutation_lost_before_it_applied_is_reported_not_done_and_the_retry_does_it_once(
    world: World, number, action, operation, shows_applied
):
    alert = await stuck_alert(world, number)
    world.sandbox.fail_next("dropped")
    await act(world, number, action)
    text = await ephemeral_to(world, ADMIN)
    assert f"#{number} shows no change" in text and "will not be done twice" in text, text
    (row,) = await audited(world, number, action, 1)
    assert row["outcome"] == "failed" and "not applied" in row["error"]
    assert not applied(world, operation)
    assert action_ids(world.alert(number)) == action_ids(alert), "the buttons stay: nothing changed"

    await act(world, number, action)
    rows = await audited(world, number, action, 2)
    assert rows[-1]["outcome"] == "done"
    assert len(applied(world, operation)) == 1
    if shows_applied:
        assert shows_applied(world.sandbox.orders[order_gid_of(world.sandbox, number)])


async def test_when_the_order_cannot_be_re_read_the_person_is_told_to_check_it_in_shopify(world: World):
    await stuck_alert(world, 1001)
    world.sandbox.fail_next("lost_answer")
    world.sandbox.fail_next("http_503", times=4)  # every attempt of the re-read that follows
    await world.click(1001, "archive")
    text = await ephemeral_to(world, ADMIN)
    assert "cannot tell whether #1001 changed" in text and "Check the order in Shopify" in text
    (row,) = await audited(world, 1001, "archive", 1)
    assert row["outcome"] == "failed" and "could not tell" in row["error"]
    assert len(sent(world, "OrderClose")) == 1


async def test_a_lost_answer_to_the_notified_tag_does_not_send_the_email_again(world: World):
    await stuck_alert(world, 1002)
    await world.click(1002, "notify_customer")
    view = await opened_view(world, "notify_modal")
    world.sandbox.fail_next("lost_answer")
    await world.submit(
        view,
        {
            "subject": {"subject": ("plain_text_input", "Your order #1002")},
            "message": {"message": ("plain_text_input", "Your blanket ships on Monday.")},
        },
    )
    (row,) = await audited(world, 1002, "notify_customer", 1)
    assert row["outcome"] == "done"
    assert len(world.smtp.messages) == 1
    assert len(sent(world, "TagsAdd")) == 1
