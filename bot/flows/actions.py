"""Carry out what a person asked for on one order, safely: permission, one run at a time, the order re-read from
Shopify first, the facts the action depends on read, its plan made (bot/domain/action_plans.py: if someone already
did it in the admin, say so instead of doing it twice), the plan's steps sent in order, the alert and its thread
brought up to date, and an audit row for every attempt, refused and failed ones included.

The same path serves buttons, modals and `/orders`; `Outcome.message` is the one sentence the person sees.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from typing import Any

from bot.domain.action_plans import (
    MAYBE_SENT,
    PLANNERS,
    AlreadyDone,
    CancellationInFlight,
    Decision,
    Email,
    Facts,
    Mutation,
    Notices,
    PastNotice,
    Plan,
    RecordCancellation,
    Refused,
    Snooze,
    lost_answer_applied,
    order_after,
    plan_action,
)
from bot.domain.action_words import action_reply, action_resolution, cancellation_unanswered_reply
from bot.domain.moves import (
    LocationForMove,
    elsewhere,
    fulfillment_order_to_move,
    nowhere_to_move,
)
from bot.domain.orders import FulfillmentOrder, Order, OrderState
from bot.flows.cancellations import DEFAULT_FOLLOW_UP, Cancellations, FollowUp
from bot.flows.service import Service
from bot.mail.smtp import Mailer, MailError
from bot.shopify import operations as ops
from bot.shopify.client import ShopifyAuthError, ShopifyError, ShopifyUnavailable, ShopifyUserError
from bot.slack.permissions import Permissions

log = logging.getLogger(__name__)

UNLOCK_RETRIES = (1, 2, 5, 10, 30, 60, 120, 300)  # seconds between tries to record an action while the database is held
NO_SHOPIFY = "orderbot has no Shopify credentials; set SHOPIFY_SHOP and SHOPIFY_ACCESS_TOKEN."


@dataclass(frozen=True, slots=True)
class ActionRequest:
    action: str  # a key of bot/domain/action_plans.py's PLANNERS
    order_id: str  # gid://shopify/Order/…
    actor: str  # Slack user id
    inputs: dict[str, Any] = field(default_factory=dict)
    channel: str | None = None  # where the person clicked
    message_ts: str | None = None  # the alert they clicked on
    in_bulk: bool = False  # one order of a bulk run: its alert update and reply wait behind news
    # Shopify's state of the order as a batch check just read it (a bulk run): while it matches the stored copy, that
    # copy is the order as Shopify has it, and no full read is made.
    checked: OrderState | None = None

    @property
    def urgent(self) -> bool:
        """A person waits for it (it is no part of a bulk run): its Shopify requests go ahead of scans' and bulk
        runs' for Shopify's budget."""
        return not self.in_bulk


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str  # done | already | refused | busy | failed
    message: str  # for the person who asked
    in_thread: bool = True  # the alert's thread tells of it too (not when the reply could not be queued)

    @property
    def done(self) -> bool:
        return self.status == "done"


@dataclass(frozen=True, slots=True)
class MoveChoices:
    """What the Move form offers: the order as Shopify has it now, the fulfillment order that moves, and the other
    locations (those that can take it first)."""

    order: Order
    fulfillment_order: FulfillmentOrder
    locations: list[LocationForMove]


class ActionError(Exception):
    """The action cannot go ahead (the order cannot be read, or there is no Shopify to send to); the message says
    why, in words."""


class _AnswerLost(ShopifyUnavailable):
    """A mutation was sent and Shopify's answer never came (timeout, dropped connection, 5xx): it may have applied."""

    def __init__(self, mutation: Mutation, cause: ShopifyUnavailable):
        super().__init__(str(cause))
        self.mutation = mutation
        self.cause = cause


