"""Cancelling an order, end to end, as Shopify does it: in the background. orderCancel answers a job that is not done;
the alert says "cancellation requested" (no button to cancel again) until Shopify shows the order cancelled, then is
resolved and the thread told. A lost answer, a restart, a job that ends without cancelling and a request that never
reached Shopify each end with the alert showing the order as it is, and never with a second cancellation sent.

The sandbox holds its jobs until the test lets them run (`finish_jobs`); the follow-up checks every 50-200 ms here
(the product: from 1 s to 30 s, giving up after 10 minutes)."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import pytest

from bot.flows.cancellations import FollowUp
from bot.sandbox.serving import serve
from bot.web import create_app
from tests.conftest import ADMIN, World, order_gid_of, running_world, wait_for
from tests.reliability.test_lost_answers import act, applied, audited, sent
from tests.slack.test_actions_e2e import action_ids, alert_text, ephemeral_to, stuck_alert

FAST = FollowUp(first_check=0.05, longest_wait=0.2)  # gives up after FollowUp's 10 minutes, as the product
ORDER = 1004


class Clock:
    """The server's clock, which a test moves on (the follow-up gives up after ten minutes of it)."""

    def __init__(self):
        self.at = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.at


@asynccontextmanager
async def held_jobs_world(sandbox, tmp_path, **app_options) -> AsyncIterator[World]:
    shop, _ = sandbox
    shop.job_delay = math.inf  # Shopify's cancellation jobs run when the test says
    options = {"cancel_follow_up": FAST, **app_options}
    async with running_world(sandbox, tmp_path, app_options=options) as started:
        yield started


@pytest.fixture
async def world(sandbox, tmp_path) -> AsyncIterator[World]:
    async with held_jobs_world(sandbox, tmp_path) as started:
        yield started


def replies(world: World, number: int = ORDER) -> list[str]:
    return [reply["text"] for reply in world.alert(number)["replies"]]


async def requested(world: World) -> dict:
    """The alert once it says the cancellation is requested: without buttons."""
    alert = await world.wait_for_alert(ORDER, lambda a: "Cancellation requested" in alert_text(a))
    assert action_ids(alert) == [], "a second cancel must not be offered while Shopify is cancelling"
    return alert


async def cancelled(world: World) -> dict:
    """Shopify has cancelled it: the alert is resolved, saying who, and the thread is told."""
    alert = await world.wait_for_alert(ORDER, lambda a: "Resolved" in alert_text(a))
    assert "Now cancelled" in alert_text(alert) and action_ids(alert) == ["delete"]
    await wait_for(lambda: any(f"Shopify has cancelled #{ORDER}" in text for text in replies(world)))
    assert world.rows("SELECT count(*) FROM cancellations") == [(0,)]
    return alert


def order_in_shopify(world: World) -> dict:
    return world.sandbox.orders[order_gid_of(world.sandbox, ORDER)]


async def test_the_alert_says_requested_until_shopify_has_cancelled_and_a_second_click_sends_nothing(world: World):
    stale = await stuck_alert(world, ORDER)
    await act(world, ORDER, "cancel_order")
    await requested(world)
    (row,) = await audited(world, ORDER, "cancel_order", 1)
    assert row["outcome"] == "done"
    ((job_id,),) = world.rows("SELECT job_id FROM cancellations")
    assert job_id.startswith("gid://shopify/Job/")
    await wait_for(lambda: any(op.variables == {"id": job_id} for op in sent(world, "Job")))  # followed by its job
    assert order_in_shopify(world)["cancelled_at"] is None
    await wait_for(lambda: any(f"asked Shopify to cancel #{ORDER}" in text for text in replies(world)))

    await act(world, ORDER, "cancel_order", on=stale)  # a screen that still shows the button
    rows = await audited(world, ORDER, "cancel_order", 2)
    assert rows[-1]["outcome"] == "already", rows
    assert f"Shopify is already cancelling #{ORDER}: <@{ADMIN}> asked just now" in await ephemeral_to(world, ADMIN)

    world.sandbox.finish_jobs()
    done = await cancelled(world)
    assert f"<@{ADMIN}> cancelled #{ORDER} (reason customer, no refund)" in alert_text(done)
    assert len(sent(world, "OrderCancel")) == 1
    resolved = world.rows(
        "SELECT r.reason FROM resolutions r JOIN orders o ON o.id = r.order_id WHERE o.name = ?", (f"#{ORDER}",)
    )
    assert len(resolved) == 1, "the digest counts it resolved once, when the person asked"


async def test_a_job_shopify_finishes_at_once_is_confirmed_from_the_stored_order_without_asking_for_the_job(
    world: World,
):
    world.sandbox.job_delay = 0.0  # done by the next request: the re-read right after the mutation sees it
    await stuck_alert(world, ORDER)
    await act(world, ORDER, "cancel_order")
    await cancelled(world)
    assert not sent(world, "Job")


