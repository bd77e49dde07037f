"""Bolt listeners for the bulk run's buttons: Confirm and Cancel on the preview, Stop on the progress message.

`ack()` first; the value must name a run orderbot stored (a forged or stale one gets a short answer). The preview is
an ephemeral answer to `/orders`, so clicks on it are answered through the click's `response_url` (`respond`):
Confirm and Cancel replace it. Stop is answered to the clicker alone; the progress message itself changes to say so.

A bulk cancel's Confirm (`bulk_form`) opens the run's one form while the click's trigger id is fresh (an admin's
only; anyone else is refused in words, and audited). The form carries the run id and the preview's response_url in
its signed metadata; its choices, and past plan.CONFIRM_BY_TYPING_OVER orders their number typed, are checked before
the ack, so that a mistake, a refusal or a stale preview is told on the form, which stays open. Once it is accepted
the form closes, the run starts with those choices, and the preview is replaced by where to follow it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.bulk import CONFIRM_BY_TYPING_OVER
from bot.flows.bulk import EXPIRED, BulkRuns, Reply
from bot.slack import blocks, forms, modal_blocks
from bot.slack import bulk_blocks as views
from bot.slack.listeners import SlackListeners
from bot.slack.metadata import RunFormContext, TamperedMetadata, pack, unpack_run_form

log = logging.getLogger(__name__)

RUN_ID = re.compile(r"^[0-9]{1,12}$")


class BulkListeners:
    def __init__(self, bulk: BulkRuns, listeners: SlackListeners):
        self.bulk = bulk
        self.listeners = listeners  # keeps references to the work after each ack, and drains it at shutdown

    def register(self, app: AsyncApp) -> None:
        app.action(views.BULK_CONFIRM)(self.on_confirm)
        app.action(views.BULK_CANCEL)(self.on_cancel)
        app.action(views.BULK_STOP)(self.on_stop)
        app.action(views.BULK_FORM)(self.on_form)
        app.view(blocks.BULK_CANCEL_MODAL)(self.on_form_submitted)

    async def on_confirm(self, ack: AsyncAck, body: dict, respond: AsyncRespond) -> None:
        await ack()
        self.listeners.spawn(self._answer(body, respond, self.bulk.confirm))

    async def on_cancel(self, ack: AsyncAck, body: dict, respond: AsyncRespond) -> None:
        await ack()
        self.listeners.spawn(self._answer(body, respond, self.bulk.cancel))

    async def on_stop(self, ack: AsyncAck, body: dict, respond: AsyncRespond) -> None:
        await ack()
        self.listeners.spawn(self._answer(body, respond, self.bulk.stop))

    async def on_form(self, ack: AsyncAck, body: dict, respond: AsyncRespond, client: AsyncWebClient) -> None:
        """A bulk cancel's Confirm: its form, opened at once (the trigger id lasts 3 s), or why not."""
        await ack()
        value = body["actions"][0].get("value") or ""
        answer = await self.bulk.form(int(value), body["user"]["id"]) if RUN_ID.match(value) else Reply(EXPIRED)
        if isinstance(answer, Reply):
            await _reply(respond, answer)
            return
        metadata = pack(RunFormContext(answer["id"], body.get("response_url")), self.listeners.secret)
        view = modal_blocks.bulk_cancel_modal(
            total=answer["total"],
            paid=await self.bulk.paid(answer["id"]),
            confirm_over=CONFIRM_BY_TYPING_OVER,
            private_metadata=metadata,
        )
        try:
            await client.views_open(trigger_id=body["trigger_id"], view=view)
        except SlackApiError as exc:
            log.warning("Slack did not open the bulk cancel form: %s", exc.response.get("error"))
            await _reply(respond, Reply("Slack did not open the form in time; click the button again.", closes=False))

    async def on_form_submitted(self, ack: AsyncAck, body: dict, client: AsyncWebClient) -> None:
        """The form's choices start the run; a mistake, a refusal or a stale run is told on the form instead."""
        values = (body["view"].get("state") or {}).get("values") or {}
        user = body["user"]["id"]
        try:
            context = unpack_run_form(body["view"].get("private_metadata") or "", self.listeners.secret)
        except (TamperedMetadata, ValueError, KeyError, TypeError):
            log.warning("a bulk cancel form came back with metadata orderbot did not write; refused")
            await ack(response_action="errors", errors={blocks.REASON: EXPIRED_FORM})
            await self.bulk.refused_form(user, "the form's metadata was not written by orderbot")
            return
        run = await self.bulk.form(context.run_id, user)  # the refusal of a non-admin is audited there
        if isinstance(run, Reply):
            await ack(response_action="errors", errors={blocks.REASON: run.text})
            return
        form = forms.bulk_cancel_form(values, total=run["total"], confirm_over=CONFIRM_BY_TYPING_OVER)
        if form.errors:
            await ack(response_action="errors", errors=form.errors)
            return
        await ack()
        self.listeners.spawn(self._start(client, context, user, form.inputs))

    async def _start(self, client: AsyncWebClient, context: RunFormContext, user: str, inputs: dict) -> None:
        reply = await self.bulk.confirm(context.run_id, user, inputs)
        answer = views.preview_closed(reply.text) if reply.closes else {"text": reply.text}
        answer |= {"response_type": "ephemeral", "replace_original": reply.closes}
        if context.response_url and await self.listeners.post_to_response_url(client, context.response_url, answer):
            return
        try:  # the preview took no more posts: the words go to the person in the alert channel
            await client.chat_postEphemeral(channel=self.bulk.channel, user=user, text=reply.text)
        except SlackApiError as exc:
            log.warning("could not tell %s how the bulk cancel went: %s", user, exc.response.get("error"))

    async def _answer(self, body: dict, respond: AsyncRespond, step: Callable[[int, str], Awaitable[Reply]]) -> None:
        action = body["actions"][0]
        value = action.get("value") or ""
        user = body["user"]["id"]
        if not RUN_ID.match(value) or not await self.bulk.known(int(value)):
            log.warning("ignored a %s click naming no bulk run orderbot knows", action["action_id"])
            await respond(text=EXPIRED, response_type="ephemeral", replace_original=False)
            return
        await _reply(respond, await step(int(value), user))


EXPIRED_FORM = "This form has expired or was changed; type the command again."


async def _reply(respond: AsyncRespond, reply: Reply) -> None:
    if reply.closes:
        await respond(**views.preview_closed(reply.text), replace_original=True)
    else:
        await respond(text=reply.text, response_type="ephemeral", replace_original=False)
