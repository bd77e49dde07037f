"""Socket Mode (SLACK_APP_TOKEN): the real server, with Bolt's AsyncSocketModeHandler, connects to the sandbox Slack
over a WebSocket and acts on envelopes as it acts on signed HTTP requests; a refused app token leaves HTTP serving."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qs

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.sandbox.serving import serve
from bot.sandbox.shopify import SandboxShopify
from bot.sandbox.slack import SandboxSlack
from bot.sandbox.slack_payloads import block_actions_body, home_opened_event, input_values, view_submission_body
from bot.sandbox.smtp import SandboxSMTP
from bot.slack.listeners import EXPIRED
from bot.web import TASKS, create_app
from tests.conftest import ADMIN, CHANNEL, World, manifest_scopes, order_gid_of, wait_for, world_settings

ACK_LIMIT = 3.0  # seconds: Slack's limit for acknowledging an envelope


def action_ids(message: dict) -> list[str]:
    return [e["action_id"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]


def payload_of(form_body: bytes) -> dict:
    """The interaction payload inside Slack's form-encoded HTTP body: what a Socket Mode envelope carries as is."""
    return json.loads(parse_qs(form_body.decode())["payload"][0])


WorldFactory = Callable[[str | None], Awaitable[World]]


@pytest.fixture
async def start_world(sandbox: tuple[SandboxShopify, str], tmp_path: Path) -> AsyncIterator[WorldFactory]:
    """Start the sandboxes and the real server with SLACK_APP_TOKEN=`app_token` (None: the sandbox's own)."""
    shop, shop_url = sandbox
    slack = SandboxSlack(scopes=manifest_scopes())
    await slack.start()
    smtp = SandboxSMTP()
    smtp_url = await smtp.start()
    http = aiohttp.ClientSession()
    worlds: list[World] = []

    async def start(app_token: str | None = None) -> World:
        db_path = tmp_path / "orderbot.db"
        settings = world_settings(shop, shop_url, slack, smtp_url, db_path)
        app = create_app(replace(settings, slack_app_token=app_token or slack.app_token), reconcile=False)
        runner, url = await asyncio.wait_for(serve(app), 5)  # Socket Mode must never hold up the start
        worlds.append(World(url, app, shop, db_path, http, slack, smtp, shop_url, runner))
        return worlds[-1]

    yield start
    for world in worlds:
        await world.stop_server()  # the bot first: its Socket Mode client would reconnect to a closing sandbox
    await http.close()
    await smtp.stop()
    await slack.stop()


async def test_a_click_over_socket_mode_is_acked_in_time_and_archives_the_order(start_world: WorldFactory):
    world = await start_world(None)
    await world.slack.wait_for_socket()
    assert world.slack.connected_sockets == 1
    opened = world.slack.calls_to("apps.connections.open")
    assert len(opened) == 1 and opened[0].response["url"].startswith("ws://127.0.0.1:")

    await world.order_webhook(1003)
    alert = await world.wait_for_alert(1003, lambda a: bool(action_ids(a)))
    assert "archive" in action_ids(alert)
    payload = payload_of(
        block_actions_body(
            action_id="archive",
            user_id=ADMIN,
            channel_id=CHANNEL,
            message_ts=alert["ts"],
            message=alert,
            response_url=world.slack.response_url(CHANNEL, ADMIN, alert["ts"]),
        )
    )

    started = time.monotonic()
    ack = await world.slack.send_envelope("interactive", payload, within=ACK_LIMIT)
    assert time.monotonic() - started < ACK_LIMIT
    envelope = world.slack.envelopes[-1]
    assert ack == {"envelope_id": envelope.envelope_id}  # a button's ack has no payload
    assert envelope.message["type"] == "interactive" and "retry_attempt" not in envelope.message

    order_gid = order_gid_of(world.sandbox, 1003)
    await wait_for(lambda: any(op.operation_name == "OrderClose" for op in world.sandbox.operations), 3)
    closes = [op.variables for op in world.sandbox.operations if op.operation_name == "OrderClose"]
    assert closes == [{"input": {"id": order_gid}}]
    resolved = await world.wait_for_alert(1003, lambda a: action_ids(a) == ["delete"] and bool(a["replies"]), 3)
    assert "Resolved" in resolved["text"] + str(resolved["blocks"])
    assert any(ADMIN in reply["text"] for reply in resolved["replies"])
    assert [row["outcome"] for row in world.audit(1003) if row["action"] == "archive"] == ["done"]


