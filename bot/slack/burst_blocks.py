"""A scan's summary, when it found more stuck orders than it alerts at once (bot/domain/burst.py): how many wait, by
reason, and a "Show all stuck" button (`show_stuck`, answered with `/orders stuck`'s list). Pure."""

from __future__ import annotations

from slack_sdk.models.blocks import ActionsBlock, ButtonElement, PlainTextObject

from bot.domain.burst import BurstSummary
from bot.domain.digest import plural, reason_title
from bot.domain.rules import ALERT_BURST_SETTING
from bot.slack.blocks import context, message_payload, section
from bot.slack.command_blocks import SHOW_STUCK
from bot.slack.digest_blocks import SHOW_STUCK_VALUE


def burst_summary_message(summary: BurstSummary) -> dict:
    """`{"text", "blocks"}` for chat.postMessage."""
    more = plural(summary.held_back, "more stuck order")
    headline = f"{more} without an alert yet"
    lines = [f"*{headline}*", f"This scan alerted the {summary.alerted:,} most urgent (above). The others, by reason:"]
    lines += [f"• {reason_title(reason)}: {count:,}" for reason, count in summary.by_reason]
    how = (
        f"Each scan alerts the next {summary.alert_burst:,} most urgent; `/orders stuck` lists them all now. "
        f"To change how many: `/orders settings set {ALERT_BURST_SETTING} 50`."
    )
    button = ButtonElement(action_id=SHOW_STUCK, text=PlainTextObject(text="Show all stuck"), value=SHOW_STUCK_VALUE)
    blocks = [section("\n".join(lines)), context([how]), ActionsBlock(elements=[button])]
    return message_payload(f"{headline}: /orders stuck lists them", blocks)
