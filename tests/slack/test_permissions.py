"""Admins by user id or by user group (resolved with usergroups.users.list through the sandbox Slack, cached)."""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient

from bot.sandbox.slack import SandboxSlack
from bot.slack.permissions import Permissions


async def with_slack(scopes=("chat:write", "commands", "usergroups:read")):
    slack = SandboxSlack(scopes=scopes)
    await slack.start()
    return slack, AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)


async def test_members_of_an_admin_user_group_are_admins_and_the_group_is_read_once():
    slack, client = await with_slack()
    try:
        clock = [0.0]
        permissions = Permissions(("S0ADMINS", "U0OTHER"), client, clock=lambda: clock[0])
        assert await permissions.may("U0ADMIN", "cancel_order")
        assert not await permissions.may("U0STAFF", "cancel_order")
        assert await permissions.may("U0OTHER", "cancel_request")
        assert await permissions.may("U0STAFF", "archive")  # not an admin action
        assert len(slack.calls_to("usergroups.users.list")) == 1
        clock[0] = 301.0  # the cache expires: membership changes reach orderbot within five minutes
        assert await permissions.is_admin("U0ADMIN")
        assert len(slack.calls_to("usergroups.users.list")) == 2
    finally:
        await slack.stop()


async def test_without_the_scope_a_group_grants_nothing_and_nothing_breaks():
    slack, client = await with_slack(scopes=("chat:write",))
    try:
        permissions = Permissions(("S0ADMINS",), client)
        assert not await permissions.is_admin("U0ADMIN")
        assert slack.calls_to("usergroups.users.list")[0].response["error"] == "missing_scope"
    finally:
        await slack.stop()


def test_the_refusal_says_how_to_get_permission():
    assert "SLACK_ADMINS" in Permissions((), None).refusal("cancel_order")
    assert "no admins are set" in Permissions((), None).refusal("cancel_order")
    assert "SLACK_ADMINS" in Permissions(("U1",), None).refusal("cancel_order")


async def test_an_enterprise_grid_user_id_is_a_person_not_a_group():
    permissions = Permissions(("W012A3CDE",), None)
    assert await permissions.may("W012A3CDE", "cancel_order")
    assert not await permissions.may("U012A3CDE", "cancel_order")


async def test_moving_an_order_is_for_anyone_who_may_fulfil_it():
    permissions = Permissions(("U0ADMIN",), None)
    assert await permissions.may("U0STAFF", "move") and await permissions.may("U0STAFF", "fulfill")
