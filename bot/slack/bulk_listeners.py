"""Bolt listeners for the bulk run's buttons: Confirm and Cancel on the preview, Stop on the progress message.

`ack()` first; the value must name a run orderbot stored (a forged or stale one gets a short answer). The preview is
an ephemeral answer to `/orders`, so clicks on it are answered through the click's `response_url` (`respond`):
Confirm and Cancel replace it. Stop is answered to the clicker alone; the progress message itself changes to say so.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from bot.flows.bulk import EXPIRED, BulkRuns, Reply
from bot.slack import bulk_blocks as views
from bot.slack.listeners import SlackListeners

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

    async def on_confirm(self, ack: AsyncAck, body: dict, respond: AsyncRespond) -> None:
        await ack()
        self.listeners.spawn(self._answer(body, respond, self.bulk.confirm))

    async def on_cancel(self, ack: AsyncAck, body: dict, respond: AsyncRespond) -> None:
        await ack()
        self.listeners.spawn(self._answer(body, respond, self.bulk.cancel))

    async def on_stop(self, ack: AsyncAck, body: dict, respond: AsyncRespond) -> None:
        await ack()
        self.listeners.spawn(self._answer(body, respond, self.bulk.stop))

    async def _answer(self, body: dict, respond: AsyncRespond, step: Callable[[int, str], Awaitable[Reply]]) -> None:
        action = body["actions"][0]
        value = action.get("value") or ""
        user = body["user"]["id"]
        if not RUN_ID.match(value) or not await self.bulk.known(int(value)):
            log.warning("ignored a %s click naming no bulk run orderbot knows", action["action_id"])
            await respond(text=EXPIRED, response_type="ephemeral", replace_original=False)
            return
        reply = await step(int(value), user)
        if reply.closes:
            await respond(**views.preview_closed(reply.text), replace_original=True)
        else:
            await respond(text=reply.text, response_type="ephemeral", replace_original=False)
