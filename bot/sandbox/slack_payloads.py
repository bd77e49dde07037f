"""Requests as Slack sends them to the bot's `/slack/events`: slash commands, button clicks (on a channel message, on
an ephemeral one such as an `/orders show` card, or on the Home tab), modal submissions, and the `app_home_opened`
event.

Pure builders: each returns the raw body (form-encoded for the first three, as Slack sends them; JSON for the Events
API's `event_callback`), and `sign_request` the headers that make Bolt accept it. Shapes follow Slack's documentation
of the slash command request, the `block_actions` and `view_submission` interaction payloads, and the
`app_home_opened` event.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

from bot.sandbox.slack import API_APP_ID, BOT_ID, TEAM_DOMAIN, SandboxSlack

VERIFICATION_TOKEN = "sandbox-verification-token"  # deprecated by Slack, still sent in every payload
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
_VALUE_INPUTS = ("plain_text_input", "url_text_input", "email_text_input", "number_input")
_OPTION_INPUTS = ("static_select", "radio_buttons")


def sign_request(
    body: bytes | str, signing_secret: str, timestamp: int | None = None, content_type: str = FORM
) -> dict[str, str]:
    """The headers Slack sends with `body`: request timestamp (now unless given) and v0 signature."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = SignatureVerifier(signing_secret).generate_signature(timestamp=str(timestamp), body=body)
    assert signature is not None  # only None without a timestamp
    return {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": signature, "Content-Type": content_type}


def new_trigger_id() -> str:
    """A fresh trigger id in Slack's documented format ("132456.7890123.abcdef"); each may open one modal."""
    return f"{secrets.randbelow(10**13)}.{secrets.randbelow(10**13)}.{secrets.token_hex(16)}"


def block_actions_body(
    *,
    action_id: str,
    user_id: str,
    channel_id: str,
    message_ts: str,
    value: str | None = None,
    selected_option_value: str | None = None,
    trigger_id: str | None = None,
    response_url: str | None = None,
    team_id: str = "T0SANDBOX",
    block_id: str | None = None,
    element_type: str = "button",
    message: dict | None = None,
    channel_name: str = "orders",
    user_name: str | None = None,
    is_ephemeral: bool = False,
) -> bytes:
    """A click on a button (or a choice in a static_select) in a channel message.

    Given the `message` as posted (e.g. `SandboxSlack.message(channel, ts)`), the clicked element is found in its
    blocks by `action_id`, and its `value`, `text` and `block_id` fill in what was not given. Without a
    `response_url` (e.g. `SandboxSlack.response_url(...)`) the payload has none, so `respond()` fails loudly
    rather than reaching for Slack.

    `is_ephemeral`: the message is one only the clicker sees (an answer to a slash command): Slack then says so in
    the container (`is_ephemeral: true`) and sends no `message`, since it keeps no copy of it; the channel and the
    `response_url` are all an app has to answer with."""
    message = {"type": "message", "ts": message_ts, "text": "", "blocks": []} if message is None else message
    message = {k: v for k, v in message.items() if k != "replies"}  # SandboxSlack's view of the thread, not Slack's
    found_block, element = _find_element(message.get("blocks") or [], action_id)
    action: dict[str, Any] = {
        "action_id": action_id,
        "block_id": block_id or (found_block or {}).get("block_id") or "actions",
        "type": element_type,
        "action_ts": f"{time.time():.6f}",
    }
    if element_type == "static_select":
        chosen = selected_option_value
        option = next((o for o in (element or {}).get("options", []) if o.get("value") == chosen), None)
        action["selected_option"] = option or {"text": _plain(chosen or ""), "value": chosen}
    else:
        action["text"] = (element or {}).get("text") or _plain(action_id)
        action["value"] = value if value is not None else (element or {}).get("value")
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": _user(user_id, user_name, team_id),
        "api_app_id": API_APP_ID,
        "token": VERIFICATION_TOKEN,
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel_id,
            "is_ephemeral": is_ephemeral,
        },
        "trigger_id": trigger_id or new_trigger_id(),
        "team": {"id": team_id, "domain": TEAM_DOMAIN},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": channel_name},
        "message": message,
        "state": {"values": {}},
        "actions": [action],
    }
    if is_ephemeral:
        del payload["message"]
    if response_url is not None:
        payload["response_url"] = response_url
    return _form({"payload": json.dumps(payload)})


