"""The bad-input matrix (issue 6): every kind of bad input orderbot meets, one test id per case, against the real
server. Each case asserts the exact answer (HTTP status and body, or the words the person sees) AND what changed:
the row count of every table, every GraphQL call the sandbox Shopify saw, every Slack call that posts, updates or
opens something, and every post to a response_url. For bad input that is nothing, or only the refusal itself (an
audit row, one ephemeral answer).

Decisions:

- Webhook bodies are limited to 2 MiB (bot/shopify/webhooks.py MAX_BODY_BYTES): one byte more is a 413 with the
  endpoint's JSON error, whether Content-Length announces it or the body comes chunked (counted as it arrives).
  Slack requests are limited to 1 MiB (bot/slack/app.py MAX_SLACK_BODY) the same two ways.
- A signed webhook without X-Shopify-Webhook-Id (or with an empty one) is stored and answered 200. Shopify always
  sends the header, so only a proxy stripping it can lose it, and refusing would then lose every webhook (Shopify
  retries, then drops the subscription). Duplicates are still caught by X-Shopify-Event-Id and, for order topics,
  the body's identity; the first such delivery logs one warning. A blank id is no id: stored as one, it made every
  later delivery without one a "duplicate".
- A webhook of a topic orderbot does not handle is stored (status "ignored") and answered 200: Shopify only sends
  topics someone subscribed to, and a refusal would only make it retry. Nothing else happens.
- A replayed Slack request (the same signed bytes again inside Slack's 5-minute window, which Bolt accepts) is
  refused 401 by a replay guard that runs after the signature is checked (bot/slack/app.py ReplayGuard). An honest
  second click has a new timestamp and signature and goes through. The guard is in memory: a restart forgets it,
  and then the actions' own checks (re-read before acting, one run at a time) are what stop a second effect.
- A Slack body Bolt cannot parse (not UTF-8, a `payload` that is not a JSON object) is a 400, not the 500 Bolt
  gave; Bolt parses before it verifies, so this holds signed or not.
- A button whose value names no order orderbot knows (another shop's order, a forged value) is refused in words and
  audited as refused; nothing reaches Shopify. A value that is not an order id at all is answered in words only.
- A submitted modal is re-checked on the server (Slack enforces max_length only in its client): input errors go
  back onto the modal (`response_action: errors`); `private_metadata` orderbot did not sign (another order,
  garbage, not JSON, empty) is answered "This form has expired or was changed" on the form. Nothing is done.
- `/orders` text that does not parse is answered in the ack, escaped (no @channel, no mention), at most 4,000
  characters read; nothing is stored and every table is still there.
- Configuration: a malformed variable stops `check` and `serve` with exit code 2 and one line naming it; a secret
  is never repeated (its length and token kind only). DATABASE_PATH must be in a directory that exists: creating
  it would start an empty database where a disk was meant to be mounted (README, "persistent disk").
- Shopify unreachable at start: the server starts, stores webhooks, /healthz reports the failed scan, and the log
  has one line per failed scan (every SCAN_INTERVAL, at least a minute), no traceback.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import inspect
import json
import logging
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import closing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

import aiohttp
import pytest
from slack_bolt.listener.asyncio_runner import AsyncioListenerRunner

from bot.cli import main
from bot.config import Settings
from bot.sandbox.shopify_payloads import webhook_headers
from bot.sandbox.slack_payloads import (
    block_actions_body,
    input_values,
    sign_request,
    slash_command_body,
    view_submission_body,
)
from bot.shopify.webhooks import MAX_BODY_BYTES, sign
from bot.slack.app import MAX_SLACK_BODY
from bot.slack.metadata import ModalContext, pack
from bot.web import SLACK, TASKS
from tests.conftest import (
    ADMIN,
    CHANNEL,
    SHOP,
    SIGNING_SECRET,
    WEBHOOK_SECRET,
    World,
    example_payload,
    free_port,
    order_gid_of,
    wait_for,
)

# --- what changed: every table's rows, Shopify's calls, Slack's posts -------------------------------------------

SLACK_WRITES = frozenset(
    {"chat.postMessage", "chat.update", "chat.delete", "chat.postEphemeral", "views.open", "views.update"}
)
UNKNOWN_ORDER = "gid://shopify/Order/424242424242"  # an order id of some other shop: orderbot never saw it


def counts(world: World) -> dict[str, int | str]:
    """Everything a bad input could change: rows per table (and a digest of them), Shopify calls, Slack writes."""
    found: dict[str, int | str] = {}
    for (table,) in world.rows("SELECT name FROM sqlite_master WHERE type = 'table'"):
        rows = world.rows(f"SELECT * FROM [{table}] ORDER BY rowid")
        found[f"rows:{table}"] = len(rows)
        found[f"digest:{table}"] = hashlib.sha256(repr(rows).encode()).hexdigest()
    found["shopify calls"] = len(world.sandbox.operations)
    for call in world.slack.calls:
        if call.method in SLACK_WRITES:
            found[f"slack:{call.method}"] = int(found.get(f"slack:{call.method}", 0)) + 1
    found["slack:response_url"] = len(world.slack.responses)
    return found


def changes(before: dict[str, int | str], after: dict[str, int | str]) -> dict[str, int]:
    """What moved: counts by how much; a table whose rows changed in place as `updated:<table>`, one that
    disappeared as `gone:<table>`."""
    moved = {}
    for key in before.keys() | after.keys():
        if not key.startswith("digest:") and (delta := int(after.get(key, 0)) - int(before.get(key, 0))):
            moved[key] = delta
    for key, digest in before.items():
        table = key.partition(":")[2]
        if key.startswith("rows:") and key not in after:
            moved[f"gone:{table}"] = 1
        elif key.startswith("digest:") and after.get(key, digest) != digest and f"rows:{table}" not in moved:
            moved[f"updated:{table}"] = 1
    return moved


@pytest.fixture
async def world(world: World) -> World:
    """conftest's world once its start-up calls are over (the shop's name read from Shopify), so the counts move
    only by what a case sends."""
    await asyncio.gather(*(t for t in world.app[TASKS] if t.get_name() == "shop-name"))
    return world


# Bolt runs each listener as a task of its own, past its ack, with a coroutine of this name (created before the
# request is answered, so it exists once the test has the answer).
BOLT_LISTENER_TASK = "run_ack_function_asynchronously"


def bolt_listener_running() -> bool:
    return any(
        not task.done() and task.get_coro().__qualname__.endswith(BOLT_LISTENER_TASK) for task in asyncio.all_tasks()
    )


def test_bolt_still_names_its_listener_task_so():
    """`settled` waits for Bolt's listener tasks by this name: if Bolt renamed it, the wait would end at once."""
    assert BOLT_LISTENER_TASK in inspect.getsource(AsyncioListenerRunner.run)


