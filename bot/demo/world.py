"""The demo's world: the sandbox Shopify (seeded), Slack and SMTP, and the real server between them, all on 127.0.0.1.

Secrets are generated for each run and nothing is read from the environment or a `.env` file. The server is the app
`python -m bot serve` runs (`create_app`), with two differences said aloud by the demo: the reconcile timer is off (the
day is told by webhooks), and the Slack outbox is paced faster than Slack's one post a second per channel.

Every request the demo makes is one a real Shopify or Slack would make: signed webhooks, signed slash commands, button
clicks and modal submissions, built by `bot/sandbox/shopify_payloads.py` and `bot/sandbox/slack_payloads.py`.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Awaitable, Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from bot.config import Settings
from bot.sandbox.seed import seed_orders
from bot.sandbox.serving import serve
from bot.sandbox.shopify import SandboxShopify
from bot.sandbox.shopify_payloads import webhook_headers
from bot.sandbox.slack import SandboxSlack
from bot.sandbox.slack_payloads import (
    click_on_message,
    home_opened_event,
    input_values,
    sign_request,
    slash_command_body,
    view_submission_body,
)
from bot.sandbox.smtp import SandboxSMTP
from bot.sandbox.waiting import came_true
from bot.slack.app import BOT_SCOPES
from bot.slack.outbox import ALERT_EVENT
from bot.web import SLACK, create_app

SHOP = "juniper-oak.myshopify.com"
CHANNEL = "C0ORDERS"
CHANNEL_NAME = "orders"
ADMIN = "U0ALEX"
STAFF = "U0SAM"
PEOPLE = {ADMIN: "Alex Rivera", STAFF: "Sam Okoye"}
MAIL_FROM = "Juniper & Oak <orders@juniperandoak.example>"
DEMO_PACE = 0.05  # seconds between Slack calls per channel; `serve` keeps Slack's 1.0


class DemoFailure(Exception):
    """Something the day expected did not happen; the message says what."""


@dataclass(frozen=True, slots=True)
class Answer:
    """The server's HTTP answer to one request the demo sent."""

    status: int
    body: str

    def json(self) -> dict[str, Any] | None:
        try:
            parsed = json.loads(self.body)
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None


