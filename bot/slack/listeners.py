"""Bolt listeners for the alert's buttons and the four modals: `ack()` first, then the work in a tracked task.

Slack needs the ack within 3 s and a `trigger_id` is only good for 3 s, so modals open right after the ack; the
action itself (a Shopify mutation, an email) runs after, and its answer reaches the person as an ephemeral message.
The Move form lists locations read from Shopify, which may take longer than a trigger_id lasts: it opens at once
saying it is asking Shopify, and is filled in (views.update) once Shopify has answered.
One `@app.error` handler logs what escaped, without the request body.

A click on the Home tab (a block_actions payload whose container is the `home` view) names no channel, and Slack has
no ephemeral message outside a channel: its answer goes to `home_answer` (bot/slack/home.py), which puts it at the top
of the person's Home and publishes it again.

A click on an `/orders show` card (an ephemeral message, in whatever channel the command was typed: the container
says `is_ephemeral`) is answered through the click's `response_url`, the only way to reach that message: the outcome
in words, then the card re-drawn from the order as it stands (`card_of`, bot/slack/commands_listener.py) in place of
the one clicked. Slack takes 5 posts to a response_url within 30 minutes; past that (a form left open, a long wait
for the database) the words go by chat.postEphemeral instead and the card stays as it was.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.notices import customer_notice
from bot.flows.actions import ActionRequest, Actions, MoveChoices
from bot.slack import blocks, forms, modal_blocks
from bot.slack.metadata import ModalContext, TamperedMetadata, claimed_order_id, pack, unpack
from bot.slack.proxies import webhook_client

log = logging.getLogger(__name__)

ORDER_ID = re.compile(r"^gid://shopify/Order/[0-9]{1,20}$")
BUTTONS = re.compile(
    r"^(request_fulfillment|cancel_request|release_hold|archive|unarchive|capture_payment|mark_as_paid|delete)$"
)
FORMS = {"fulfill": modal_blocks.fulfill_modal, "cancel_order": modal_blocks.cancel_order_modal}
EXPIRED = "This form has expired or was changed; open it again from the alert."
STALE_BUTTON = "That button names no order orderbot knows; use the buttons on the order's latest alert."
DATABASE_BUSY = (
    "orderbot's database is busy ({error}), so orderbot could not finish this. Check the order's alert, then try "
    "again in a minute."
)
WENT_WRONG = (
    "Something went wrong inside orderbot, so it could not finish this; it is in orderbot's log. Check the order's "
    "alert, then try again."
)


class SlackListeners:
    def __init__(self, actions: Actions, *, signing_secret: str):
        self.actions = actions
        self.store = actions.store
        self.secret = signing_secret
        self._tasks: set[asyncio.Task] = set()
        # (person, text): how a click that names no channel (the Home tab) is answered; None: it is not
        self.home_answer: Callable[[str, str], Awaitable[None]] | None = None
        # order id -> its `/orders show` card drawn as it stands now (None: orderbot no longer has the order)
        self.card_of: Callable[[str], Awaitable[dict | None]] | None = None

    def register(self, app: AsyncApp) -> None:
        app.action(BUTTONS)(self.on_button)
        app.action(blocks.FULFILL)(self.on_fulfill)
        app.action(blocks.NOTIFY_CUSTOMER)(self.on_notify)
        app.action(blocks.CANCEL_ORDER)(self.on_cancel_order)
        app.action(blocks.SNOOZE)(self.on_snooze)
        app.action(blocks.MOVE)(self.on_move)
        app.view(blocks.FULFILL_MODAL)(self.on_fulfill_submitted)
        app.view(blocks.NOTIFY_MODAL)(self.on_notify_submitted)
        app.view(blocks.CANCEL_ORDER_MODAL)(self.on_cancel_order_submitted)
        app.view(blocks.MOVE_MODAL)(self.on_move_submitted)
        app.error(self.on_error)

    # --- background work that must finish (Bolt does not keep references to listener tasks) ---------------------

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """At shutdown: let running actions finish (their audit rows and replies with them)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- buttons --------------------------------------------------------------------------------------------

    async def on_button(self, ack: AsyncAck, body: dict, client: AsyncWebClient) -> None:
        await ack()
        request = await self._request(client, body, body["actions"][0]["action_id"], body["actions"][0].get("value"))
        if request is not None:
            self.spawn(self._run(client, request, _card_url(body)))

    async def on_snooze(self, ack: AsyncAck, body: dict, client: AsyncWebClient) -> None:
        await ack()
        chosen = (body["actions"][0].get("selected_option") or {}).get("value") or ""
        order_id, _, span = chosen.partition("|")
        request = await self._request(client, body, "snooze", order_id, {"for": span})
        if request is not None:
            self.spawn(self._run(client, request, _card_url(body)))

    async def on_fulfill(self, ack: AsyncAck, body: dict, client: AsyncWebClient) -> None:
        await ack()
        await self._form_for_click(client, body, "fulfill")

    async def on_notify(self, ack: AsyncAck, body: dict, client: AsyncWebClient) -> None:
        await ack()
        await self._form_for_click(client, body, "notify_customer")

    async def on_cancel_order(self, ack: AsyncAck, body: dict, client: AsyncWebClient) -> None:
        await ack()
        await self._form_for_click(client, body, "cancel_order")

    async def on_move(self, ack: AsyncAck, body: dict, client: AsyncWebClient) -> None:
        await ack()
        await self._form_for_click(client, body, "move")

    async def _form_for_click(self, client: AsyncWebClient, body: dict, action: str) -> None:
        request = await self._request(client, body, action, body["actions"][0].get("value"))
        if request is not None:
            await self.open_form(client, body["trigger_id"], request, _card_url(body))

    async def open_form(
        self, client: AsyncWebClient, trigger_id: str, request: ActionRequest, card_url: str | None = None
    ) -> None:
        """The modal an action needs (fulfill, notify_customer, cancel_order) — or, when it could not be used
        (no email set up, no address, not an admin), the action runs at once to be refused with the reason and
        audited. `card_url`: the click was on an `/orders show` card, answered through this response_url."""
        if await self.actions.refused_before_form(request):
            self.spawn(self._run(client, request, card_url))
            return
        if request.action == "move":
            await self._open_move_form(client, trigger_id, request, card_url)
            return
        if request.action != "notify_customer":
            await self._open_modal(client, trigger_id, request, FORMS[request.action], card_url)
            return
        order = await self.store.get_order(request.order_id)
        email = order.customer.email
        verdict = await self.store.verdict_of(order.id)
        notice = customer_notice(order, verdict["reason"] if verdict else None, shop_name=self.actions.shop_name)

        def view(order, *, private_metadata: str) -> dict:
            return modal_blocks.notify_modal(
                order, to_email=email, subject=notice.subject, body=notice.body, private_metadata=private_metadata
            )

        await self._open_modal(client, trigger_id, request, view, card_url)

    async def _open_move_form(
        self, client: AsyncWebClient, trigger_id: str, request: ActionRequest, card_url: str | None
    ) -> None:
        """Open the Move form at once, saying Shopify is being asked; then fill it in with the locations Shopify
        lists (or say why there is none to pick), in a tracked task."""
        order = await self.store.get_order(request.order_id)
        try:
            opened = await client.views_open(trigger_id=trigger_id, view=modal_blocks.move_waiting_modal(order))
        except SlackApiError as exc:
            log.warning("Slack did not open the move form: %s", exc.response.get("error"))
            await self._tell(client, request, "Slack did not open the form in time; click the button again.", card_url)
            return
        self.spawn(self._fill_move_form(client, opened["view"], request, card_url))

    async def _fill_move_form(
        self, client: AsyncWebClient, view: dict, request: ActionRequest, card_url: str | None
    ) -> None:
        try:
            choices = await self.actions.move_choices(request)
        except Exception:  # the task's boundary: the form says so, the log has the rest
            log.exception("the move form for %s could not be filled in", request.order_id)
            choices = WENT_WRONG
        if isinstance(choices, MoveChoices):
            offered = modal_blocks.offered_locations(choices.locations)
            context = ModalContext(
                request.order_id, request.channel, request.message_ts, card_url, choices.fulfillment_order.id, offered
            )
            form = modal_blocks.move_modal(
                choices.order,
                choices.fulfillment_order,
                choices.locations,
                private_metadata=pack(context, self.secret),
            )
        else:
            order = await self.store.get_order(request.order_id)
            form = modal_blocks.move_nowhere_modal(order, choices)
        try:
            await client.views_update(view_id=view["id"], hash=view.get("hash"), view=form)
        except SlackApiError as exc:  # closed meanwhile, or changed: nothing to fill in
            log.info("the move form was not filled in: %s", exc.response.get("error"))

    # --- modals ---------------------------------------------------------------------------------------------

    async def on_fulfill_submitted(self, ack: AsyncAck, body: dict, client: AsyncWebClient) -> None:
        await self._submit(ack, body, client, "fulfill", lambda values, _: forms.fulfill_form(values))

    async def on_notify_submitted(self, ack: AsyncAck, body: dict, client: AsyncWebClient) -> None:
        await self._submit(ack, body, client, "notify_customer", lambda values, _: forms.notify_form(values))

    async def on_cancel_order_submitted(self, ack: AsyncAck, body: dict, client: AsyncWebClient) -> None:
        await self._submit(ack, body, client, "cancel_order", lambda values, _: forms.cancel_order_form(values))

    async def on_move_submitted(self, ack: AsyncAck, body: dict, client: AsyncWebClient) -> None:
        await self._submit(
            ack,
            body,
            client,
            "move",
            lambda values, context: forms.move_form(values, context.fulfillment_order_id, context.locations),
        )

    async def _submit(
        self,
        ack: AsyncAck,
        body: dict,
        client: AsyncWebClient,
        action: str,
        read: Callable[[dict, ModalContext], forms.Form],
    ) -> None:
        """Input errors go back onto the modal; otherwise it closes and the action runs. `read`: the form's values
        (and its signed context) → the action's inputs, or the errors to show."""
        values = _values(body)
        metadata = body["view"].get("private_metadata") or ""
        try:
            context = unpack(metadata, self.secret)
        except (TamperedMetadata, ValueError, KeyError):
            log.warning("a %s form came back with metadata orderbot did not write; refused", action)
            await ack(response_action="errors", errors={next(iter(values), "form"): EXPIRED})
            await self.store.add_audit(
                actor=body["user"]["id"],
                action=action,
                order_id=claimed_order_id(metadata),
                inputs={},
                outcome="refused",
                error="the form's metadata was not written by orderbot",
            )
            return
        form = read(values, context)
        if form.errors:
            await ack(response_action="errors", errors=form.errors)
            return
        await ack()
        request = ActionRequest(
            action, context.order_id, body["user"]["id"], form.inputs, context.channel, context.message_ts
        )
        self.spawn(self._run(client, request, context.card_url))

    # --- shared -------------------------------------------------------------------------------------------------

    async def _request(
        self, client: AsyncWebClient, body: dict, action: str, order_id: str | None, inputs: dict | None = None
    ) -> ActionRequest | None:
        """The click as an action request; None (and a word to the person) when its value names no order."""
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
        message_ts = (body.get("container") or {}).get("message_ts") or (body.get("message") or {}).get("ts")
        request = ActionRequest(action, order_id or "", body["user"]["id"], inputs or {}, channel, message_ts)
        if not order_id or not ORDER_ID.match(order_id):
            log.warning("ignored a %s click naming no order", action)
            await self._tell(client, request, STALE_BUTTON, _card_url(body))
            return None
        return request

    async def _open_modal(
        self, client: AsyncWebClient, trigger_id: str, request: ActionRequest, build, card_url: str | None
    ) -> None:
        order = await self.store.get_order(request.order_id)
        if order is None:
            await self._tell(client, request, "orderbot does not know that order; check the order number.", card_url)
            return
        metadata = pack(ModalContext(order.id, request.channel, request.message_ts, card_url), self.secret)
        try:
            await client.views_open(trigger_id=trigger_id, view=build(order, private_metadata=metadata))
        except SlackApiError as exc:
            log.warning("Slack did not open the %s form: %s", request.action, exc.response.get("error"))
            await self._tell(client, request, "Slack did not open the form in time; click the button again.", card_url)

    async def _run(self, client: AsyncWebClient, request: ActionRequest, card_url: str | None = None) -> None:
        """Run the action and tell the person how it went (`card_url`: on the `/orders show` card they clicked, which
        is then re-drawn). This task is the boundary: whatever escapes the action (the database locked past its busy
        timeout, a bug) still reaches the person, instead of silence."""
        try:
            outcome = await self.actions.run(request)
        except sqlite3.OperationalError as exc:
            log.error("%s on %s by %s: the database failed: %s", request.action, request.order_id, request.actor, exc)
            await self._tell(client, request, DATABASE_BUSY.format(error=exc), card_url)
            return
        except Exception:
            log.exception("%s on %s by %s failed", request.action, request.order_id, request.actor)
            await self._tell(client, request, WENT_WRONG, card_url)
            return
        if card_url is not None:  # the alert's thread may be in another channel: the answer goes where they clicked
            await self._tell(client, request, outcome.message, card_url)
            await self._redraw_card(client, request, card_url)
        elif not outcome.done or request.message_ts is None or not outcome.in_thread:
            await self._tell(client, request, outcome.message)

    async def _tell(
        self, client: AsyncWebClient, request: ActionRequest, text: str, card_url: str | None = None
    ) -> None:
        """`text` to the person, only: under the card they clicked (`card_url`), on their Home (a click without a
        channel), else as an ephemeral message in the channel."""
        if card_url is not None:
            answer = {"text": text, "response_type": "ephemeral", "replace_original": False}
            if await self.post_to_response_url(client, card_url, answer):
                return
            log.warning("the card took no answer, so %s is answered by chat.postEphemeral instead", request.actor)
        if request.channel is None:
            if self.home_answer is not None:
                await self.home_answer(request.actor, text)
            return
        try:
            await client.chat_postEphemeral(channel=request.channel, user=request.actor, text=text)
        except SlackApiError as exc:
            log.warning("could not answer %s in Slack: %s", request.actor, exc.response.get("error"))

    async def _redraw_card(self, client: AsyncWebClient, request: ActionRequest, card_url: str) -> None:
        """The card clicked, replaced by the order's card as it stands after the action (its buttons the ones that
        now apply); removed when orderbot no longer has the order."""
        if self.card_of is None:
            return
        card = await self.card_of(request.order_id)
        redrawn = {"delete_original": True} if card is None else {**card, "replace_original": True}
        if not await self.post_to_response_url(client, card_url, redrawn):
            log.warning(
                "the card %s clicked (%s) could not be re-drawn; it stays as it was", request.actor, request.action
            )

    @staticmethod
    async def post_to_response_url(client: AsyncWebClient, url: str, body: dict) -> bool:
        """Post to a click's response_url (a card's, or a bulk preview's), through the proxy chosen for it, with the
        Web API client's TLS settings; False when Slack took no post (expired, used up) or could not be reached."""
        webhook = webhook_client(url, timeout=client.timeout, ssl=client.ssl)
        try:
            response = await webhook.send_dict(body)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("a response_url could not be reached: %s", exc.__class__.__name__)
            return False
        if response.status_code != 200:
            log.warning("a response_url answered %s %s", response.status_code, response.body[:40])
            return False
        return True

    async def on_error(self, error: Exception, body: dict) -> None:
        kind = body.get("type") if isinstance(body, dict) else None
        log.error("a Slack %s request failed: %s: %s", kind or "unknown", error.__class__.__name__, error)


def _card_url(body: dict) -> str | None:
    """The click's response_url when it was on an ephemeral message (an `/orders show` card): the only way to
    answer on it, or to change it. None for a click on a channel message or on the Home tab."""
    container = body.get("container") or {}
    if container.get("type") == "message" and container.get("is_ephemeral"):
        return body.get("response_url")
    return None


def _values(body: dict) -> dict:
    """A submitted modal's input values; none when Slack's `state` is missing (the form then answers on its fields)."""
    return (body["view"].get("state") or {}).get("values") or {}
