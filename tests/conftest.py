"""Shared fixtures: the sandbox Shopify and the real server, both on 127.0.0.1 over real HTTP."""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, closing
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from bot.config import Settings
from bot.domain.rules import Policy, classify
from bot.sandbox.seed import seed_orders
from bot.sandbox.serving import serve
from bot.sandbox.shopify import SandboxShopify
from bot.sandbox.shopify_payloads import webhook_headers
from bot.sandbox.slack import SandboxSlack
from bot.sandbox.slack_payloads import (
    JSON,
    click_on_ephemeral,
    click_on_message,
    home_click_body,
    home_opened_event,
    input_values,
    sign_request,
    slash_command_body,
    view_submission_body,
)
from bot.sandbox.smtp import SandboxSMTP
from bot.sandbox.waiting import came_true
from bot.shopify.client import ShopifyClient
from bot.web import SERVICE, create_app

pytest_plugins = ["tests.log_guard"]

WEBHOOK_SECRET = "whsec-test-0123456789abcdef"
SHOP = "orderbot-demo.myshopify.com"
WEBHOOK_EXAMPLES = Path(__file__).parent / "data" / "webhooks"


def example_payload(topic: str) -> dict[str, Any]:
    """Shopify's documented example body for a topic (tests/data/webhooks, see SOURCES.md)."""
    return json.loads((WEBHOOK_EXAMPLES / f"{topic.replace('/', '.')}.json").read_text())


async def fetch_seeded_orders(now: datetime, shop_domain: str) -> dict:
    """The seeded shop's orders as the bot reads them (operations.ORDER through the sandbox, lines included), by
    name; for tests of what is built from them (messages, terminal renderings) at a fixed `now`."""
    shop = SandboxShopify(seed_orders(now), shop_domain=shop_domain, now=lambda: now)
    runner, url = await serve(shop.app)
    client = ShopifyClient(graphql_url=f"{url}/admin/api/2026-04/graphql.json", access_token=shop.access_token)
    try:
        orders = [await client.fetch_order(order_id) for order_id in shop.orders]
    finally:
        await client.close()
        await runner.cleanup()
    return {order.name: order for order in orders}


async def classified(orders: list[dict], now: datetime) -> tuple[list[str], list[str]]:
    """The ids of the stuck orders and of the others, each read once through a sandbox of its own (with no cost limit,
    so that the server's bucket starts full) and classified by the rules, as the server will."""
    shop = SandboxShopify(orders, shop_domain=SHOP, bucket_size=1e9, restore_rate=1e9)
    runner, url = await serve(shop.app)
    client = ShopifyClient(graphql_url=f"{url}/admin/api/2026-04/graphql.json", access_token=shop.access_token)
    gate = asyncio.Semaphore(16)

    async def stuck(order_id: str) -> bool:
        async with gate:
            order = await client.fetch_order(order_id)
        return order is not None and classify(order, now, Policy()).stuck

    try:
        verdicts = await asyncio.gather(*(stuck(order_id) for order_id in shop.orders))
    finally:
        await client.close()
        await runner.cleanup()
    pairs = list(zip(shop.orders, verdicts, strict=True))
    return [i for i, is_stuck in pairs if is_stuck], [i for i, is_stuck in pairs if not is_stuck]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--long",
        action="store_true",
        help="run tests/reliability at full size (more kills, the whole load); the default run is a short variant",
    )


@pytest.fixture
def long_run(request: pytest.FixtureRequest) -> bool:
    """True under `pytest --long`: the reliability suites run their full-size variant."""
    return bool(request.config.getoption("--long"))


@pytest.fixture
def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
async def sandbox(now: datetime) -> AsyncIterator[tuple[SandboxShopify, str]]:
    shop = SandboxShopify(seed_orders(now), shop_domain=SHOP)
    runner, url = await serve(shop.app)
    yield shop, url
    await runner.cleanup()