async def test_a_modal_error_comes_back_in_the_ack_payload(start_world: WorldFactory):
    """Over Socket Mode there is no HTTP response: `ack(response_action="errors")` travels in the ack's payload."""
    world = await start_world(None)
    await world.slack.wait_for_socket()
    body = view_submission_body(
        callback_id="fulfill_modal",
        values=input_values({"tracking_number": {"tracking_number": ("plain_text_input", "1Z999")}}),
        private_metadata="not-orderbots-metadata",
        user_id=ADMIN,
    )
    ack = await world.slack.send_envelope("interactive", payload_of(body), accepts_response_payload=True)
    assert ack == {
        "envelope_id": world.slack.envelopes[-1].envelope_id,
        "payload": {"response_action": "errors", "errors": {"tracking_number": EXPIRED}},
    }
    assert not any(op.operation_name == "FulfillmentCreate" for op in world.sandbox.operations)


async def test_when_slack_asks_the_client_reconnects_on_a_new_url_and_keeps_working(start_world: WorldFactory):
    world = await start_world(None)
    await world.slack.wait_for_socket()
    await world.slack.ping_socket()  # Slack's pings get pongs

    await world.slack.disconnect_sockets("refresh_requested")
    await world.slack.wait_for_socket(opened=2)
    await wait_for(lambda: world.slack.connected_sockets == 1, 3)  # the old connection is closed by the client
    assert len(world.slack.calls_to("apps.connections.open")) == 2

    await world.order_webhook(1003)
    alert = await world.wait_for_alert(1003, lambda a: bool(action_ids(a)))
    payload = payload_of(
        block_actions_body(
            action_id="archive", user_id=ADMIN, channel_id=CHANNEL, message=alert, message_ts=alert["ts"]
        )
    )
    await world.slack.send_envelope("interactive", payload)
    assert world.slack.envelopes[-1].connection == 2
    await wait_for(lambda: any(op.operation_name == "OrderClose" for op in world.sandbox.operations), 3)


@pytest.mark.parametrize(
    ("token", "error"), [("xapp-not-this-app", "invalid_auth"), ("xoxb-sandbox-token", "not_allowed_token_type")]
)
async def test_a_refused_app_token_is_logged_and_the_server_serves_anyway(
    start_world: WorldFactory, caplog: pytest.LogCaptureFixture, token: str, error: str
):
    caplog.set_level(logging.INFO)
    world = await start_world(token)
    await wait_for(lambda: any(error in r.getMessage() for r in caplog.records if r.name == "bot.slack.side"), 3)
    refusal = next(r for r in caplog.records if r.name == "bot.slack.side" and error in r.getMessage())
    assert refusal.levelno == logging.ERROR and "SLACK_APP_TOKEN" in refusal.getMessage()

    async with world.http.get(f"{world.url}/healthz") as response:
        assert response.status == 200
    await world.order_webhook(1003)  # webhooks are processed and alerts posted as ever
    await world.wait_for_alert(1003, lambda a: bool(action_ids(a)))

    socket_mode = next(task for task in world.app[TASKS] if task.get_name() == "socket-mode")
    await wait_for(socket_mode.done, 3)  # given up: nothing more will ask
    assert [c.response["error"] for c in world.slack.calls_to("apps.connections.open")] == [error]  # asked once
    assert world.slack.sockets_opened == 0


# --- the sandbox's Socket Mode, driven by hand ----------------------------------------------------------------------


