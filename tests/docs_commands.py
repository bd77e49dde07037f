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

HEADER = """\
# `/orders` commands

Generated from `bot/domain/commands.py` (`USAGE`, `EXAMPLES`, `ALIASES`, `ACTION_COMMANDS`, `BULK_ACTIONS`,
`SHAREABLE`) and `bot/slack/permissions.py` (`ADMIN_ACTIONS`) by `.venv/bin/python -m tests.docs_commands`;
`tests/test_docs.py` fails when this file and the code differ. Type `/orders help` in Slack for the same list, or
`/orders help <command>` for one.
"""

ORDERS_AND_FILTERS = """\
## Naming orders

- one order: `#1001`, `1001`, `gid://shopify/Order/123`, or an admin link (`https://admin.shopify.com/store/x/orders/123`,
  `https://x.myshopify.com/admin/orders/123`);
- several: lists (`#1001 #1002`, `#1001,#1002`) and ranges (`#1001-#1020`), up to {max_orders:,} orders;
- filters, alone or with named orders (then both must match): `stuck`, `stuck:<reason>`, `older:<duration>`,
  `tag:<tag>`, `fulfilled` (fully shipped but still open);
- a `<reason>` is one of {reasons}.

An action on more than one order shows a preview with **Confirm** and **Cancel** first.
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
    rows = [
        f"| `/orders {_cell(USAGE[name])}` | `/orders {_cell(EXAMPLES[name])}` | {_runs(name)} | {_who(name)} |"
        for name in names
    ]
    aliases = [f"| `{alias}` | `{name}` |" for alias, name in ALIASES.items()]
    return "\n".join(
        [
            HEADER,
            "## Commands",
            "",
            "| usage | example | what it runs | who |",
            "|---|---|---|---|",
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
