"""`python -m bot setup-webhooks` as a person runs it, against the sandbox Shopify over HTTP."""

from __future__ import annotations

import sys

from graphql import GraphQLEnumType

from bot.config import load_settings
from bot.sandbox.shopify import SandboxShopify, load_schema
from bot.setup_webhooks import CHANGE_PROGRESS, PRIVACY_TOPICS, TOPICS, enum_name, setup_webhooks_command
from bot.shopify import operations
from bot.shopify.client import ShopifyClient, ShopifyUserError
from tests.conftest import WEBHOOK_EXAMPLES, WEBHOOK_SECRET
from tests.test_cli import FakeTerminal, run_bot

URL = "https://orderbot.example.com/shopify/webhooks"
OLD_URL = "https://old-host.example.com/shopify/webhooks"
MUTATIONS = {"WebhookSubscriptionCreate", "WebhookSubscriptionDelete"}


def shop_env(shop: SandboxShopify, url: str) -> dict[str, str]:
    return {
        "SHOPIFY_SHOP": shop.shop_domain,
        "SHOPIFY_ACCESS_TOKEN": shop.access_token,
        "SHOPIFY_CLIENT_SECRET": WEBHOOK_SECRET,
        "SHOPIFY_API_URL": url,
    }


def mutations_sent(shop: SandboxShopify) -> list[str]:
    return [op.operation_name for op in shop.operations if op.operation_name in MUTATIONS]


def everything_at(url: str) -> set[tuple[str, str]]:
    return {(enum_name(topic), url) for topic in TOPICS}


async def test_first_run_adds_every_topic_and_a_second_run_changes_nothing(sandbox, tmp_path):
    shop, shop_url = sandbox
    code, out, err = await run_bot("setup-webhooks", "--url", URL, env=shop_env(shop, shop_url), cwd=tmp_path)
    assert code == 0, out + err
    assert shop.webhook_subscriptions.pairs() == everything_at(URL)
    for topic in TOPICS:
        assert f"  added        {topic}\n" in out
    assert f"{len(TOPICS)} added, 0 kept, 0 removed." in out
    assert "Not subscribable through the API: customers/data_request, customers/redact, shop/redact" in out
    assert mutations_sent(shop) == ["WebhookSubscriptionCreate"] * len(TOPICS)

    before = len(shop.operations)
    code, out, err = await run_bot("setup-webhooks", "--url", URL, env=shop_env(shop, shop_url), cwd=tmp_path)
    assert code == 0, out + err
    assert [op.operation_name for op in shop.operations[before:]] == ["WebhookSubscriptions"], "one read, no change"
    assert shop.webhook_subscriptions.pairs() == everything_at(URL)
    for topic in TOPICS:
        assert f"  kept         {topic}\n" in out
    assert f"0 added, {len(TOPICS)} kept, 0 removed." in out


async def test_a_stale_topic_at_the_url_is_removed_and_other_addresses_only_with_prune(sandbox, tmp_path):
    shop, shop_url = sandbox
    shop.webhook_subscriptions.add("PRODUCTS_UPDATE", URL)  # a topic orderbot does not handle
    shop.webhook_subscriptions.add("ORDERS_CREATE", URL)
    shop.webhook_subscriptions.add("ORDERS_UPDATED", OLD_URL)  # the server's previous host
    env = shop_env(shop, shop_url)

    code, out, err = await run_bot("setup-webhooks", "--url", URL, env=env, cwd=tmp_path)
    assert code == 0, out + err
    assert shop.webhook_subscriptions.pairs() == everything_at(URL) | {("ORDERS_UPDATED", OLD_URL)}
    assert "  removed      PRODUCTS_UPDATE (orderbot does not handle it)\n" in out
    assert "  kept         orders/create\n" in out
    assert f"  left alone   orders/updated at {OLD_URL} (another address; --prune removes it)\n" in out
    assert f"{len(TOPICS) - 1} added, 1 kept, 1 removed." in out

    code, out, err = await run_bot("setup-webhooks", "--url", URL, "--prune", env=env, cwd=tmp_path)
    assert code == 0, out + err
    assert shop.webhook_subscriptions.pairs() == everything_at(URL)
    assert f"  removed      orders/updated at {OLD_URL}\n" in out
    assert f"0 added, {len(TOPICS)} kept, 1 removed." in out


async def test_dry_run_prints_the_plan_and_changes_nothing(sandbox, tmp_path):
    shop, shop_url = sandbox
    shop.webhook_subscriptions.add("PRODUCTS_UPDATE", URL)
    shop.webhook_subscriptions.add("ORDERS_PAID", URL)
    before = shop.webhook_subscriptions.pairs()

    code, out, err = await run_bot(
        "setup-webhooks", "--url", URL, "--dry-run", env=shop_env(shop, shop_url), cwd=tmp_path
    )
    assert code == 0, out + err
    assert shop.webhook_subscriptions.pairs() == before
    assert mutations_sent(shop) == []
    assert "  would add    orders/create\n" in out
    assert "  kept         orders/paid\n" in out
    assert "  would remove PRODUCTS_UPDATE (orderbot does not handle it)\n" in out
    assert f"Would add {len(TOPICS) - 1}, keep 1, remove 1. (dry run: nothing was changed)" in out


