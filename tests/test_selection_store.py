"""The store's selection queries agree with the pure rules of bot/domain/selection.py, including the stuck lists it
pages from the verdicts alone, at every page boundary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.domain import selection as chosen
from bot.domain.commands import Selection
from bot.domain.orders import order_from_webhook
from bot.domain.rules import REASONS
from bot.flows.service import Service
from bot.sandbox.seed import generate_orders, seed_orders
from bot.sandbox.shopify import SandboxShopify
from bot.store import Store

NOW = datetime.now(UTC)
SELECTIONS = [
    Selection(stuck=True),
    *(Selection(stuck=True, reason=reason) for reason in REASONS),
    Selection(stuck=True, older=timedelta(days=3)),
    Selection(stuck=True, reason="awaiting_tracking", older=timedelta(days=10)),
    Selection(stuck=True, tag="orderbot-ignore"),
    Selection(fulfilled=True, older=timedelta(days=5)),
    Selection(older=timedelta(days=20)),
    Selection(numbers=(1001, 1014, 3005, 9999), stuck=True),
]


@pytest.fixture
async def store(tmp_path: Path):
    shop = SandboxShopify([*seed_orders(NOW), *generate_orders(2000, NOW)])
    orders = [order_from_webhook(shop.webhook_payload(order_id)) for order_id in shop.orders]
    store = await Store(str(tmp_path / "orderbot.db")).open()
    await store.save_orders(orders, from_webhook=False)
    await Service(store, None, now=lambda: NOW).classify_and_save(orders, found_by="test")
    yield store, orders
    await store.close()


async def expected(store: Store, orders, selection: Selection) -> list[str]:
    verdicts = {row["order_id"]: row for row in await store.verdict_rows()}
    rows = [(order, verdicts.get(order.id)) for order in orders]
    return [order.id for order, _ in chosen.select(selection, rows, NOW)]


async def test_select_and_count_agree_with_the_domain_rules_page_by_page(store):
    store, orders = store
    for selection in SELECTIONS:
        want = await expected(store, orders, selection)
        assert await store.count_orders(selection, NOW) == len(want), selection
        assert [o.id for o, _ in await store.select_orders(selection, NOW)] == want, selection
        size = 20 if selection.stuck else 400  # a stuck list is read a page at a time: check every boundary
        for offset in range(0, len(want) + size, size):
            total, page = await store.page_of_orders(selection, NOW, limit=size, offset=offset)
            assert [o.id for o, _ in page] == want[offset : offset + size], (selection, offset)
            assert all(verdict is None or verdict["order_id"] == o.id for o, verdict in page)
            assert total == len(want)


async def test_the_stuck_list_is_not_empty_here(store):
    store, _ = store
    assert await store.count_orders(Selection(stuck=True), NOW) > 40  # the comparisons above mean something