@pytest.fixture
async def bare_slack() -> AsyncIterator[SandboxSlack]:
    slack = SandboxSlack()
    await slack.start()
    yield slack
    await slack.stop()


async def test_the_sandbox_answers_apps_connections_open_only_for_the_app_token(bare_slack: SandboxSlack):
    client = AsyncWebClient(base_url=bare_slack.api_url)
    opened = await client.apps_connections_open(app_token=bare_slack.app_token)
    assert opened["url"].startswith(bare_slack.base_url.replace("http://", "ws://") + "/socket-mode/")
    for token, error in [("xapp-other", "invalid_auth"), (bare_slack.bot_token, "not_allowed_token_type")]:
        with pytest.raises(SlackApiError) as refused:
            await client.apps_connections_open(app_token=token)
        assert refused.value.response["error"] == error
    async with aiohttp.ClientSession() as http:
        response = await http.post(f"{bare_slack.api_url}apps.connections.open")
        assert (await response.json())["error"] == "not_authed"
    with pytest.raises(SlackApiError) as refused:  # and the app token is no bot token
        await AsyncWebClient(token=bare_slack.app_token, base_url=bare_slack.api_url).auth_test()
    assert refused.value.response["error"] == "not_allowed_token_type"


async def test_the_sandbox_says_hello_sends_envelopes_and_waits_for_acks(bare_slack: SandboxSlack):
    with pytest.raises(RuntimeError):
        await bare_slack.send_envelope("events_api", {})
    client = AsyncWebClient(base_url=bare_slack.api_url)
    url = (await client.apps_connections_open(app_token=bare_slack.app_token))["url"]
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        hello = await ws.receive_json()
        assert hello["type"] == "hello" and hello["num_connections"] == 1
        assert hello["connection_info"] == {"app_id": "A0ORDERBOT"}
        await bare_slack.wait_for_socket()

        sending = asyncio.create_task(bare_slack.send_envelope("events_api", {"event": {"type": "app_mention"}}))
        envelope = await ws.receive_json()
        assert envelope["type"] == "events_api" and envelope["retry_attempt"] == 0 and envelope["retry_reason"] == ""
        await ws.send_json({"envelope_id": envelope["envelope_id"]})
        assert await sending == {"envelope_id": envelope["envelope_id"]}

        with pytest.raises(TimeoutError):  # a client that never acks
            await bare_slack.send_envelope("slash_commands", {"command": "/orders"}, within=0.05)
        assert [e.type for e in bare_slack.envelopes] == ["events_api", "slash_commands"]
        assert [m.envelope_id for m in bare_slack.socket_messages] == [envelope["envelope_id"]]
    with pytest.raises(ValueError):
        await bare_slack.send_envelope("message", {})


async def test_opening_the_home_tab_over_socket_mode_publishes_the_board(start_world: WorldFactory):
    world = await start_world(None)
    await world.slack.wait_for_socket()
    await world.order_webhook(1003)

    ack = await world.slack.send_envelope("events_api", home_opened_event(user_id=ADMIN), within=ACK_LIMIT)

    assert ack == {"envelope_id": world.slack.envelopes[-1].envelope_id}
    await wait_for(lambda: world.slack.publishes(ADMIN))
    assert "#1003" in str(world.slack.home(ADMIN)["blocks"])


async def test_behind_a_proxy_no_proxy_bypasses_the_socket_and_the_web_api_go_straight_to_slack(
    start_world: WorldFactory, monkeypatch: pytest.MonkeyPatch
):
    """slack_sdk alone would send both through HTTPS_PROXY (here pointing nowhere) whatever NO_PROXY says."""
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    world = await start_world(None)
    await world.slack.wait_for_socket()
    await world.order_webhook(1003)

    await world.slack.send_envelope("events_api", home_opened_event(user_id=ADMIN), within=ACK_LIMIT)

    await wait_for(lambda: world.slack.publishes(ADMIN))
    assert "#1003" in str(world.slack.home(ADMIN)["blocks"])