@dataclass
class Server:
    url: str
    app: Any
    sandbox: SandboxShopify
    db_path: Path
    http: aiohttp.ClientSession

    @property
    def service(self):
        return self.app[SERVICE]

    async def post_webhook(
        self,
        topic: str,
        payload: dict[str, Any] | bytes,
        *,
        secret: str = WEBHOOK_SECRET,
        webhook_id: str | None = None,
        event_id: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> aiohttp.ClientResponse:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        sent = webhook_headers(body, topic=topic, secret=secret, shop=SHOP, webhook_id=webhook_id, event_id=event_id)
        sent.update(headers or {})
        async with self.http.post(f"{self.url}/shopify/webhooks", data=body, headers=sent) as response:
            await response.read()
            return response

    def rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Read the database file through a separate connection, as an operator would."""
        with closing(sqlite3.connect(self.db_path)) as conn:
            return conn.execute(sql, params).fetchall()

    async def settled(self, timeout: float = 10.0) -> None:
        """Wait until every stored delivery has been processed."""
        await wait_for(lambda: not self.rows("SELECT 1 FROM inbox WHERE status = 'pending'"), timeout)

    async def slack_caught_up(self, timeout: float = 10.0) -> None:
        """Wait until Slack has every queued message and the outbox knows it (none pending or in flight): a server
        stopped earlier leaves a call in flight, which the next start looks up only after Slack's timeout."""
        await wait_for(lambda: not self.rows("SELECT 1 FROM outbox WHERE status IN ('pending', 'sending')"), timeout)


async def wait_for(condition: Callable[[], bool | Awaitable[bool]], timeout: float = 10.0) -> None:
    if not await came_true(condition, timeout):
        raise AssertionError("condition not met in time")


def free_port() -> int:
    """A port nothing listens on (for servers started in a subprocess, or to be refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_settings(shop: SandboxShopify, shop_url: str, db_path: Path) -> Settings:
    """The bot's settings against the sandbox Shopify."""
    return Settings(
        shopify_shop=SHOP,
        shopify_access_token=shop.access_token,
        shopify_client_secret=WEBHOOK_SECRET,
        shopify_api_url=shop_url,
        database_path=str(db_path),
    )


@pytest.fixture
async def server(sandbox: tuple[SandboxShopify, str], tmp_path: Path) -> AsyncIterator[Server]:
    shop, shop_url = sandbox
    db_path = tmp_path / "orderbot.db"
    app = create_app(server_settings(shop, shop_url, db_path), reconcile=False)
    runner, url = await serve(app)
    async with aiohttp.ClientSession() as http:
        yield Server(url, app, shop, db_path, http)
    await runner.cleanup()


# --- the whole product: sandbox Shopify, sandbox Slack, sandbox SMTP and the real server ------------------------

SIGNING_SECRET = "e3b0c44298fc1c149afbf4c8996fb924"  # hex, as Slack issues them
CHANNEL = "C0ORDERS"
ADMIN = "U0ADMIN"
STAFF = "U0STAFF"


@dataclass
class World(Server):
    slack: SandboxSlack = None
    smtp: SandboxSMTP = None
    sandbox_url: str = ""
    runner: Any = None

    async def stop_server(self) -> None:
        """Stop the bot (as a deploy or a crash would, minus the crash); the sandboxes stay up."""
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    def settings(self) -> Settings:
        return world_settings(self.sandbox, self.sandbox_url, self.slack, self.smtp.url, self.db_path)

    async def order_webhook(self, number: int, topic: str = "orders/updated") -> None:
        """Shopify tells the server about order #number as the sandbox has it now; wait until it is processed."""
        response = await self.post_webhook(topic, self.sandbox.webhook_payload(order_gid_of(self.sandbox, number)))
        assert response.status == 200
        await self.settled()

    def alert(self, number: int) -> dict | None:
        """The order's alert as Slack shows it now (with its thread's replies)."""
        row = self.rows(
            "SELECT a.channel, a.ts FROM alerts a JOIN orders o ON o.id = a.order_id WHERE o.name = ?", (f"#{number}",)
        )
        if not row or row[0][1] is None:
            return None
        return self.slack.message(row[0][0], row[0][1])

    async def wait_for_alert(self, number: int, condition: Callable[[dict], bool] = bool, timeout: float = 10) -> dict:
        await wait_for(lambda: (a := self.alert(number)) is not None and condition(a), timeout)
        return self.alert(number)

    async def post_slack(self, body: bytes, *, headers: dict[str, str] | None = None) -> aiohttp.ClientResponse:
        sent = sign_request(body, SIGNING_SECRET)
        sent.update(headers or {})
        async with self.http.post(f"{self.url}/slack/events", data=body, headers=sent) as response:
            response.text_body = await response.text()
            return response

    async def click(
        self, number: int, action_id: str, *, user: str = ADMIN, option: str | None = None, message: dict | None = None
    ) -> aiohttp.ClientResponse:
        """Click a button (or pick `option` in the snooze menu) on the order's alert, as Slack would send it;
        `message`: an older copy of the alert (a stale screen)."""
        alert = message or self.alert(number)
        assert alert is not None, f"#{number} has no alert"
        return await self.post_slack(click_on_message(self.slack, CHANNEL, alert, action_id, user=user, option=option))

    async def command(self, text: str, *, user: str = ADMIN, channel: str = CHANNEL) -> dict:
        """Type `/orders <text>` in `channel`: what the person sees — the ack's own answer, or the post to the
        response_url."""
        before = len(self.slack.responses)
        body = slash_command_body(
            text=text,
            user_id=user,
            channel_id=channel,
            response_url=self.slack.response_url(channel, user),
            channel_name=self.slack.channels.get(channel, channel),
        )
        response = await self.post_slack(body)
        assert response.status == 200
        if response.text_body:
            return json.loads(response.text_body)
        await wait_for(lambda: len(self.slack.responses) > before)
        return self.slack.responses[before].body

    async def show_card(self, number: int, *, channel: str, user: str = ADMIN) -> dict:
        """Type `/orders show #number` in `channel`: the card as `user` sees it there (an ephemeral message)."""
        await self.command(f"show #{number}", user=user, channel=channel)
        return [e for e in self.slack.ephemerals(user) if e["channel"] == channel][-1]

    def card(self, shown: dict) -> dict | None:
        """A card `show_card` gave, as Slack shows it now (None once removed)."""
        return next((e for e in self.slack.ephemerals(shown["user"]) if e["ts"] == shown["ts"]), None)

    async def click_card(
        self, card: dict, action_id: str, *, option: str | None = None, response_url: str | None = None
    ) -> aiohttp.ClientResponse:
        """Click a button (or pick `option` in the snooze menu) on a card `show_card` gave, as Slack sends a click on
        an ephemeral message; `response_url`: the one the click carries (default: a fresh one)."""
        body = click_on_ephemeral(self.slack, card, action_id, option=option, response_url=response_url)
        return await self.post_slack(body)

    async def submit(self, view: dict, values: dict, *, user: str = ADMIN) -> aiohttp.ClientResponse:
        body = view_submission_body(
            callback_id=view["callback_id"],
            values=input_values(values),
            private_metadata=view["private_metadata"],
            user_id=user,
        )
        return await self.post_slack(body)

    async def open_home(self, user: str = ADMIN) -> dict:
        """`user` opens orderbot's Home tab (the `app_home_opened` event, as Slack sends it); returns the board once
        it was published again."""
        before = len(self.slack.publishes(user))
        event = home_opened_event(user_id=user, view=self.slack.home(user))
        response = await self.post_slack(json.dumps(event).encode(), headers={"Content-Type": JSON})
        assert response.status == 200
        await wait_for(lambda: len(self.slack.publishes(user)) > before)
        return self.slack.home(user)

    async def click_home(
        self, action_id: str, *, user: str = ADMIN, value: str | None = None, option: str | None = None
    ) -> aiohttp.ClientResponse:
        """Click a button (the one whose value is `value`) or pick `option` on `user`'s Home tab as it stands."""
        view = self.slack.home(user)
        assert view is not None, f"{user} has no Home tab"
        return await self.post_slack(home_click_body(view, action_id, user_id=user, value=value, option=option))

    def audit(self, number: int) -> list[dict]:
        with closing(sqlite3.connect(self.db_path)) as conn:
            conn.row_factory = sqlite3.Row
            rows = conn.execute(
                "SELECT a.* FROM audit a JOIN orders o ON o.id = a.order_id WHERE o.name = ? ORDER BY a.id",
                (f"#{number}",),
            )
            return [dict(r) for r in rows]


def manifest_scopes() -> list[str]:
    manifest = yaml.safe_load((Path(__file__).parent.parent / "manifest.yml").read_text())
    return manifest["oauth_config"]["scopes"]["bot"]


def order_gid_of(shop: SandboxShopify, number: int) -> str:
    return next(gid for gid, order in shop.orders.items() if order["name"] == f"#{number}")


def world_settings(shop: SandboxShopify, shop_url: str, slack: SandboxSlack, smtp_url: str, db_path: Path) -> Settings:
    return replace(
        server_settings(shop, shop_url, db_path),
        slack_bot_token=slack.bot_token,
        slack_signing_secret=SIGNING_SECRET,
        slack_channel_id=CHANNEL,
        slack_admins=(ADMIN,),
        slack_api_url=slack.api_url,
        smtp_url=smtp_url,
        smtp_from="orders@orderbot-demo.example",
    )


@asynccontextmanager
async def running_world(
    sandbox: tuple[SandboxShopify, str],
    tmp_path: Path,
    *,
    slack: SandboxSlack | None = None,
    adjust: Callable[[Settings], Settings] = lambda settings: settings,
    app_options: dict[str, Any] | None = None,
) -> AsyncIterator[World]:
    """The real server with the sandbox Shopify, a sandbox Slack (`slack`, or one with the manifest's scopes: a call
    needing a scope the manifest lacks fails here too) and a sandbox SMTP; `adjust` changes the settings,
    `app_options` are create_app's keyword arguments."""
    shop, shop_url = sandbox
    slack = slack or SandboxSlack(scopes=manifest_scopes())
    await slack.start()
    smtp = SandboxSMTP()
    smtp_url = await smtp.start()
    db_path = tmp_path / "orderbot.db"
    app = create_app(
        adjust(world_settings(shop, shop_url, slack, smtp_url, db_path)), reconcile=False, **(app_options or {})
    )
    runner, url = await serve(app)
    try:
        async with aiohttp.ClientSession() as http:
            world = World(url, app, shop, db_path, http, slack, smtp, shop_url, runner)
            yield world
    finally:
        await world.stop_server()
        await smtp.stop()
        await slack.stop()


@pytest.fixture
async def world(sandbox: tuple[SandboxShopify, str], tmp_path: Path) -> AsyncIterator[World]:
    async with running_world(sandbox, tmp_path) as started:
        yield started
