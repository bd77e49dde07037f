"""The App Home tab end to end: the real server against the sandbox Slack. Opening it publishes the board; its
buttons are the alert's, answered on the Home itself; changes re-publish it at most once per window per viewer
(an injected clock), and only for people who opened it recently."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.domain.home import WATCHING_FOR
from bot.sandbox.shopify import SandboxShopify
from bot.sandbox.slack import SandboxSlack
from bot.sandbox.slack_payloads import JSON, home_click_body, home_opened_event
from bot.slack.home_blocks import HOME_SETTING, HOME_SETTING_MODAL, SETTING_VALUE
from bot.web import SLACK
from tests.conftest import ADMIN, STAFF, World, manifest_scopes, order_gid_of, running_world, wait_for

EVERY = 5.0  # HOME_REFRESH's default, in seconds


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def home_world(sandbox: tuple[SandboxShopify, str], tmp_path: Path, clock: Clock) -> AsyncIterator[World]:
    async with running_world(sandbox, tmp_path, app_options={"home_clock": clock}) as started:
        yield started


def action_ids(view: dict) -> list[str]:
    ids = [e["action_id"] for b in view["blocks"] if b["type"] == "actions" for e in b["elements"]]
    return ids + [b["accessory"]["action_id"] for b in view["blocks"] if b.get("accessory")]


def text_of(view: dict) -> str:
    return str(view["blocks"])


def home_tab(world: World):
    return world.app[SLACK].home


async def stuck(world: World, *numbers: int) -> None:
    for number in numbers:
        await world.order_webhook(number)


async def test_opening_home_publishes_the_board_with_counts_buttons_health_and_settings(home_world: World):
    await stuck(home_world, 1001, 1003, 1007)
    stuck_now = home_world.rows("SELECT reason, count(*) FROM verdicts WHERE stuck = 1 GROUP BY reason")
    assert sum(count for _, count in stuck_now) == 3

    board = await home_world.open_home(ADMIN)

    assert board["type"] == "home"
    text = text_of(board)
    for name in ("#1001", "#1003", "#1007"):
        assert name in text
    assert "Last webhook:" in text and "Parked deliveries:* 0" in text
    ids = action_ids(board)
    assert "cancel_request" in ids  # #1007's request can be cancelled by an admin
    assert HOME_SETTING in ids  # an admin may change the settings
    (call,) = home_world.slack.publishes(ADMIN)
    assert call.args["user_id"] == ADMIN


async def test_a_non_admin_sees_no_settings_and_no_admin_only_buttons(home_world: World):
    await stuck(home_world, 1001, 1003, 1007)
    board = await home_world.open_home(STAFF)
    ids = action_ids(board)
    assert "archive" in ids  # anyone may archive
    assert not {"cancel_request", "cancel_order", HOME_SETTING} & set(ids)
    assert "Settings" not in text_of(board)


async def test_the_messages_tab_publishes_nothing(home_world: World):
    body = home_opened_event(user_id=ADMIN, tab="messages")
    response = await home_world.post_slack(json.dumps(body).encode(), headers={"Content-Type": JSON})
    assert response.status == 200
    assert home_world.slack.publishes() == []


async def test_a_click_on_home_runs_the_action_and_answers_on_the_home(home_world: World):
    await stuck(home_world, 1003)
    await home_world.open_home(ADMIN)
    before = len(home_world.slack.publishes(ADMIN))
    order_id = order_gid_of(home_world.sandbox, 1003)

    response = await home_world.click_home("archive", value=order_id)
    assert response.status == 200

    await wait_for(lambda: [r for r in home_world.audit(1003) if r["action"] == "archive"])
    (row,) = [r for r in home_world.audit(1003) if r["action"] == "archive"]
    assert row["outcome"] == "done" and row["actor"] == ADMIN and row["channel"] is None
    await wait_for(lambda: "#1003" in str(home_world.slack.home(ADMIN)["blocks"][0]))  # the answer, at the top
    assert len(home_world.slack.publishes(ADMIN)) > before
    assert home_world.slack.ephemerals(ADMIN) == []  # no channel to be ephemeral in


async def test_a_staff_click_on_an_admin_button_is_refused_on_their_home(home_world: World):
    """A board drawn for an admin, clicked by someone else (a forged or stale view): the listener's own check."""
    await stuck(home_world, 1007)
    board = await home_world.open_home(ADMIN)
    await home_world.open_home(STAFF)
    order_id = order_gid_of(home_world.sandbox, 1007)
    await home_world.post_slack(home_click_body(board, "cancel_request", user_id=STAFF, value=order_id))
    await wait_for(lambda: [r for r in home_world.audit(1007) if r["action"] == "cancel_request"])
    (row,) = [r for r in home_world.audit(1007) if r["action"] == "cancel_request"]
    assert row["outcome"] == "refused"
    await wait_for(lambda: "admin" in str(home_world.slack.home(STAFF)["blocks"][0]))