def click_on_message(
    slack: SandboxSlack,
    channel: str,
    message: dict,
    action_id: str,
    *,
    user: str,
    option: str | None = None,
    user_name: str | None = None,
) -> bytes:
    """`user` clicking `action_id` on a message `slack` holds in `channel` (choosing `option`, when it is a select),
    with a `response_url` for the click, as Slack posts it."""
    return block_actions_body(
        action_id=action_id,
        user_id=user,
        channel_id=channel,
        message_ts=message["ts"],
        message=message,
        element_type="static_select" if option else "button",
        selected_option_value=option,
        response_url=slack.response_url(channel, user, message["ts"]),
        user_name=user_name,
    )


def click_on_ephemeral(
    slack: SandboxSlack,
    ephemeral: dict,
    action_id: str,
    *,
    option: str | None = None,
    response_url: str | None = None,
) -> bytes:
    """The person who sees `ephemeral` (as `SandboxSlack.ephemerals()` returns it, e.g. an `/orders show` card)
    clicking `action_id` on it (choosing `option`, when it is a select), with a `response_url` that can replace it
    (a new one unless given)."""
    channel, user = ephemeral["channel"], ephemeral["user"]
    return block_actions_body(
        action_id=action_id,
        user_id=user,
        channel_id=channel,
        message_ts=ephemeral["ts"],
        message={"type": "message", "ts": ephemeral["ts"], "text": ephemeral["text"], "blocks": ephemeral["blocks"]},
        element_type="static_select" if option else "button",
        selected_option_value=option,
        response_url=response_url or slack.response_url(channel, user, ephemeral["ts"]),
        channel_name=slack.channels.get(channel, channel),
        is_ephemeral=True,
    )


def home_opened_event(*, user_id: str, view: dict | None = None, team_id: str = "T0SANDBOX", tab: str = "home") -> dict:
    """The Events API's `event_callback` for `app_home_opened`: `user_id` opened the app's Home tab (`tab`: "home",
    or "messages"). `view`: their Home as last published, which Slack includes once one was. Over HTTP it is sent as
    JSON (`json.dumps`, content type JSON); over Socket Mode as an `events_api` envelope's payload."""
    now = time.time()
    event: dict[str, Any] = {
        "type": "app_home_opened",
        "user": user_id,
        "channel": "D0ORDERBOT",
        "tab": tab,
        "event_ts": f"{now:.6f}",
    }
    if view is not None:
        event["view"] = view
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "api_app_id": API_APP_ID,
        "event": event,
        "type": "event_callback",
        "event_id": f"Ev{secrets.token_hex(5).upper()}",
        "event_time": int(now),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": "U0ORDERBOT",
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
    }


def home_click_payload(
    view: dict,
    action_id: str,
    *,
    user_id: str,
    value: str | None = None,
    option: str | None = None,
    team_id: str = "T0SANDBOX",
) -> dict:
    """A click on the Home tab `view` (as SandboxSlack.home returns it): a `block_actions` payload whose container is
    the view (`type: "view"`) and which carries the view, with no channel and no message. The element is the one with
    `action_id` whose value is `value` (several orders' buttons share an action id), or whose options hold `option`
    (the snooze menu's value)."""
    found_block, element = _find_element(view.get("blocks") or [], action_id, value=value, option=option)
    assert element is not None, f"the Home view has no {action_id} element with value {value or option}"
    action: dict[str, Any] = {
        "action_id": action_id,
        "block_id": (found_block or {}).get("block_id") or "home",
        "type": element.get("type", "button"),
        "action_ts": f"{time.time():.6f}",
    }
    if option is not None:
        action["selected_option"] = next(o for o in element["options"] if o.get("value") == option)
    else:
        action["text"] = element.get("text")
        action["value"] = element.get("value")
    payload = {
        "type": "block_actions",
        "user": _user(user_id, None, team_id),
        "api_app_id": API_APP_ID,
        "token": VERIFICATION_TOKEN,
        "container": {"type": "view", "view_id": view["id"]},
        "trigger_id": new_trigger_id(),
        "team": {"id": team_id, "domain": TEAM_DOMAIN},
        "enterprise": None,
        "is_enterprise_install": False,
        "view": view,
        "actions": [action],
    }
    return payload


def home_click_body(
    view: dict, action_id: str, *, user_id: str, value: str | None = None, option: str | None = None
) -> bytes:
    """`home_click_payload`, form-encoded as Slack posts it."""
    return _form(
        {"payload": json.dumps(home_click_payload(view, action_id, user_id=user_id, value=value, option=option))}
    )


