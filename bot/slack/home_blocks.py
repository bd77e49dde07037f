"""The App Home board (a `home` view for views.publish) and the modal that changes one setting from it.

Pure: no I/O; the board (bot/domain/home.py) carries its own `now`. The orders' buttons are the alert's
(alert_blocks.action_buttons): the same action ids, labels and confirm dialogs, answered by the same listeners.
"""

from __future__ import annotations

from slack_sdk.models.blocks import (
    Block,
    ButtonElement,
    DividerBlock,
    HeaderBlock,
    InputBlock,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.domain.durations import format_duration
from bot.domain.home import Board, Health, ReasonTrend, UrgentOrder
from bot.domain.mrkdwn import escape_mrkdwn, safe
from bot.domain.rules import REASON_TITLES
from bot.slack.alert_blocks import action_buttons
from bot.slack.blocks import MODAL_BLOCK_LIMIT, admin_url, context, modal_view, section, slack_date
from bot.slack.command_blocks import log_line

HOME_SETTING = "home_setting"  # a setting's "Change" button on the Home tab; value: the setting's key
HOME_SETTING_MODAL = "home_setting_modal"  # its modal; private_metadata: the key
SETTING_VALUE = "setting_value"  # the modal's one input (block_id and action_id)
_SEVERITY_MARKERS = {"warning": ":warning:", "critical": ":rotating_light:"}


def home_view(board: Board, *, shop: str) -> dict:
    """The viewer's board as a `home` view."""
    blocks: list[Block] = []
    if board.notice:
        blocks += [section(f":speech_balloon: {board.notice}"), DividerBlock()]
    blocks += [_header("Stuck orders"), section(_counts(board.trends))]
    blocks.append(_header("Most urgent"))
    if not board.urgent:
        blocks.append(section("No order is stuck."))
    for urgent in board.urgent:
        blocks.append(section(_urgent_line(urgent, board, shop)))
        if urgent.actions:
            blocks.append(action_buttons(urgent.order, urgent.actions))
    if board.more:
        blocks.append(context([f"{board.more} more: `/orders stuck`"]))
    blocks += [_header("Your last actions"), section(_my_actions(board))]
    blocks += [_header("Webhooks and scans"), section(_health(board.health))]
    if board.settings is not None:
        blocks.append(_header("Settings"))
        blocks += [_setting(key, value) for key, value in board.settings.items()]
    if len(blocks) > MODAL_BLOCK_LIMIT:  # a Home view holds 100 blocks, as a modal does
        raise ValueError(f"The Home view has {len(blocks)} blocks; Slack allows at most {MODAL_BLOCK_LIMIT}")
    return View(type="home", blocks=blocks).to_dict()


def setting_modal(key: str, value: str) -> dict:
    """One setting's new value; submitted, it is saved as `/orders settings set key value` saves it."""
    field = InputBlock(
        block_id=SETTING_VALUE,
        label=PlainTextObject(text="New value"),
        element=PlainTextInputElement(action_id=SETTING_VALUE, initial_value=value),
    )
    return modal_view(
        callback_id=HOME_SETTING_MODAL,
        title="Change a setting",
        submit="Save",
        close="Cancel",
        blocks=[section(f"*{_setting_label(key)}* (`{escape_mrkdwn(key)}`) is now `{escape_mrkdwn(value)}`."), field],
        private_metadata=key,
    )


def _header(text: str) -> HeaderBlock:
    return HeaderBlock(text=PlainTextObject(text=text))


def _counts(trends: list[ReasonTrend]) -> str:
    if not trends:
        return "Nothing is stuck. :tada:"
    return "\n".join(f"*{REASON_TITLES.get(t.reason, t.reason)}*: {t.now}{_change(t)}" for t in trends)


def _change(trend: ReasonTrend) -> str:
    if trend.change is None:
        return ""
    if trend.change == 0:
        return " (same as yesterday)"
    arrow = ":arrow_up:" if trend.change > 0 else ":arrow_down:"
    return f" ({arrow} {abs(trend.change)} since yesterday)"


def _urgent_line(urgent: UrgentOrder, board: Board, shop: str) -> str:
    order = urgent.order
    marker = _SEVERITY_MARKERS.get(urgent.severity, ":warning:")
    critical = " (critical)" if urgent.severity == "critical" else ""
    title = REASON_TITLES.get(urgent.reason, urgent.reason)
    lasted = format_duration(board.now - urgent.since)
    return f"{marker} *<{admin_url(order, shop)}|{safe(order.name)}>* · {title} for {lasted}{critical}"


def _my_actions(board: Board) -> str:
    if not board.my_actions:
        return "You have not acted on an order yet. The buttons above and `/orders` do."
    return "\n".join(log_line(row, with_order=True) for row in board.my_actions)


def _health(health: Health) -> str:
    delivered = slack_date(health.last_delivery) if health.last_delivery else "none yet"
    scanned = slack_date(health.last_scan) if health.last_scan else "none yet"
    if health.last_scan_error:
        scanned += f" (failed: {safe(health.last_scan_error, 200)})"
    lines = [f"*Last webhook:* {delivered}", f"*Last scan:* {scanned}"]
    if health.pending:
        lines.append(f"*Waiting to be processed:* {health.pending}")
    parked = f"*Parked deliveries:* {health.parked}"
    if health.parked:
        parked += " (failed for good; the server's log says why, and docs/operations.md says how to re-queue them)"
    return "\n".join([*lines, parked])


def _setting_label(key: str) -> str:
    reason = key.removeprefix("threshold.")
    return f"{REASON_TITLES[reason]} after" if reason in REASON_TITLES else key.replace("_", " ").capitalize()


def _setting(key: str, value: str) -> SectionBlock:
    return SectionBlock(
        text={"type": "mrkdwn", "text": f"*{_setting_label(key)}*: `{escape_mrkdwn(value)}`"},
        accessory=ButtonElement(action_id=HOME_SETTING, text=PlainTextObject(text="Change"), value=key),
    )
