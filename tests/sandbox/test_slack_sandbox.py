"""The sandbox Slack, over real HTTP, driven by slack_sdk's AsyncWebClient and Bolt as the bot drives Slack."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import pytest
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler, AsyncServerErrorRetryHandler
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.sandbox.slack import SandboxSlack
from bot.sandbox.slack_payloads import (
    block_actions_body,
    click_on_ephemeral,
    input_values,
    new_trigger_id,
    sign_request,
    slash_command_body,
    view_submission_body,
)
from tests.conftest import wait_for

CHANNEL = "C0ORDERS"
ORDER = "gid://shopify/Order/1001"
SIGNING_SECRET = "sandbox-signing-secret"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def slack() -> AsyncIterator[SandboxSlack]:
    sandbox = SandboxSlack(channels={CHANNEL: "orders", "C0ELSEWHERE": "elsewhere"}, member_of={CHANNEL})
    await sandbox.start()
    yield sandbox
    await sandbox.stop()


@pytest.fixture
def client(slack: SandboxSlack) -> AsyncWebClient:
    return AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)


async def slack_error(call: Any) -> SlackApiError:
    with pytest.raises(SlackApiError) as raised:
        await call
    return raised.value


def alert_blocks(order: str = ORDER) -> list[dict]:
    return [
        {"type": "section", "block_id": "summary", "text": {"type": "mrkdwn", "text": "*#1001* awaiting tracking"}},
        {
            "type": "actions",
            "block_id": "order_actions",
            "elements": [
                {
                    "type": "button",
                    "action_id": "fulfill",
                    "text": {"type": "plain_text", "text": "Fulfill"},
                    "value": order,
                },
                {
                    "type": "button",
                    "action_id": "archive",
                    "text": {"type": "plain_text", "text": "Archive"},
                    "value": order,
                },
            ],
        },
    ]


def fulfill_modal(**extra: Any) -> dict:
    return {
        "type": "modal",
        "callback_id": "fulfill_modal",
        "private_metadata": ORDER,
        "title": {"type": "plain_text", "text": "Fulfill #1001"},
        "submit": {"type": "plain_text", "text": "Fulfill"},
        "blocks": [
            {
                "type": "input",
                "block_id": "tracking",
                "label": {"type": "plain_text", "text": "Tracking number"},
                "element": {"type": "plain_text_input", "action_id": "tracking_number"},
            }
        ],
        **extra,
    }


# --- Web API methods --------------------------------------------------------------------------------------------------


async def test_auth_test_and_token_checks(slack: SandboxSlack, client: AsyncWebClient) -> None:
    answer = await client.auth_test()
    assert answer.status_code == 200
    assert answer.data["ok"] is True
    assert {k: answer[k] for k in ("team_id", "user_id", "bot_id")} == {
        "team_id": "T0SANDBOX",
        "user_id": "U0ORDERBOT",
        "bot_id": "B0ORDERBOT",
    }
    assert answer["url"].startswith("https://") and answer["team"] and answer["user"]
    assert "chat:write" in answer.headers["x-oauth-scopes"]

    assert (await slack_error(AsyncWebClient(base_url=slack.api_url).auth_test())).response["error"] == "not_authed"
    wrong = AsyncWebClient(token="xoxb-wrong", base_url=slack.api_url)
    failed = await slack_error(wrong.chat_postMessage(channel=CHANNEL, text="hi"))
    assert (failed.response.status_code, failed.response["error"]) == (200, "invalid_auth")
    assert slack.messages(CHANNEL) == []
    assert (await slack_error(client.api_call("chat.delete"))).response["error"] == "unknown_method"


async def test_post_reply_and_update_keep_a_channel_as_slack_shows_it(slack: SandboxSlack, client: AsyncWebClient):
    posted = await client.chat_postMessage(channel=CHANNEL, text="#1001 awaiting tracking", blocks=alert_blocks())
    ts = posted["ts"]
    assert posted["channel"] == CHANNEL
    assert posted["message"]["ts"] == ts and posted["message"]["bot_id"] == "B0ORDERBOT"
    assert posted["message"]["blocks"] == alert_blocks()

    reply = await client.chat_postMessage(channel=CHANNEL, thread_ts=ts, text="Alex Admin archived it")
    second = await client.chat_postMessage(channel="#orders", text="another alert")  # a name works, as in Slack
    stamps = [ts, reply["ts"], second["ts"]]
    assert stamps == sorted(stamps, key=float) and len(set(stamps)) == 3
    assert all(len(s.split(".")[1]) == 6 for s in stamps)

    updated = await client.chat_update(channel=CHANNEL, ts=ts, text="#1001 archived by Alex Admin")
    assert (updated["ts"], updated["text"]) == (ts, "#1001 archived by Alex Admin")
    assert slack.message(CHANNEL, ts)["blocks"] == alert_blocks()  # blocks stay unless given
    await client.chat_update(channel=CHANNEL, ts=ts, text="#1001 resolved", blocks=[])
    assert slack.message(CHANNEL, ts)["blocks"] == []

    # Replying to a reply lands in the parent's thread, as Slack does.
    await client.chat_postMessage(channel=CHANNEL, thread_ts=reply["ts"], text="and notified the customer")

    [alert, other] = slack.messages(CHANNEL)
    assert (alert["ts"], alert["text"], alert["reply_count"]) == (ts, "#1001 resolved", 2)
    assert [r["text"] for r in alert["replies"]] == ["Alex Admin archived it", "and notified the customer"]
    assert other["replies"] == [] and other["text"] == "another alert"
    assert slack.replies(CHANNEL, ts)[0]["thread_ts"] == ts
    assert slack.message(CHANNEL, "1.000001") is None


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({"channel": "C0NOPE", "text": "hi"}, "channel_not_found"),
        ({"channel": "C0ELSEWHERE", "text": "hi"}, "not_in_channel"),
        ({"channel": CHANNEL}, "no_text"),
        ({"channel": CHANNEL, "text": "x" * 40_001}, "msg_too_long"),
        ({"channel": CHANNEL, "text": "hi", "thread_ts": "1.000001"}, "thread_not_found"),
        ({"channel": CHANNEL, "text": "hi", "blocks": [{"type": "divider"}] * 51}, "invalid_blocks"),
        ({"channel": CHANNEL, "text": "hi", "blocks": "[{not json"}, "invalid_blocks_format"),
    ],
)
@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
async def test_post_message_errors(slack: SandboxSlack, client: AsyncWebClient, arguments: dict, error: str) -> None:
    failed = await slack_error(client.chat_postMessage(**arguments))
    assert (failed.response.status_code, failed.response["ok"], failed.response["error"]) == (200, False, error)
    assert slack.calls[-1].response == failed.response.data
    assert slack.messages(CHANNEL) == []


async def test_block_limits_answer_with_slacks_messages(client: AsyncWebClient) -> None:
    failed = await slack_error(client.chat_postMessage(channel=CHANNEL, text="hi", blocks=[{"type": "divider"}] * 51))
    assert failed.response["response_metadata"]["messages"] == [
        "[ERROR] no more than 50 items allowed [json-pointer:/blocks]"
    ]
    long_section = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]
    failed = await slack_error(client.chat_postMessage(channel=CHANNEL, text="hi", blocks=long_section))
    assert failed.response["error"] == "invalid_blocks"

    failed = await slack_error(client.chat_update(channel=CHANNEL, ts="1.000001", text="hi"))
    assert failed.response["error"] == "message_not_found"


async def test_every_method_takes_json_form_or_query_arguments(slack: SandboxSlack) -> None:
    """slack_sdk sends chat.* and views.* as JSON, the rest as form or query parameters; Slack takes all three."""
    url, auth = slack.api_url, {"Authorization": f"Bearer {slack.bot_token}"}
    blocks = alert_blocks()
    async with aiohttp.ClientSession() as http:
        sent = [
            http.post(url + "chat.postMessage", json={"channel": CHANNEL, "blocks": blocks}, headers=auth),
            http.post(url + "chat.postMessage", data={"channel": CHANNEL, "blocks": json.dumps(blocks)}, headers=auth),
            http.get(url + "chat.postMessage", params={"channel": CHANNEL, "text": "hi", "token": slack.bot_token}),
            http.post(url + "users.info", data={"user": "U0ADMIN", "token": slack.bot_token}),
            http.get(url + "users.info", params={"user": "U0ADMIN"}, headers=auth),
            http.post(url + "users.info", json={"user": "U0ADMIN"}, headers=auth),
        ]
        for request in sent:
            async with request as response:
                assert (response.status, (await response.json())["ok"]) == (200, True)
        async with http.post(
            url + "chat.postMessage", data="{nope", headers={**auth, "Content-Type": "application/json"}
        ) as r:
            assert (await r.json())["error"] == "invalid_json"
    assert [m["blocks"] for m in slack.messages(CHANNEL)] == [blocks, blocks, []]
    assert slack.calls_to("chat.postMessage")[1].args == {"channel": CHANNEL, "blocks": blocks}  # decoded, no token


async def test_ephemeral_messages(slack: SandboxSlack, client: AsyncWebClient) -> None:
    answer = await client.chat_postEphemeral(channel=CHANNEL, user="U0STAFF", text="Only admins can cancel orders.")
    assert answer["message_ts"]
    [shown] = slack.ephemerals("U0STAFF")
    assert (shown["channel"], shown["text"], shown["ts"]) == (
        CHANNEL,
        "Only admins can cancel orders.",
        answer["message_ts"],
    )
    assert slack.ephemerals("U0ADMIN") == [] and slack.messages(CHANNEL) == []

    failed = await slack_error(client.chat_postEphemeral(channel=CHANNEL, user="U0NOBODY", text="hi"))
    assert failed.response["error"] == "user_not_in_channel"


async def test_views_open_and_update(slack: SandboxSlack, client: AsyncWebClient) -> None:
    trigger = new_trigger_id()
    opened = (await client.views_open(trigger_id=trigger, view=fulfill_modal(external_id="fulfill-1001")))["view"]
    assert opened["id"].startswith("V") and opened["hash"]
    assert (opened["callback_id"], opened["private_metadata"], opened["state"]) == (
        "fulfill_modal",
        ORDER,
        {"values": {}},
    )
    assert opened["blocks"] == fulfill_modal()["blocks"] and opened["type"] == "modal"

    assert (await slack_error(client.views_open(trigger_id=trigger, view=fulfill_modal()))).response[
        "error"
    ] == "exchanged_trigger_id"
    for bad_trigger in ("", "not-a-trigger"):
        failed = await slack_error(client.views_open(trigger_id=bad_trigger, view=fulfill_modal()))
        assert failed.response["error"] == "invalid_trigger_id"
    for bad_view, pointer in [
        ({**fulfill_modal(), "type": "home"}, "/view/type"),
        (fulfill_modal(title={"type": "plain_text", "text": "Fulfill order #1001 with tracking"}), "/view/title/text"),
        ({**fulfill_modal(), "blocks": [{"type": "divider"}] * 101}, "/view/blocks"),
        ({k: v for k, v in fulfill_modal().items() if k != "submit"}, "/view/submit"),
    ]:
        failed = await slack_error(client.views_open(trigger_id=new_trigger_id(), view=bad_view))
        assert failed.response["error"] == "invalid_arguments"
        assert pointer in failed.response["response_metadata"]["messages"][0]

    updated = (await client.views_update(view_id=opened["id"], view=fulfill_modal(private_metadata="step 2")))["view"]
    assert (updated["id"], updated["private_metadata"]) == (opened["id"], "step 2")
    assert updated["hash"] != opened["hash"]
    by_external = await client.views_update(external_id="fulfill-1001", view=fulfill_modal(), hash=updated["hash"])
    assert by_external["view"]["id"] == opened["id"]
    stale = await slack_error(client.views_update(view_id=opened["id"], view=fulfill_modal(), hash=opened["hash"]))
    assert stale.response["error"] == "hash_conflict"
    assert (await slack_error(client.views_update(view_id="V0NOPE", view=fulfill_modal()))).response[
        "error"
    ] == "not_found"
    assert [v["id"] for v in slack.opened_views] == [opened["id"]]
    assert slack.opened_views[0]["private_metadata"] == ORDER


async def test_user_group_user_and_channel_lookups(client: AsyncWebClient) -> None:
    assert (await client.usergroups_users_list(usergroup="S0ADMINS"))["users"] == ["U0ADMIN"]
    user = (await client.users_info(user="U0ADMIN"))["user"]
    assert (user["id"], user["real_name"], user["profile"]["real_name"]) == ("U0ADMIN", "Alex Admin", "Alex Admin")
    assert user["name"] and user["tz"] and user["profile"]["display_name"]
    channel = (await client.conversations_info(channel=CHANNEL))["channel"]
    assert (channel["id"], channel["name"], channel["is_channel"], channel["is_member"]) == (
        CHANNEL,
        "orders",
        True,
        True,
    )
    assert (await client.conversations_info(channel="C0ELSEWHERE"))["channel"]["is_member"] is False

    for call, error in [
        (client.usergroups_users_list(usergroup="S0NOPE"), "no_such_subteam"),
        (client.users_info(user="U0NOBODY"), "user_not_found"),
        (client.conversations_info(channel="C0NOPE"), "channel_not_found"),
    ]:
        assert (await slack_error(call)).response["error"] == error


async def test_conversations_history_pages_back_with_a_cursor_as_slack_does(slack: SandboxSlack, client):
    """Newest first, `limit` a page; while older messages remain, has_more and response_metadata.next_cursor, which
    `cursor` takes to go on: every message in the window exactly once, threads' replies left out."""
    first = slack.write_as("U0STAFF", CHANNEL, "before the window")
    posted = [slack.write_as("U0STAFF", CHANNEL, f"message {i}") for i in range(7)]
    await client.chat_postMessage(channel=CHANNEL, thread_ts=posted[0], text="a reply, not in the history")
    seen, pages, cursor = [], 0, None
    while True:
        page = await client.conversations_history(channel=CHANNEL, oldest=first, limit=3, cursor=cursor)
        pages += 1
        seen += [m["ts"] for m in page["messages"]]
        assert len(page["messages"]) <= 3
        cursor = (page.get("response_metadata") or {}).get("next_cursor")
        assert bool(cursor) == page["has_more"]
        if not page["has_more"]:
            break
    assert seen == list(reversed(posted)) and pages == 3
    everything = await client.conversations_history(channel=CHANNEL, oldest=first, inclusive=True)
    assert [m["ts"] for m in everything["messages"]][-1] == first and not everything["has_more"]
    error = await slack_error(client.conversations_history(channel=CHANNEL, cursor="not-a-cursor"))
    assert error.response["error"] == "invalid_cursor"