async def test_an_admin_changes_a_setting_from_the_home(home_world: World):
    await home_world.open_home(ADMIN)
    await home_world.click_home(HOME_SETTING, value="threshold.on_hold")
    await wait_for(lambda: any(v["callback_id"] == HOME_SETTING_MODAL for v in home_world.slack.opened_views))
    (view,) = [v for v in home_world.slack.opened_views if v["callback_id"] == HOME_SETTING_MODAL]

    response = await home_world.submit(view, {SETTING_VALUE: {SETTING_VALUE: ("plain_text_input", "5d")}})
    assert response.status == 200 and response.text_body == ""

    await wait_for(
        lambda: home_world.rows("SELECT value FROM settings WHERE key = 'threshold.on_hold'") == [("120h",)]
    )  # saved as the command saves it
    await wait_for(lambda: "threshold.on_hold" in str(home_world.slack.home(ADMIN)["blocks"][0]))
    audit = home_world.rows("SELECT actor, outcome FROM audit WHERE action = 'settings'")
    assert audit == [(ADMIN, "done")]


async def test_an_empty_setting_is_refused_on_the_modal(home_world: World):
    await home_world.open_home(ADMIN)
    await home_world.click_home(HOME_SETTING, value="ignore_tag")
    await wait_for(lambda: any(v["callback_id"] == HOME_SETTING_MODAL for v in home_world.slack.opened_views))
    (view,) = [v for v in home_world.slack.opened_views if v["callback_id"] == HOME_SETTING_MODAL]
    response = await home_world.submit(view, {SETTING_VALUE: {SETTING_VALUE: ("plain_text_input", " ")}})
    assert '"response_action":"errors"' in response.text_body.replace(" ", "")


async def test_a_burst_of_changes_costs_one_publish_per_viewer_per_window(home_world: World, clock: Clock):
    home = home_tab(home_world)
    await home_world.open_home(ADMIN)
    await home_world.open_home(STAFF)
    numbers = [1001 + i for i in range(18)] + [1001, 1003]  # 20 webhooks: each order, two of them twice
    sent = await asyncio.gather(
        *(
            home_world.post_webhook(
                "orders/updated", home_world.sandbox.webhook_payload(order_gid_of(home_world.sandbox, n))
            )
            for n in numbers
        )
    )
    assert [r.status for r in sent] == [200] * 20
    await home_world.settled()
    await wait_for(lambda: {ADMIN, STAFF} <= home.stale)  # the changes reached the Home tab
    looked = home.looked
    home.nudge()
    await wait_for(lambda: home.looked > looked)
    # The clock has not moved: the window that opened with each viewer's first publish is still shut.
    assert len(home_world.slack.publishes(ADMIN)) == 1 and len(home_world.slack.publishes(STAFF)) == 1

    clock.now += EVERY
    home.nudge()
    await wait_for(lambda: len(home_world.slack.publishes(ADMIN)) == 2 and len(home_world.slack.publishes(STAFF)) == 2)
    looked = home.looked
    home.nudge()
    await wait_for(lambda: home.looked > looked)
    assert len(home_world.slack.publishes(ADMIN)) == 2 and len(home_world.slack.publishes(STAFF)) == 2
    stuck_count = home_world.rows("SELECT count(*) FROM verdicts WHERE stuck = 1")[0][0]
    board = text_of(home_world.slack.home(ADMIN))
    shown = min(stuck_count, 10)
    assert board.count(":warning:") + board.count(":rotating_light:") >= shown
    if stuck_count > 10:
        assert f"{stuck_count - 10} more" in board


async def test_a_viewer_who_has_not_opened_home_recently_gets_no_publishes(home_world: World, clock: Clock):
    home = home_tab(home_world)
    await home_world.open_home(STAFF)
    clock.now += WATCHING_FOR.total_seconds() + 1
    await home_world.open_home(ADMIN)
    await stuck(home_world, 1003)
    await wait_for(lambda: ADMIN in home.stale)
    clock.now += EVERY
    home.nudge()
    await wait_for(lambda: len(home_world.slack.publishes(ADMIN)) == 2)
    assert len(home_world.slack.publishes(STAFF)) == 1
    assert STAFF not in home.opened


async def test_views_publish_is_refused_when_the_home_tab_is_off(sandbox, tmp_path: Path):
    slack = SandboxSlack(scopes=manifest_scopes(), home_tab_enabled=False)
    async with running_world(sandbox, tmp_path, slack=slack) as world:
        response = await world.post_slack(
            json.dumps(home_opened_event(user_id=ADMIN)).encode(), headers={"Content-Type": JSON}
        )
        assert response.status == 200
        await wait_for(lambda: world.slack.calls_to("views.publish"))
        (call,) = world.slack.calls_to("views.publish")
        assert call.response == {"ok": False, "error": "not_enabled"}
