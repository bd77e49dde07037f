"""What the crash suite drives: the sandboxes in the test process, `python -m bot serve` as a subprocess pointed at
them (killed with SIGKILL and started again), the webhook sender process, signed Slack requests for a bulk run, and
the figures read afterwards from the sandboxes, the database and the sender's outcomes."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import sqlite3
import sys
import uuid
from collections import Counter
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from random import Random
from typing import Any, TextIO

import aiohttp

from bot.flows.bulk import CONCURRENCY as BULK_CONCURRENCY
from bot.sandbox.seed import generate_orders, seed_orders
from bot.sandbox.serving import serve
from bot.sandbox.shopify import SandboxShopify
from bot.sandbox.shopify_payloads import webhook_headers
from bot.sandbox.slack import SandboxSlack
from bot.sandbox.slack_payloads import block_actions_body, sign_request, slash_command_body
from bot.shopify import operations
from bot.slack.app import BOT_SCOPES
from bot.slack.bulk_blocks import BULK_CONFIRM
from bot.slack.outbox import ALERT_EVENT
from tests.conftest import wait_for

SHOP = "crash-test.myshopify.com"
CHANNEL = "C0ORDERS"
ADMIN = "U0ADMIN"
SENDER = Path(__file__).with_name("crash_sender.py")
STUCK_IN_SEED = {f"#{n}" for n in (*range(1001, 1011), 1018)}  # seed.py: one or more per stuck reason
# Shopify Plus's GraphQL budget (20,000 points, 1,000 a second restored): the stream's re-reads never wait on it.
BUCKET, RESTORE_RATE = 20_000.0, 1_000.0
# The sandbox Slack stamps a post when its handler runs in this (busy) test process, not when the server sent it: on a
# loaded 2-core machine it took posts the outbox had sent a full second apart as close together as 0.93 s and 0.99 s
# (two runs that failed for it). A post that truly comes too soon, the bug this check is for, came 0.21 s after the
# last one. So the sandbox refuses a post within 0.9 s.
PACE_AS_MEASURED = 0.9


# --- the shop and the deliveries -----------------------------------------------------------------------------------


def archivable(order: dict) -> bool:
    """Shipped in full and still open: what `/orders archive` is for (no alert, so its run posts no replies)."""
    open_ = order["closed_at"] is None and order["cancelled_at"] is None
    return open_ and bool(order["fulfillments"]) and all(fo["status"] == "CLOSED" for fo in order["fulfillment_orders"])


def shop_orders(now: datetime, *, archivable_count: int, other_count: int) -> tuple[list[dict], list[str]]:
    """The seeded orders (every stuck reason, stuck and not), `archivable_count` generated orders to archive
    in bulk (touched an hour ago, so that reconciliation reads them) and `other_count` generated ones of any kind;
    and the names of the orders to archive."""
    generated = generate_orders(20 * (archivable_count + other_count) + 20, now)
    to_archive = [o for o in generated if archivable(o)][:archivable_count]
    for order in to_archive:
        order["updated_at"] = now - timedelta(hours=1)
    others = [o for o in generated if not archivable(o)][:other_count]
    assert len(to_archive) == archivable_count and len(others) == other_count
    return [*seed_orders(now), *to_archive, *others], [o["name"] for o in to_archive]


def delivery_plan(shop: SandboxShopify, rng: Random, count: int, duplicate_share: float) -> list[dict[str, str]]:
    """`count` deliveries over the shop's orders in random order: each order's versions one second apart (the first
    as orders/create, the rest orders/updated), and, for `duplicate_share` of them, a repeat of an earlier delivery
    (same ids and body, as Shopify retries). The sandbox ends at each order's last version."""
    versions: Counter[str] = Counter()
    started_at = {order_id: order["updated_at"] for order_id, order in shop.orders.items()}
    plan: list[dict[str, str]] = []
    while len(plan) < count:
        if plan and rng.random() < duplicate_share:
            plan.append(rng.choice(plan[-200:]))
            continue
        order_id = rng.choice(list(shop.orders))
        shop.orders[order_id]["updated_at"] = started_at[order_id] + timedelta(seconds=versions[order_id])
        body = json.dumps(shop.webhook_payload(order_id))
        topic = "orders/create" if versions[order_id] == 0 else "orders/updated"
        versions[order_id] += 1
        plan.append({"webhook_id": str(uuid.uuid4()), "event_id": str(uuid.uuid4()), "topic": topic, "body": body})
    return plan