async def test_a_lost_answer_while_the_job_is_in_flight_is_already_requested_never_try_again(world: World):
    stale = await stuck_alert(world, ORDER)
    world.sandbox.fail_next("lost_answer")  # Shopify took it and queued the job; its answer never arrived
    await act(world, ORDER, "cancel_order")
    (row,) = await audited(world, ORDER, "cancel_order", 1)
    assert row["outcome"] == "done" and "may be under way" in row["error"]
    await requested(world)
    await wait_for(lambda: any("Shopify did not answer, so it may be cancelling it now" in t for t in replies(world)))
    assert not any("try again" in text.lower() for text in replies(world))
    assert world.rows("SELECT job_id FROM cancellations") == [(None,)]  # its id was in the lost answer

    await act(world, ORDER, "cancel_order", on=stale)
    rows = await audited(world, ORDER, "cancel_order", 2)
    assert rows[-1]["outcome"] == "already", rows
    assert len(sent(world, "OrderCancel")) == 1, "a cancellation under way was sent again"

    world.sandbox.finish_jobs()
    await cancelled(world)  # found by re-reading the order, the job being unknown
    assert len(sent(world, "OrderCancel")) == 1


async def test_a_request_that_never_reached_shopify_is_settled_after_the_wait_and_then_done_once(sandbox, tmp_path):
    clock = Clock()
    async with held_jobs_world(sandbox, tmp_path, now=clock) as world:
        await a_request_that_never_reached_shopify(world, clock)


async def a_request_that_never_reached_shopify(world: World, clock: Clock) -> None:
    await stuck_alert(world, ORDER)
    world.sandbox.fail_next("dropped")  # the connection dropped before Shopify had it
    await act(world, ORDER, "cancel_order")
    (row,) = await audited(world, ORDER, "cancel_order", 1)
    assert row["outcome"] == "done" and "may be under way" in row["error"]
    await requested(world)
    reads = len(sent(world, "Order"))
    await wait_for(lambda: len(sent(world, "Order")) > reads)  # the follow-up re-reads the order: no job to ask about
    assert world.rows("SELECT count(*) FROM cancellations") == [(1,)] and not sent(world, "Job")

    # Nothing is under way: once the follow-up gives up, the buttons are back and the thread says what to do.
    clock.at += FAST.give_up_after
    back = await world.wait_for_alert(ORDER, lambda a: "cancel_order" in action_ids(a))
    assert "Cancellation requested" not in alert_text(back)
    await wait_for(lambda: any("most likely never reached it" in text for text in replies(world)))
    assert not applied(world, "OrderCancel") and not world.sandbox.jobs

    world.sandbox.job_delay = 0.0
    await act(world, ORDER, "cancel_order")
    await cancelled(world)
    assert len(applied(world, "OrderCancel")) == 1


async def test_a_job_that_ends_without_cancelling_brings_the_buttons_back_and_says_so(world: World):
    await stuck_alert(world, ORDER)
    await act(world, ORDER, "cancel_order")
    await requested(world)
    world.sandbox.finish_jobs(succeed=False)
    back = await world.wait_for_alert(ORDER, lambda a: "cancel_order" in action_ids(a))
    assert "Resolved" not in alert_text(back)
    await wait_for(lambda: any(f"but #{ORDER} is not cancelled" in text for text in replies(world)))
    assert world.rows("SELECT count(*) FROM cancellations") == [(0,)]


async def test_a_restart_while_shopify_is_cancelling_still_settles_it(world: World):
    await stuck_alert(world, ORDER)
    await act(world, ORDER, "cancel_order")
    await requested(world)
    await world.slack_caught_up()
    await world.stop_server()
    assert world.rows("SELECT count(*) FROM cancellations WHERE job_id IS NOT NULL") == [(1,)]

    world.sandbox.finish_jobs()  # Shopify went on while orderbot was down
    world.runner, world.url = await serve(create_app(world.settings(), reconcile=False, cancel_follow_up=FAST))
    await cancelled(world)


async def test_the_orders_cancelled_webhook_resolves_the_alert_and_the_follow_up_needs_no_shopify_call(
    sandbox, tmp_path
):
    patient = FollowUp(first_check=3600.0)  # the follow-up does not look while the webhook does its work
    async with held_jobs_world(sandbox, tmp_path, cancel_follow_up=patient) as world:
        await stuck_alert(world, ORDER)
        await act(world, ORDER, "cancel_order")
        await requested(world)
        world.sandbox.finish_jobs()
        await world.order_webhook(ORDER, "orders/cancelled")  # Shopify tells once its job has cancelled the order
        done = await world.wait_for_alert(ORDER, lambda a: "Resolved" in alert_text(a))
        assert "Now cancelled" in alert_text(done) and not sent(world, "Job")
        await world.slack_caught_up()
        await world.stop_server()

        reads = len(world.sandbox.operations)
        world.runner, world.url = await serve(create_app(world.settings(), reconcile=False, cancel_follow_up=FAST))
        await cancelled(world)  # the restarted follow-up settles it from the stored order
        about_orders = [op for op in world.sandbox.operations[reads:] if op.operation_name in ("Job", "Order")]
        assert about_orders == [], "no Shopify call was needed (the start reads the shop's name, nothing else)"
