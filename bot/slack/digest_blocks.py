"""The daily digest as a Slack message. Pure: slack_sdk models, checked by `blocks.message_payload` (≤ 50 blocks;
this message has at most eight).

Buttons: "Show all stuck" (`show_stuck`, value `stuck`) while anything is stuck, and the digest's bulk suggestion
(`bulk_suggestion`, value the `/orders` text that does it, which answers with a bulk preview first).
"""

from __future__ import annotations

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement, HeaderBlock, PlainTextObject

from bot.domain.digest import Digest, action_words, plural, reason_title, signed
from bot.domain.durations import format_duration
from bot.domain.mrkdwn import person, safe
from bot.slack.blocks import context, message_payload, section
from bot.slack.command_blocks import BULK_SUGGESTION, SHOW_STUCK

SHOW_STUCK_VALUE = "stuck"


def digest_message(digest: Digest) -> dict:
    """`{"text", "blocks"}` for chat.postMessage."""
    title = f"Daily digest, {digest.day:%A %d %B}"
    blocks: list[Block] = [HeaderBlock(text=PlainTextObject(text=title)), section(_stuck_text(digest))]
    if digest.oldest:
        blocks.append(section("*Stuck longest*\n" + "\n".join(_oldest_lines(digest))))
    blocks.append(section(_team_text(digest)))
    blocks.append(context([_webhooks_text(digest)]))
    buttons = []
    if digest.total_stuck:
        buttons.append(
            ButtonElement(action_id=SHOW_STUCK, text=PlainTextObject(text="Show all stuck"), value=SHOW_STUCK_VALUE)
        )
    if digest.suggestion:
        buttons.append(
            ButtonElement(
                action_id=BULK_SUGGESTION,
                text=PlainTextObject(text=digest.suggestion.label),
                value=digest.suggestion.command,
            )
        )
    if buttons:
        blocks.append(ActionsBlock(elements=buttons))
    return message_payload(f"{title}: {_stuck_headline(digest)}", blocks)


def _stuck_headline(digest: Digest) -> str:
    if not digest.total_stuck:
        return "no stuck orders"
    change = f" ({signed(digest.total_change)} since the last digest)" if digest.total_change is not None else ""
    return f"{plural(digest.total_stuck, 'stuck order')}{change}"


def _stuck_text(digest: Digest) -> str:
    if not digest.stuck:
        return "*No stuck orders.* :tada:"
    lines = [f"*{_stuck_headline(digest).capitalize()}*"]
    for r in digest.stuck:
        change = f" ({signed(r.change)})" if r.change is not None else ""
        lines.append(f"• {r.title}: {r.count:,}{change}")
    return "\n".join(lines)


def _oldest_lines(digest: Digest) -> list[str]:
    lines = []
    for order in digest.oldest:
        url = digest.url(order)
        name = safe(order.name)
        shown = f"<{url}|{name}>" if url else name
        lines.append(f"• *{shown}* · {reason_title(order.reason)} for {format_duration(digest.at - order.since)}")
    return lines


def _team_text(digest: Digest) -> str:
    team = digest.team
    lines = ["*The last 24 hours*"]
    if team.done:
        done = ", ".join(f"{action_words(a)} {n:,}" for a, n in team.by_action)
        people = ", ".join(f"{person(who)} {n:,}" for who, n in team.by_person)
        lines.append(f"• {plural(team.done, 'action')} done: {done}")
        lines.append(f"• By: {people}")
    else:
        lines.append("• No actions done through orderbot.")
    if team.failed or team.refused:
        lines.append(f"• {team.failed:,} failed, {team.refused:,} refused (`/orders log` shows why)")
    resolved = f"• {plural(digest.resolved, 'order')} resolved"
    if digest.median_to_resolve is not None:
        resolved += f", median time to resolve {format_duration(digest.median_to_resolve)}"
    lines.append(resolved)
    return "\n".join(lines)


def _webhooks_text(digest: Digest) -> str:
    hooks = digest.webhooks
    text = (
        f"Webhooks: {plural(hooks.received, 'delivery', 'deliveries')} received, "
        f"{plural(hooks.duplicates, 'duplicate')} dropped."
    )
    if hooks.parked:
        text += f" {hooks.parked_words}"
    if hooks.found_by_reconcile:
        text += (
            f" {plural(hooks.found_by_reconcile, 'stuck order')} found only by reconciliation:"
            " check the app's webhook subscriptions."
        )
    return text