# --- the world: sandboxes in this process, the server and the sender in others ------------------------------------


@dataclass
class Secrets:
    """Fresh for each run, so that finding one in a log means orderbot wrote it there."""

    access_token: str = field(default_factory=lambda: f"shpat_{secrets.token_hex(16)}")
    client_secret: str = field(default_factory=lambda: secrets.token_hex(24))
    bot_token: str = field(default_factory=lambda: f"xoxb-{secrets.token_hex(12)}")
    signing_secret: str = field(default_factory=lambda: secrets.token_hex(16))

    def all(self) -> list[str]:
        return [self.access_token, self.client_secret, self.bot_token, self.signing_secret]


@dataclass
class Sandboxes:
    shop: SandboxShopify
    shop_url: str
    slack: SandboxSlack
    keys: Secrets
    runner: Any

    @classmethod
    async def start(cls, orders: list[dict]) -> Sandboxes:
        keys = Secrets()
        shop = SandboxShopify(
            orders,
            shop_domain=SHOP,
            access_token=keys.access_token,
            client_secret=keys.client_secret,
            bucket_size=BUCKET,
            restore_rate=RESTORE_RATE,
        )
        runner, shop_url = await serve(shop.app)
        slack = SandboxSlack(
            bot_token=keys.bot_token,
            scopes=tuple(BOT_SCOPES),
            channel_rate_limit=True,
            post_interval=PACE_AS_MEASURED,
            app_token=None,
        )
        await slack.start()
        return cls(shop, shop_url, slack, keys, runner)

    async def stop(self) -> None:
        await self.slack.stop()
        await self.runner.cleanup()

    def slow_shopify(self, orders_per_second: float) -> None:
        """Each mutation's answer takes long enough that a bulk run, BULK_CONCURRENCY orders at a time, archives about
        `orders_per_second` (the budget would not slow it: an archive costs about 13 points, and the bucket holds
        dozens). Shopify has made each change when the answer sets out, so a kill meanwhile leaves it applied."""
        self.shop.mutation_seconds = BULK_CONCURRENCY / orders_per_second

    def full_speed_shopify(self) -> None:
        self.shop.bucket_size, self.shop.restore_rate = BUCKET, RESTORE_RATE
        self.shop.mutation_seconds = 0.0

    def personal_data(self) -> set[str]:
        """The customers' emails and names."""
        customers = [o["customer"] for o in self.shop.orders.values() if o.get("customer")]
        return {c["email"] for c in customers} | {f"{c['first_name']} {c['last_name']}" for c in customers}


