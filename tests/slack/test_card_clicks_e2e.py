"""Clicks on an `/orders show` card, end to end: the card is an ephemeral message in whatever channel the command was
typed, clicked as Slack sends such a click (the container says `is_ephemeral`, with the channel and a response_url,
and no copy of the message). The action runs as from the alert; the person is answered on the card, and the card is
re-drawn from the order as it stands; when the response_url takes no more posts, the answer still reaches them."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.sandbox.shopify import SandboxShopify
from bot.sandbox.slack import SandboxSlack
from tests.conftest import ADMIN, CHANNEL, STAFF, World, manifest_scopes, order_gid_of, running_world, wait_for

SUPPORT = "C0SUPPORT"  # where people talk about orders; the alerts are in CHANNEL


def action_ids(message: dict) -> list[str]:
    return [e["action_id"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]


def mutations(world: World, name: str) -> list[dict]:
    return [op.variables for op in world.sandbox.operations if op.operation_name == name]


def words_after(world: World, card: dict, user: str = ADMIN) -> list[dict]:
    """What `user` was told in the card's channel after the card, other than the card itself."""
    return [
        e
        for e in world.slack.ephemerals(user)
        if e["channel"] == card["channel"] and float(e["ts"]) > float(card["ts"]) and not action_ids(e)
    ]


async def two_channel_world(
    sandbox: tuple[SandboxShopify, str], tmp_path: Path, *, member_of: list[str]
) -> AsyncIterator[World]:
    slack = SandboxSlack(
        scopes=manifest_scopes(), channels={CHANNEL: "orders", SUPPORT: "support"}, member_of=member_of
    )
    async with running_world(sandbox, tmp_path, slack=slack) as world:
        await world.service.reconcile()
        yield world


@pytest.fixture
async def world(sandbox: tuple[SandboxShopify, str], tmp_path: Path) -> AsyncIterator[World]:
    """The alerts channel and #support, where orderbot was never invited: `/orders` works there all the same."""
    async for started in two_channel_world(sandbox, tmp_path, member_of=[CHANNEL]):
        yield started


@pytest.fixture
async def invited(sandbox: tuple[SandboxShopify, str], tmp_path: Path) -> AsyncIterator[World]:
    """As `world`, with orderbot a member of #support too (so chat.postEphemeral may answer there)."""
    async for started in two_channel_world(sandbox, tmp_path, member_of=[CHANNEL, SUPPORT]):
        yield started


async def test_a_click_on_a_card_in_another_channel_is_answered_there_and_redraws_the_card(world: World):
    alert = await world.wait_for_alert(1002, lambda a: "release_hold" in action_ids(a))
    card = await world.show_card(1002, channel=SUPPORT)
    assert "release_hold" in action_ids(card)

    response = await world.click_card(card, "release_hold")
    assert response.status == 200

    await wait_for(lambda: words_after(world, card))
    (said,) = words_after(world, card)
    assert "#1002" in said["text"] and said["source"] == "response_url"
    await wait_for(lambda: "release_hold" not in action_ids(world.card(card)))  # re-drawn in place
    assert len(mutations(world, "HoldRelease")) == 1
    assert not world.slack.calls_to("chat.postEphemeral")  # all through the click's response_url
    # the alert is brought up to date as for a click on it, and its thread tells of it
    updated = await world.wait_for_alert(1002, lambda a: "release_hold" not in action_ids(a) and bool(a["replies"]))
    assert updated["ts"] == alert["ts"] and f"<@{ADMIN}>" in updated["replies"][0]["text"]
    (row,) = world.audit(1002)
    assert (row["action"], row["outcome"], row["channel"]) == ("release_hold", "done", SUPPORT)


async def test_a_refused_click_on_a_card_is_answered_on_the_card(world: World):
    card = await world.show_card(1007, channel=SUPPORT, user=STAFF)
    assert "cancel_request" in action_ids(card)

    await world.click_card(card, "cancel_request")

    await wait_for(lambda: words_after(world, card, STAFF))
    assert "admin" in words_after(world, card, STAFF)[0]["text"].lower()
    assert not mutations(world, "CancellationRequestSubmit")
    await wait_for(lambda: world.card(card) != card)  # re-drawn: the order as it stands, its buttons unchanged
    assert action_ids(world.card(card)) == action_ids(card)
    assert [r["outcome"] for r in world.audit(1007)] == ["refused"]


async def test_a_form_opened_from_a_card_answers_on_the_card_when_submitted(world: World):
    card = await world.show_card(1001, channel=SUPPORT)
    await world.click_card(card, "fulfill")
    await wait_for(lambda: world.slack.opened_views)
    (view,) = world.slack.opened_views

    await world.submit(view, {"tracking_number": {"tracking_number": ("plain_text_input", "1Z999AA10123456784")}})

    await wait_for(lambda: words_after(world, card))
    assert "1Z999AA10123456784" in words_after(world, card)[0]["text"]
    await wait_for(lambda: "fulfill" not in action_ids(world.card(card)))
    assert len(mutations(world, "FulfillmentCreate")) == 1
    assert not world.slack.calls_to("chat.postEphemeral")


async def test_a_snooze_picked_on_a_card_redraws_it_without_buttons(world: World):
    card = await world.show_card(1005, channel=SUPPORT)
    await world.click_card(card, "snooze", option=f"{order_gid_of(world.sandbox, 1005)}|1d")

    await wait_for(lambda: words_after(world, card))
    await wait_for(lambda: not action_ids(world.card(card)))
    assert "Snoozed" in world.card(card)["text"] + str(world.card(card)["blocks"])


async def test_a_card_whose_response_url_expired_still_gets_its_answer(
    invited: World, caplog: pytest.LogCaptureFixture
):
    card = await invited.show_card(1002, channel=SUPPORT)
    expired = invited.slack.response_url(SUPPORT, ADMIN, card["ts"])
    invited.slack.expire_response_url(expired)  # as 5 posts, or 30 minutes, would

    with caplog.at_level(logging.WARNING, logger="bot.slack.listeners"):
        await invited.click_card(card, "release_hold", response_url=expired)
        await wait_for(lambda: invited.slack.calls_to("chat.postEphemeral"))

    (call,) = invited.slack.calls_to("chat.postEphemeral")
    assert (call.args["channel"], call.args["user"]) == (SUPPORT, ADMIN) and "#1002" in call.args["text"]
    assert len(mutations(invited, "HoldRelease")) == 1
    assert invited.card(card) == card  # nothing could change it
    assert "answered by chat.postEphemeral" in caplog.text and "expired_url" in caplog.text
    assert expired not in caplog.text  # the URL is a credential: never logged
