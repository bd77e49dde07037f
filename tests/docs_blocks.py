"""The generated parts of README.md and docs/*.md: each sits between two markers,

    <!-- generated: NAME (python -m tests.docs_blocks) -->
    …
    <!-- end generated: NAME -->

and is rendered here from the code it describes: one real alert as Slack shows it, the environment variables
(bot/config.py), the alert's buttons, the command line, the Shopify access scopes and webhook topics, the stuck
reasons, and the Slack ids the server listens for. The words beside the code's names live here, keyed by those names,
and each renderer fails when the code has a name the words do not cover (or the other way round).
tests/test_docs.py fails when a file differs from what this renders.

Write them again after changing the code: `.venv/bin/python -m tests.docs_blocks`.
"""

from __future__ import annotations

import ast
import asyncio
import dataclasses
import importlib
import os
import pkgutil
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from types import ModuleType

import bot.slack
from bot.config import VARIABLES, Settings
from bot.demo.terminal import card, element_text, message_lines
from bot.domain.commands import USAGE
from bot.domain.durations import format_duration
from bot.domain.rules import DEFAULT_THRESHOLDS, REASON_TITLES, REASONS, Policy, classify
from bot.setup_webhooks import PRIVACY_TOPICS, TOPICS
from bot.shopify.operations import REQUIRED_SCOPES
from bot.slack import alert_blocks, blocks
from bot.slack.permissions import ADMIN_ACTIONS, PAYMENT_ACTIONS

ROOT = Path(__file__).parent.parent
FILES = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
MARKED = re.compile(
    r"(<!-- generated: (?P<name>[a-z-]+) \(python -m tests\.docs_blocks\) -->\n)"
    r"(?P<body>.*?)"
    r"(<!-- end generated: (?P=name) -->)",
    re.DOTALL,
)

# --- one alert, as the demo's terminal shows it ---------------------------------------------------------------------

ALERT_ORDER = "#1009"  # the seeded order a fulfilment service accepted and never sent tracking for
ALERT_NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)
SHOP = "juniper-oak.myshopify.com"


def _seeded_orders() -> dict:
    from tests.conftest import fetch_seeded_orders  # starts a sandbox Shopify on 127.0.0.1 for the fetch

    return asyncio.run(fetch_seeded_orders(ALERT_NOW, SHOP))


def alert(orders: dict) -> str:
    order = orders[ALERT_ORDER]
    message = alert_blocks.alert_message(order, classify(order, ALERT_NOW, Policy()), shop=SHOP, now=ALERT_NOW)
    return (
        "```text\n"
        + card(f"Slack #orders · orderbot · new alert for {ALERT_ORDER}", message_lines(message))
        + "\n```\n"
    )


# --- environment variables ------------------------------------------------------------------------------------------


def _default(name: str) -> str:
    value = getattr(Settings(), name.lower())
    if value in (None, "", ()):
        return ""
    if isinstance(value, time):
        return f"`{value:%H:%M}`"
    if isinstance(value, timedelta):
        return f"`{format_duration(value)}`"
    return f"`{value}`"


def _check_variables() -> None:
    listed = [v.name.lower() for v in VARIABLES]
    settings = [f.name for f in dataclasses.fields(Settings)]
    assert sorted(listed) == sorted(settings), "bot/config.py: VARIABLES and the Settings fields differ"


def required_variables(_orders: dict) -> str:
    _check_variables()
    rows = [f"| `{v.name}` | {v.meaning} |" for v in VARIABLES if v.required]
    return "\n".join(["| variable | what |", "|---|---|", *rows, ""])


def optional_variables(_orders: dict) -> str:
    _check_variables()
    rows = [f"| `{v.name}` | {v.meaning} | {_default(v.name)} |" for v in VARIABLES if not v.required]
    return "\n".join(["| variable | what | default |", "|---|---|---|", *rows, ""])


# --- the alert's buttons --------------------------------------------------------------------------------------------