def server_environment(world: Sandboxes, db_path: Path, port: int) -> dict[str, str]:
    """os.environ without any orderbot setting of the developer's, plus the sandboxes'. The reconcile timer does not
    come round during the test (it runs once at each start), nor does the daily digest: its time passed an hour ago
    (a database that never had a digest starts with the next day's)."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "SHOPIFY_", "SMTP_"))}
    digest_at = (datetime.now(UTC) - timedelta(hours=1)).strftime("%H:%M")
    return {
        **kept,
        "SHOPIFY_SHOP": SHOP,
        "SHOPIFY_ACCESS_TOKEN": world.keys.access_token,
        "SHOPIFY_CLIENT_SECRET": world.keys.client_secret,
        "SHOPIFY_API_URL": world.shop_url,
        "SLACK_BOT_TOKEN": world.keys.bot_token,
        "SLACK_SIGNING_SECRET": world.keys.signing_secret,
        "SLACK_CHANNEL_ID": CHANNEL,
        "SLACK_ADMINS": ADMIN,
        "SLACK_API_URL": world.slack.api_url,
        "DATABASE_PATH": str(db_path),
        "PORT": str(port),
        "SCAN_INTERVAL": "6h",
        "DIGEST_TIME": digest_at,
        "TIMEZONE": "UTC",
    }


class Server:
    """`python -m bot serve` in a subprocess, started again after each kill; each run logs to its own file."""

    def __init__(self, env: dict[str, str], workdir: Path):
        self.env = env
        self.workdir = workdir  # the cwd, so that no .env of the checkout is read
        self.url = f"http://127.0.0.1:{env['PORT']}"
        self.db_path = Path(env["DATABASE_PATH"])
        self.runs = 0
        self.logs: list[Path] = []
        self.process: asyncio.subprocess.Process | None = None
        self._log: TextIO | None = None

    async def start(self) -> None:
        self.runs += 1
        self.logs.append(self.workdir / f"server-{self.runs}.log")
        self._log = self.logs[-1].open("w")
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "serve", env=self.env, cwd=self.workdir, stdout=self._log, stderr=self._log
        )
        await self._healthy()

    async def _healthy(self, timeout: float = 30) -> None:
        async def answers() -> bool:
            assert self.process.returncode is None, f"the server exited: {self.logs[-1].read_text()[-2000:]}"
            try:
                async with aiohttp.ClientSession() as http, http.get(f"{self.url}/healthz") as response:
                    return response.status == 200
            except aiohttp.ClientError:
                return False

        await wait_for(answers, timeout)

    async def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()
        self._log.close()

    async def stop(self) -> int:
        """SIGTERM, as a deploy stops it; returns the exit code."""
        self.process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            code = await self.process.wait()
        self._log.close()
        return code

    def log_text(self) -> str:
        return "".join(path.read_text() for path in self.logs)


class Stream:
    """The sender process: started once, it goes on through every kill and restart until `finish()`."""

    def __init__(self, workdir: Path, plan: dict[str, Any]):
        self.plan_path = workdir / "plan.json"
        self.outcomes_path = workdir / "outcomes.jsonl"
        self.log_path = workdir / "sender.log"
        self.plan_path.write_text(json.dumps(plan))
        self.deliveries = len({d["webhook_id"] for d in plan["deliveries"]})
        self.process: asyncio.subprocess.Process | None = None
        self._outcomes: list[dict[str, Any]] = []
        self._read = 0  # bytes of the outcomes file parsed so far

    async def start(self) -> None:
        with self.log_path.open("w") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, str(SENDER), str(self.plan_path), str(self.outcomes_path), stdout=log, stderr=log
            )

    async def finish(self) -> None:
        """Stop taking new deliveries; the sender gets the unanswered ones through, then exits."""
        self.process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(60):
            await self.process.wait()
        assert self.process.returncode == 0, self.log_path.read_text()[-2000:]

    def outcomes(self) -> list[dict[str, Any]]:
        """Every attempt so far (read on from where the last call stopped: the file grows all along)."""
        if self.outcomes_path.exists():
            with self.outcomes_path.open("rb") as file:
                file.seek(self._read)
                complete = file.read().rpartition(b"\n")[0]
            if complete:
                self._read += len(complete) + 1
                self._outcomes += [json.loads(line) for line in complete.split(b"\n")]
        return self._outcomes

    def sent(self) -> set[str]:
        return {o["id"] for o in self.outcomes()}

    def acknowledged(self) -> set[str]:
        return {o["id"] for o in self.outcomes() if o["status"] == 200}


async def post_webhook(world: Sandboxes, server: Server, order_id: str) -> None:
    """Shopify tells the server about the order as the sandbox has it now."""
    body = json.dumps(world.shop.webhook_payload(order_id)).encode()
    headers = webhook_headers(body, topic="orders/updated", secret=world.keys.client_secret, shop=SHOP)
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{server.url}/shopify/webhooks", data=body, headers=headers) as response,
    ):
        assert response.status == 200, await response.text()


# --- reading the results ------------------------------------------------------------------------------------------


def rows(db_path: Path, sql: str, params: tuple = ()) -> list[tuple]:
    with closing(sqlite3.connect(db_path, timeout=10)) as conn:
        return conn.execute(sql, params).fetchall()


def alert_messages(slack: SandboxSlack) -> Counter[str]:
    """Top-level alert messages in the channel, by the order id in their metadata."""
    return Counter(
        m["metadata"]["event_payload"]["order_id"]
        for m in slack.messages(CHANNEL)
        if (m.get("metadata") or {}).get("event_type") == ALERT_EVENT
    )


def paced_refusals(slack: SandboxSlack) -> list[str]:
    """Each post Slack refused as too soon: its text, and how long after the last post Slack took it came."""
    refused, last_taken = [], None
    for call in slack.calls_to("chat.postMessage"):
        if call.status == 429:
            after = f"{call.at - last_taken:.2f} s" if last_taken is not None else "?"
            refused.append(f"{call.args.get('text', '')[:40]!r} {after} after the last post")
        elif call.status == 200:
            last_taken = call.at
    return refused


READS = frozenset(name for name, document in operations.ALL_DOCUMENTS.items() if document.lstrip().startswith("query"))


def requests_other_than_reads(shop: SandboxShopify) -> Counter[str | None]:
    """Every request that was not one of orderbot's reads (webhooks only make it read), by operation name."""
    return Counter(op.operation_name for op in shop.operations if op.operation_name not in READS)


