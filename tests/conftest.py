"""Shared fixtures: the sandbox Shopify and the real server, both on 127.0.0.1 over real HTTP."""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.config import Settings
from bot.sandbox.seed import seed_orders
from bot.sandbox.serving import serve
from bot.sandbox.shopify import SandboxShopify
from bot.shopify.webhooks import sign
from bot.web import SERVICE, create_app

WEBHOOK_SECRET = "whsec-test-0123456789abcdef"
SHOP = "orderbot-demo.myshopify.com"
WEBHOOK_EXAMPLES = Path(__file__).parent / "data" / "webhooks"


def example_payload(topic: str) -> dict[str, Any]:
    """Shopify's documented example body for a topic (tests/data/webhooks, see SOURCES.md)."""
    return json.loads((WEBHOOK_EXAMPLES / f"{topic.replace('/', '.')}.json").read_text())


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
        sent = {
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": sign(body, secret),
            "X-Shopify-Shop-Domain": SHOP,
            "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
            "X-Shopify-Event-Id": event_id or str(uuid.uuid4()),
            "X-Shopify-Triggered-At": datetime.now(UTC).isoformat(),
            "X-Shopify-API-Version": "2026-04",
            "Content-Type": "application/json",
        }
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


async def wait_for(condition: Callable[[], bool | Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


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