async def test_a_refusal_from_shopify_is_printed_the_rest_goes_on_and_it_exits_1(sandbox, tmp_path):
    shop, shop_url = sandbox
    shop.fail_next("user_errors", message="Address for this topic has already been taken")
    env = shop_env(shop, shop_url)

    code, out, err = await run_bot("setup-webhooks", "--url", URL, env=env, cwd=tmp_path)
    assert code == 1, out + err
    first = TOPICS[0]
    assert f"  FAILED       {first}: Shopify refused to add it: Address for this topic has already been taken\n" in out
    assert shop.webhook_subscriptions.pairs() == everything_at(URL) - {(enum_name(first), URL)}
    assert f"{len(TOPICS) - 1} added, 0 kept, 0 removed. Shopify refused 1: fix the cause above" in out

    code, out, err = await run_bot("setup-webhooks", "--url", URL, env=env, cwd=tmp_path)
    assert code == 0, out + err
    assert f"  added        {first}\n" in out
    assert shop.webhook_subscriptions.pairs() == everything_at(URL)


async def test_when_shopify_is_down_it_changes_nothing_and_exits_1(sandbox, tmp_path):
    shop, shop_url = sandbox
    shop.fail_next("http_500", times=4)  # every attempt the client makes at the listing (a query: it retries)
    code, out, err = await run_bot("setup-webhooks", "--url", URL, env=shop_env(shop, shop_url), cwd=tmp_path)
    assert code == 1
    assert err.strip() == "shopify: Shopify answered HTTP 500; try again in a minute."
    assert out == ""
    assert mutations_sent(shop) == [] and shop.webhook_subscriptions.pairs() == set()


async def test_an_address_that_is_not_https_is_refused_before_anything_is_sent(sandbox, tmp_path):
    shop, shop_url = sandbox
    url = "http://orderbot.example.com/shopify/webhooks"
    code, _, err = await run_bot("setup-webhooks", "--url", url, env=shop_env(shop, shop_url), cwd=tmp_path)
    assert code == 2
    assert err.strip() == (
        f"setup-webhooks: --url must be the https address of the server's /shopify/webhooks route (got {url!r})."
    )
    assert shop.operations == []


async def test_missing_credentials_exit_2_naming_what_is_missing(tmp_path):
    code, _, err = await run_bot("setup-webhooks", "--url", URL, env={}, cwd=tmp_path)
    assert code == 2
    assert err.strip() == "config: SHOPIFY_SHOP is not set; this command needs it (see README, 'Environment')."
    code, _, err = await run_bot(
        "setup-webhooks", "--url", URL, env={"SHOPIFY_SHOP": "my-store.myshopify.com"}, cwd=tmp_path
    )
    assert code == 2
    assert "config: SHOPIFY_ACCESS_TOKEN is not set" in err


def test_the_topics_are_shopify_topics_orderbot_has_tested_payloads_for():
    """Each subscribed topic is a WebhookSubscriptionTopic and has Shopify's example body in tests/data/webhooks
    (which the webhook tests replay); every example there is subscribed, except the privacy topics, which the API
    cannot subscribe (they are not in the enum)."""
    enum = load_schema().get_type("WebhookSubscriptionTopic")
    assert isinstance(enum, GraphQLEnumType)
    assert {enum_name(t) for t in TOPICS} <= set(enum.values)
    assert not {enum_name(t) for t in PRIVACY_TOPICS} & set(enum.values)
    examples = {path.stem.replace(".", "/") for path in WEBHOOK_EXAMPLES.glob("*.json")}
    assert set(TOPICS) == examples - set(PRIVACY_TOPICS)


async def test_the_sandbox_refuses_a_second_subscription_to_the_same_topic_and_address(sandbox):
    shop, shop_url = sandbox
    client = ShopifyClient(graphql_url=f"{shop_url}/admin/api/2026-04/graphql.json", access_token=shop.access_token)
    variables = {"topic": "ORDERS_CREATE", "webhookSubscription": {"uri": URL, "format": "JSON"}}
    try:
        created = await client.mutate(operations.WEBHOOK_SUBSCRIPTION_CREATE, variables, "webhookSubscriptionCreate")
        assert created["webhookSubscription"]["uri"] == URL
        try:
            await client.mutate(operations.WEBHOOK_SUBSCRIPTION_CREATE, variables, "webhookSubscriptionCreate")
        except ShopifyUserError as exc:
            assert exc.errors == [
                {"field": ["webhookSubscription", "uri"], "message": "Address for this topic has already been taken"}
            ]
        else:
            raise AssertionError("a duplicate subscription was accepted")
        gone = await client.mutate(
            operations.WEBHOOK_SUBSCRIPTION_DELETE,
            {"id": created["webhookSubscription"]["id"]},
            "webhookSubscriptionDelete",
        )
        assert gone["deletedWebhookSubscriptionId"] == created["webhookSubscription"]["id"]
        assert shop.webhook_subscriptions.pairs() == set()
    finally:
        await client.close()


async def test_on_a_terminal_the_changes_show_a_bar_with_each_line_above_it(sandbox, tmp_path, monkeypatch):
    shop, shop_url = sandbox
    for name, value in {**shop_env(shop, shop_url), "DATABASE_PATH": str(tmp_path / "o.db")}.items():
        monkeypatch.setenv(name, value)
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    code = await setup_webhooks_command(load_settings(), url=URL, dry_run=False, prune=False)
    drawn = terminal.getvalue()
    assert code == 0 and shop.webhook_subscriptions.pairs() == everything_at(URL)
    assert CHANGE_PROGRESS in drawn and "━" in drawn and f"{len(TOPICS)}/{len(TOPICS)}" in drawn
    for topic in TOPICS:
        assert f"  added        {topic}" in drawn
    assert f"{len(TOPICS)} added, 0 kept, 0 removed." in drawn
