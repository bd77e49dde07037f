"""docs/commands.md, rendered from the command table in code: the usage lines, examples and aliases of
bot/domain/commands.py, which action each subcommand runs, what may name many orders, where `--share` works, and who
may run what (bot/slack/permissions.py). tests/test_docs.py fails when the file differs from what this renders.

Write it again after changing the table: `.venv/bin/python -m tests.docs_commands`.
"""

from __future__ import annotations

from pathlib import Path

from bot.domain.commands import (
    ACTION_COMMANDS,
    ALIASES,
    BULK_ACTIONS,
    EXAMPLES,
    INFO_COMMANDS,
    MAX_ORDERS,
    SHAREABLE,
    USAGE,
)
from bot.domain.rules import REASONS
from bot.flows.bulk import PERMISSION as BULK_PERMISSION
from bot.slack.permissions import ADMIN_ACTIONS

PATH = Path(__file__).parent.parent / "docs" / "commands.md"

# What each subcommand does, in words (the code has its usage and example; the words are kept here, one per name).
DESCRIPTIONS = {
    "stuck": "the stuck orders, optionally of one reason (`stuck:out_of_stock` works too), stuck longer than a"
    " duration, or with a tag; a long list pages with a More button",
    "show": "one order's card: the verdict and why, its fulfilment orders (requests, holds), tracking, the buttons it"
    " allows now, and the latest actions on it",
    "log": "the audit trail of an order, or what a person did (`/orders log @maria`, picking the person from Slack's"
    " list as you type), newest first",
    "fulfill": "ship what is left with that tracking number; without a number it opens the Mark as fulfilled form",
    "request": "request fulfilment from the fulfilment service (as Request fulfillment)",
    "cancel-request": "ask the service to cancel its fulfilment request (as Cancel request)",
    "release-hold": "release the order's fulfilment holds (as Release hold)",
    "snooze": "no alert for that long (`4h`, `1d`, `1w`; 1 minute to 30 days); nothing changes in Shopify",
    "notify": "email the customer a delay notice; for one order it opens the Email customer form",
    "archive": "archive (`orderClose`); the fulfilment status does not change",
    "unarchive": "unarchive (`orderOpen`), also for an order orderbot has not seen yet",
    "unfulfill": "cancel the order's fulfilment (`fulfillmentCancel`): its items become unfulfilled again. It does not"
    " recall a parcel that has left",
    "delete": "delete archived or cancelled orders in Shopify (`orderDelete`), for good; open orders are refused. The"
    " audit log keeps their rows",
    "cancel": "one order: opens the Cancel order form; many: a preview listing each with its amount and payment state,"
    " then one form for all of them (the number typed past 20)",
    "scan": "reconcile with Shopify now: how many open orders, which are stuck, which are newly stuck, what webhooks"
    " missed",
    "digest": "the digest now, to you; `digest post` posts it in the channel",
    "settings": "the store's settings; `settings set` changes one: `threshold.<reason>` (`48h`; `0` for at once),"
    " `ignore_tag`, `include_test_orders` (`true`/`false`), then re-checks every open order and says how many are"
    " stuck; `payment_actions` (`admins` or `everyone`: who may capture payments and mark orders as paid);"
    " `alert_burst` (`20`: at most this many new alerts per scan, the most urgent first, the rest in one summary);"
    " `digest_time` (`08:30`, in the digest's time zone; wins over `DIGEST_TIME` from then on)",
    "help": "the commands, or one command's usage and example",
}

HEADER = """\
# `/orders` commands

Generated from `bot/domain/commands.py` (`USAGE`, `EXAMPLES`, `ALIASES`, `ACTION_COMMANDS`, `BULK_ACTIONS`,
`SHAREABLE`) and `bot/slack/permissions.py` (`ADMIN_ACTIONS`), with the words of `DESCRIPTIONS` in
`tests/docs_commands.py`, by `.venv/bin/python -m tests.docs_commands`; `tests/test_docs.py` fails when this file and
the code differ. Type `/orders help` in Slack for the same list, or `/orders help <command>` for one. Answers marked
"`--share`" go only to you unless you add `--share` anywhere in the text, which posts them in the channel. The
buttons, the stuck reasons and the digest: [using.md](using.md).
"""

ORDERS_AND_FILTERS = """\
## Naming orders

- one order: `#1001`, `1001`, `gid://shopify/Order/123`, or an admin link (`https://admin.shopify.com/store/x/orders/123`,
  `https://x.myshopify.com/admin/orders/123`);
- several: lists (`#1001 #1002`, `#1001,#1002`) and ranges (`#1001-#1020`), up to {max_orders:,} orders;
- filters, alone or with named orders (then both must match): `stuck` (any reason), `stuck:<reason>`,
  `older:<duration>` (`older:7d`: stuck, shipped or created that long ago), `tag:<tag>`, `fulfilled` (fully shipped
  but still open: archive candidates);
- a `<reason>` is one of {reasons}.

An action on more than one order shows a preview with **Confirm** and **Cancel** first (see "Many orders at once" in
[using.md](using.md)).
"""


def _who(name: str) -> str:
    action = ACTION_COMMANDS.get(name)
    if action is not None:
        one = "admins" if action in ADMIN_ACTIONS else "anyone"
        if action in BULK_ACTIONS and one == "anyone" and BULK_PERMISSION in ADMIN_ACTIONS:
            return "anyone; several orders: admins"
        return one
    if name in ADMIN_ACTIONS:
        return f"anyone; `{name} set`: admins"
    return "anyone"


def _runs(name: str) -> str:
    action = ACTION_COMMANDS.get(name)
    if action is None:
        return "answers you" + ("; `--share`: in the channel" if name in SHAREABLE else "")
    several = "one or many orders" if action in BULK_ACTIONS else "one order"
    return f"action `{action}`, {several}"


def render() -> str:
    """The whole of docs/commands.md."""
    names = list(USAGE)
    missing = (set(ACTION_COMMANDS) | set(INFO_COMMANDS)) - set(names)
    assert not missing, f"subcommands without a usage line in bot/domain/commands.py: {sorted(missing)}"
    assert set(DESCRIPTIONS) == set(names), f"DESCRIPTIONS and USAGE differ: {sorted(set(DESCRIPTIONS) ^ set(names))}"
    rows = [
        f"| `/orders {_cell(USAGE[name])}` | {DESCRIPTIONS[name]} | `/orders {_cell(EXAMPLES[name])}` | {_runs(name)}"
        f" | {_who(name)} |"
        for name in names
    ]
    aliases = [f"| `{alias}` | `{name}` |" for alias, name in ALIASES.items()]
    return "\n".join(
        [
            HEADER,
            "## Commands",
            "",
            "| usage | what it does | example | what it runs | who |",
            "|---|---|---|---|---|",
            *rows,
            "",
            ORDERS_AND_FILTERS.format(max_orders=MAX_ORDERS, reasons=", ".join(f"`{r}`" for r in REASONS)),
            "## Other names",
            "",
            "An action id with `_` works too (`cancel_order`, `release_hold`).",
            "",
            "| typed | means |",
            "|---|---|",
            *aliases,
            "",
        ]
    )


def _cell(text: str) -> str:
    """A `|` inside a table cell is written `\\|`."""
    return text.replace("|", "\\|")


if __name__ == "__main__":
    PATH.write_text(render())
    print(f"wrote {PATH}")
