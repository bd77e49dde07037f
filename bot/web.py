"""The aiohttp Application: routes, and the start and stop of the background tasks beside them."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime

from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

from bot.config import Settings
from bot.domain.retention import Retention
from bot.flows.cancellations import DEFAULT_FOLLOW_UP, FollowUp
from bot.flows.retention import Pruner, PruneTimer
from bot.flows.service import Service
from bot.shopify.client import client_from_settings
from bot.shopify.webhooks import MAX_BODY_BYTES, WEBHOOK_PATH, InboxWriter, make_handler
from bot.slack.app import SLACK_TIMEOUT, slack_route
from bot.slack.outbox import PACE
from bot.slack.side import SlackSide, connect_socket_mode
from bot.store import Store

log = logging.getLogger(__name__)

# Shopify may open hundreds of connections at once in a burst; with aiohttp's default listen backlog (128) the
# kernel drops the rest and their clients retry a second later (measured: 70 of 200 answers took over 1 s).
LISTEN_BACKLOG = 1024
# After refusing a body it did not read (a 413), aiohttp reads and discards the rest for this long so that the client
# sees the answer; its default, 10 s, also held every shutdown after such a request that long.
LINGER_SECONDS = 1.0
SERVICE = web.AppKey("service", Service)
TASKS = web.AppKey("tasks", list)
SLACK = web.AppKey("slack", object)
PRUNER = web.AppKey("pruner", Pruner)


def create_app(
    settings: Settings,
    *,
    reconcile: bool = True,
    now: Callable[[], datetime] | None = None,
    slack_pace: float = PACE,
    cancel_follow_up: FollowUp = DEFAULT_FOLLOW_UP,
    prune_timer: PruneTimer | None = None,
    home_clock: Callable[[], float] = time.monotonic,
) -> web.Application:
    """The server: POST /shopify/webhooks, POST /slack/events (with Slack credentials) and GET /healthz, with the
    inbox processor, the reconcile timer, the Slack outbox, the Home tab and the daily digest's timer. `now`: the clock
    (tests pass a fixed one). `slack_pace`: seconds between two posts to a channel (Slack's limit is one a second; the
    load test compresses time by shortening it). `cancel_follow_up`: how an order's cancellation is followed until
    Shopify confirms it (tests shorten it). `prune_timer`: when old history is pruned. `home_clock`: the monotonic
    clock of the Home tab's refresh window (tests pass one they move)."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    store = Store(settings.database_path)
    service = Service(store, client_from_settings(settings), now=now)
    writer = InboxWriter(store, service.inbox_changed)
    slack = (
        SlackSide(settings, service, pace=slack_pace, cancel_follow_up=cancel_follow_up, home_clock=home_clock)
        if settings.has_slack_credentials
        else None
    )
    app[SERVICE] = service
    app[TASKS] = []
    app[SLACK] = slack
    # Rows carry the wall clock's times (sql.now_iso), so the pruner reads that clock, not `now`
    app[PRUNER] = Pruner(store, Retention(settings.retention_days, settings.audit_retention_days))

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await store.open()
        await service.installation.load()
        writer.start()
        if slack is not None:
            await store.clear_action_locks()
            await slack.actions.cancellations.resume()  # cancellations a stopped process left in flight
            await slack.outbox.recover(answer_within=SLACK_TIMEOUT)
            if slack.bulk is not None:
                await slack.bulk.resume()  # runs a restart interrupted carry on with their pending orders
            app[TASKS].append(asyncio.create_task(slack.outbox.run_forever(), name="slack-outbox"))
            app[TASKS].append(asyncio.create_task(slack.learn_shop_name(service.installation), name="shop-name"))
            app[TASKS].append(asyncio.create_task(slack.home.run_forever(), name="home-tab"))
            if settings.slack_channel_id:
                app[TASKS].append(asyncio.create_task(slack.digests.run_forever(), name="digest-timer"))
            if slack.app_token:
                socket_mode = AsyncSocketModeHandler(slack.bolt, slack.app_token)
                app[TASKS].append(asyncio.create_task(connect_socket_mode(socket_mode), name="socket-mode"))
        app[TASKS].append(
            asyncio.create_task(service.process_inbox_forever(writer.yield_to_ingest), name="inbox-processor")
        )
        if service.shopify is not None:
            app[TASKS].append(
                asyncio.create_task(service.installation.watch(settings.scan_interval), name="installation")
            )
        if reconcile and service.shopify is not None:
            app[TASKS].append(
                asyncio.create_task(service.reconcile_forever(settings.scan_interval), name="reconcile-timer")
            )
        app[TASKS].append(asyncio.create_task(app[PRUNER].run_forever(prune_timer or PruneTimer()), name="retention"))
        if not settings.shopify_client_secret:
            log.warning("SHOPIFY_CLIENT_SECRET is not set: every webhook will be refused with 401")
        yield
        if slack is not None:
            if slack.bulk is not None:
                await slack.bulk.close()  # orders in flight finish; the rest wait for the next start
            await slack.listeners.drain()
            await slack.actions.cancellations.close()  # what is in flight stays stored for the next start
            if slack.app_token:
                await socket_mode.close_async()
        for task in app[TASKS]:
            task.cancel()
        await asyncio.gather(*app[TASKS], return_exceptions=True)
        await service.close()
        await writer.stop()
        if service.shopify:
            await service.shopify.close()
        await store.close()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_post(WEBHOOK_PATH, make_handler(settings.shopify_client_secret or "", writer, settings.shopify_shop))
    if slack is not None:
        app.router.add_post("/slack/events", slack_route(slack.bolt))
    app.router.add_get("/healthz", healthz)
    return app


async def healthz(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    if not service.store.is_open:
        return web.json_response({"ok": False, "error": "database not open"}, status=503)
    health = await service.store.health()
    if service.shopify is not None:  # an uninstalled shop is no fault of the server's: a restart cannot mend it,
        health.update(service.installation.health())  # and the privacy webhooks must still be answered
    slack = request.app[SLACK]
    if slack is not None and slack.outbox.problem:
        health["slack_error"] = slack.outbox.problem
        if slack.outbox.unauthorized:
            return web.json_response({"ok": False, **health}, status=503)
    return web.json_response({"ok": True, **health})
