"""Who may do what: the irreversible and the many-order actions need a person named in SLACK_ADMINS."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.action_words import refusal

log = logging.getLogger(__name__)

# Actions that cannot be undone from orderbot, or change what a fulfillment service does.
ADMIN_ACTIONS = frozenset({"cancel_request", "cancel_order", "unfulfill", "bulk", "settings"})
GROUP_CACHE_SECONDS = 300.0


class Permissions:
    def __init__(
        self, admins: tuple[str, ...], client: AsyncWebClient | None, *, clock: Callable[[], float] = time.monotonic
    ):
        self.users = frozenset(a for a in admins if not a.startswith("S"))
        self.groups = tuple(a for a in admins if a.startswith("S"))
        self.client = client
        self.clock = clock
        self._members: dict[str, tuple[float, frozenset[str]]] = {}

    @staticmethod
    def needs_admin(action: str) -> bool:
        return action in ADMIN_ACTIONS

    async def may(self, user_id: str, action: str) -> bool:
        return not self.needs_admin(action) or await self.is_admin(user_id)

    async def is_admin(self, user_id: str) -> bool:
        if user_id in self.users:
            return True
        for group in self.groups:
            if user_id in await self._group_members(group):
                return True
        return False

    def refusal(self, action: str) -> str:
        """What a person who may not do `action` is told, and how to get permission."""
        if not self.users and not self.groups:
            why = (
                "only admins can, and no admins are set. Ask whoever runs orderbot to add Slack user ids to "
                "SLACK_ADMINS."
            )
        else:
            why = "only orderbot admins can. Ask an admin, or ask to be added to SLACK_ADMINS."
        return refusal(action, why)

    async def _group_members(self, group: str) -> frozenset[str]:
        cached = self._members.get(group)
        if cached and self.clock() - cached[0] < GROUP_CACHE_SECONDS:
            return cached[1]
        if self.client is None:
            return frozenset()
        try:
            response = await self.client.usergroups_users_list(usergroup=group)
        except SlackApiError as exc:
            log.warning("could not read the members of user group %s: %s", group, exc.response.get("error"))
            return cached[1] if cached else frozenset()  # a stale answer beats refusing every admin
        members = frozenset(response.get("users") or ())
        self._members[group] = (self.clock(), members)
        return members