async def settled(world: World, *, after_slack: bool = True) -> None:
    """Let what a request started finish: Bolt's listener tasks (which spawn orderbot's own work), orderbot's
    listener tasks, stored deliveries, the Slack outbox."""
    if after_slack:
        await wait_for(lambda: not bolt_listener_running())
    await world.app[SLACK].listeners.drain()
    await world.settled()
    await wait_for(lambda: not world.rows("SELECT 1 FROM outbox WHERE status IN ('pending', 'sending')"))


async def stuck_alert(world: World, number: int) -> dict:
    await world.order_webhook(number)
    alert = await world.wait_for_alert(number, lambda a: any(b["type"] == "actions" for b in a["blocks"]))
    await settled(world, after_slack=False)
    return alert


@dataclass
class Answer:
    status: int
    body: Any  # JSON when it is JSON, else the text


async def read_answer(response: aiohttp.ClientResponse) -> Answer:
    text = await response.text()
    try:
        return Answer(response.status, json.loads(text))
    except ValueError:
        return Answer(response.status, text)


# --- webhooks ----------------------------------------------------------------------------------------------------


async def chunked(body: bytes) -> AsyncIterator[bytes]:
    """A body aiohttp sends with Transfer-Encoding: chunked (no Content-Length)."""
    for start in range(0, len(body), 64 * 1024):
        yield body[start : start + 64 * 1024]


@dataclass(frozen=True)
class Delivery:
    """How a case spoils a signed delivery: its body, its headers (None removes one), signed before or after."""

    body: bytes | None = None  # None: the order's real payload
    headers: dict[str, str | None] = field(default_factory=dict)
    sign_then_replace_body: bytes | None = None
    topic: str = "orders/updated"
    send_chunked: bool = False


async def post_delivery(world: World, delivery: Delivery) -> Answer:
    payload = world.sandbox.webhook_payload(order_gid_of(world.sandbox, 1001))
    body = delivery.body if delivery.body is not None else json.dumps(payload).encode()
    headers: dict[str, str | None] = {
        **webhook_headers(body, topic=delivery.topic, secret=WEBHOOK_SECRET, shop=SHOP),
        **delivery.headers,
    }
    if delivery.sign_then_replace_body is not None:
        body = delivery.sign_then_replace_body
    sent = {name: value for name, value in headers.items() if value is not None}
    data = chunked(body) if delivery.send_chunked else body
    async with world.http.post(f"{world.url}/shopify/webhooks", data=data, headers=sent) as response:
        return await read_answer(response)


def refused(error: str) -> dict:
    return {"ok": False, "error": error}


BAD_SIGNATURE = refused("invalid or missing X-Shopify-Hmac-Sha256")
NOT_AN_OBJECT = refused("body is not a UTF-8 JSON object")
TOO_LARGE = refused("body larger than 2 MiB")
OVER_THE_LIMIT = json.dumps({"padding": "x" * MAX_BODY_BYTES}).encode()
STORED = {"ok": True, "duplicate": False}

WEBHOOK_CASES = {
    "signature-missing": (Delivery(headers={"X-Shopify-Hmac-Sha256": None}), 401, BAD_SIGNATURE, {}),
    "signature-empty": (Delivery(headers={"X-Shopify-Hmac-Sha256": ""}), 401, BAD_SIGNATURE, {}),
    "signature-wrong-secret": (
        Delivery(body=b'{"id": 1}', headers={"X-Shopify-Hmac-Sha256": sign(b'{"id": 1}', "another-secret")}),
        401,
        BAD_SIGNATURE,
        {},
    ),
    "signature-tampered-body": (
        Delivery(body=b'{"id": 1, "total_price": "10.00"}', sign_then_replace_body=b'{"id": 1, "total_price": "0.01"}'),
        401,
        BAD_SIGNATURE,
        {},
    ),
    "signature-of-another-body": (
        Delivery(headers={"X-Shopify-Hmac-Sha256": sign(b'{"id": 2}', WEBHOOK_SECRET)}),
        401,
        BAD_SIGNATURE,
        {},
    ),
    "signature-not-base64": (Delivery(headers={"X-Shopify-Hmac-Sha256": "%%% not base64 %%%"}), 401, BAD_SIGNATURE, {}),
    "signature-truncated": (
        Delivery(body=b'{"id": 1}', headers={"X-Shopify-Hmac-Sha256": sign(b'{"id": 1}', WEBHOOK_SECRET)[:20]}),
        401,
        BAD_SIGNATURE,
        {},
    ),
    "signature-hex-not-base64": (
        Delivery(
            body=b'{"id": 1}',
            headers={
                "X-Shopify-Hmac-Sha256": hmac.new(WEBHOOK_SECRET.encode(), b'{"id": 1}', hashlib.sha256).hexdigest()
            },
        ),
        401,
        BAD_SIGNATURE,
        {},
    ),
    "body-empty": (Delivery(body=b""), 400, NOT_AN_OBJECT, {}),
    "body-not-json": (Delivery(body=b"{not json"), 400, NOT_AN_OBJECT, {}),
    "body-not-utf8": (Delivery(body=b'{"name": "\xff\xfe"}'), 400, NOT_AN_OBJECT, {}),
    "body-json-array": (Delivery(body=b"[1, 2, 3]"), 400, NOT_AN_OBJECT, {}),
    "body-json-null": (Delivery(body=b"null"), 400, NOT_AN_OBJECT, {}),
    "body-deeply-nested-array": (Delivery(body=b"[" * 100_000 + b"]" * 100_000), 400, NOT_AN_OBJECT, {}),
    "body-deeply-nested-object": (Delivery(body=b'{"a":' * 100_000 + b"1" + b"}" * 100_000), 400, NOT_AN_OBJECT, {}),
    "body-over-2mib": (Delivery(body=OVER_THE_LIMIT), 413, TOO_LARGE, {}),
    "body-over-2mib-chunked": (Delivery(body=OVER_THE_LIMIT, send_chunked=True), 413, TOO_LARGE, {}),
    "header-topic-missing": (Delivery(headers={"X-Shopify-Topic": None}), 400, refused("missing X-Shopify-Topic"), {}),
    "header-topic-blank": (Delivery(headers={"X-Shopify-Topic": "  "}), 400, refused("missing X-Shopify-Topic"), {}),
    "header-wrong-shop": (
        Delivery(headers={"X-Shopify-Shop-Domain": "someone-else.myshopify.com"}),
        403,
        refused(f"this orderbot serves {SHOP}, not someone-else.myshopify.com"),
        {},
    ),
    "header-unknown-topic-stored-and-ignored": (
        Delivery(body=b'{"id": 1, "title": "Mug"}', topic="products/exploded"),
        200,
        STORED,
        {"rows:inbox": 1},
    ),
}