# --- fault injection --------------------------------------------------------------------------------------------------


async def test_injected_errors_and_server_failures(slack: SandboxSlack, client: AsyncWebClient) -> None:
    slack.fail_next("chat.postMessage", "channel_not_found")
    slack.fail_next(None, "http_500")
    # auth.test skips the chat.postMessage failure and takes the one for any method.
    assert (await slack_error(client.auth_test())).response.status_code == 500
    failed = await slack_error(client.chat_postMessage(channel=CHANNEL, text="hi"))
    assert (failed.response.status_code, failed.response["error"]) == (200, "channel_not_found")
    assert (await client.chat_postMessage(channel=CHANNEL, text="hi"))["ok"] is True
    assert [(c.method, c.status) for c in slack.calls] == [
        ("auth.test", 500),
        ("chat.postMessage", 200),
        ("chat.postMessage", 200),
    ]

    slack.fail_next("users.info", "http_503", times=2)
    failed = await slack_error(client.users_info(user="U0ADMIN"))
    assert failed.response.status_code == 503
    retrying = AsyncWebClient(
        token=slack.bot_token,
        base_url=slack.api_url,
        retry_handlers=[AsyncServerErrorRetryHandler(interval_calculator=FixedValueRetryIntervalCalculator(0.01))],
    )
    assert (await retrying.users_info(user="U0ADMIN"))["ok"] is True
    assert [(c.method, c.status) for c in slack.calls_to("users.info")] == [
        ("users.info", 503),
        ("users.info", 503),
        ("users.info", 200),
    ]
    assert slack.calls_to("users.info")[0].response is None

    with pytest.raises(ValueError):
        slack.fail_next(None, "Not An Error")
    with pytest.raises(ValueError):
        slack.fail_next(None, "timeout")


