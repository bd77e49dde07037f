"""The aiohttp Application: routes, and the start and stop of the background tasks beside them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_sdk.errors import SlackApiError

from bot.actions import Actions
from bot.config import Settings
from bot.domain.orders import Order
from bot.domain.rules import Verdict
from bot.mail import Mailer
from bot.service import Service
from bot.shopify.client import ShopifyClient, ShopifyError
from bot.shopify.webhooks import MAX_BODY_BYTES, InboxWriter, make_handler
from bot.slack import blocks
from bot.slack.app import bolt_app, slack_route, web_client
from bot.slack.listeners import SlackListeners
from bot.slack.outbox import OutboxSender
from bot.slack.permissions import Permissions
from bot.store import Store

log = logging.getLogger(__name__)

SERVICE = web.AppKey("service", Service)
TASKS = web.AppKey("tasks", list)
SLACK = web.AppKey("slack", object)


class SlackSide:
    """The Slack half of the server: the outbox that posts alerts and the listeners that act on clicks."""

    def __init__(self, settings: Settings, service: Service):
        self.outbox = OutboxSender(service.store, web_client(settings, retry_rate_limits=False))
        self.client = web_client(settings)
        mailer = Mailer(settings.smtp_url, settings.smtp_from or "") if settings.smtp_url else None
        self.actions = Actions(
            service, Permissions(settings.slack_admins, self.client), mailer, shop_name=_shop_handle(settings)
        )
        self.listeners = SlackListeners(
            self.actions,
            signing_secret=settings.slack_signing_secret or "",
            shop=settings.shopify_shop or "",
            shop_name=_shop_handle(settings),
        )
        self.bolt = bolt_app(settings, self.client)
        self.listeners.register(self.bolt)
        self.app_token = settings.slack_app_token
        if settings.slack_channel_id:
            service.alerts = (settings.slack_channel_id, self._renderer(settings, service))
            service.alerts_queued = self.outbox.wake
        else:
            log.warning("SLACK_CHANNEL_ID is not set: stuck orders are found, but no alerts are posted")

    @staticmethod
    def _renderer(settings: Settings, service: Service):
        def render(order: Order, verdict: Verdict, resolution: str | None) -> dict:
            snoozed_until = verdict.due_at if verdict.status == "snoozed" else None
            return blocks.alert_message(
                order,
                verdict,
                shop=settings.shopify_shop or "",
                now=service.now(),
                resolution=resolution,
                snoozed_until=snoozed_until,
            )

        return render

    async def learn_shop_name(self, shopify: ShopifyClient | None) -> None:
        """Customer emails are signed with the shop's name; the handle serves until Shopify says it."""
        if shopify is None:
            return
        try:
            shop, _ = await shopify.shop_and_scopes()
        except ShopifyError as exc:
            log.warning("could not read the shop's name from Shopify: %s", exc)
            return
        self.actions.shop_name = self.listeners.shop_name = shop["name"]


def _shop_handle(settings: Settings) -> str:
    return (settings.shopify_shop or "our shop").removesuffix(".myshopify.com")


def shopify_client(settings: Settings) -> ShopifyClient | None:
    if not settings.has_shopify_credentials:
        return None
    return ShopifyClient(
        graphql_url=settings.graphql_url,
        access_token=settings.shopify_access_token,
        client_id=settings.shopify_client_id,
        client_secret=settings.shopify_client_secret,
    )


async def connect_socket_mode(handler: AsyncSocketModeHandler) -> None:
    """Socket Mode (SLACK_APP_TOKEN), connected beside the server rather than before it: slack_sdk's connect() retries
    forever, so a refused token would otherwise keep webhooks and /healthz down. A token Slack refuses is logged once
    and Socket Mode stays off; a Slack it cannot reach is left to slack_sdk's own retries."""
    try:
        opened = await handler.client.web_client.apps_connections_open(app_token=handler.app_token)
        handler.client.wss_uri = opened["url"]
    except SlackApiError as exc:
        if exc.response.status_code == 200:  # Slack answered: invalid_auth, not_allowed_token_type, ...
            log.error(
                "Socket Mode is off: apps.connections.open refused SLACK_APP_TOKEN (%s); it must be the app-level "
                "token (xapp-...) with the connections:write scope",
                exc.response.get("error"),
            )
            return
        log.warning("Socket Mode: apps.connections.open failed (HTTP %s); retrying", exc.response.status_code)
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("Socket Mode: could not reach Slack (%s); retrying", exc)
    await handler.connect_async()
    if not handler.client.closed:
        log.info("Socket Mode: connected")


def create_app(settings: Settings, *, reconcile: bool = True) -> web.Application:
    """The server: POST /shopify/webhooks and GET /healthz, with the inbox processor and the reconcile timer."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    store = Store(settings.database_path)
    service = Service(store, shopify_client(settings))
    writer = InboxWriter(store, service.inbox_changed)
    slack = SlackSide(settings, service) if settings.has_slack_credentials else None
    app[SERVICE] = service
    app[TASKS] = []
    app[SLACK] = slack

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await store.open()
        writer.start()
        if slack is not None:
            await store.clear_action_locks()
            await store.outbox_recover()
            app[TASKS].append(asyncio.create_task(slack.outbox.run_forever(), name="slack-outbox"))
            app[TASKS].append(asyncio.create_task(slack.learn_shop_name(service.shopify), name="shop-name"))
            if slack.app_token:
                socket_mode = AsyncSocketModeHandler(slack.bolt, slack.app_token)
                app[TASKS].append(asyncio.create_task(connect_socket_mode(socket_mode), name="socket-mode"))
        app[TASKS].append(
            asyncio.create_task(service.process_inbox_forever(writer.yield_to_ingest), name="inbox-processor")
        )
        if reconcile and service.shopify is not None:
            app[TASKS].append(
                asyncio.create_task(service.reconcile_forever(settings.scan_interval), name="reconcile-timer")
            )
        if not settings.shopify_client_secret:
            log.warning("SHOPIFY_CLIENT_SECRET is not set: every webhook will be refused with 401")
        yield
        if slack is not None:
            await slack.listeners.drain()
            if slack.app_token:
                await socket_mode.close_async()
        for task in app[TASKS]:
            task.cancel()
        await asyncio.gather(*app[TASKS], return_exceptions=True)
        await writer.stop()
        if service.shopify:
            await service.shopify.close()
        await store.close()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_post(
        "/shopify/webhooks", make_handler(settings.shopify_client_secret or "", writer, settings.shopify_shop)
    )
    if slack is not None:
        app.router.add_post("/slack/events", slack_route(slack.bolt))
    app.router.add_get("/healthz", healthz)
    return app


async def healthz(request: web.Request) -> web.Response:
    store = request.app[SERVICE].store
    if not store.is_open:
        return web.json_response({"ok": False, "error": "database not open"}, status=503)
    health = await store.health()
    slack = request.app[SLACK]
    if slack is not None and slack.outbox.problem:
        health["slack_error"] = slack.outbox.problem
        if slack.outbox.unauthorized:
            return web.json_response({"ok": False, **health}, status=503)
    return web.json_response({"ok": True, **health})
