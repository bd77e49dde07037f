"""Whether the shop has orderbot installed, and what orderbot does while it has not.

An `app/uninstalled` webhook ends the installation: Shopify has revoked orderbot's token by then. From that moment
orderbot sends Shopify nothing (the client refuses every call at once, ShopifyUninstalled) and posts nothing to Slack
(the outbox holds what is queued), while it keeps answering and storing webhooks, and applies those that need no
Shopify call (the privacy ones above all: shop/redact comes 48 hours after an uninstall). Nothing stored is lost.
The state is kept in the settings table (`app_installed`), so a restart does not forget it.

A reinstall is noticed by a probe: one ShopAndScopes query (a point or two of the API budget) with the configured
credentials, every scan interval once an interval has passed since the uninstall, and at start. A reinstall with
client credentials (SHOPIFY_CLIENT_ID and SECRET) is noticed by the next probe, since the client fetches a fresh
token; a custom app's admin token is a new one after a reinstall, so there the operator sets SHOPIFY_ACCESS_TOKEN
and restarts, and the probe at start notices. Once a probe is answered, calls and posts resume, and the alerts held
meanwhile go out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.shopify.client import ShopifyClient, ShopifyError
from bot.store import Store

log = logging.getLogger(__name__)

APP_INSTALLED = "app_installed"  # the settings key: "false" from app/uninstalled until a probe is answered


class Installation:
    """`on_reinstall` is called once orderbot may call Shopify and post again (it wakes the Slack outbox)."""

    def __init__(
        self,
        store: Store,
        shopify: ShopifyClient | None,
        *,
        on_reinstall: Callable[[], None] = lambda: None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.store = store
        self.shopify = shopify
        self.on_reinstall = on_reinstall
        self.now = now
        self.uninstalled_at: datetime | None = None

    @property
    def installed(self) -> bool:
        return self.uninstalled_at is None

    async def load(self) -> None:
        """At start: an uninstall stored before a restart still holds (until the probe at start is answered)."""
        stored = await self.store.setting_with_time(APP_INSTALLED)
        if stored is not None and stored[0] == "false":
            self._suspend(stored[1])

    async def uninstalled(self) -> None:
        """The shop removed orderbot (the app/uninstalled webhook)."""
        await self.store.set_setting(APP_INSTALLED, "false", by="shopify")
        self._suspend(self.now())
        log.warning(
            "app/uninstalled: the shop removed orderbot; it stops calling Shopify and posting alerts until it is "
            "installed again, and keeps storing webhooks"
        )

    def _suspend(self, since: datetime) -> None:
        self.uninstalled_at = since
        if self.shopify is not None:
            self.shopify.suspended = (
                "The shop uninstalled orderbot, so orderbot does not call Shopify until it is installed again."
            )

    async def probe(self) -> bool:
        """Whether orderbot is installed, asking Shopify when it was not: one cheap query with the credentials."""
        if self.installed or self.shopify is None:
            return self.installed
        try:
            await self.shopify.shop_and_scopes(even_if_suspended=True)
        except ShopifyError as exc:
            log.info("orderbot is still not installed in the shop (Shopify answered: %s)", exc)
            return False
        await self.store.set_setting(APP_INSTALLED, "true", by="orderbot")
        self.uninstalled_at = None
        self.shopify.suspended = None
        log.warning("orderbot is installed in the shop again: it calls Shopify and posts alerts again")
        self.on_reinstall()
        return True

    async def shop_profile(self) -> dict[str, Any] | None:
        """The shop's name and time zone as Shopify has them (`name`, `ianaTimezone`); None without credentials or
        while Shopify cannot say (logged)."""
        if self.shopify is None:
            return None
        try:
            shop, _ = await self.shopify.shop_and_scopes()
        except ShopifyError as exc:
            log.warning("could not read the shop's name from Shopify: %s", exc)
            return None
        return shop

    async def watch(self, every: timedelta) -> None:
        """Probe while uninstalled: at start, then every `every` once `every` has passed since the uninstall (the
        token Shopify revokes must not be mistaken for a reinstall while the revocation spreads)."""
        while True:
            if not self.installed and self.now() - self.uninstalled_at >= every:
                await self.probe()
            await asyncio.sleep(every.total_seconds())

    def health(self) -> dict[str, Any]:
        """For /healthz (with Shopify configured): "installed", or "uninstalled" and since when and what happens."""
        if self.installed:
            return {"shopify": "installed"}
        return {
            "shopify": "uninstalled",
            "shopify_uninstalled_at": self.uninstalled_at.isoformat(),
            "shopify_error": "The shop uninstalled orderbot: alerts and Shopify calls are paused until it is installed "
            "again (orderbot checks every scan interval); webhooks are still stored.",
        }
