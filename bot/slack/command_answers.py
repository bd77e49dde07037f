"""What an `/orders` command found (bot/flows/command_results.py), drawn as a Slack message with the builders of
bot/slack/command_blocks.py. Pure: no I/O."""

from __future__ import annotations

from bot.domain.commands import ALIASES, EXAMPLES, USAGE
from bot.domain.mrkdwn import escape_mrkdwn
from bot.flows.command_results import (
    ActionDone,
    DigestPosted,
    DigestRefused,
    Drawn,
    HelpAsked,
    LogPage,
    NameOneOrder,
    NeedsChannel,
    OrderCard,
    Result,
    ScanDone,
    SettingChanged,
    SettingNotSaved,
    SettingRefused,
    SettingsShown,
    ShopifyUnavailable,
    StuckPage,
    UnknownOrder,
    UnknownSetting,
)
from bot.slack import command_blocks as views


def draw(result: Result, *, shop: str) -> dict:
    """The message payload (`{"text", "blocks"}`) that shows `result`; `shop` is the myshopify domain admin links
    point to."""
    match result:
        case HelpAsked(topic=None):
            return views.help_message(USAGE, EXAMPLES, ALIASES)
        case HelpAsked(topic=topic):
            return views.usage_of(USAGE[topic], EXAMPLES[topic])
        case StuckPage(rows, total, page, command_text, now):
            return views.stuck_page(rows, total=total, page=page, command_text=command_text, shop=shop, now=now)
        case OrderCard(order, verdict, history, now):
            return views.order_card(order, verdict, history, shop=shop, now=now)
        case LogPage(rows, order_name, user):
            about = escape_mrkdwn(order_name) if order_name is not None else f"<@{user}>"
            return views.log_message(rows, about=about)
        case SettingsShown(values, may_change):
            return views.settings_message(values, may_change=may_change)
        case SettingChanged(actor, key, saved, was, next_digest, stuck):
            said = views.setting_changed(actor, key, saved, was, next_digest=next_digest, stuck=stuck)
            return views.text_message(said)
        case SettingRefused(refusal):
            return views.text_message(refusal)
        case UnknownSetting(key, keys):
            return views.text_message(views.unknown_setting(key, keys))
        case SettingNotSaved(reason):
            return views.text_message(views.setting_not_saved(reason))
        case ScanDone(checked, stuck, newly_stuck, missed, held_back):
            return views.scan_message(checked, stuck, newly_stuck, missed, held_back)
        case DigestPosted(channel):
            return views.digest_posted(channel)
        case DigestRefused(error):
            return views.digest_refused(error)
        case NeedsChannel(what):
            return views.needs_channel(what)
        case ActionDone(outcome):
            return views.text_message(outcome.message)
        case NameOneOrder():
            return views.text_message(views.NAME_ONE_ORDER)
        case UnknownOrder(name):
            return views.text_message(views.unknown_order(name))
        case ShopifyUnavailable(error):
            return views.text_message(views.shopify_unavailable(error))
        case Drawn(message):
            return message
    raise TypeError(f"nothing draws {type(result).__name__}")
