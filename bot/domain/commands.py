"""`/orders …` text → a `Command`. Pure: no I/O.

What the text may say (DESIGN §3 for order references):
- one order: `#1001`, `1001`, `gid://shopify/Order/123`, an admin URL (`https://admin.shopify.com/store/x/orders/123`,
  `https://x.myshopify.com/admin/orders/123`), possibly wrapped by Slack as `<https://…>` or `<https://…|label>`;
- several: lists (`#1001 #1002`, `#1001,#1002`) and ranges (`#1001-#1020`, `1001-1020`);
- filters: `stuck` (any reason), `stuck:<reason>`, `older:<duration>`, `tag:<tag>`, `fulfilled` (fully shipped
  but still open — archive candidates);
- `--share` anywhere: answer in the channel instead of only to the person.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType

# subcommand -> the action id it runs (DESIGN §3 action ids, plus "unfulfill")
ACTION_COMMANDS: Mapping[str, str] = MappingProxyType(
    {
        "fulfill": "fulfill",
        "request": "request_fulfillment",
        "cancel-request": "cancel_request",
        "release-hold": "release_hold",
        "archive": "archive",
        "unarchive": "unarchive",
        "unfulfill": "unfulfill",
        "notify": "notify_customer",
        "cancel": "cancel_order",
        "snooze": "snooze",
    }
)
# action ids that may run over many orders at once (preview, confirm, progress, summary)
BULK_ACTIONS = frozenset(
    {
        "archive",
        "unarchive",
        "fulfill",
        "request_fulfillment",
        "cancel_request",
        "unfulfill",
        "notify_customer",
        "snooze",
    }
)
INFO_COMMANDS = ("help", "stuck", "show", "log", "settings", "scan", "digest")
MAX_ORDERS = 5000  # the most orders one command may name (a range of 5,000 is already a big bulk run)


@dataclass(frozen=True, slots=True)
class Selection:
    """The orders a command is about: named ones (numbers, ranges, ids) and/or a filter.

    Named orders and a filter combine as "named AND filter" (e.g. `#1001-#1100 stuck:awaiting_tracking`).
    `older` is measured from what the filter is about: stuck since (with `stuck`), shipped at (with `fulfilled`),
    else the order's creation.
    """

    numbers: tuple[int, ...] = ()  # order numbers as typed (#1001 → 1001), ranges expanded, in the order given
    ids: tuple[str, ...] = ()  # gid://shopify/Order/… (from gids and admin URLs)
    stuck: bool = False  # `stuck` or `stuck:<reason>`
    reason: str | None = None  # with stuck: one reason of rules.REASONS
    older: timedelta | None = None
    tag: str | None = None
    fulfilled: bool = False

    @property
    def named(self) -> int:
        return len(self.numbers) + len(self.ids)

    @property
    def has_filter(self) -> bool:
        return self.stuck or self.older is not None or self.tag is not None or self.fulfilled

    @property
    def single(self) -> bool:
        """Exactly one order named and no filter: the command acts at once, without a bulk preview."""
        return self.named == 1 and not self.has_filter


@dataclass(frozen=True, slots=True)
class Command:
    """One parsed `/orders` command.

    name: a key of ACTION_COMMANDS or one of INFO_COMMANDS.
    args, by name:
      fulfill: tracking_number, tracking_company (both optional)
      snooze: for (a duration as typed, e.g. "1d")
      log: user (a Slack user id, from `<@U123|name>`), when not about an order
      settings: key, value (for `settings set <key> <value>`)
      digest: post ("true" for `digest post`)
      stuck: page (a number, from the "more" button; default "1")
      help: topic (a subcommand name, optional)
    """

    name: str
    selection: Selection | None = None
    args: Mapping[str, str] = field(default_factory=dict)
    share: bool = False

    @property
    def action(self) -> str | None:
        return ACTION_COMMANDS.get(self.name)

    @property
    def bulk(self) -> bool:
        return self.action is not None and self.selection is not None and not self.selection.single


class CommandError(ValueError):
    """The text could not be understood: `message` says why in one line; `usage` is the closest valid form."""

    def __init__(self, message: str, usage: str):
        super().__init__(message)
        self.message = message
        self.usage = usage
