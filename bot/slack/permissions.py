"""Who may do what: the irreversible, the money and the many-order actions need a person named in SLACK_ADMINS; the
setting `payment_actions` can open the money ones to everyone."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.action_words import refusal
from bot.domain.rules import PAYMENT_ACTIONS_SETTING, Policy

log = logging.getLogger(__name__)

# Actions that cannot be undone from orderbot, move money, or change what a fulfillment service does.
PAYMENT_ACTIONS = frozenset({"capture_payment", "mark_as_paid"})  # the setting `payment_actions` may open these
ADMIN_ACTIONS = frozenset(
    {"cancel_request", "cancel_order", "unfulfill", "delete", "bulk", "settings", *PAYMENT_ACTIONS}
)
GROUP_CACHE_SECONDS = 300.0


class Permissions:
    def __init__(
        self,
        admins: tuple[str, ...],
        client: AsyncWebClient | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        policy: Callable[[], Awaitable[Policy]] | None = None,
    ):
        """`policy`: the settings as they are now (who may do the payment actions); none: the defaults."""
        self.users = frozenset(a for a in admins if not a.startswith("S"))
        self.groups = tuple(a for a in admins if a.startswith("S"))
        self.client = client
        self.clock = clock
        self.policy = policy
        self._members: dict[str, tuple[float, frozenset[str]]] = {}

    async def needs_admin(self, action: str) -> bool:
        if action in PAYMENT_ACTIONS and self.policy is not None:
            return (await self.policy()).payment_actions_for == "admins"
        return action in ADMIN_ACTIONS

    async def may(self, user_id: str, action: str) -> bool:
        return not await self.needs_admin(action) or await self.is_admin(user_id)

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
        if action in PAYMENT_ACTIONS:
            why += f" An admin can open it to everyone: `/orders settings set {PAYMENT_ACTIONS_SETTING} everyone`."
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
