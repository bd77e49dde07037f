"""What an `/orders` command found, as plain data: `SlashCommands` returns one of these and the Slack side draws it
(`draw`, bot/slack/command_answers.py). No words and no layout here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.domain.orders import Order
from bot.domain.rules import Verdict
from bot.flows.actions import Outcome


@dataclass(frozen=True, slots=True)
class HelpAsked:
    topic: str | None  # a command's name: its usage alone; None: every command


@dataclass(frozen=True, slots=True)
class StuckPage:
    rows: Sequence[tuple[Order, Mapping[str, Any] | None]]  # the page's orders, oldest first, with their verdicts
    total: int  # orders matching, on every page
    page: int  # from 1
    command_text: str  # the command as typed: the "More" button repeats it
    now: datetime


@dataclass(frozen=True, slots=True)
class OrderCard:
    order: Order
    verdict: Verdict  # as classified now
    history: Sequence[Mapping[str, Any]]  # the last actions on it, newest first
    now: datetime


@dataclass(frozen=True, slots=True)
class LogPage:
    """The audit rows, newest first, about one order or what one person did."""

    rows: Sequence[Mapping[str, Any]]
    order_name: str | None = None
    user: str | None = None  # a Slack user id


@dataclass(frozen=True, slots=True)
class SettingsShown:
    values: Mapping[str, str]
    may_change: bool  # the person asking may change them


@dataclass(frozen=True, slots=True)
class SettingChanged:
    actor: str
    key: str
    saved: str
    was: str
    next_digest: str | None = None  # when the digest's time changed: "08:30 Europe/Paris"
    stuck: tuple[int, int] = (0, 0)  # otherwise: orders stuck now, and before


@dataclass(frozen=True, slots=True)
class SettingRefused:
    refusal: str  # what the permissions tell someone who may not change settings


@dataclass(frozen=True, slots=True)
class UnknownSetting:
    key: str
    keys: Sequence[str]  # the settings there are


@dataclass(frozen=True, slots=True)
class SettingNotSaved:
    reason: str  # why the value was refused


@dataclass(frozen=True, slots=True)
class ScanDone:
    checked: int  # open orders read from Shopify
    stuck: Sequence[str]  # names
    newly_stuck: Sequence[str]
    missed: Sequence[str]  # stuck orders no webhook told orderbot about
    held_back: Sequence[str] = ()  # newly stuck orders whose alert waits: the scan posted the most urgent only


@dataclass(frozen=True, slots=True)
class DigestPosted:
    channel: str


@dataclass(frozen=True, slots=True)
class DigestRefused:
    error: str  # Slack's error code


@dataclass(frozen=True, slots=True)
class NeedsChannel:
    """SLACK_CHANNEL_ID is not set, and `what` needs it."""

    what: str  # "digest" or "bulk"


@dataclass(frozen=True, slots=True)
class ActionDone:
    """An action on one order ran (or was refused, busy, failed): its outcome."""

    outcome: Outcome


@dataclass(frozen=True, slots=True)
class NameOneOrder:
    """The command needs exactly one order and did not name one."""


@dataclass(frozen=True, slots=True)
class UnknownOrder:
    name: str  # as the command named it: "#1001", or "that order" for an id


@dataclass(frozen=True, slots=True)
class ShopifyUnavailable:
    error: str


@dataclass(frozen=True, slots=True)
class Drawn:
    """A Slack message another flow drew (the digest's preview, a bulk action's preview), passed through as it is
    until those flows return data too."""

    message: dict


Result = (
    HelpAsked
    | StuckPage
    | OrderCard
    | LogPage
    | SettingsShown
    | SettingChanged
    | SettingRefused
    | UnknownSetting
    | SettingNotSaved
    | ScanDone
    | DigestPosted
    | DigestRefused
    | NeedsChannel
    | ActionDone
    | NameOneOrder
    | UnknownOrder
    | ShopifyUnavailable
    | Drawn
)