async def test_rate_limit_sends_an_integer_retry_after_that_slack_sdk_honours(slack: SandboxSlack) -> None:
    async with aiohttp.ClientSession() as http:
        for given, header in [(2.5, "3"), (0.2, "1")]:
            slack.fail_next("auth.test", "rate_limited", retry_after=given)
            headers = {"Authorization": f"Bearer {slack.bot_token}"}
            async with http.post(slack.api_url + "auth.test", headers=headers) as response:
                assert (response.status, response.headers["Retry-After"]) == (429, header)
                assert await response.json() == {"ok": False, "error": "ratelimited"}

    patient = AsyncWebClient(
        token=slack.bot_token, base_url=slack.api_url, retry_handlers=[AsyncRateLimitErrorRetryHandler()]
    )
    slack.fail_next("chat.postMessage", "rate_limited", retry_after=1)
    started = time.monotonic()
    assert (await patient.chat_postMessage(channel=CHANNEL, text="hi"))["ok"] is True
    assert time.monotonic() - started >= 1.0
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [429, 200]
    assert len(slack.messages(CHANNEL)) == 1


async def test_timeout_answers_late_and_still_applies_the_call(slack: SandboxSlack) -> None:
    impatient = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url, timeout=0.1)  # type: ignore[arg-type]
    slack.fail_next("chat.postMessage", "timeout", delay=0.3)
    with pytest.raises(TimeoutError):
        await impatient.chat_postMessage(channel=CHANNEL, text="hi")
    await wait_for(lambda: bool(slack.calls_to("chat.postMessage")))
    assert slack.calls_to("chat.postMessage")[0].status == 200
    assert len(slack.messages(CHANNEL)) == 1  # Slack may have posted what the client gave up on