def orders_closed(shop: SandboxShopify) -> Counter[str]:
    """How many times Shopify applied an orderClose, by order id."""
    return Counter(
        op.variables["input"]["id"]
        for op in shop.operations
        if op.operation_name == "OrderClose" and op.outcome == "ok"
    )


# --- Slack: a bulk run, asked for as a person would ---------------------------------------------------------------


class SlackPerson:
    """Signed requests to the server's /slack/events: `/orders …` and a click on the preview's Confirm."""

    def __init__(self, world: Sandboxes, server: Server):
        self.world = world
        self.server = server

    async def _post(self, body: bytes) -> str:
        headers = sign_request(body, self.world.keys.signing_secret)
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{self.server.url}/slack/events", data=body, headers=headers) as response,
        ):
            assert response.status == 200, await response.text()
            return await response.text()

    async def _answer(self, body: bytes) -> dict:
        """What the person sees: the ack's own answer, or else the first post to the response_url."""
        before = len(self.world.slack.responses)
        if text := await self._post(body):
            return json.loads(text)
        await wait_for(lambda: len(self.world.slack.responses) > before)
        return self.world.slack.responses[before].body

    async def command(self, text: str) -> dict:
        slack = self.world.slack
        body = slash_command_body(
            text=text, user_id=ADMIN, channel_id=CHANNEL, response_url=slack.response_url(CHANNEL, ADMIN)
        )
        return await self._answer(body)

    async def confirm(self, preview: dict) -> dict:
        body = block_actions_body(
            action_id=BULK_CONFIRM,
            user_id=ADMIN,
            channel_id=CHANNEL,
            message_ts="1700000000.000100",  # an ephemeral preview has no ts of its own
            message=preview,
            response_url=self.world.slack.response_url(CHANNEL, ADMIN),
        )
        return await self._answer(body)


def confirm_value(preview: dict) -> int:
    buttons = [e for b in preview["blocks"] if b["type"] == "actions" for e in b["elements"]]
    return int(next(e["value"] for e in buttons if e["action_id"] == BULK_CONFIRM))
