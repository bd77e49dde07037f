"""A gate in front of the sandbox Shopify, in the tests' own code (an aiohttp middleware): GraphQL requests whose
variables name a chosen id wait until the test lets them through, so that the server stops at a known point of its
work, or are refused with a GraphQL error, as Shopify refuses a request it cannot run."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime

from aiohttp import web

from bot.sandbox.seed import seed_orders
from bot.sandbox.serving import serve
from bot.sandbox.shopify import SandboxShopify
from tests.conftest import SHOP

REFUSAL = {"errors": [{"message": "Internal error. Looks like something went wrong on our end."}]}


@dataclass
class Held:
    """Requests naming `about` wait here: `arrived` is set when the first one does, `release()` lets them all go."""

    about: str
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    released: asyncio.Event = field(default_factory=asyncio.Event)

    def release(self) -> None:
        self.released.set()


class ShopifyGate:
    def __init__(self) -> None:
        self._held: list[Held] = []
        self.refused: set[str] = set()  # ids whose requests are refused

    def hold(self, about: str) -> Held:
        held = Held(about)
        self._held.append(held)
        return held

    @web.middleware
    async def middleware(self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
        if request.method != "POST" or not request.path.endswith("/graphql.json"):
            return await handler(request)
        try:
            named = json.dumps(json.loads(await request.read()).get("variables") or {})
        except (ValueError, AttributeError):
            return await handler(request)
        for held in self._held:
            if held.about in named and not held.released.is_set():
                held.arrived.set()
                await held.released.wait()
        if any(about in named for about in self.refused):
            return web.json_response(REFUSAL)
        return await handler(request)


@asynccontextmanager
async def gated_sandbox(now: datetime) -> AsyncIterator[tuple[ShopifyGate, tuple[SandboxShopify, str]]]:
    """The seeded sandbox Shopify behind a gate: (gate, (shop, url)) as the `sandbox` fixture gives (shop, url)."""
    gate = ShopifyGate()
    shop = SandboxShopify(seed_orders(now), shop_domain=SHOP)
    shop.app.middlewares.append(gate.middleware)
    runner, url = await serve(shop.app)
    try:
        yield gate, (shop, url)
    finally:
        for held in gate._held:
            held.release()
        await runner.cleanup()