async def test_channel_rate_limit_allows_one_post_a_second() -> None:
    clock = FakeClock()
    sandbox = SandboxSlack(clock=clock, channel_rate_limit=True, channels={CHANNEL: "orders", "C0OTHER": "other"})
    await sandbox.start()
    try:
        client = AsyncWebClient(token=sandbox.bot_token, base_url=sandbox.api_url)
        await client.chat_postMessage(channel=CHANNEL, text="one")
        await client.chat_postMessage(channel="C0OTHER", text="another channel is not held back")
        clock.now += 0.5
        failed = await slack_error(client.chat_postMessage(channel=CHANNEL, text="two"))
        assert (failed.response.status_code, failed.response.headers["Retry-After"]) == (429, "1")
        await client.chat_update(channel=CHANNEL, ts=sandbox.messages(CHANNEL)[0]["ts"], text="updates are not posts")
        clock.now += 0.5
        await client.chat_postMessage(channel=CHANNEL, text="two")
        assert [m["text"] for m in sandbox.messages(CHANNEL)] == ["updates are not posts", "two"]
        # Under a frozen clock, timestamps still increase.
        assert sandbox.messages(CHANNEL)[0]["ts"].startswith("1700000000.")
    finally:
        await sandbox.stop()


# --- response_url -----------------------------------------------------------------------------------------------------