def view_submission_body(
    *,
    callback_id: str,
    values: dict[str, dict[str, dict]],
    private_metadata: str,
    user_id: str,
    team_id: str = "T0SANDBOX",
    view_id: str = "V0SANDBOX1",
    trigger_id: str | None = None,
    user_name: str | None = None,
) -> bytes:
    """A modal submitted with `values` (see `input_values`). The view carries `type: "modal"`, without which Bolt
    fails with a KeyError (a real Slack always sends it)."""
    payload = {
        "type": "view_submission",
        "team": {"id": team_id, "domain": TEAM_DOMAIN},
        "user": _user(user_id, user_name, team_id),
        "api_app_id": API_APP_ID,
        "token": VERIFICATION_TOKEN,
        "trigger_id": trigger_id or new_trigger_id(),
        "view": {
            "id": view_id,
            "team_id": team_id,
            "type": "modal",
            "blocks": [],
            "private_metadata": private_metadata,
            "callback_id": callback_id,
            "state": {"values": values},
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "title": _plain("orderbot"),
            "clear_on_close": False,
            "notify_on_close": False,
            "close": None,
            "submit": _plain("Submit"),
            "previous_view_id": None,
            "root_view_id": view_id,
            "app_id": API_APP_ID,
            "external_id": "",
            "app_installed_team_id": team_id,
            "bot_id": BOT_ID,
        },
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }
    return _form({"payload": json.dumps(payload)})


def input_values(inputs: dict[str, dict[str, tuple[str, Any]]]) -> dict[str, dict[str, dict]]:
    """`view.state.values` from `{block_id: {action_id: (element_type, value)}}`.

    Text-like inputs (plain_text_input, url_text_input, email_text_input, number_input) take a string or None;
    static_select and radio_buttons the chosen option's value or None; checkboxes a list of values; datepicker a
    "YYYY-MM-DD" string or None. Option labels repeat the values."""
    return {
        block_id: {action_id: _input_state(kind, value) for action_id, (kind, value) in actions.items()}
        for block_id, actions in inputs.items()
    }


def slash_command_body(
    *,
    text: str,
    user_id: str,
    channel_id: str,
    command: str = "/orders",
    trigger_id: str | None = None,
    response_url: str | None = None,
    team_id: str = "T0SANDBOX",
    channel_name: str = "orders",
    user_name: str | None = None,
) -> bytes:
    """`/orders <text>` typed by `user_id` in `channel_id`: the form fields Slack posts."""
    fields = {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "team_domain": TEAM_DOMAIN,
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user_id,
        "user_name": user_name or user_id.lower(),
        "command": command,
        "text": text,
        "api_app_id": API_APP_ID,
        "is_enterprise_install": "false",
        "trigger_id": trigger_id or new_trigger_id(),
    }
    if response_url is not None:
        fields["response_url"] = response_url
    return _form(fields)


def _form(fields: dict[str, str]) -> bytes:
    return urlencode(fields).encode()


def _plain(text: str) -> dict:
    return {"type": "plain_text", "text": text, "emoji": True}


def _user(user_id: str, user_name: str | None, team_id: str) -> dict:
    name = user_name or user_id.lower()
    return {"id": user_id, "username": name, "name": name, "team_id": team_id}


def _find_element(
    blocks: list[dict], action_id: str, *, value: str | None = None, option: str | None = None
) -> tuple[dict | None, dict | None]:
    """The block and element with `action_id`: an element of an actions block, or a section's accessory; with
    `value` or `option`, the one whose value (or one of whose options' values) it is."""
    for block in blocks:
        for element in [*(block.get("elements") or []), block.get("accessory") or {}]:
            if element.get("action_id") != action_id:
                continue
            if value is not None and element.get("value") != value:
                continue
            if option is not None and option not in [o.get("value") for o in element.get("options") or ()]:
                continue
            return block, element
    return None, None


def _option(value: str) -> dict:
    return {"text": _plain(value), "value": value}


def _input_state(kind: str, value: Any) -> dict:
    if kind in _VALUE_INPUTS:
        return {"type": kind, "value": value}
    if kind in _OPTION_INPUTS:
        return {"type": kind, "selected_option": None if value is None else _option(value)}
    if kind == "checkboxes":
        return {"type": kind, "selected_options": [_option(v) for v in value or ()]}
    if kind == "datepicker":
        return {"type": kind, "selected_date": value}
    raise ValueError(f"no state shape for {kind!r} inputs")