class Actions:
    def __init__(
        self,
        service: Service,
        permissions: Permissions,
        mailer: Mailer | None,
        *,
        shop_name: str,
        clock: Callable[[], float] = time.monotonic,
        cancel_follow_up: FollowUp = DEFAULT_FOLLOW_UP,
    ):
        """`cancel_follow_up`: how an order's cancellation is followed until Shopify confirms it."""
        self.service = service
        self.store = service.store
        self.permissions = permissions
        self.mailer = mailer
        self.shop_name = shop_name
        self.clock = clock
        self._recording: set[asyncio.Task[None]] = set()  # lock releases and audit rows waiting for the database
        self.cancellations = Cancellations(service, follow_up=cancel_follow_up)

    async def run(self, request: ActionRequest) -> Outcome:
        started = self.clock()
        if request.action not in PLANNERS:
            outcome = Outcome("refused", "orderbot does not know that action.")
        elif not await self.permissions.may(request.actor, request.action):
            outcome = Outcome("refused", self.permissions.refusal(request.action))
        elif (held := await self.store.lock_action(request.order_id, request.action, request.actor)) is not None:
            outcome = Outcome("busy", f"<@{held['actor']}> is already doing this; the alert updates when it is done.")
        else:
            try:
                outcome, error = await self._carry_out(request)
            except BaseException:
                self._in_background(self._record(request, None, None, 0.0))
                raise
            took = self._ms_since(started)
            if outcome.in_thread:
                await self._record(request, outcome, error, took, retry=False)
            else:  # the database takes no writes now: tell the person first, record it when it does
                self._in_background(self._record(request, outcome, error, took))
            return outcome
        await self._audit(request, outcome, None, self._ms_since(started))
        return outcome

    def _ms_since(self, started: float) -> float:
        return round((self.clock() - started) * 1000, 1)

    async def _audit(self, request: ActionRequest, outcome: Outcome, error: str | None, duration_ms: float) -> None:
        await self.store.add_audit(
            actor=request.actor,
            action=request.action,
            order_id=request.order_id,
            inputs=request.inputs,
            outcome=outcome.status,
            error=error,
            duration_ms=duration_ms,
            channel=request.channel,
            ts=request.message_ts,
        )
        log.info(
            "%s on %s by %s: %s in %.0f ms%s",
            request.action,
            request.order_id,
            request.actor,
            outcome.status,
            duration_ms,
            f" ({error})" if error else "",
        )

    async def _record(
        self,
        request: ActionRequest,
        outcome: Outcome | None,
        error: str | None,
        duration_ms: float,
        *,
        retry: bool = True,
        only: frozenset[str] | None = None,
    ) -> None:
        """Release the action's lock and write its audit row (none without `outcome`). While the database stays locked,
        retry over the next minutes (`retry`; else hand the retries to a background task), so that the next click is
        not answered "busy"; a lock left anyway expires (STALE_LOCK_AFTER), and an audit row never written is logged.
        `only`: what is left to do ("unlock", "audit"; default both, or the unlock alone without an outcome)."""
        pending = set(only or ({"unlock", "audit"} if outcome is not None else {"unlock"}))
        for delay in (0, *UNLOCK_RETRIES):
            await asyncio.sleep(delay)
            try:
                if "unlock" in pending:
                    await self.store.unlock_action(request.order_id, request.action)
                    pending.discard("unlock")
                if "audit" in pending:
                    await self._audit(request, outcome, error, duration_ms)
                    pending.discard("audit")
                return
            except sqlite3.Error as exc:
                log.error(
                    "could not record %s on %s (%s): %s", request.action, request.order_id, ", ".join(pending), exc
                )
                if not retry:  # the background goes on with what is left (a released lock may be someone else's now)
                    left = frozenset(pending)
                    self._in_background(self._record(request, outcome, error, duration_ms, only=left))
                    return
        if outcome is not None and "audit" in pending:
            log.error(
                "gave up writing the audit row: %s on %s by %s, %s",
                request.action,
                request.order_id,
                request.actor,
                outcome.status,
            )

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work, name="record-action")
        self._recording.add(task)
        task.add_done_callback(self._recording.discard)

    async def refused_before_form(self, request: ActionRequest) -> bool:
        """Whether the action's form would only lead to a refusal (not permitted; an order orderbot does not know; no
        email set up, or no address to write to): then the action runs at once instead, to be refused with the reason
        and audited."""
        if not await self.permissions.may(request.actor, request.action):
            return True
        order = await self.store.get_order(request.order_id)
        if order is None:  # a forged or stale button: refused, in words and in the audit log
            return True
        if request.action != "notify_customer":
            return False
        return self.mailer is None or not (order.customer and order.customer.email)

    async def move_choices(self, request: ActionRequest) -> MoveChoices | str:
        """Where the order's fulfillment order may move, read from Shopify as the Move form opens (a read, not an
        action: no audit row); or, in words, why there is nothing to choose and what to do instead."""
        shopify = self.service.shopify
        if shopify is None:
            return NO_SHOPIFY
        known = await self.store.get_order(request.order_id)
        name = known.name if known else "the order"
        try:
            order = await shopify.fetch_order(request.order_id, urgent=True)
            if order is None:
                return f"Shopify no longer has {name}; it may have been deleted."
            fo = fulfillment_order_to_move(order)
            if fo is None:
                await self.service.store_and_classify(order)  # the alert offered a move Shopify no longer allows
                return (
                    f"Shopify does not let {order.name} move now: nothing of it is waiting to ship from a location "
                    "that can change. The alert shows the order as it is."
                )
            listed = await shopify.locations_for_move(fo.id, urgent=True)
        except ShopifyError as exc:
            return f"orderbot could not ask Shopify where {name} can move, so the form has nothing to show. {exc}"
        places = elsewhere(fo, listed)
        if not any(place.movable for place in places):
            return nowhere_to_move(order, fo, places)
        return MoveChoices(order, fo, places)

    async def _carry_out(self, request: ActionRequest) -> tuple[Outcome, str | None]:
        known = await self.store.get_order(request.order_id)
        name = known.name if known else request.order_id  # until Shopify's copy is read: a failed read names it too
        order: Order | None = None
        try:
            order = await self._current_order(request)
            name = order.name
            decision = await self._plan(request, order)
            if isinstance(decision, AlreadyDone):
                if request.action != "snooze":
                    await self.service.store_and_classify(order)  # what we showed was out of date: the alert catches up
                return Outcome("already", decision.message), None
            if isinstance(decision, Refused):
                return Outcome("refused", decision.message), decision.message
            detail, changed = await self._send(request, order, decision)
            removed = any(isinstance(step, Mutation) and step.removes_order for step in decision.steps)
        except ActionError as exc:
            return Outcome("refused", str(exc)), str(exc)
        except _AnswerLost as lost:
            return await self._settle_lost_answer(request, name, lost)
        except ShopifyUserError as exc:
            if order is not None:
                await self._catch_up(request)  # an action of several mutations may have changed part of the order
            text = f"Shopify refused to change {name}: {exc}. Fix that in Shopify, then try again."
            return Outcome("failed", text), str(exc)
        except ShopifyAuthError as exc:
            log.error("Shopify refused orderbot's credentials during %s: %s", request.action, exc)
            return Outcome("failed", f"Shopify refused orderbot's access, so nothing changed. {exc}"), str(exc)
        except ShopifyUnavailable as exc:
            text = f"{exc} ({name}) The buttons still work, and orderbot checks the order again before acting."
            return Outcome("failed", text), str(exc)
        except ShopifyError as exc:
            return Outcome("failed", f"Shopify could not do that for {name}: {exc}"), str(exc)
        except MailError as exc:
            if exc.maybe_sent:
                text = f"orderbot cannot tell whether the email to the customer of {name} went out. {exc}"
                return Outcome("failed", text), f"{MAYBE_SENT}: {exc}"
            return Outcome("failed", f"The email to the customer of {name} was not sent. {exc}"), str(exc)
        reply = action_reply(request.action, request.actor, detail or None, order_name=name)
        resolution = action_resolution(request.action, request.actor, detail or None, order_name=name)
        in_thread = await self._after(request, reply, resolution, changed, removed=removed)
        return Outcome("done", reply, in_thread=in_thread), None

    async def _settle_lost_answer(
        self, request: ActionRequest, name: str, lost: _AnswerLost
    ) -> tuple[Outcome, str | None]:
        """Shopify may or may not have applied a mutation whose answer was lost; sending it again could do it twice
        (a second fulfilment, a second cancellation). Re-read the order and plan the action again against it: if the
        new plan would send the very same mutation first, it did not apply; if it finds the action done, or something
        else to send first, it did. One Shopify does in the background (a cancellation) may be under way without
        showing yet: the person is told so, and it is followed until Shopify settles it."""
        error = f"answer lost: {lost.cause}"
        fetch_failed = False
        try:
            current = await self.service.shopify.fetch_order(request.order_id, urgent=request.urgent)
        except ShopifyError as exc:
            log.warning("could not re-read %s after a lost answer to %s: %s", name, request.action, exc)
            current, fetch_failed = None, True
        applied: bool | None = None
        under_way = False
        removed = lost.mutation.removes_order
        if current is None and removed and not fetch_failed:
            applied = True  # Shopify no longer has the order: the deletion applied
        elif current is not None:
            replanned = await self._plan(request, current)
            applied = lost_answer_applied(replanned, lost.mutation)
            under_way = isinstance(replanned, AlreadyDone) and replanned.under_way
            await self.service.store_and_classify(current)  # the alert shows the order as it is now
        if applied is None:
            text = (
                f"Shopify did not answer, so orderbot cannot tell whether {name} changed. "
                "Check the order in Shopify before trying again."
            )
            return Outcome("failed", text), error + "; could not tell whether it applied"
        if not applied:
            text = (
                f"Shopify did not answer, and {name} shows no change. Try again in a minute; orderbot checks the "
                "order first, so it will not be done twice."
            )
            return Outcome("failed", text), error + "; not applied"
        resolution = action_resolution(request.action, request.actor, None, order_name=name)
        if under_way:
            reply = cancellation_unanswered_reply(request.actor, order_name=name)
            log.info("%s on %s: Shopify's answer was lost; it may be under way, and is followed", request.action, name)
            in_thread = await self._after(request, reply, resolution)
            return Outcome("done", reply, in_thread=in_thread), error + "; may be under way"
        reply = action_reply(request.action, request.actor, None, order_name=name)
        log.info("%s on %s: Shopify's answer was lost, the re-read shows it applied", request.action, name)
        return Outcome("done", reply, in_thread=await self._after(request, reply, resolution, removed=removed)), None

    async def _catch_up(self, request: ActionRequest) -> None:
        """Show on the alert whatever did change before a mutation was refused; best effort."""
        try:
            await self.service.refresh_order(request.order_id, urgent=request.urgent)
        except ShopifyError as exc:
            log.warning("could not re-read %s after a refused %s: %s", request.order_id, request.action, exc)

    async def _current_order(self, request: ActionRequest) -> Order:
        """The order as Shopify has it now (as stored, for a snooze, which changes nothing in Shopify, and while a
        batch check finds the stored copy current). Only a fulfilment and a move read its line items."""
        known = await self.store.get_order(request.order_id)
        if known is None:
            raise ActionError("orderbot does not know that order; check the order number.")
        if request.action == "snooze" or self.service.shopify is None:
            return known
        if request.checked is not None and request.checked.matches(known):
            return known
        if request.action in ("fulfill", "move"):
            current = await self.service.shopify.fetch_order(request.order_id, urgent=request.urgent)
        else:
            current = await self.service.shopify.fetch_order_without_lines(request.order_id, urgent=request.urgent)
        if current is None:
            raise ActionError(f"Shopify no longer has {known.name}; it may have been deleted.")
        return current

    async def _after(
        self,
        request: ActionRequest,
        reply: str,
        resolution: str | None = None,
        changed: Order | None = None,
        *,
        removed: bool = False,
    ) -> bool:
        """Bring the stored order, its verdict and its alert up to date (`resolution`: what the alert says resolved
        it, if it did; default `reply`; `changed`: the order after the action, as its mutation's payload showed it,
        else it is read again; `removed`: Shopify no longer has it, so it is forgotten, its alert saying why), and
        tell the alert's thread; False when the thread reply could not be queued (the database stayed locked)."""
        if removed:
            try:
                await self.service.forget(request.order_id, resolution=resolution or reply, in_bulk=request.in_bulk)
            except sqlite3.Error as exc:  # deleted in Shopify: the next scan finds it gone
                log.warning("%s is deleted, but orderbot could not forget it yet: %s", request.order_id, exc)
        elif request.action == "snooze":
            self.service.forget_policy()
            order = await self.store.get_order(request.order_id)
            if order is not None:
                await self.service.classify_and_save([order], found_by="action")
        else:
            try:
                if changed is not None:
                    await self.service.store_and_classify(changed, resolution or reply, in_bulk=request.in_bulk)
                else:
                    await self.service.refresh_order(
                        request.order_id, resolution=resolution or reply, in_bulk=request.in_bulk, urgent=request.urgent
                    )
            except (ShopifyError, sqlite3.Error) as exc:  # done in Shopify: the next webhook or scan shows it
                log.warning(
                    "%s on %s is done, but the alert could not catch up: %s", request.action, request.order_id, exc
                )
        try:
            await self.store.enqueue_reply(request.order_id, reply, in_bulk=request.in_bulk)
        except sqlite3.Error as exc:  # done in Shopify; the person who asked is told directly instead
            log.error("%s on %s is done, but its thread reply was lost: %s", request.action, request.order_id, exc)
            return False
        self.service.alerts_queued()
        return True

    async def _plan(self, request: ActionRequest, order: Order) -> Decision:
        """Read the facts the action depends on besides the order, and plan it against `order`."""
        facts = Facts(now=self.service.now(), email_configured=self.mailer is not None, in_bulk=request.in_bulk)
        if request.action == "notify_customer":
            facts = replace(facts, notices=await self._notices(order.id))
        elif request.action == "cancel_order" and (row := await self.cancellations.in_flight(order.id)) is not None:
            facts = replace(facts, cancellation=CancellationInFlight(row["actor"], row["requested_at"]))
        return plan_action(request.action, order, request.inputs, facts)

    async def _notices(self, order_id: str) -> Notices:
        """The order's latest notify_customer audit rows: done, interrupted and failed."""
        rows = [
            await self.store.last_action(order_id, "notify_customer", outcome=outcome)
            for outcome in ("done", "interrupted", "failed")
        ]
        return Notices(*(_past_notice(row) if row else None for row in rows))

    async def _send(self, request: ActionRequest, order: Order, plan: Plan) -> tuple[str, Order | None]:
        """Carry out the plan's steps in order. Returns the detail for the thread reply, and the order after them
        when a mutation's answer showed it (`Mutation.shows_order_after`; else None: it is read again)."""
        if self.service.shopify is None and any(isinstance(step, Mutation) for step in plan.steps):
            raise ActionError(NO_SHOPIFY)
        detail, after = plan.detail, None
        cancelling = False  # a cancellation is recorded, and orderCancel not yet answered
        for step in plan.steps:
            if isinstance(step, Email):
                await self.mailer.send(to=step.to, subject=step.subject, body=step.body)
            elif isinstance(step, Snooze):
                await self.store.snooze(order.id, step.until, request.actor)
            elif isinstance(step, RecordCancellation):
                await self.cancellations.requested(order.id, request.actor, step.detail)
                cancelling = True
            else:
                try:
                    result = await self._mutate(step, urgent=request.urgent)
                except ShopifyError as exc:
                    if step.if_refused is not None:  # what went before is done and cannot be undone
                        log.warning("%s on %s is done, but %s: %s", request.action, order.name, step.if_refused, exc)
                        detail = f"{detail}; {step.if_refused}: {exc}"
                        continue
                    if cancelling and not isinstance(exc, _AnswerLost):  # refused, or never sent: none under way
                        await self.cancellations.withdrawn(order.id)
                    raise  # a lost answer may have started a cancellation: it stays in flight, followed
                if cancelling:
                    await self.cancellations.started(order.id, (result.get("job") or {}).get("id"))
                    cancelling = False
                    if request.in_bulk:  # Shopify cancels later: a read now shows the order unchanged, and costs
                        after = order  # a full Order read per order of a bulk cancel; its follower reads it once done
                if step.shows_order_after:
                    after = order_after(order, result)
        return detail, after

    async def _mutate(self, mutation: Mutation, *, urgent: bool) -> dict[str, Any]:
        document, variables = ops.ALL_DOCUMENTS[mutation.operation], dict(mutation.variables)
        try:
            return await self.service.shopify.mutate(document, variables, mutation.payload, urgent=urgent)
        except ShopifyUnavailable as exc:
            raise _AnswerLost(mutation, exc) from exc


def _past_notice(row: dict[str, Any]) -> PastNotice:
    return PastNotice(row["id"], row["actor"], row["age"], row.get("error"))