async def test_response_urls_replace_delete_post_or_whisper(slack: SandboxSlack, client: AsyncWebClient) -> None:
    ts = (await client.chat_postMessage(channel=CHANNEL, text="alert", blocks=alert_blocks()))["ts"]

    whisper = AsyncWebhookClient(slack.response_url(CHANNEL, "U0STAFF"))
    assert (await whisper.send(text="Only admins can do that.")).status_code == 200
    assert [e["text"] for e in slack.ephemerals("U0STAFF")] == ["Only admins can do that."]

    replace = AsyncWebhookClient(slack.response_url(CHANNEL, "U0ADMIN", message_ts=ts))
    await replace.send(text="Archived by Alex Admin", replace_original=True)
    assert (slack.message(CHANNEL, ts)["text"], slack.message(CHANNEL, ts)["blocks"]) == ("Archived by Alex Admin", [])

    shout = AsyncWebhookClient(slack.response_url(CHANNEL, "U0ADMIN"))
    await shout.send(text="Bulk archive done: 12 orders", response_type="in_channel")
    await replace.send(text="", delete_original=True)
    assert [m["text"] for m in slack.messages(CHANNEL)] == ["Bulk archive done: 12 orders"]

    assert [r.body.get("text") for r in slack.responses] == [
        "Only admins can do that.",
        "Archived by Alex Admin",
        "Bulk archive done: 12 orders",
        "",
    ]
    assert slack.responses[1].message_ts == ts and slack.responses[1].user == "U0ADMIN"
    assert (await AsyncWebhookClient(slack.base_url + "/response/unknown").send(text="hi")).status_code == 404

    with pytest.raises(RuntimeError):
        SandboxSlack().response_url(CHANNEL, "U0ADMIN")


