"""Block Kit answers to `/orders`: help, the stuck list (paged), an order's card, the audit log, settings, scan.

Pure: no I/O, `now` passed in. Each builder returns a message payload (`{"text", "blocks"}`) through
`blocks.message_payload`, which checks Slack's limits; `draw` (bot/slack/command_answers.py) picks the builder for
what a command found, and the listener adds `response_type`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement, PlainTextObject

from bot.domain.commands import CARD_ACTIONS, LOG_LIMIT, STUCK_PAGE_SIZE
from bot.domain.durations import format_duration
from bot.domain.mrkdwn import escape_mrkdwn, safe
from bot.domain.orders import Order
from bot.domain.rules import REASON_TITLES, Verdict
from bot.slack.alert_blocks import alert_message
from bot.slack.blocks import admin_url, context, message_payload, section, slack_date

STUCK_MORE = "stuck_more"  # the stuck list's "More" button; value: JSON {"text": the command, "page": n}
SHOW_STUCK = "show_stuck"  # the digest's "Show all stuck" button
BULK_SUGGESTION = "bulk_suggestion"  # the digest's bulk suggestion; value: the /orders text that does it

_OUTCOME_WORDS = {
    "done": "done",
    "already": "already done",
    "refused": "refused",
    "busy": "busy",
    "failed": "failed",
    "interrupted": "cut short when orderbot stopped",
    "stopped": "stopped",
}
_ACTION_NAMES = {
    "fulfill": "fulfil",
    "request_fulfillment": "request fulfillment",
    "cancel_request": "cancel request",
    "release_hold": "release hold",
    "notify_customer": "email customer",
    "cancel_order": "cancel order",
}


def text_message(text: str) -> dict:
    """A one-line answer."""
    return message_payload(text, [section(text)])


def help_message(usage: Mapping[str, str], examples: Mapping[str, str], aliases: Mapping[str, str]) -> dict:
    lines = [f"`/orders {usage[name]}` e.g. `/orders {examples[name]}`" for name in usage]
    text = "*What `/orders` can do*\n" + "\n".join(f"• {line}" for line in lines)
    notes = [
        "Orders: `#1001`, `1001`, a Shopify admin link; several: `#1001 #1004` or `#1001-#1020`.",
        "Filters: `stuck`, `stuck:awaiting_tracking`, `older:2d`, `tag:wholesale`, `fulfilled`.",
        "Add `--share` to show the answer to the channel. Actions on several orders show a preview first.",
        "Also: " + ", ".join(f"`{alias}` = `{name}`" for alias, name in aliases.items()),
    ]
    return message_payload("What /orders can do", [section(text), context(notes)])


def stuck_page(
    rows: Sequence[tuple[Order, Mapping[str, Any] | None]],
    *,
    total: int,
    page: int,
    command_text: str,
    shop: str,
    now: datetime,
) -> dict:
    """One page of stuck orders, oldest first, with a "More" button while there are more."""
    if total == 0:
        return text_message("No stuck orders match that. :tada:")
    first = (page - 1) * STUCK_PAGE_SIZE + 1
    last = first + len(rows) - 1
    lines = [_stuck_line(order, verdict, shop, now) for order, verdict in rows]
    heading = f"*{total} stuck order{'s' if total != 1 else ''}*, oldest first"
    blocks: list[Block] = [section(heading + "\n" + "\n".join(lines))]
    hint = (
        f"Showing {first}–{last} of {total}. `/orders show {safe(rows[0][0].name)}` gives an order's buttons; "
        "an action in front of a filter acts on them all after a preview, e.g. `/orders snooze stuck:on_hold 1d`."
    )
    blocks.append(context([hint]))
    if last < total:
        value = json.dumps({"text": command_text, "page": page + 1})
        more = ButtonElement(action_id=STUCK_MORE, text=PlainTextObject(text="More"), value=value)
        blocks.append(ActionsBlock(elements=[more]))
    return message_payload(f"{total} stuck orders", blocks)


def _stuck_line(order: Order, verdict: Mapping[str, Any] | None, shop: str, now: datetime) -> str:
    link = f"<{admin_url(order, shop)}|{safe(order.name)}>"
    if verdict is None or not verdict.get("reason"):
        return f"• *{link}* · not classified yet"
    since = datetime.fromisoformat(verdict["since"])
    critical = " :rotating_light:" if verdict.get("severity") == "critical" else ""
    customer = order.customer and (order.customer.name or order.customer.email)
    who = f" · {safe(customer)}" if customer else ""
    title = REASON_TITLES.get(verdict["reason"], verdict["reason"])
    return f"• *{link}* · {title} for {format_duration(now - since)}{critical}{who}"


def order_card(
    order: Order,
    verdict: Verdict,
    actions: Sequence[Mapping[str, Any]],
    *,
    shop: str,
    now: datetime,
) -> dict:
    """`/orders show`: what the alert would show now (its buttons when it is stuck), the fulfillment orders, and the
    last actions on it."""
    alert = alert_message(order, verdict, shop=shop, now=now)
    blocks: list[dict] = list(alert["blocks"])
    fos = [_fulfillment_order_line(fo) for fo in order.fulfillment_orders or ()]
    if fos:
        blocks.append(section("*Fulfillment orders*\n" + "\n".join(fos[:10])).to_dict())
    if not verdict.stuck:
        blocks.append(context([f"*Verdict:* {escape_mrkdwn(verdict.explanation)}"]).to_dict())
    history = [log_line(row, with_order=False) for row in actions[:CARD_ACTIONS]]
    blocks.append(context(["*Last actions:* " + ("; ".join(history) if history else "none yet")]).to_dict())
    return {"text": alert["text"], "blocks": blocks}


def _fulfillment_order_line(fo) -> str:
    parts = [fo.status.replace("_", " ").lower()]
    if fo.request_status and fo.request_status != "UNSUBMITTED":
        parts.append("request " + fo.request_status.replace("_", " ").lower())
    if fo.holds:
        parts.append("on hold: " + ", ".join(h.reason.replace("_", " ").lower() for h in fo.holds))
    place = fo.service or fo.location or "unknown location"
    return f"• {safe(place)}: {escape_mrkdwn(', '.join(parts))}"


def log_message(rows: Sequence[Mapping[str, Any]], *, about: str) -> dict:
    """The audit log, newest first. `about` is mrkdwn: an order name or a mention."""
    if not rows:
        return text_message(f"Nothing has been done about {about} through orderbot yet.")
    lines = [log_line(row, with_order=True) for row in rows]
    more = f" (the latest {LOG_LIMIT})" if len(rows) >= LOG_LIMIT else ""
    return message_payload(
        f"What was done about {about}", [section(f"*What was done about {about}*{more}\n" + "\n".join(lines))]
    )


def log_line(row: Mapping[str, Any], *, with_order: bool) -> str:
    at = slack_date(datetime.fromisoformat(row["at"]))
    action = _ACTION_NAMES.get(row["action"], row["action"].replace("_", " "))
    order = f" {safe(row['order_name'] or row['order_id'] or '')}" if with_order and row.get("order_id") else ""
    outcome = _OUTCOME_WORDS.get(row["outcome"], row["outcome"])
    error = f" ({safe(row['error'], 120)})" if row.get("error") and row["outcome"] != "done" else ""
    return f"{at} <@{row['actor']}> {escape_mrkdwn(action)}{order}: {outcome}{error}"


def settings_message(values: Mapping[str, str], *, may_change: bool) -> dict:
    """Every setting with its value; how to change one."""
    lines = []
    for key, value in values.items():
        reason = key.removeprefix("threshold.")
        label = f"{REASON_TITLES[reason]} after" if reason in REASON_TITLES else key.replace("_", " ")
        lines.append(f"• `{key}` = `{escape_mrkdwn(value)}` ({label})")
    how = (
        "Change one with `/orders settings set <key> <value>`, "
        "e.g. `/orders settings set threshold.awaiting_tracking 48h`."
        if may_change
        else "Only orderbot admins can change these."
    )
    return message_payload("orderbot settings", [section("*orderbot settings*\n" + "\n".join(lines)), context([how])])


def scan_message(
    seen: int, stuck: Sequence[str], newly_stuck: Sequence[str], missed: Sequence[str], held_back: Sequence[str] = ()
) -> dict:
    """After `/orders scan`: what Shopify said, and what changed. `held_back`: newly stuck orders whose alert waits
    (a scan posts the most urgent `alert_burst` only)."""
    parts = [f"Checked {seen} open order{'s' if seen != 1 else ''} in Shopify: {len(stuck)} stuck."]
    if held_back:
        alerted = len(newly_stuck) - len(held_back)
        posted = f"alerts are on the way for the {alerted} most urgent, " if alerted else ""
        parts.append(
            f"Newly stuck: {_names(newly_stuck)}; {posted}{len(held_back)} wait for the next scans "
            "(one scan posts a few at a time). `/orders stuck` lists them all."
        )
    elif newly_stuck:
        parts.append(f"Newly stuck: {_names(newly_stuck)}; their alerts are on the way.")
    if missed:
        parts.append(f"No webhook had told orderbot about {_names(missed)}.")
    if not newly_stuck and not missed:
        parts.append("Nothing new since the last check.")
    return text_message(" ".join(parts))


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(safe(n) for n in names[:10])
    return shown + (f" and {len(names) - 10} more" if len(names) > 10 else "")


# --- one-line answers ------------------------------------------------------------------------------------------------

WENT_WRONG = "Something went wrong on orderbot's side, so nothing was shown. It is in orderbot's log; try again."
LIST_EXPIRED = "That list has expired; type the command again."
NAME_ONE_ORDER = "Name one order, e.g. `#1001`."


def parse_error(message: str, usage: str) -> str:
    """Text `/orders` could not understand: why (already escaped by the parser), and the closest usage."""
    return f"{message}\nUsage: `/orders {usage}` · `/orders help` lists every command."


def usage_of(usage: str, example: str) -> dict:
    return text_message(f"`/orders {usage}` e.g. `/orders {example}`")


def unknown_order(name: str) -> str:
    return f"Neither orderbot nor Shopify knows {name}. Check the order number."


def shopify_unavailable(error: str) -> str:
    return f"Shopify did not answer, so nothing changed: {error}"


_NEEDING_A_CHANNEL = {"digest": "The digest", "bulk": "Bulk actions"}


def needs_channel(what: str) -> dict:
    """`what`: "digest" or "bulk"."""
    return text_message(f"{_NEEDING_A_CHANNEL[what]} need SLACK_CHANNEL_ID; set it and restart orderbot.")


def unknown_setting(key: str, keys: Sequence[str]) -> str:
    return f"`{escape_mrkdwn(key)}` is not a setting. Use one of: " + ", ".join(f"`{k}`" for k in keys)


def setting_not_saved(error: str) -> str:
    return f"That value was not saved: {escape_mrkdwn(error)}."


def setting_changed(
    actor: str, key: str, saved: str, was: str, *, next_digest: str | None = None, stuck: tuple[int, int] = (0, 0)
) -> str:
    """After `settings set`: who changed what, and its effect (when the next digest comes, or how many orders are
    stuck now and were before)."""
    said = f"<@{actor}> set `{key}` to `{escape_mrkdwn(saved)}` (was `{escape_mrkdwn(was)}`)."
    if next_digest is not None:
        return f"{said} The next digest comes at {next_digest}."
    now, before = stuck
    return f"{said} {now} order{'s are' if now != 1 else ' is'} stuck now (was {before})."


def digest_posted(channel: str) -> dict:
    return text_message(f"Posted today's digest in <#{channel}>.")


def digest_refused(error: str) -> dict:
    return text_message(f"Slack refused the digest ({error}); try again.")
