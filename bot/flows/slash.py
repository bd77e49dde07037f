"""What `/orders` does once its text is parsed: find the orders, run the action through `Actions` (the buttons'
path: permission, lock, re-read, mutation, audit), or answer with a list, a card, the log, the settings, a scan or
the digest. Returns what it found as data (bot/flows/command_results.py); the Slack side draws it and sends it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.domain.commands import CARD_ACTIONS, LOG_LIMIT, STUCK_PAGE_SIZE, USAGE, Command, Selection
from bot.domain.durations import parse_time_of_day
from bot.domain.orders import Order
from bot.domain.rules import Policy, classify
from bot.flows.actions import ActionRequest, Actions
from bot.flows.bulk import BulkRuns
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
from bot.flows.digests import DIGEST_TIME_SETTING, Digests
from bot.shopify.client import ShopifyError
from bot.store.lookup import audit_log, order_id_named

log = logging.getLogger(__name__)

STUCK = Selection(stuck=True)  # every stuck order: `/orders stuck` alone
FORM_ACTIONS = frozenset({"notify_customer", "cancel_order"})  # always through their modal (choices to make)


@dataclass(frozen=True, slots=True)
class Answer:
    result: Result  # what the command found
    share: bool = False  # in the channel, for everyone; else only to the person


@dataclass(frozen=True, slots=True)
class OpenForm:
    """The action needs its modal (fulfil without tracking, notify, cancel): the listener opens it."""

    request: ActionRequest


class NotFound(Exception):
    """The command names no single order, or one neither known nor in Shopify: `result` says which."""

    def __init__(self, result: NameOneOrder | UnknownOrder):
        super().__init__(result)
        self.result = result


class SlashCommands:
    def __init__(self, actions: Actions, *, bulk: BulkRuns | None = None, digests: Digests | None = None):
        self.actions = actions
        self.service = actions.service
        self.store = actions.store
        self.permissions = actions.permissions
        self.bulk = bulk
        self.digests = digests

    async def run(self, command: Command, actor: str, channel: str | None, text: str) -> Answer | OpenForm:
        """`text`: the command as typed (the stuck list's "More" button repeats it)."""
        try:
            if command.action is not None:
                return await self._act(command, actor, channel, text)
            if command.name == "stuck":
                return await self._stuck(command, text)
            handler = getattr(self, f"_{command.name}")
            return await handler(command, actor)
        except NotFound as exc:
            return Answer(exc.result)
        except ShopifyError as exc:
            return Answer(ShopifyUnavailable(str(exc)))

    # --- information ----------------------------------------------------------------------------------------

    async def _help(self, command: Command, actor: str) -> Answer:
        topic = command.args.get("topic")
        return Answer(HelpAsked(topic if topic in USAGE else None), command.share)

    async def _stuck(self, command: Command, text: str) -> Answer:
        selection = command.selection or STUCK
        page = max(int(command.args.get("page", "1")), 1)
        now = self.service.now()
        total, rows = await self.store.page_of_orders(
            selection, now, limit=STUCK_PAGE_SIZE, offset=(page - 1) * STUCK_PAGE_SIZE
        )
        return Answer(StuckPage(rows, total, page, text, now), command.share)

    async def _show(self, command: Command, actor: str) -> Answer:
        order = await self.one_order(command.selection)
        return Answer(await self._card_of(order), command.share)

    async def card(self, order_id: str) -> OrderCard | None:
        """The order's card as `/orders show` gives it, from the order as stored now (a click on a card re-draws it
        after the action); None when orderbot no longer has the order (deleted, or forgotten)."""
        order = await self.store.get_order(order_id)
        return None if order is None else await self._card_of(order)

    async def _card_of(self, order: Order) -> OrderCard:
        policy, snoozes = await self.service.policy()
        now = self.service.now()
        verdict = classify(order, now, policy, snoozes.get(order.id), self.service.cancelling.get(order.id))
        history = await self.store.read(partial(audit_log, order_id=order.id, limit=CARD_ACTIONS))
        return OrderCard(order, verdict, history, now)

    async def _log(self, command: Command, actor: str) -> Answer:
        if command.selection is not None:
            order = await self.one_order(command.selection)
            rows = await self.store.read(partial(audit_log, order_id=order.id, limit=LOG_LIMIT))
            return Answer(LogPage(rows, order_name=order.name), command.share)
        user = command.args["user"]
        rows = await self.store.read(partial(audit_log, actor=user, limit=LOG_LIMIT))
        return Answer(LogPage(rows, user=user), command.share)

    async def _settings(self, command: Command, actor: str) -> Answer:
        if "key" in command.args:
            return Answer(await self._change_setting(command, actor))
        values = await self.setting_values()
        may_change = await self.permissions.may(actor, "settings")
        return Answer(SettingsShown(values, may_change), command.share)

    async def setting_values(self) -> dict[str, str]:
        """Every setting `/orders settings` shows and changes, as text (the Home tab shows them to admins too)."""
        values = Policy.from_settings(await self.store.settings()).to_settings()
        if self.digests is not None:
            values[DIGEST_TIME_SETTING] = f"{self.digests.digest_time:%H:%M}"
        return values

    async def _change_setting(
        self, command: Command, actor: str
    ) -> SettingChanged | SettingRefused | UnknownSetting | SettingNotSaved:
        key, value = command.args["key"], command.args["value"].strip()
        if not await self.permissions.may(actor, "settings"):
            await self._audit(actor, "settings", {"key": key, "value": value}, "refused")
            return SettingRefused(self.permissions.refusal("settings"))
        stored = await self.store.settings()
        before = await self.setting_values()
        if key not in before:
            return UnknownSetting(key, list(before))
        try:
            if key == DIGEST_TIME_SETTING:
                at = parse_time_of_day(value)
                saved = f"{at:%H:%M}"
            else:
                saved = Policy.from_settings({**stored, key: value}).to_settings()[key]
        except ValueError as exc:
            return SettingNotSaved(str(exc))
        await self.store.set_setting(key, saved, by=actor)
        await self._audit(actor, "settings", {"key": key, "value": saved, "was": before[key]}, "done")
        if key == DIGEST_TIME_SETTING:
            self.digests.change_time(at)
            return SettingChanged(actor, key, saved, before[key], next_digest=f"{saved} {self.digests.zone}")
        stuck_before = await self.store.count_orders(STUCK, self.service.now())
        self.service.forget_policy()
        await self.service.classify_and_save(await self.store.open_orders(), found_by="settings")
        stuck_after = await self.store.count_orders(STUCK, self.service.now())
        return SettingChanged(actor, key, saved, before[key], stuck=(stuck_after, stuck_before))

    async def _scan(self, command: Command, actor: str) -> Answer:
        report = await self.service.reconcile()
        stuck = [order.name for order, _ in report.stuck]
        found = ScanDone(len(report.classified), stuck, report.newly_stuck, report.missed_by_webhooks, report.held_back)
        return Answer(found, command.share)

    async def _digest(self, command: Command, actor: str) -> Answer:
        if self.digests is None or self.digests.channel is None:
            return Answer(NeedsChannel("digest"))
        if not command.args.get("post"):
            return Answer(Drawn(self.digests.message(await self.digests.build())), command.share)
        try:
            await self.digests.post_now()
        except SlackApiError as exc:
            log.warning("could not post the digest for %s: %s", actor, exc.response.get("error"))
            return Answer(DigestRefused(exc.response.get("error")))
        return Answer(DigestPosted(self.digests.channel))

    # --- actions --------------------------------------------------------------------------------------------

    async def _act(self, command: Command, actor: str, channel: str | None, text: str) -> Answer | OpenForm:
        if command.bulk:
            if self.bulk is None:
                return Answer(NeedsChannel("bulk"))
            return Answer(Drawn(await self.bulk.preview(command, actor, channel, text)))
        order = await self.one_order(command.selection)
        inputs: dict[str, Any] = dict(command.args)
        request = ActionRequest(command.action, order.id, actor, inputs, channel, None)
        needs_form = command.action in FORM_ACTIONS or (command.action == "fulfill" and "tracking_number" not in inputs)
        if needs_form and not await self.actions.refused_before_form(request):
            return OpenForm(request)  # else run at once: refused with the reason, in the command's answer
        outcome = await self.actions.run(request)
        return Answer(ActionDone(outcome))

    async def one_order(self, selection: Selection | None) -> Order:
        """The one order a command names: as stored, or found in Shopify (an order orderbot has not seen yet, such as
        an archived one to unarchive), then stored and classified."""
        if selection is None or selection.named != 1:
            raise NotFound(NameOneOrder())
        if selection.ids:
            order_id, name = selection.ids[0], "that order"
        else:
            name = f"#{selection.numbers[0]}"
            order_id = await self.store.read(partial(order_id_named, name=name))
        order = await self.store.get_order(order_id) if order_id else None
        if order is not None:
            return order
        found = await self._from_shopify(order_id, name)
        if found is None:
            raise NotFound(UnknownOrder(name))
        await self.store.save_orders([found], from_webhook=False)
        await self.service.classify_and_save([found], found_by="command")
        return found

    async def _from_shopify(self, order_id: str | None, name: str) -> Order | None:
        shopify = self.service.shopify
        if shopify is None:
            return None
        if order_id is not None:
            return await shopify.fetch_order(order_id)
        return await shopify.order_named(name)

    async def _audit(self, actor: str, action: str, inputs: dict[str, Any], outcome: str) -> None:
        await self.store.add_audit(actor=actor, action=action, order_id=None, inputs=inputs, outcome=outcome)