async def test_a_click_on_an_ephemeral_message_replaces_it_through_its_response_url(slack: SandboxSlack) -> None:
    answer = AsyncWebhookClient(slack.response_url("C0ELSEWHERE", "U0ADMIN"))  # a slash command's, typed elsewhere
    await answer.send(text="#1001 awaiting tracking", blocks=alert_blocks())
    (card,) = slack.ephemerals("U0ADMIN")

    click = click_on_ephemeral(slack, card, "fulfill")

    payload = json.loads(parse_qs(click.decode())["payload"][0])
    # Slack's shape for a click on an ephemeral message: said in the container, and no copy of the message
    assert payload["container"] == {
        "type": "message",
        "message_ts": card["ts"],
        "channel_id": "C0ELSEWHERE",
        "is_ephemeral": True,
    }
    assert payload["channel"] == {"id": "C0ELSEWHERE", "name": "elsewhere"} and "message" not in payload
    assert payload["actions"][0]["value"] == ORDER
    respond = AsyncWebhookClient(payload["response_url"])
    await respond.send(text="Fulfilled #1001.", response_type="ephemeral", replace_original=False)
    await respond.send(text="#1001 fulfilled", blocks=[], replace_original=True)
    assert [(e["ts"], e["text"]) for e in slack.ephemerals("U0ADMIN")] == [
        (card["ts"], "#1001 fulfilled"),
        (slack.ephemerals("U0ADMIN")[1]["ts"], "Fulfilled #1001."),
    ]
    await respond.send(delete_original=True)
    assert [e["text"] for e in slack.ephemerals("U0ADMIN")] == ["Fulfilled #1001."]


