"""The Slack half of the server, wired from Settings: the outbox that posts alerts, the actions and listeners behind
the buttons, the Home tab, the Bolt app, and Socket Mode when SLACK_APP_TOKEN is set."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import aiohttp
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_sdk.errors import SlackApiError

from bot.config import Settings
from bot.domain.orders import Order
from bot.domain.rules import Policy, Verdict
from bot.flows.actions import Actions
from bot.flows.bulk import BulkDrawer, BulkRuns
from bot.flows.cancellations import DEFAULT_FOLLOW_UP, FollowUp
from bot.flows.digests import ChartDrawer, Digests
from bot.flows.home import HomeBoards
from bot.flows.installation import Installation
from bot.flows.service import Service
from bot.flows.slash import SlashCommands
from bot.mail.smtp import Mailer
from bot.slack import alert_blocks, bulk_blocks, digest_chart
from bot.slack.app import bolt_app, web_client
from bot.slack.bulk_listeners import BulkListeners
from bot.slack.commands_listener import CommandListener
from bot.slack.digest_blocks import digest_message
from bot.slack.home import HomeTab
from bot.slack.listeners import SlackListeners
from bot.slack.outbox import PACE, OutboxSender
from bot.slack.permissions import Permissions
from bot.slack.proxies import use_proxy_for

log = logging.getLogger(__name__)


class SlackSide:
    """The Slack half of the server: the outbox that posts alerts and the listeners that act on clicks."""

    def __init__(
        self,
        settings: Settings,
        service: Service,
        *,
        pace: float = PACE,
        cancel_follow_up: FollowUp = DEFAULT_FOLLOW_UP,
        home_clock: Callable[[], float] = time.monotonic,
    ):
        """`home_clock`: the monotonic clock the Home tab's refresh window reads (tests pass one they move)."""
        self.outbox = OutboxSender(
            service.store,
            web_client(settings, retry_rate_limits=False),
            self._renderer(settings, service),
            pace=pace,
            paused=lambda: not service.installation.installed,
        )
        self.client = web_client(settings)
        mailer = Mailer(settings.smtp_url, settings.smtp_from or "") if settings.smtp_url else None
        self.actions = Actions(
            service,
            Permissions(settings.slack_admins, self.client, policy=lambda: _settings_policy(service)),
            mailer,
            shop_name=_shop_handle(settings),
            cancel_follow_up=cancel_follow_up,
        )
        self.listeners = SlackListeners(self.actions, signing_secret=settings.slack_signing_secret or "")
        self.bolt = bolt_app(settings, self.client)
        self.listeners.register(self.bolt)
        self.bulk = (
            BulkRuns(
                self.actions,
                self.client,
                settings.slack_channel_id,
                draw=BulkDrawer(
                    preview=bulk_blocks.preview_message,
                    progress=bulk_blocks.progress_message,
                    summary=bulk_blocks.summary_message,
                ),
                shop=settings.shopify_shop or "",
                pacer=self.outbox.pacer,
            )
            if settings.slack_channel_id
            else None
        )
        if self.bulk is not None:
            self.actions.cancellations.on_settled = self.bulk.settled  # a bulk cancel counts its orders as they settle
            BulkListeners(self.bulk, self.listeners).register(self.bolt)
        self.app_token = settings.slack_app_token
        self.digests = Digests(
            service.store,
            self.client,
            channel=settings.slack_channel_id,
            shop=settings.shopify_shop,
            digest_time=settings.digest_time,
            timezone=settings.timezone,
            shop_zone_expected=settings.has_shopify_credentials,
            draw=digest_message,
            chart=ChartDrawer(
                png=digest_chart.chart_png_apart,
                alt_text=digest_chart.chart_alt_text,
                filename=digest_chart.FILENAME,
                title=digest_chart.TITLE,
            ),
            now=service.now,
            pacer=self.outbox.pacer,
        )
        self.slash = SlashCommands(self.actions, bulk=self.bulk, digests=self.digests)
        CommandListener(self.slash, self.listeners, shop=settings.shopify_shop or "").register(self.bolt)
        self.home = HomeTab(
            HomeBoards(self.slash),
            self.client,
            self.listeners,
            shop=settings.shopify_shop or "",
            every=settings.home_refresh.total_seconds(),
            clock=home_clock,
        )
        self.home.register(self.bolt)
        if settings.slack_channel_id:
            service.alert_channel = settings.slack_channel_id
            service.alerts_queued = self._alerts_queued
        else:
            log.warning("SLACK_CHANNEL_ID is not set: stuck orders are found, but no alerts are posted")

    def _alerts_queued(self) -> None:
        """Verdicts changed and their alerts were queued: post them, and bring open Home tabs up to date."""
        self.outbox.wake()
        self.home.changed()

    @staticmethod
    def _renderer(settings: Settings, service: Service):
        def render(order: Order, verdict: Verdict, resolution: str | None) -> dict:
            snoozed_until = verdict.due_at if verdict.status == "snoozed" else None
            return alert_blocks.alert_message(
                order,
                verdict,
                shop=settings.shopify_shop or "",
                now=service.now(),
                resolution=resolution,
                snoozed_until=snoozed_until,
            )

        return render

    async def learn_shop_name(self, installation: Installation) -> None:
        """Customer emails are signed with the shop's name; the handle serves until Shopify says it. The digest
        keeps to the shop's time zone unless TIMEZONE is set."""
        shop = await installation.shop_profile()
        if shop is None:
            return
        self.actions.shop_name = shop["name"]
        self.digests.learn_shop_zone(shop["ianaTimezone"])


def _shop_handle(settings: Settings) -> str:
    return (settings.shopify_shop or "our shop").removesuffix(".myshopify.com")


async def connect_socket_mode(handler: AsyncSocketModeHandler) -> None:
    """Socket Mode (SLACK_APP_TOKEN), connected beside the server rather than before it: slack_sdk's connect() retries
    forever, so a refused token would otherwise keep webhooks and /healthz down. A token Slack refuses is logged once
    and Socket Mode stays off; a Slack it cannot reach is left to slack_sdk's own retries. The socket goes through the
    proxy chosen for its own URL once Slack names it, for the Web API's until then."""
    use_proxy_for(handler.client, handler.client.web_client.base_url)
    try:
        opened = await handler.client.web_client.apps_connections_open(app_token=handler.app_token)
        handler.client.wss_uri = opened["url"]
        use_proxy_for(handler.client, opened["url"])
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


async def _settings_policy(service: Service) -> Policy:
    """The store's settings as they are now (who may do the payment actions)."""
    policy, _ = await service.policy()
    return policy