BUTTONS = {
    blocks.FULFILL: "ship what is left with a tracking number (a form); on a shipment without one, add it",
    blocks.REQUEST_FULFILLMENT: "ask the fulfilment service or app to ship it",
    blocks.CANCEL_REQUEST: "ask the service to cancel its fulfilment request",
    blocks.RELEASE_HOLD: "release the fulfilment holds shown",
    blocks.ARCHIVE: "archive the order; its fulfilment status does not change",
    blocks.UNARCHIVE: "unarchive (`/orders unarchive`: an archived order's alert has no buttons but Delete)",
    blocks.NOTIFY_CUSTOMER: "email the customer a short delay notice you can edit (a form)",
    blocks.CANCEL_ORDER: "cancel the order, with restock and refund choices (a form)",
    blocks.SNOOZE: "no alert for 4 hours, 1 day, 3 days or 1 week; nothing changes in Shopify",
    blocks.CAPTURE_PAYMENT: "capture an authorized payment; the confirmation shows the amount and its expiry",
    blocks.MARK_AS_PAID: "record a manual payment (bank deposit, cash on delivery) once the money has arrived",
    blocks.DELETE: "on the resolved alert of an archived or cancelled order: delete it in Shopify, for good",
    blocks.MOVE: "on an out-of-stock alert: move it to a location Shopify lists as stocking every item (a form), "
    "and release the stock hold",
}


def _controls(orders: dict) -> dict[str, str]:
    """Each action id's control as the alert draws it, from an alert offering every action."""
    order = orders[ALERT_ORDER]
    verdict = dataclasses.replace(classify(order, ALERT_NOW, Policy()), actions=blocks.ACTION_IDS)
    message = alert_blocks.alert_message(order, verdict, shop=SHOP, now=ALERT_NOW)
    elements = [e for block in message["blocks"] if block["type"] == "actions" for e in block["elements"]]
    return {e["action_id"]: element_text(e) for e in elements}


def _who(action: str) -> str:
    if action in PAYMENT_ACTIONS:
        return "admins (a setting opens it to everyone)"
    return "admins" if action in ADMIN_ACTIONS else "anyone"


def buttons(orders: dict) -> str:
    assert set(BUTTONS) == set(blocks.ACTION_IDS), "the buttons' words and blocks.ACTION_IDS differ"
    controls = _controls(orders)
    rows = [f"| `{controls[a]}` | {BUTTONS[a]} | {_who(a)} |" for a in blocks.ACTION_IDS]
    return "\n".join(["| button | what it does | who |", "|---|---|---|", *rows, ""])


# --- the `/orders` commands people use most -----------------------------------------------------------------------

COMMON_COMMANDS = {
    "stuck": "what is stuck now, by reason, age or tag",
    "show": "one order: why it is stuck, its fulfilment orders, its latest actions",
    "fulfill": "ship it with a tracking number",
    "snooze": "no alert for a while",
    "archive": "archive one order, or many (`/orders archive fulfilled older:14d`)",
}


def common_commands(_orders: dict) -> str:
    unknown = set(COMMON_COMMANDS) - set(USAGE)
    assert not unknown, f"not /orders commands: {sorted(unknown)}"
    return "".join(f"- `/orders {USAGE[name]}`: {words}\n" for name, words in COMMON_COMMANDS.items())


# --- the command line -----------------------------------------------------------------------------------------------


# One interpreter prints the help of `python -m bot` and of each command, split by a form feed.
_HELP_SCRIPT = """
import contextlib, io, sys
from bot.cli import main
for args in sys.argv[1:]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        main([*args.split(), "--help"])
    print(out.getvalue(), end="\\f")
"""


def _helps(*commands: str) -> list[str]:
    """`python -m bot --help`, then `python -m bot COMMAND --help` for each command."""
    env = {**os.environ, "COLUMNS": "500"}  # one line per entry
    out = subprocess.run(
        [sys.executable, "-c", _HELP_SCRIPT, "", *commands],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env=env,
    ).stdout
    return out.split("\f")[: len(commands) + 1]


def command_line(_orders: dict) -> str:
    summaries = dict(re.findall(r"^ {4}([a-z-]+) +(\S.*)$", _helps()[0], re.MULTILINE))
    assert summaries, "no subcommand found in `python -m bot --help`"
    rows = []
    for summary, text in zip(summaries.values(), _helps(*summaries)[1:], strict=True):
        usage = re.search(r"^usage: orderbot (.*)$", text, re.MULTILINE).group(1).replace(" [-h]", "")
        options = re.findall(r"^ {2}(--[a-z-]+(?: [A-Z]+)?) +(\S.*)$", text, re.MULTILINE)
        said = "; ".join(f"`{flag}`: {what}" for flag, what in options)
        rows.append(f"| `python -m bot {usage}` | {summary} | {said} |")
    return "\n".join(["| command | what it does | options |", "|---|---|---|", *rows, ""])