async def test_a_response_url_takes_five_posts_within_thirty_minutes() -> None:
    clock = FakeClock()
    sandbox = SandboxSlack(clock=clock)
    await sandbox.start()
    try:
        used = AsyncWebhookClient(sandbox.response_url(CHANNEL, "U0ADMIN"))
        assert [(await used.send(text=f"{n}")).status_code for n in range(6)] == [200] * 5 + [404]
        assert (await used.send(text="again")).body == "expired_url"

        old = AsyncWebhookClient(sandbox.response_url(CHANNEL, "U0ADMIN"))
        clock.now += 30 * 60 + 1
        assert (await old.send(text="late")).status_code == 404

        expired = sandbox.response_url(CHANNEL, "U0ADMIN")
        sandbox.expire_response_url(expired)
        assert (await AsyncWebhookClient(expired).send(text="x")).status_code == 404
        assert [e["text"] for e in sandbox.ephemerals("U0ADMIN")] == ["0", "1", "2", "3", "4"]
    finally:
        await sandbox.stop()


# --- signed requests and Bolt -----------------------------------------------------------------------------------------


def test_payloads_are_signed_and_shaped_as_slack_sends_them() -> None:
    verifier = SignatureVerifier(SIGNING_SECRET)
    message = {"type": "message", "ts": "1700000000.000100", "text": "alert", "blocks": alert_blocks(), "replies": []}
    click = block_actions_body(
        action_id="fulfill", user_id="U0ADMIN", channel_id=CHANNEL, message_ts="1700000000.000100", message=message
    )
    command = slash_command_body(text="stuck", user_id="U0ADMIN", channel_id=CHANNEL)
    values = input_values({"tracking": {"tracking_number": ("plain_text_input", "1Z999")}})
    submission = view_submission_body(
        callback_id="fulfill_modal", values=values, private_metadata=ORDER, user_id="U0ADMIN"
    )
    for body in (click, command, submission):
        headers = sign_request(body, SIGNING_SECRET)
        assert verifier.is_valid_request(body, headers)
        assert not verifier.is_valid_request(body + b"x", headers)
        assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    stale = sign_request(click, SIGNING_SECRET, timestamp=int(time.time()) - 600)
    assert not verifier.is_valid_request(click, stale)

    payload = json.loads(parse_qs(click.decode())["payload"][0])
    assert payload["type"] == "block_actions"
    assert payload["container"] == {
        "type": "message",
        "message_ts": "1700000000.000100",
        "channel_id": CHANNEL,
        "is_ephemeral": False,
    }
    [action] = payload["actions"]
    assert (action["action_id"], action["block_id"], action["value"], action["type"]) == (
        "fulfill",
        "order_actions",
        ORDER,
        "button",
    )
    assert "replies" not in payload["message"] and "response_url" not in payload
    assert payload["user"]["id"] == "U0ADMIN" and payload["team"]["id"] == "T0SANDBOX"

    select = block_actions_body(
        action_id="snooze",
        user_id="U0ADMIN",
        channel_id=CHANNEL,
        message_ts="1.000001",
        element_type="static_select",
        selected_option_value="1d",
    )
    [chosen] = json.loads(parse_qs(select.decode())["payload"][0])["actions"]
    assert chosen["selected_option"]["value"] == "1d" and "value" not in chosen

    fields = {k: v[0] for k, v in parse_qs(command.decode(), keep_blank_values=True).items()}
    assert {k: fields[k] for k in ("command", "text", "user_id", "channel_id", "team_id")} == {
        "command": "/orders",
        "text": "stuck",
        "user_id": "U0ADMIN",
        "channel_id": CHANNEL,
        "team_id": "T0SANDBOX",
    }
    assert {"token", "team_domain", "channel_name", "user_name", "api_app_id", "trigger_id"} <= fields.keys()

    view = json.loads(parse_qs(submission.decode())["payload"][0])["view"]
    assert (view["type"], view["callback_id"], view["private_metadata"]) == ("modal", "fulfill_modal", ORDER)
    assert view["state"]["values"]["tracking"]["tracking_number"] == {"type": "plain_text_input", "value": "1Z999"}