@pytest.mark.parametrize(("delivery", "status", "answer", "changed"), WEBHOOK_CASES.values(), ids=WEBHOOK_CASES)
async def test_bad_webhooks(world: World, delivery: Delivery, status: int, answer: dict, changed: dict):
    before = counts(world)
    got = await post_delivery(world, delivery)
    await settled(world, after_slack=False)
    assert (got.status, got.body) == (status, answer)
    assert changes(before, counts(world)) == changed
    if changed:
        assert world.rows("SELECT topic, status FROM inbox") == [("products/exploded", "ignored")]


@pytest.mark.parametrize("send_chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize(("extra", "status"), [(0, 200), (1, 413)], ids=["exactly-2mib", "one-byte-more"])
async def test_the_body_limit_is_exactly_2_mib(world: World, send_chunked: bool, extra: int, status: int):
    padding = MAX_BODY_BYTES - len(json.dumps({"id": 1, "padding": ""}).encode()) + extra
    body = json.dumps({"id": 1, "padding": "x" * padding}).encode()
    assert len(body) == MAX_BODY_BYTES + extra
    before = counts(world)
    got = await post_delivery(world, Delivery(body=body, topic="products/update", send_chunked=send_chunked))
    await settled(world, after_slack=False)
    assert (got.status, got.body) == (status, STORED if status == 200 else TOO_LARGE)
    assert changes(before, counts(world)) == ({"rows:inbox": 1} if status == 200 else {})


@pytest.mark.parametrize("missing", [None, ""], ids=["header-absent", "header-empty"])
async def test_a_signed_delivery_without_a_webhook_id_is_stored_and_still_deduplicated(
    world: World, missing: str | None, caplog: pytest.LogCaptureFixture
):
    first, second = (
        json.dumps(world.sandbox.webhook_payload(order_gid_of(world.sandbox, n))).encode() for n in (1001, 1002)
    )
    sent = [
        (first, "e-1"),
        (first, "e-1"),  # Shopify's retry
        (first, "e-2"),  # the same body replayed under another event id
        (second, "e-3"),  # another order
    ]
    with caplog.at_level(logging.WARNING, logger="bot.shopify.webhooks"):
        answers = [
            await post_delivery(
                world, Delivery(body=body, headers={"X-Shopify-Webhook-Id": missing, "X-Shopify-Event-Id": event})
            )
            for body, event in sent
        ]
    assert [(a.status, a.body["duplicate"]) for a in answers] == [(200, False), (200, True), (200, True), (200, False)]
    # A 200 means on disk: the two new deliveries are there now, without a webhook id (NULL, not a blank).
    assert world.rows("SELECT webhook_id, event_id FROM inbox ORDER BY id") == [(None, "e-1"), (None, "e-3")]
    warnings = [r.getMessage() for r in caplog.records if r.name == "bot.shopify.webhooks"]
    assert warnings == [
        "a webhook came without X-Shopify-Webhook-Id (does a proxy strip it?); stored, and deduplicated by "
        "X-Shopify-Event-Id and the order's body only"
    ]


# --- Slack requests: signatures, timestamps, replays, bodies ---------------------------------------------------


def signed_by_hand(body: bytes) -> dict[str, str]:
    """Slack's v0 signature over raw bytes, now (slack_sdk's signer only takes UTF-8 text)."""
    timestamp = int(time.time())
    base = b"v0:" + str(timestamp).encode() + b":" + body
    digest = hmac.new(SIGNING_SECRET.encode(), base, hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": f"v0={digest}",
        "Content-Type": "application/x-www-form-urlencoded",
    }


def signed(body: bytes) -> tuple[bytes, dict[str, str]]:
    """`body` with the headers Slack would send with it now."""
    return body, sign_request(body, SIGNING_SECRET)


async def post_to_slack_route(world: World, body: bytes, headers: dict[str, str], *, send_chunked=False) -> Answer:
    data = chunked(body) if send_chunked else body
    async with world.http.post(f"{world.url}/slack/events", data=data, headers=headers) as response:
        return await read_answer(response)


def click_on_alert(world: World, alert: dict, **overrides: Any) -> bytes:
    """The admin clicking Archive on the alert, or what `overrides` (block_actions_body's arguments) say instead."""
    return block_actions_body(
        action_id=overrides.pop("action_id", "archive"),
        user_id=ADMIN,
        channel_id=CHANNEL,
        message_ts=alert["ts"],
        message=alert,
        response_url=world.slack.response_url(CHANNEL, ADMIN, alert["ts"]),
        **overrides,
    )


@dataclass(frozen=True)
class SlackRequest:
    """A request to /slack/events built from a click on the alert: `spoil` turns (body, its good headers) into what
    is sent."""

    spoil: Callable[[bytes, dict[str, str]], tuple[bytes, dict[str, str]]] = lambda body, headers: (body, headers)
    click: dict[str, Any] = field(default_factory=dict)  # block_actions_body arguments, for another click
    send_chunked: bool = False


def headers_with(**changed: str | None) -> Callable[[bytes, dict[str, str]], tuple[bytes, dict[str, str]]]:
    def spoil(body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
        names = {"signature": "X-Slack-Signature", "timestamp": "X-Slack-Request-Timestamp"}
        sent = {**headers, **{names[key]: value for key, value in changed.items()}}
        return body, {name: value for name, value in sent.items() if value is not None}

    return spoil


def signed_at(offset: int) -> Callable[[bytes, dict[str, str]], tuple[bytes, dict[str, str]]]:
    return lambda body, _: (body, sign_request(body, SIGNING_SECRET, timestamp=int(time.time()) + offset))


def replaced_by(new_body: bytes) -> Callable[[bytes, dict[str, str]], tuple[bytes, dict[str, str]]]:
    """Another body, properly signed: only someone holding the signing secret could send it."""
    return lambda _body, _headers: (new_body, signed_by_hand(new_body))


INVALID_SIGNATURE = {"error": "invalid signature"}  # headers of the wrong form, refused before Bolt
INVALID_REQUEST = {"error": "invalid request"}  # Bolt: the signature does not match, or the timestamp is too old
MALFORMED = {"error": "malformed request"}
OVER_1MIB = b"payload=" + b"a" * MAX_SLACK_BODY

SLACK_REQUEST_CASES = {
    "signature-wrong-secret": (
        SlackRequest(lambda body, _: (body, sign_request(body, "0123456789abcdef0123456789abcdef"))),
        401,
        INVALID_REQUEST,
    ),
    "signature-missing": (SlackRequest(headers_with(signature=None)), 401, INVALID_SIGNATURE),
    "signature-empty": (SlackRequest(headers_with(signature="")), 401, INVALID_SIGNATURE),
    "signature-malformed": (SlackRequest(headers_with(signature="v0=not-hex")), 401, INVALID_SIGNATURE),
    "signature-of-another-body": (
        SlackRequest(lambda body, headers: (body + b"&extra=1", headers)),
        401,
        INVALID_REQUEST,
    ),
    "timestamp-stale": (SlackRequest(signed_at(-301)), 401, INVALID_REQUEST),
    "timestamp-future": (SlackRequest(signed_at(+301)), 401, INVALID_REQUEST),
    "timestamp-missing": (SlackRequest(headers_with(timestamp=None)), 401, INVALID_SIGNATURE),
    "timestamp-not-a-number": (SlackRequest(headers_with(timestamp="yesterday")), 401, INVALID_SIGNATURE),
    "action-id-unknown": (SlackRequest(click={"action_id": "self_destruct"}), 404, {"error": "unhandled request"}),
    "payload-type-unknown": (
        SlackRequest(replaced_by(b'payload={"type": "teleport"}')),
        404,
        {"error": "unhandled request"},
    ),
    "body-not-utf8": (SlackRequest(replaced_by(b"payload=\xff\xfe")), 400, MALFORMED),
    "payload-not-json": (SlackRequest(replaced_by(b"payload=%7Bnot+json")), 400, MALFORMED),
    "payload-json-array": (SlackRequest(replaced_by(b"payload=%5B1%2C2%5D")), 400, MALFORMED),
    "payload-deeply-nested": (SlackRequest(replaced_by(b"payload=" + b"%5B" * 100_000)), 400, MALFORMED),
    "payload-not-slacks-shape": (
        SlackRequest(replaced_by(b"payload=" + quote(json.dumps({"authorizations": 5})).encode())),
        400,
        MALFORMED,
    ),
    "body-over-1mib": (SlackRequest(replaced_by(OVER_1MIB)), 413, {"error": "request too large"}),
    "body-over-1mib-chunked": (
        SlackRequest(replaced_by(OVER_1MIB), send_chunked=True),
        413,
        {"error": "request too large"},
    ),
}


@pytest.mark.parametrize(("request_", "status", "answer"), SLACK_REQUEST_CASES.values(), ids=SLACK_REQUEST_CASES)
async def test_bad_slack_requests(world: World, request_: SlackRequest, status: int, answer: dict):
    alert = await stuck_alert(world, 1003)
    good = click_on_alert(world, alert, **request_.click)
    body, headers = request_.spoil(good, sign_request(good, SIGNING_SECRET))
    before = counts(world)
    got = await post_to_slack_route(world, body, headers, send_chunked=request_.send_chunked)
    await settled(world)
    assert (got.status, got.body) == (status, answer)
    assert changes(before, counts(world)) == {}


# --- forged values: buttons and menus naming an order orderbot does not know -----------------------------------

UNKNOWN = "orderbot does not know that order; check the order number."
STALE_BUTTON = "That button names no order orderbot knows; use the buttons on the order's latest alert."
REFUSED_IN_WORDS = {"slack:chat.postEphemeral": 1}
REFUSED_AND_AUDITED = {"slack:chat.postEphemeral": 1, "rows:audit": 1}


def button(action_id: str, value: str) -> dict[str, Any]:
    return {"action_id": action_id, "value": value}


def snooze_option(value: str) -> dict[str, Any]:
    return {"action_id": "snooze", "element_type": "static_select", "selected_option_value": value}


FORGED_CASES = {
    "archive-order-of-another-shop": (button("archive", UNKNOWN_ORDER), UNKNOWN, REFUSED_AND_AUDITED),
    "release-hold-order-of-another-shop": (button("release_hold", UNKNOWN_ORDER), UNKNOWN, REFUSED_AND_AUDITED),
    "notify-order-of-another-shop": (button("notify_customer", UNKNOWN_ORDER), UNKNOWN, REFUSED_AND_AUDITED),
    "fulfill-order-of-another-shop": (button("fulfill", UNKNOWN_ORDER), UNKNOWN, REFUSED_AND_AUDITED),
    "cancel-order-of-another-shop": (button("cancel_order", UNKNOWN_ORDER), UNKNOWN, REFUSED_AND_AUDITED),
    "snooze-order-of-another-shop": (snooze_option(f"{UNKNOWN_ORDER}|1d"), UNKNOWN, REFUSED_AND_AUDITED),
    "capture-order-of-another-shop": (button("capture_payment", UNKNOWN_ORDER), UNKNOWN, REFUSED_AND_AUDITED),
    "delete-order-of-another-shop": (button("delete", UNKNOWN_ORDER), UNKNOWN, REFUSED_AND_AUDITED),
    "move-order-of-another-shop": (button("move", UNKNOWN_ORDER), UNKNOWN, REFUSED_AND_AUDITED),
    "archive-value-sql": (button("archive", "'; DROP TABLE orders; --"), STALE_BUTTON, REFUSED_IN_WORDS),
    "archive-value-empty": (button("archive", ""), STALE_BUTTON, REFUSED_IN_WORDS),
    "archive-value-gid-of-a-customer": (button("archive", "gid://shopify/Customer/1"), STALE_BUTTON, REFUSED_IN_WORDS),
    "snooze-option-garbage": (snooze_option("<!channel>"), STALE_BUTTON, REFUSED_IN_WORDS),
}


@pytest.mark.parametrize(("click", "words", "changed"), FORGED_CASES.values(), ids=FORGED_CASES)
async def test_forged_button_values(world: World, click: dict, words: str, changed: dict):
    """Refused in words (an ephemeral to the person who clicked), audited as refused when the value names an order,
    and nothing reaches Shopify (orderbot checks its own store before it asks Shopify anything)."""
    alert = await stuck_alert(world, 1003)
    before = counts(world)
    got = await world.post_slack(click_on_alert(world, alert, **click))
    await wait_for(lambda: world.slack.ephemerals(ADMIN))
    await settled(world)
    assert (got.status, got.text_body) == (200, "")
    assert [e["text"] for e in world.slack.ephemerals(ADMIN)] == [words]
    assert changes(before, counts(world)) == changed
    if "rows:audit" in changed:
        action = click["action_id"]
        assert world.rows("SELECT action, order_id, outcome, error FROM audit") == [
            (action, UNKNOWN_ORDER, "refused", UNKNOWN)
        ]


# --- submitted modals ------------------------------------------------------------------------------------------

FORM_CALLBACKS = {"fulfill": "fulfill_modal", "notify_customer": "notify_modal", "cancel_order": "cancel_order_modal"}
FORM_ORDERS = {"fulfill": 1001, "notify_customer": 1002, "cancel_order": 1004}  # stuck with that button seeded


async def opened_form(world: World, number: int, action_id: str) -> dict:
    """Click `action_id` on the order's alert; the modal Slack opened."""
    await stuck_alert(world, number)
    callback_id = FORM_CALLBACKS[action_id]
    await world.click(number, action_id)
    await wait_for(lambda: any(v["callback_id"] == callback_id for v in world.slack.opened_views))
    await settled(world)
    return [v for v in world.slack.opened_views if v["callback_id"] == callback_id][-1]


def submission(view: dict, values: dict, metadata: str | None = None) -> bytes:
    return view_submission_body(
        callback_id=view["callback_id"],
        values=input_values(values),
        private_metadata=view["private_metadata"] if metadata is None else metadata,
        user_id=ADMIN,
    )


EXPIRED = "This form has expired or was changed; open it again from the alert."
TRACKING = {"tracking_number": {"tracking_number": ("plain_text_input", "1Z999AA10123456784")}}
NO_BOX_TICKED = {"no_tracking": {"no_tracking": ("checkboxes", [])}}
A_REASON = {"reason": {"reason": ("static_select", "CUSTOMER")}}


def text_input(name: str, value: str | None) -> dict:
    return {name: {name: ("plain_text_input", value)}}


def another_order(metadata: str) -> str:
    """The modal's context naming another order, under the signature the original carried."""
    context, signature = metadata.rsplit(".", 1)
    forged = {**json.loads(context), "order_id": UNKNOWN_ORDER}
    return json.dumps(forged, separators=(",", ":")) + "." + signature


def signed_elsewhere(metadata: str) -> str:
    context = json.loads(metadata.rsplit(".", 1)[0])
    return pack(ModalContext(UNKNOWN_ORDER, context["channel"], context["message_ts"]), "another-signing-secret")


VIEW_CASES = {
    "fulfill-nothing-entered": (
        "fulfill",
        {**text_input("tracking_number", None), **NO_BOX_TICKED},
        None,
        {"tracking_number": "Enter a tracking number, or tick “Ship without a tracking number”."},
    ),
    "fulfill-only-spaces": (
        "fulfill",
        {**text_input("tracking_number", "   "), **NO_BOX_TICKED},
        None,
        {"tracking_number": "Enter a tracking number, or tick “Ship without a tracking number”."},
    ),
    "fulfill-inputs-missing": (
        "fulfill",
        {},
        None,
        {"tracking_number": "Enter the tracking number to add to the shipment."},
    ),
    "fulfill-tracking-number-256-characters": (
        "fulfill",
        text_input("tracking_number", "9" * 256),
        None,
        {"tracking_number": "A tracking number is at most 255 characters."},
    ),
    "fulfill-tracking-link-not-a-web-address": (
        "fulfill",
        {**TRACKING, "tracking_url": {"tracking_url": ("url_text_input", "javascript:alert(1)")}},
        None,
        {"tracking_url": "Enter a web address starting with https://, or leave it empty."},
    ),
    "fulfill-tracking-link-2001-characters": (
        "fulfill",
        {**TRACKING, "tracking_url": {"tracking_url": ("url_text_input", "https://t.example/" + "x" * 1983)}},
        None,
        {"tracking_url": "A tracking link is at most 2,000 characters."},
    ),
    "fulfill-carrier-not-offered": (
        "fulfill",
        {**TRACKING, "tracking_company": {"tracking_company": ("static_select", "<!channel>")}},
        None,
        {"tracking_company": "Pick a carrier from the list, or “Other”."},
    ),
    "notify-subject-and-message-empty": (
        "notify_customer",
        {**text_input("subject", ""), **text_input("message", None)},
        None,
        {
            "subject": "Write a subject of at most 200 characters.",
            "message": "Write a message of at most 3000 characters.",
        },
    ),
    "notify-subject-201-characters": (
        "notify_customer",
        {**text_input("subject", "s" * 201), **text_input("message", "Your parcel is on its way.")},
        None,
        {"subject": "Write a subject of at most 200 characters."},
    ),
    "notify-message-3001-characters": (
        "notify_customer",
        {**text_input("subject", "Your order"), **text_input("message", "m" * 3001)},
        None,
        {"message": "Write a message of at most 3000 characters."},
    ),
    "cancel-no-reason": (
        "cancel_order",
        {"reason": {"reason": ("static_select", None)}},
        None,
        {"reason": "Pick a reason."},
    ),
    "cancel-reason-not-offered": (
        "cancel_order",
        {"reason": {"reason": ("static_select", "REFUND_EVERYTHING")}},
        None,
        {"reason": "Pick a reason."},
    ),
    "cancel-staff-note-256-characters": (
        "cancel_order",
        {**A_REASON, **text_input("staff_note", "n" * 256)},
        None,
        {"staff_note": "A staff note is at most 255 characters."},
    ),
    "metadata-another-order": ("fulfill", TRACKING, another_order, {"tracking_number": EXPIRED}),
    "metadata-signed-with-another-secret": ("fulfill", TRACKING, signed_elsewhere, {"tracking_number": EXPIRED}),
    "metadata-signature-stripped": ("fulfill", TRACKING, lambda m: m.rsplit(".", 1)[0], {"tracking_number": EXPIRED}),
    "metadata-garbage": ("fulfill", TRACKING, lambda _: "garbage", {"tracking_number": EXPIRED}),
    "metadata-not-json": ("fulfill", TRACKING, lambda _: "{not json.AAAA", {"tracking_number": EXPIRED}),
    "metadata-empty": ("fulfill", TRACKING, lambda _: "", {"tracking_number": EXPIRED}),
    "metadata-another-order-on-cancel": ("cancel_order", A_REASON, another_order, {"reason": EXPIRED}),
}


@pytest.mark.parametrize(("action_id", "values", "tamper", "errors"), VIEW_CASES.values(), ids=VIEW_CASES)
async def test_bad_modal_submissions(world: World, action_id: str, values: dict, tamper, errors: dict):
    """Shown on the modal under the input (Slack keeps the modal open); nothing is done. A form whose metadata
    orderbot did not sign is a forgery or a tampered client: it is audited as refused (the only change)."""
    view = await opened_form(world, FORM_ORDERS[action_id], action_id)
    metadata = tamper(view["private_metadata"]) if tamper else None
    before = counts(world)
    got = await post_to_slack_route(world, *signed(submission(view, values, metadata)))
    await settled(world)
    assert (got.status, got.body) == (200, {"response_action": "errors", "errors": errors})
    if tamper is None:
        assert changes(before, counts(world)) == {}
        return
    await wait_for(lambda: world.rows("SELECT outcome FROM audit") == [("refused",)])
    assert changes(before, counts(world)) == {"rows:audit": 1}
    (error,) = world.rows("SELECT error FROM audit")[0]
    assert error == "the form's metadata was not written by orderbot"


async def test_a_modal_submitted_without_its_state_is_answered_on_the_form(world: World):
    view = await opened_form(world, 1001, "fulfill")
    payload = json.loads(parse_qs(submission(view, TRACKING).decode())["payload"][0])
    del payload["view"]["state"]
    before = counts(world)
    got = await post_to_slack_route(world, *signed(b"payload=" + quote(json.dumps(payload)).encode()))
    await settled(world)
    assert got.status == 200 and got.body["response_action"] == "errors"
    assert changes(before, counts(world)) == {}


# --- replays ----------------------------------------------------------------------------------------------------


async def archive_request(world: World) -> tuple[bytes, Callable[[], bool]]:
    """Archive #1003 from its alert; done when its audit row is written."""
    alert = await stuck_alert(world, 1003)
    return click_on_alert(world, alert), lambda: bool(world.audit(1003))


async def help_request(world: World) -> tuple[bytes, Callable[[], bool]]:
    body = slash_command_body(
        text="help", user_id=ADMIN, channel_id=CHANNEL, response_url=world.slack.response_url(CHANNEL, ADMIN)
    )
    return body, lambda: bool(world.slack.responses)


async def fulfill_submission(world: World) -> tuple[bytes, Callable[[], bool]]:
    view = await opened_form(world, 1001, "fulfill")
    return submission(view, TRACKING), lambda: bool(world.audit(1001))


@pytest.mark.parametrize("make", [archive_request, help_request, fulfill_submission], ids=["click", "command", "modal"])
async def test_a_replayed_slack_request_is_refused_and_does_nothing(world: World, make):
    """The same signed bytes again, well inside Slack's 5-minute window: 401, and no second audit row, mutation,
    answer or post."""
    body, done = await make(world)
    headers = sign_request(body, SIGNING_SECRET)
    first = await post_to_slack_route(world, body, headers)
    await wait_for(done)
    await settled(world)
    before = counts(world)
    replayed = await post_to_slack_route(world, body, headers)
    await settled(world)
    assert first.status == 200
    assert (replayed.status, replayed.body) == (401, {"error": "request already received"})
    assert changes(before, counts(world)) == {}


async def test_an_honest_second_click_is_not_a_replay(world: World):
    """A second click is another request (its own trigger id and action time, so its own signature), even within
    the same second: it goes through, and finds the order archived already, so Shopify changes once."""
    alert = await stuck_alert(world, 1003)
    first = await world.post_slack(click_on_alert(world, alert))
    await wait_for(lambda: len(world.audit(1003)) == 1)
    second = await world.post_slack(click_on_alert(world, alert))
    await wait_for(lambda: world.slack.ephemerals(ADMIN))
    assert first.status == second.status == 200
    assert [row["outcome"] for row in world.audit(1003)] == ["done", "already"]
    assert [op.variables for op in world.sandbox.operations if op.operation_name == "OrderClose"] == [
        {"input": {"id": order_gid_of(world.sandbox, 1003)}}
    ]
    assert [e["text"] for e in world.slack.ephemerals(ADMIN)] == ["#1003 is archived already."]


# --- /orders text ------------------------------------------------------------------------------------------------

ANY_USAGE = "\nUsage: `/orders help [command]` · `/orders help` lists every command."
SHOW_USAGE = "\nUsage: `/orders show #1001` · `/orders help` lists every command."
NOT_A_COMMAND = " is not an /orders command. `/orders help` lists them." + ANY_USAGE
ORDERS_LOOK = "Orders look like `#1001`, `#1001-#1020` or an admin link; filters like `stuck`, `older:7d`, `tag:name`."
CARD_OF_1001 = "#1001 is stuck: Unfulfilled"  # how the order card's text starts: read, nothing changed
HELP = "What /orders can do"
PINGS = ("<!channel", "<!here", "<!everyone", "<@")  # Slack's mentions: never in an answer to bad text

COMMAND_CASES = {
    "unparseable": (
        "archve #1001",
        "`archve` is not an /orders command. Did you mean `archive`?\n"
        "Usage: `/orders archive #1001 [more orders or a filter]` · `/orders help` lists every command.",
    ),
    "sql-injection": ("'; DROP TABLE orders; --", "`';`" + NOT_A_COMMAND),
    "sql-injection-after-an-order": (
        "show #1001'; DROP TABLE audit; --",
        "`#1001';` is not an order number; they look like `#1001`." + SHOW_USAGE,
    ),
    "channel-mention": ("<!channel>", "`&lt;!channel&gt;`" + NOT_A_COMMAND),
    "here-mention-after-an-action": (
        "archive #1001 <!here>",
        "`&lt;!here&gt;` is not an order or a filter. " + ORDERS_LOOK + "\n"
        "Usage: `/orders archive #1001 [more orders or a filter]` · `/orders help` lists every command.",
    ),
    "user-mention": ("<@U0STAFF|sam> archive #1001", "`&lt;@U0STAFF|sam&gt;`" + NOT_A_COMMAND),
    "markdown": ("*bold* _italic_ ~strike~ #1001", "`*bold*`" + NOT_A_COMMAND),
    "code-and-quote": ("```show``` > #1001", "`'''show'''`" + NOT_A_COMMAND),
    "link-elsewhere-labelled-as-an-order": (
        "show <https://evil.example/orders/1|#1001>",
        "`&lt;https://evil.example/orders/1|#1001&gt;` is not a link to a Shopify order; copy the address of the "
        "order's admin page." + SHOW_USAGE,
    ),
    "4000-characters-read": ("help" + " " * 3996, HELP),
    "4000-characters-of-nonsense": ("x" * 4000, "`" + "x" * 39 + "…`" + NOT_A_COMMAND),
    "4001-characters": (
        "help" + " " * 3997,
        "That command is too long (4,001 characters; the most is 4,000). Name fewer orders, or use a range or a "
        "filter." + ANY_USAGE,
    ),
    "emoji": ("show 🚀", "`🚀` is not an order or a filter. " + ORDERS_LOOK + SHOW_USAGE),
    "right-to-left-marks": ("\u202bshow\u200f #1001\u202c", CARD_OF_1001),
    "arabic-indic-digits": ("show #١٠٠١", "`#١٠٠١` is not an order number; they look like `#1001`." + SHOW_USAGE),
    "full-width-digits": ("show #１００１", CARD_OF_1001),
    "combining-marks": ("sho\u0301w #1001", "`shów` is not an /orders command. Did you mean `show`?" + SHOW_USAGE),
    "control-characters": ("show\x07 #1001\x00", CARD_OF_1001),
    "terminal-escape-sequence": (
        "show #1001\x1b[2J",
        "`#1001[2J` is not an order number; they look like `#1001`." + SHOW_USAGE,
    ),
}


@pytest.mark.parametrize(("text", "answer"), COMMAND_CASES.values(), ids=COMMAND_CASES)
async def test_bad_orders_text(world: World, text: str, answer: str):
    """Answered in words (a parse error in the ack itself), escaped, and read-only: no table changes or goes."""
    await stuck_alert(world, 1001)  # known to orderbot, so reading its card asks Shopify nothing
    before = counts(world)
    got = await world.command(text)
    await settled(world)
    read_only = answer in (CARD_OF_1001, HELP)  # answered through the response_url, after the ack
    assert got["text"].startswith(answer) if read_only else got["text"] == answer
    assert got["response_type"] == "ephemeral"
    assert not any(ping in json.dumps(got) for ping in PINGS)
    assert changes(before, counts(world)) == ({"slack:response_url": 1} if read_only else {})


# --- configuration -----------------------------------------------------------------------------------------------

GOOD_ENV = {
    "SLACK_BOT_TOKEN": "xoxb-1-2-abc",
    "SLACK_SIGNING_SECRET": SIGNING_SECRET,
    "SHOPIFY_SHOP": SHOP,
    "SHOPIFY_ACCESS_TOKEN": "shpat_x",
    "DATABASE_PATH": "orderbot.db",
}

CONFIG_CASES = {
    "bot-token-of-a-user": (
        "SLACK_BOT_TOKEN",
        "xoxp-1234-SECRETPART",
        "SLACK_BOT_TOKEN must be a bot token starting with xoxb- (got 20 characters starting 'xoxp-', not shown).",
    ),
    "bot-token-garbage": (
        "SLACK_BOT_TOKEN",
        "SECRETPART",
        "SLACK_BOT_TOKEN must be a bot token starting with xoxb- (got 10 characters, not shown).",
    ),
    "signing-secret-not-hex": (
        "SLACK_SIGNING_SECRET",
        "not-hex-SECRETPART",
        "SLACK_SIGNING_SECRET must be the app's hex signing secret (got 18 characters, not shown).",
    ),
    "app-token-is-a-bot-token": (
        "SLACK_APP_TOKEN",
        "xoxb-SECRETPART",
        "SLACK_APP_TOKEN must be an app-level token starting with xapp- (got 15 characters starting 'xoxb-', not "
        "shown).",
    ),
    "shop-not-myshopify": (
        "SHOPIFY_SHOP",
        "my-store.com",
        "SHOPIFY_SHOP must be the shop's my-store.myshopify.com domain (got 'my-store.com').",
    ),
    "shop-as-a-url": (
        "SHOPIFY_SHOP",
        "https://my-store.myshopify.com",
        "SHOPIFY_SHOP must be the shop's my-store.myshopify.com domain (got 'https://my-store.myshopify.com').",
    ),
    "admins-a-name": (
        "SLACK_ADMINS",
        "alex",
        "SLACK_ADMINS: 'alex' is not a Slack user id (U… or W…) or user-group id (S…).",
    ),
    "admins-some-names": (
        "SLACK_ADMINS",
        "U0ADMIN, @sam, #admins",
        "SLACK_ADMINS: '@sam', '#admins' are not Slack user ids (U… or W…) or user-group ids (S…).",
    ),
    "channel-a-name": (
        "SLACK_CHANNEL_ID",
        "#orders",
        "SLACK_CHANNEL_ID must be a channel id like C0123456789, not a channel name (got '#orders').",
    ),
    "database-in-a-missing-directory": (
        "DATABASE_PATH",
        "missing/orderbot.db",
        "DATABASE_PATH must be in a directory that exists: create it, or mount the persistent disk there "
        "(got 'missing/orderbot.db').",
    ),
}


def run_in_process(command: str, env: dict[str, str], cwd: Path, monkeypatch, capsys) -> tuple[int, str]:
    """What `python -m bot <command>` does (bot/__main__.py runs `main()`), in this process: in `cwd` (no .env
    there) with only `env` among orderbot's variables; its exit code and stderr."""
    for variable in (f.name.upper() for f in fields(Settings)):
        monkeypatch.delenv(variable, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(cwd)
    capsys.readouterr()
    code = main([command])
    return code, capsys.readouterr().err


async def run_bot(command: str, env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """`python -m bot <command>` in `cwd` (no .env there) with only `env`; its exit code and stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        command,
        env={"PATH": os.environ["PATH"], **env},
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        _, stderr = await process.communicate()
    return process.returncode, stderr.decode()


@pytest.mark.parametrize("command", ["check", "serve"])
@pytest.mark.parametrize(("name", "value", "problem"), CONFIG_CASES.values(), ids=CONFIG_CASES)
def test_bad_configuration_stops_the_command_with_one_line(
    tmp_path: Path, monkeypatch, capsys, command: str, name: str, value: str, problem: str
):
    env = {**GOOD_ENV, name: value, "PORT": str(free_port())}
    assert run_in_process(command, env, tmp_path, monkeypatch, capsys) == (2, f"config: {problem}\n")
    assert list(tmp_path.iterdir()) == [], "nothing created: no database, no directory"


async def test_the_real_process_exits_2_with_one_line_and_no_secret(tmp_path: Path, long_run: bool):
    """`python -m bot check` and `serve` as a person runs them: exit code 2, one line, no traceback, no secret.
    One case by default (a process starts in about a second); every case under --long."""
    cases = list(CONFIG_CASES.values()) if long_run else [CONFIG_CASES["bot-token-of-a-user"]]
    for name, value, problem in cases:
        env = {**GOOD_ENV, name: value, "PORT": str(free_port())}
        check, serve = await asyncio.gather(run_bot("check", env, tmp_path), run_bot("serve", env, tmp_path))
        assert check == serve == (2, f"config: {problem}\n"), name
        assert list(tmp_path.iterdir()) == [], "nothing created: no database, no directory"


# --- Shopify unreachable at start ------------------------------------------------------------------------------

SCAN_FAILED = "reconciliation failed, next try in 0:01:00: Shopify could not be reached; try again in a minute."


async def healthz(http: aiohttp.ClientSession, url: str) -> dict:
    async with http.get(f"{url}/healthz") as response:
        assert response.status == 200
        return await response.json()


async def test_unreachable_shopify_at_start_still_serves_and_says_so_once(tmp_path: Path, long_run: bool):
    """SHOPIFY_API_URL at a closed port: the server starts, stores webhooks (200), /healthz names the failed scan,
    and the log has one line per scan, no traceback. Under --long it also waits for the second scan, a minute on."""
    port, log_path = free_port(), tmp_path / "serve.log"
    env = {
        "SHOPIFY_SHOP": SHOP,
        "SHOPIFY_ACCESS_TOKEN": "shpat_x",
        "SHOPIFY_API_URL": f"http://127.0.0.1:{free_port()}",
        "SHOPIFY_CLIENT_SECRET": WEBHOOK_SECRET,
        "DATABASE_PATH": str(tmp_path / "orderbot.db"),
        "PORT": str(port),
        "SCAN_INTERVAL": "1m",
    }
    with log_path.open("wb") as log_file:
        server = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "serve",
            env={"PATH": os.environ["PATH"], **env},
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            await wait_for(lambda: serving(http, url), timeout=30)
            body = json.dumps(example_payload("orders/updated")).encode()
            headers = webhook_headers(body, topic="orders/updated", secret=WEBHOOK_SECRET, shop=SHOP)
            async with http.post(f"{url}/shopify/webhooks", data=body, headers=headers) as response:
                stored = await read_answer(response)
            await wait_for(lambda: health_says_scan_failed(http, url), timeout=30)
            if long_run:
                await asyncio.sleep(65)
    finally:
        server.terminate()
        async with asyncio.timeout(20):
            await server.wait()
    assert (stored.status, stored.body) == (200, STORED)
    with closing(sqlite3.connect(tmp_path / "orderbot.db")) as db:
        assert db.execute("SELECT topic FROM inbox").fetchall() == [("orders/updated",)]
    log = log_path.read_text()
    assert "Traceback" not in log
    assert [line.split(": ", 1)[1] for line in log.splitlines() if "reconciliation failed" in line] == [SCAN_FAILED] * (
        2 if long_run else 1
    )


async def serving(http: aiohttp.ClientSession, url: str) -> bool:
    try:
        await healthz(http, url)
    except aiohttp.ClientConnectionError:
        return False
    return True


async def health_says_scan_failed(http: aiohttp.ClientSession, url: str) -> bool:
    health = await healthz(http, url)
    return health["ok"] is True and health["last_scan_error"] == "Shopify could not be reached; try again in a minute."
