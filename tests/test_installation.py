"""app/uninstalled, end to end: orderbot stops calling Shopify and posting alerts, keeps storing webhooks, says so on
/healthz, and resumes once a probe finds it installed again (the next probe after a reinstall with client
credentials, or the probe at start after a restart with a new admin token). Nothing queued meanwhile is lost."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.sandbox.serving import serve
from bot.web import create_app
from tests.conftest import ADMIN, World, example_payload, order_gid_of, running_world, wait_for
from tests.slack.test_actions_e2e import action_ids, ephemeral_to, stuck_alert

PROBE_EVERY = timedelta(seconds=0.3)  # SCAN_INTERVAL: the probe for a reinstall runs as often as a scan
SLACK_POSTS = ("chat.postMessage", "chat.update")


def fast_probe(settings):
    return replace(settings, scan_interval=PROBE_EVERY)


async def healthz(world: World) -> tuple[int, dict]:
    async with world.http.get(f"{world.url}/healthz") as response:
        return response.status, await response.json()


async def uninstall(world: World) -> None:
    """The merchant removes the app: Shopify revokes the token, then sends app/uninstalled."""
    world.sandbox.uninstall()
    response = await world.post_webhook("app/uninstalled", example_payload("app/uninstalled"))
    assert response.status == 200
    await world.settled()


async def a_probe_was_refused(world: World, after: int) -> None:
    """A positive sign that the paused server went on for a while: a probe it sent since `after` was refused."""
    await wait_for(
        lambda: any(
            op.operation_name == "ShopAndScopes" and op.outcome == "unauthorized"
            for op in world.sandbox.operations[after:]
        )
    )


async def test_an_uninstall_pauses_shopify_and_alerts_until_a_probe_finds_orderbot_installed_again(sandbox, tmp_path):
    async with running_world(sandbox, tmp_path, adjust=fast_probe) as world:
        alert = await stuck_alert(world, 1001)
        assert (await healthz(world))[1]["shopify"] == "installed"
        await uninstall(world)
        status, health = await healthz(world)
        assert (status, health["ok"], health["shopify"]) == (200, True, "uninstalled")
        assert "paused" in health["shopify_error"] and "webhooks are still stored" in health["shopify_error"]
        shopify_before, slack_before = len(world.sandbox.operations), len(world.slack.calls)

        # The merchant archives #1001 in the admin before leaving: the webhook is stored and applied (an archived order
        # needs no Shopify call), and the alert's update waits in the outbox.
        archived = world.sandbox.orders[order_gid_of(world.sandbox, 1001)]
        archived["closed_at"] = datetime.now(UTC)
        world.sandbox.touch(archived)
        await world.order_webhook(1001)
        assert world.rows("SELECT topic, status FROM inbox WHERE topic = 'orders/updated'")[-1] == (
            "orders/updated",
            "processed",
        )
        assert world.rows("SELECT kind, status FROM outbox WHERE kind = 'alert' AND status = 'pending'") == [
            ("alert", "pending")
        ]
        # A click on the old alert is answered without a call to Shopify.
        await world.click(1001, "archive", message=alert)
        assert "uninstalled orderbot" in await ephemeral_to(world, ADMIN)

        await a_probe_was_refused(world, shopify_before)
        assert {op.operation_name for op in world.sandbox.operations[shopify_before:]} == {"ShopAndScopes"}
        assert not [c for c in world.slack.calls[slack_before:] if c.method in SLACK_POSTS]
        assert action_ids(world.alert(1001)) == action_ids(alert), "Slack still shows what it showed"

        world.sandbox.reinstall()  # with client credentials the grant works again; here the token simply does
        await world.wait_for_alert(1001, lambda a: action_ids(a) == ["delete"] and "archived" in a["text"])
        status, health = await healthz(world)
        assert (status, health["shopify"]) == (200, "installed") and "shopify_error" not in health
        assert world.rows("SELECT value, updated_by FROM settings WHERE key = 'app_installed'") == [
            ("true", "orderbot")
        ]
        await stuck_alert(world, 1004)  # Shopify is called again: its fulfillment orders are read


async def test_a_restart_keeps_the_uninstall_and_one_with_the_new_token_resumes(sandbox, tmp_path: Path):
    async with running_world(sandbox, tmp_path, adjust=fast_probe) as world:
        await uninstall(world)
        await world.stop_server()

        world.runner, world.url = await serve(create_app(fast_probe(world.settings()), reconcile=False))
        calls = len(world.sandbox.operations)
        await a_probe_was_refused(world, calls)  # at start, since the uninstall is older than an interval
        assert (await healthz(world))[1]["shopify"] == "uninstalled"

        world.sandbox.reinstall(access_token="shpat_reinstalled")  # a custom app's admin token is a new one
        await a_probe_was_refused(world, len(world.sandbox.operations))
        assert (await healthz(world))[1]["shopify"] == "uninstalled", "the old token is still refused"
        await world.stop_server()

        settings = replace(fast_probe(world.settings()), shopify_access_token="shpat_reinstalled")
        world.runner, world.url = await serve(create_app(settings, reconcile=False))
        await wait_for(lambda: world.rows("SELECT value FROM settings WHERE key = 'app_installed'") == [("true",)])
        assert (await healthz(world))[1]["shopify"] == "installed"