def test_input_values_take_slacks_shapes() -> None:
    values = input_values(
        {
            "tracking": {
                "tracking_number": ("plain_text_input", None),
                "tracking_url": ("url_text_input", "https://t"),
            },
            "notify": {"notify_customer": ("checkboxes", ["yes"])},
            "carrier": {"tracking_company": ("static_select", "UPS"), "speed": ("radio_buttons", None)},
            "until": {"date": ("datepicker", "2026-03-12")},
        }
    )
    assert values["tracking"]["tracking_number"] == {"type": "plain_text_input", "value": None}
    assert values["notify"]["notify_customer"]["selected_options"][0]["value"] == "yes"
    assert values["carrier"]["tracking_company"]["selected_option"]["value"] == "UPS"
    assert values["carrier"]["speed"] == {"type": "radio_buttons", "selected_option": None}
    assert values["until"]["date"] == {"type": "datepicker", "selected_date": "2026-03-12"}
    with pytest.raises(ValueError):
        input_values({"b": {"a": ("rich_text_input", "x")}})


async def test_bolt_dispatches_signed_payloads_to_listeners_that_call_the_sandbox(slack: SandboxSlack) -> None:
    app = AsyncApp(
        signing_secret=SIGNING_SECRET,
        client=AsyncWebClient(token=slack.bot_token, base_url=slack.api_url),
        process_before_response=True,  # listeners finish before dispatch returns
    )
    seen: dict[str, Any] = {}

    @app.action("fulfill")
    async def open_modal(ack, body, action, client) -> None:
        await ack()
        seen["action"] = action["value"]
        await client.views_open(trigger_id=body["trigger_id"], view=fulfill_modal(private_metadata=action["value"]))

    @app.view("fulfill_modal")
    async def submitted(ack, view) -> None:
        await ack()
        seen["view"] = (view["private_metadata"], view["state"]["values"]["tracking"]["tracking_number"]["value"])

    @app.command("/orders")
    async def command(ack, command, respond) -> None:
        await ack()
        await respond(f"Looking up {command['text']}")

    ts = (
        await AsyncWebClient(token=slack.bot_token, base_url=slack.api_url).chat_postMessage(
            channel=CHANNEL, text="alert", blocks=alert_blocks()
        )
    )["ts"]

    async def dispatch(body: bytes) -> int:
        response = await app.async_dispatch(
            AsyncBoltRequest(body=body.decode(), headers=sign_request(body, SIGNING_SECRET))
        )
        return response.status

    click = block_actions_body(
        action_id="fulfill",
        user_id="U0ADMIN",
        channel_id=CHANNEL,
        message_ts=ts,
        message=slack.message(CHANNEL, ts),
        response_url=slack.response_url(CHANNEL, "U0ADMIN", message_ts=ts),
    )
    assert await dispatch(click) == 200
    assert seen["action"] == ORDER
    assert slack.opened_views[-1]["private_metadata"] == ORDER

    values = input_values({"tracking": {"tracking_number": ("plain_text_input", "1Z999")}})
    submission = view_submission_body(
        callback_id="fulfill_modal", values=values, private_metadata=ORDER, user_id="U0ADMIN"
    )
    assert await dispatch(submission) == 200
    assert seen["view"] == (ORDER, "1Z999")

    command_body = slash_command_body(
        text="#1001", user_id="U0STAFF", channel_id=CHANNEL, response_url=slack.response_url(CHANNEL, "U0STAFF")
    )
    assert await dispatch(command_body) == 200
    assert [e["text"] for e in slack.ephemerals("U0STAFF")] == ["Looking up #1001"]

    forged = AsyncBoltRequest(body=click.decode(), headers=sign_request(click, "another-secret"))
    assert (await app.async_dispatch(forged)).status == 401
    assert len(slack.calls_to("auth.test")) == 1  # Bolt checks the token once, on the first request