# --- Shopify: access scopes and webhook topics ----------------------------------------------------------------------

SCOPES = {
    "read_orders": "read orders, their fulfilments and fulfilment orders; the `orders/*` webhooks",
    "write_orders": "archive and unarchive (`orderClose`, `orderOpen`), cancel (`orderCancel`), tag (`tagsAdd`),"
    " capture a payment and mark an order as paid (`orderCapture`, `orderMarkAsPaid`), delete (`orderDelete`)",
    "read_merchant_managed_fulfillment_orders": "fulfilment orders at your own locations; their webhooks",
    "write_merchant_managed_fulfillment_orders": "fulfil with tracking, release holds, cancel a fulfilment",
    "read_third_party_fulfillment_orders": "fulfilment orders assigned to a fulfilment service or 3PL; their webhooks",
    "write_third_party_fulfillment_orders": "request fulfilment from a service, request its cancellation",
}
OPTIONAL_SCOPE = (
    "| `read_all_orders` (optional) | only if orders older than 60 days should be checked: without it Shopify shows an"
    " app the last 60 days |"
)


def shopify_scopes(_orders: dict) -> str:
    assert tuple(SCOPES) == REQUIRED_SCOPES, "the scopes' words and operations.REQUIRED_SCOPES differ"
    rows = [f"| `{scope}` | {why} |" for scope, why in SCOPES.items()]
    return "\n".join(["| scope | why |", "|---|---|", *rows, OPTIONAL_SCOPE, ""])


def webhook_topics(_orders: dict) -> str:
    subscribed = ", ".join(f"`{t}`" for t in TOPICS)
    privacy = ", ".join(f"`{t}`" for t in PRIVACY_TOPICS)
    return f"Subscribed by `setup-webhooks`: {subscribed}.\n\nSet in the app's configuration instead: {privacy}.\n"


# --- stuck reasons --------------------------------------------------------------------------------------------------

REASON_MEANINGS = {
    "request_rejected": "the fulfilment app rejected the request, or refused to cancel it",
    "payment_pending": "payment pending, authorized only (authorisations expire) or partially paid",
    "out_of_stock": "fulfilment order on hold: inventory out of stock",
    "on_hold": "any other hold: incorrect address, fraud risk, …",
    "unfulfilled_overdue": "paid, fulfilment order open, nobody has shipped it (or its `fulfillBy` passed)",
    "partially_fulfilled": "part shipped, the rest forgotten",
    "request_pending": "a fulfilment app or 3PL (DSers, a warehouse) got the request and never accepted it",
    "awaiting_tracking": "the app accepted it but no tracking number ever came",
}


def stuck_reasons(_orders: dict) -> str:
    assert set(REASON_MEANINGS) == set(REASONS), "the reasons' words and rules.REASONS differ"
    rows = [
        f"| `{r}` | {REASON_TITLES[r]} | {REASON_MEANINGS[r]} | "
        + ("at once" if not DEFAULT_THRESHOLDS[r] else format_duration(DEFAULT_THRESHOLDS[r]))
        + " |"
        for r in REASONS
    ]
    return "\n".join(["| reason | shown as | what Shopify shows | default threshold |", "|---|---|---|---|", *rows, ""])


# --- Slack ids ------------------------------------------------------------------------------------------------------

SLACK_IDS = {
    **{
        a: "the alert's `{control}` button (its `value` is the order's `gid://shopify/Order/…`)"
        for a in blocks.ACTION_IDS
    },
    blocks.SNOOZE: "the alert's `{control}` menu (an option's `value` is `<order gid>\\|<4h, 1d, 3d or 1w>`)",
    blocks.DELETE: "the `{control}` button on a resolved alert of an archived or cancelled order (its `value` is the "
    "order's `gid://shopify/Order/…`)",
    "stuck_more": "More, under a long `/orders stuck` list",
    "show_stuck": "the digest's Show all stuck",
    "bulk_suggestion": "the digest's suggestion to archive old shipped orders (a bulk preview)",
    "bulk_confirm": "a bulk preview's Confirm",
    "bulk_cancel": "a bulk preview's Cancel",
    "bulk_form": "a bulk cancel's preview's Confirm: opens its one form (its `value` is the run's id)",
    "bulk_stop": "a bulk run's progress message's Stop",
    "home_setting": "a setting's Change on the Home tab, for admins (its `value` is the setting's key)",
}
MODALS = {
    blocks.FULFILL_MODAL: "Mark as fulfilled; inputs `tracking_number`, `tracking_company`, `tracking_url`,"
    " `no_tracking`, `notify_customer`",
    blocks.NOTIFY_MODAL: "Email customer; inputs `subject`, `message`",
    blocks.CANCEL_ORDER_MODAL: "Cancel order; inputs `reason`, `restock`, `refund`, `notify_customer`, `staff_note`",
    blocks.MOVE_MODAL: "Move; inputs `location` (radio buttons: a location's `gid://shopify/Location/…`), "
    "`release_stock_hold`. It opens saying it asks Shopify, then is filled in (views.update)",
    blocks.BULK_CANCEL_MODAL: "Cancel many orders (`/orders cancel <selection>`), for all of them; inputs `reason`,"
    " `restock`, `refund`, `notify_customer`, and `confirm_count` past 20 orders",
    "home_setting_modal": "Change a setting, from the Home tab; input `setting_value`",
}


