"""Another program holds the database's write lock (an operator's `sqlite3` shell in a transaction, a backup tool):
the server goes on answering. Slack's requests are acknowledged at once (Slack gives up after 3 s), and each webhook
is either stored and answered 200 or answered 503 so that Shopify sends it again: never a 200 without its row.

The lock is held by another process for HOLD seconds (LONG_HOLD under `pytest --long`, past the database thread's
10 s busy timeout). Meanwhile the traffic comes from a thread of its own with its own event loop, as Slack and
Shopify are independent of the server: signed `/orders` commands (the first one changes a setting, so the database
thread waits for the lock too, holding orderbot's own write lock) and signed order webhooks, each sent on a timer
without waiting for earlier answers.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import aiohttp

from bot.sandbox.shopify_payloads import webhook_headers
from bot.sandbox.slack_payloads import sign_request, slash_command_body
from tests.conftest import ADMIN, CHANNEL, SHOP, SIGNING_SECRET, WEBHOOK_SECRET, World, order_gid_of

HOLD = 5.0  # seconds the other process holds the write lock in the default run
LONG_HOLD = 15.0  # under --long, as the issue asks: longer than every busy timeout of orderbot's
SLACK_ANSWER_LIMIT = 1.0  # seconds; Slack allows 3. Measured on 2 shared cores: the worst answer is well under 0.1 s
SHOPIFY_WAITS = 5.0  # seconds Shopify waits for a webhook's answer before it counts as failed
EVERY = 0.2  # seconds between two requests of each kind

LOCKER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("ROLLBACK")
"""


@dataclass(frozen=True)
class Answered:
    what: str  # the Slack command's text, or the webhook's id
    status: int
    seconds: float
    reply: str  # the answer's body
    body: bytes = b""  # a webhook's body, to send it again


@dataclass(frozen=True)
class Traffic:
    url: str
    response_url: str
    bodies: list[bytes]  # one order webhook body each, all different


async def test_an_outside_write_lock_neither_delays_slack_nor_acknowledges_an_unstored_webhook(
    world: World, long_run: bool
):
    hold = LONG_HOLD if long_run else HOLD
    await world.command("help")  # Bolt's first request learns the workspace: not part of what is measured
    traffic = Traffic(world.url, world.slack.response_url(CHANNEL, ADMIN), order_bodies(world, int(hold / EVERY) + 20))

    slack, webhooks = await asyncio.to_thread(play, traffic, world.db_path, hold)

    slowest = max(a.seconds for a in slack)
    print(f"lock held {hold:.0f} s: {len(slack)} Slack requests, slowest answered in {slowest * 1000:.0f} ms")
    print(f"{len(webhooks)} webhooks: {[a.status for a in webhooks].count(503)} answered 503")
    assert {a.status for a in slack} == {200}
    assert slowest < SLACK_ANSWER_LIMIT, [f"{a.what}: {a.seconds:.2f} s" for a in slack if a.seconds >= 1]
    assert {a.status for a in webhooks} <= {200, 503}
    assert 503 in {a.status for a in webhooks}, "the lock held no webhook back: the test did not test it"
    assert max(a.seconds for a in webhooks) < SHOPIFY_WAITS
    for answered in webhooks:  # the lock is released: every 200 was a stored row
        if answered.status == 200:
            assert json.loads(answered.reply)["duplicate"] is False
            assert stored(world, answered.what), f"{answered.what} was answered 200 but is not stored"
    for answered in webhooks:  # Shopify sends each 503'd delivery again
        if answered.status == 503:
            retry = await world.post_webhook("orders/updated", answered.body, webhook_id=answered.what)
            assert retry.status == 200 and stored(world, answered.what)
    await world.settled(timeout=30)


def order_bodies(world: World, count: int) -> list[bytes]:
    """Order #1001's webhook body, each a second newer than the one before (so none is a repeat of another)."""
    payload = world.sandbox.webhook_payload(order_gid_of(world.sandbox, 1001))
    updated = datetime.fromisoformat(payload["updated_at"])
    return [
        json.dumps({**payload, "updated_at": (updated + timedelta(seconds=n + 1)).isoformat()}).encode()
        for n in range(count)
    ]


def stored(world: World, webhook_id: str) -> bool:
    return world.rows("SELECT count(*) FROM inbox WHERE webhook_id = ?", (webhook_id,)) == [(1,)]


def play(traffic: Traffic, db_path: Path, hold: float) -> tuple[list[Answered], list[Answered]]:
    """In a thread of its own: lock the database from another process and send requests until it lets go."""
    locker = subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(db_path), str(hold)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert locker.stdout.readline().strip() == "locked"
        return asyncio.run(send_while_locked(traffic, locker))
    finally:
        locker.wait(timeout=hold + 10)


async def send_while_locked(traffic: Traffic, locker: subprocess.Popen) -> tuple[list[Answered], list[Answered]]:
    async with aiohttp.ClientSession() as http:
        slack: list[asyncio.Task[Answered]] = []
        webhooks: list[asyncio.Task[Answered]] = []
        while locker.poll() is None and len(webhooks) < len(traffic.bodies):
            text = "settings set threshold.awaiting_tracking 5d" if not slack else "stuck"
            slack.append(asyncio.create_task(slack_command(http, traffic, text)))
            body = traffic.bodies[len(webhooks)]
            webhooks.append(asyncio.create_task(webhook(http, traffic.url, f"locked-{len(webhooks)}", body)))
            await asyncio.sleep(EVERY)
        return list(await asyncio.gather(*slack)), list(await asyncio.gather(*webhooks))


async def slack_command(http: aiohttp.ClientSession, traffic: Traffic, text: str) -> Answered:
    body = slash_command_body(text=text, user_id=ADMIN, channel_id=CHANNEL, response_url=traffic.response_url)
    started = time.perf_counter()
    async with http.post(
        f"{traffic.url}/slack/events", data=body, headers=sign_request(body, SIGNING_SECRET)
    ) as response:
        reply = await response.text()
        return Answered(text, response.status, time.perf_counter() - started, reply)


async def webhook(http: aiohttp.ClientSession, url: str, webhook_id: str, body: bytes) -> Answered:
    headers = webhook_headers(body, topic="orders/updated", secret=WEBHOOK_SECRET, shop=SHOP, webhook_id=webhook_id)
    started = time.perf_counter()
    async with http.post(f"{url}/shopify/webhooks", data=body, headers=headers) as response:
        reply = await response.text()
        return Answered(webhook_id, response.status, time.perf_counter() - started, reply, body)