class DemoWorld:
    """Start with `await DemoWorld.start(directory)`, stop with `await world.stop()`. To see Slack's side as it
    happens, set `world.slack.observer`."""

    def __init__(self, directory: Path):
        self.webhook_secret = secrets.token_hex(16)
        self.signing_secret = secrets.token_hex(16)  # hex, as Slack issues them
        self.shop = SandboxShopify(
            seed_orders(datetime.now(UTC)),
            shop_domain=SHOP,
            access_token=f"shpat_{secrets.token_hex(16)}",
            client_secret=self.webhook_secret,
        )
        self.slack = SandboxSlack(
            bot_token=f"xoxb-{secrets.token_hex(12)}",
            users=PEOPLE,
            usergroups={},
            channels={CHANNEL: CHANNEL_NAME},
            scopes=tuple(BOT_SCOPES),  # a call needing a scope the app does not ask for fails here too
            app_token=None,
        )
        self.smtp = SandboxSMTP(password=secrets.token_urlsafe(12))
        self.db_path = directory / "orderbot.db"
        self.url = ""
        self.shop_url = ""
        self._runners: list[Any] = []
        self._http: aiohttp.ClientSession | None = None

    @classmethod
    async def start(cls, directory: Path) -> DemoWorld:
        world = cls(directory)
        try:
            await world._start()
        except BaseException:
            await world.stop()
            raise
        return world

    async def _start(self) -> None:
        shop_runner, self.shop_url = await serve(self.shop.app)
        self._runners.append(shop_runner)
        await self.slack.start()
        smtp_url = await self.smtp.start()
        app = create_app(self._settings(smtp_url), reconcile=False)
        app[SLACK].outbox.pacer.pace = DEMO_PACE
        server_runner, self.url = await serve(app)
        self._runners.append(server_runner)
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))

    def _settings(self, smtp_url: str) -> Settings:
        return Settings(
            slack_bot_token=self.slack.bot_token,
            slack_signing_secret=self.signing_secret,
            slack_channel_id=CHANNEL,
            slack_admins=(ADMIN,),
            slack_api_url=self.slack.api_url,
            shopify_shop=SHOP,
            shopify_access_token=self.shop.access_token,
            shopify_client_secret=self.webhook_secret,
            shopify_api_url=self.shop_url,
            database_path=str(self.db_path),
            smtp_url=smtp_url,
            smtp_from=MAIL_FROM,
        )

    async def stop(self) -> None:
        """The server first (it drains running actions), then the sandboxes it talks to."""
        if self._http is not None:
            await self._http.close()
            self._http = None
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()
        await self.smtp.stop()
        await self.slack.stop()

    # --- the store ----------------------------------------------------------------------------------------------

    def order_id(self, number: int) -> str:
        return next(gid for gid, order in self.shop.orders.items() if order["name"] == f"#{number}")

    def order(self, number: int) -> dict:
        """The order as the sandbox Shopify has it now."""
        return self.shop.orders[self.order_id(number)]

    def order_names(self) -> dict[str, str]:
        return {gid: order["name"] for gid, order in self.shop.orders.items()}

    # --- Shopify → server ---------------------------------------------------------------------------------------

    def webhook_body(self, number: int) -> bytes:
        """The order's webhook body as Shopify would send it now (keep it to deliver it late)."""
        return json.dumps(self.shop.webhook_payload(self.order_id(number))).encode()

    async def deliver(self, topic: str, body: bytes, *, webhook_id: str | None = None) -> tuple[Answer, str]:
        """POST a signed delivery to /shopify/webhooks; returns the answer and the delivery's webhook id (send it
        again with the same id to play Shopify's retry)."""
        headers = webhook_headers(body, topic=topic, secret=self.webhook_secret, shop=SHOP, webhook_id=webhook_id)
        answer = await self._post("/shopify/webhooks", body, headers)
        return answer, headers["X-Shopify-Webhook-Id"]

    async def health(self) -> dict[str, Any]:
        assert self._http is not None
        async with self._http.get(f"{self.url}/healthz") as response:
            return await response.json()

    async def settled(self, within: float = 10.0) -> None:
        """Every stored delivery processed, and every queued Slack message sent (none in flight either)."""

        def idle() -> bool:
            (busy,) = self._rows(
                "SELECT (SELECT count(*) FROM inbox WHERE status = 'pending')"
                " + (SELECT count(*) FROM outbox WHERE status IN ('pending', 'sending'))"
            )
            return busy[0] == 0

        await wait_until(idle, "the server to process the webhooks and post to Slack", within)

    def stored_deliveries(self) -> int:
        """Webhook deliveries the server kept (a duplicate is answered 200 and not kept)."""
        return self._rows("SELECT count(*) FROM inbox")[0][0]

    def verdict(self, number: int) -> tuple[str, str] | None:
        """The server's verdict on the order: (status, explanation)."""
        rows = self._rows(
            "SELECT v.status, v.explanation FROM verdicts v JOIN orders o ON o.id = v.order_id WHERE o.name = ?",
            (f"#{number}",),
        )
        return (rows[0][0], rows[0][1]) if rows else None

    def _rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Read the server's database through a read-only connection of its own, as an operator would."""
        with closing(sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=5)) as conn:
            return conn.execute(sql, params).fetchall()

    # --- Slack → server -----------------------------------------------------------------------------------------

    def alert(self, number: int) -> dict | None:
        """The order's latest alert in the channel as Slack shows it now (with its thread's replies), found by the
        metadata orderbot posts it with."""
        gid = self.order_id(number)
        found = [
            m
            for m in self.slack.messages(CHANNEL)
            if (m.get("metadata") or {}).get("event_type") == ALERT_EVENT
            and (m["metadata"].get("event_payload") or {}).get("order_id") == gid
        ]
        return found[-1] if found else None

    def alerts(self) -> list[dict]:
        return [m for m in self.slack.messages(CHANNEL) if (m.get("metadata") or {}).get("event_type") == ALERT_EVENT]

    async def click(self, number: int, action_id: str, *, user: str, option: str | None = None) -> Answer:
        """Click a button (or choose `option` in a select) on the order's alert, as Slack sends it."""
        alert = self.alert(number)
        if alert is None:
            raise DemoFailure(f"#{number} has no alert to click")
        body = click_on_message(
            self.slack, CHANNEL, alert, action_id, user=user, option=option, user_name=_handle(user)
        )
        return await self.post_slack(body)

    async def submit(self, view: dict, values: dict[str, tuple[str, Any]], *, user: str) -> Answer:
        """Submit a modal the bot opened; `values`: {action_id: (element type, value)} (block ids equal action ids
        in orderbot's modals)."""
        body = view_submission_body(
            callback_id=view["callback_id"],
            values=input_values({action_id: {action_id: value} for action_id, value in values.items()}),
            private_metadata=view["private_metadata"],
            user_id=user,
            user_name=_handle(user),
        )
        return await self.post_slack(body)

    async def command(self, text: str, *, user: str) -> Answer:
        """`/orders <text>` typed in the channel."""
        body = slash_command_body(
            text=text,
            user_id=user,
            channel_id=CHANNEL,
            channel_name=CHANNEL_NAME,
            response_url=self.slack.response_url(CHANNEL, user),
            user_name=_handle(user),
        )
        return await self.post_slack(body)

    async def post_slack(self, body: bytes) -> Answer:
        return await self._post("/slack/events", body, sign_request(body, self.signing_secret))

    async def open_home(self, user: str) -> Answer:
        """`user` opens orderbot's Home tab: the `app_home_opened` event, sent as JSON as Slack sends it."""
        body = json.dumps(home_opened_event(user_id=user, view=self.slack.home(user))).encode()
        headers = sign_request(body, self.signing_secret) | {"Content-Type": "application/json"}
        return await self._post("/slack/events", body, headers)

    async def opened_view(self, callback_id: str, after: int) -> dict:
        """The first modal with `callback_id` opened after the first `after` ones."""

        def found() -> bool:
            return any(v["callback_id"] == callback_id for v in self.slack.opened_views[after:])

        await wait_until(found, f"Slack to open the {callback_id} form")
        return next(v for v in self.slack.opened_views[after:] if v["callback_id"] == callback_id)

    async def _post(self, path: str, body: bytes, headers: dict[str, str]) -> Answer:
        assert self._http is not None
        async with self._http.post(f"{self.url}{path}", data=body, headers=headers) as response:
            return Answer(response.status, await response.text())


def _handle(user: str) -> str:
    return PEOPLE.get(user, user).split()[0].lower()


async def wait_until(condition: Callable[[], bool | Awaitable[bool]], what: str, within: float = 10.0) -> None:
    """Poll `condition` until it holds; raise DemoFailure naming `what` was awaited."""
    if not await came_true(condition, within):
        raise DemoFailure(f"waited {within:.0f} s for {what}")
