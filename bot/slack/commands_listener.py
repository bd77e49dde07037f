"""Bolt listeners for `/orders` and the buttons on its answers: parse, `ack()` at once, then answer through the
request's `response_url` (ephemeral unless `--share`), drawn from what the command found (`draw`), or open the
action's modal while the trigger id is fresh.

Text that does not parse is answered in the ack itself, with the closest valid usage.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.commands import CommandError, parse
from bot.flows.slash import OpenForm, SlashCommands
from bot.slack import command_blocks as views
from bot.slack.command_answers import draw
from bot.slack.listeners import SlackListeners

log = logging.getLogger(__name__)

COMMAND = "/orders"


class CommandListener:
    def __init__(self, slash: SlashCommands, listeners: SlackListeners, *, shop: str):
        self.slash = slash
        self.listeners = listeners
        self.shop = shop  # the myshopify domain admin links point to
        listeners.card_of = self.card_of

    async def card_of(self, order_id: str) -> dict | None:
        """The order's `/orders show` card as it stands now, drawn; None when orderbot no longer has the order."""
        card = await self.slash.card(order_id)
        return None if card is None else draw(card, shop=self.shop)

    def register(self, app: AsyncApp) -> None:
        app.command(COMMAND)(self.on_command)
        app.action(views.STUCK_MORE)(self.on_more)
        app.action(views.SHOW_STUCK)(self.on_show_stuck)
        app.action(views.BULK_SUGGESTION)(self.on_bulk_suggestion)

    async def on_command(self, ack: AsyncAck, body: dict, respond: AsyncRespond, client: AsyncWebClient) -> None:
        text = body.get("text") or ""
        try:
            command = parse(text)
        except CommandError as exc:
            await ack(response_type="ephemeral", text=views.parse_error(exc.message, exc.usage))
            return
        await ack()
        log.info("/orders %s by %s", command.name, body.get("user_id"))
        self.listeners.spawn(self._answer(command, text, body, respond, client))

    async def on_more(self, ack: AsyncAck, body: dict, respond: AsyncRespond, client: AsyncWebClient) -> None:
        """The stuck list's next page, in place of the page shown."""
        await ack()
        try:
            value = json.loads(body["actions"][0].get("value") or "")
            command = parse(str(value["text"]))
            command = replace(command, args={**command.args, "page": str(int(value["page"]))})
        except (ValueError, KeyError, TypeError):  # CommandError is a ValueError
            await respond(text=views.LIST_EXPIRED, replace_original=False)
            return
        self.listeners.spawn(self._answer(command, str(value["text"]), body, respond, client, in_place=True))

    async def on_show_stuck(self, ack: AsyncAck, body: dict, respond: AsyncRespond, client: AsyncWebClient) -> None:
        await ack()
        self.listeners.spawn(self._answer(parse("stuck"), "stuck", body, respond, client))

    async def on_bulk_suggestion(
        self, ack: AsyncAck, body: dict, respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        """The digest's suggestion: its value is the `/orders` text that does it; the answer is that preview."""
        await ack()
        text = body["actions"][0].get("value") or ""
        try:
            command = parse(text)
        except CommandError as exc:
            await respond(
                text=views.parse_error(exc.message, exc.usage), response_type="ephemeral", replace_original=False
            )
            return
        self.listeners.spawn(self._answer(command, text, body, respond, client))

    async def _answer(
        self,
        command,
        text: str,
        body: dict,
        respond: AsyncRespond,
        client: AsyncWebClient,
        *,
        in_place: bool = False,
    ) -> None:
        actor = body.get("user_id") or body["user"]["id"]
        channel = body.get("channel_id") or (body.get("channel") or {}).get("id")
        answer = await self._run(command, actor, channel, text)
        if isinstance(answer, OpenForm):
            await self.listeners.open_form(client, body["trigger_id"], answer.request)
            return
        message, share = answer
        response_type = "in_channel" if share else "ephemeral"
        await respond(**{**message, "response_type": response_type, "replace_original": in_place})

    async def _run(self, command, actor: str, channel: str | None, text: str) -> OpenForm | tuple[dict, bool]:
        """The form the command needs, or its answer drawn and whether it is for the channel."""
        try:
            answer = await self.slash.run(command, actor, channel, text)
            if isinstance(answer, OpenForm):
                return answer
            return draw(answer.result, shop=self.shop), answer.share
        except Exception:  # the task's boundary: the person hears of it, the log has the rest
            log.exception("/orders %s failed", command.name)
            return views.text_message(views.WENT_WRONG), False