def _resolve(module: ModuleType, node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        value = getattr(module, node.id, None)
    elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        value = getattr(getattr(module, node.value.id, None), node.attr, None)
    else:
        return None
    return value if isinstance(value, str) else None


def slack_listener_ids() -> dict[str, set[str]]:
    """The action and view (modal) ids registered with Bolt anywhere in bot/slack: `app.action(ID)`, `app.view(ID)`.
    Registrations by pattern (the alert's buttons) are not strings; ACTION_IDS covers those."""
    found: dict[str, set[str]] = {"action": set(), "view": set()}
    for info in pkgutil.iter_modules(bot.slack.__path__):
        module = importlib.import_module(f"bot.slack.{info.name}")
        for node in ast.walk(ast.parse(Path(module.__file__).read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in found
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "app"
                and len(node.args) == 1
            ):
                value = _resolve(module, node.args[0])
                if value is not None:
                    found[node.func.attr].add(value)
    assert found["view"], "no app.view(...) registration found: the scan is broken"
    return found


def slack_ids(orders: dict) -> str:
    listened = slack_listener_ids()
    actions = set(blocks.ACTION_IDS) | listened["action"]
    assert set(SLACK_IDS) == actions, f"the Slack ids' words and the listeners differ: {set(SLACK_IDS) ^ actions}"
    assert set(MODALS) == listened["view"], (
        f"the forms' words and the listeners differ: {set(MODALS) ^ listened['view']}"
    )
    controls = _controls(orders)
    rows = [f"| `{i}` | action | {SLACK_IDS[i].format(control=controls.get(i))} |" for i in SLACK_IDS]
    rows += [f"| `{i}` | form (`callback_id`) | {MODALS[i]} |" for i in MODALS]
    return "\n".join(
        [
            "| id | kind | what |",
            "|---|---|---|",
            "| `/orders` | slash command | docs/commands.md |",
            "| `app_home_opened` | event | someone opened the Home tab: their board is published |",
            *rows,
            "",
        ]
    )


# --- the files ------------------------------------------------------------------------------------------------------

RENDERERS: dict[str, Callable[[dict], str]] = {
    "alert": alert,
    "required-variables": required_variables,
    "optional-variables": optional_variables,
    "buttons": buttons,
    "common-commands": common_commands,
    "command-line": command_line,
    "shopify-scopes": shopify_scopes,
    "webhook-topics": webhook_topics,
    "stuck-reasons": stuck_reasons,
    "slack-ids": slack_ids,
}


def render(text: str, orders: dict) -> str:
    """`text` with each generated block rendered again."""

    def again(match: re.Match[str]) -> str:
        name = match.group("name")
        assert name in RENDERERS, f"no renderer for the generated block {name!r}"
        # Blank lines around the body: a table or list would otherwise take the closing marker as one of its lines.
        return match.group(1) + "\n" + RENDERERS[name](orders).strip("\n") + "\n\n" + match.group(4)

    return MARKED.sub(again, text)


def blocks_in(text: str) -> list[str]:
    return [m.group("name") for m in MARKED.finditer(text)]


def rendered_files() -> dict[Path, str]:
    """Every file that has generated blocks, as it should read."""
    orders = _seeded_orders()
    return {path: render(path.read_text(), orders) for path in FILES if blocks_in(path.read_text())}


if __name__ == "__main__":
    for path, text in rendered_files().items():
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")
