"""Carry out what a person asked for on one order, safely: permission, one run at a time, the order re-read from
Shopify first (if someone already did it in the admin, say so instead of doing it twice), the mutation, the
alert and its thread brought up to date, and an audit row for every attempt, refused and failed ones included.

The same path serves buttons, modals and `/orders`; `Outcome.message` is the one sentence the person sees.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Coroutine
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from bot.domain.action_words import CANCEL_REASONS, action_reply, action_resolution, cancellation_unanswered_reply
from bot.domain.durations import format_duration, parse_duration
from bot.domain.orders import FulfillmentOrder, Order, OrderState, parse_time
from bot.flows.cancellations import DEFAULT_FOLLOW_UP, Cancellations, FollowUp
from bot.flows.service import Service
from bot.mail.smtp import Mailer, MailError
from bot.shopify import operations as ops
from bot.shopify.client import ShopifyAuthError, ShopifyError, ShopifyUnavailable, ShopifyUserError, urgent
from bot.slack.permissions import Permissions

log = logging.getLogger(__name__)

NOTIFIED_TAG = "orderbot-notified"
NOTIFY_AGAIN_AFTER = timedelta(minutes=10)  # a second "notify" inside this window is taken for a double click
# A notice cut short by a crash, or not confirmed by the mail server, may have been sent: a resumed bulk run skips
# that customer for this long (a person clicking again is held back for NOTIFY_AGAIN_AFTER).
INTERRUPTED_NOTICE_GUARD = timedelta(days=1)
UNLOCK_RETRIES = (1, 2, 5, 10, 30, 60, 120, 300)  # seconds between tries to record an action while the database is held
MAYBE_SENT = "may have been sent"  # starts the audit error of a notice the mail server took but did not confirm
_OPEN_FO = frozenset({"OPEN", "IN_PROGRESS"})


@dataclass(frozen=True, slots=True)
class ActionRequest:
    action: str  # an action id of blocks.ACTION_IDS (or "unfulfill")
    order_id: str  # gid://shopify/Order/…
    actor: str  # Slack user id
    inputs: dict[str, Any] = field(default_factory=dict)
    channel: str | None = None  # where the person clicked
    message_ts: str | None = None  # the alert they clicked on
    in_bulk: bool = False  # one order of a bulk run: its alert update and reply wait behind news
    # Shopify's state of the order as a batch check just read it (a bulk run): while it matches the stored copy, that
    # copy is the order as Shopify has it, and no full read is made.
    checked: OrderState | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str  # done | already | refused | busy | failed
    message: str  # for the person who asked
    in_thread: bool = True  # the alert's thread tells of it too (not when the reply could not be queued)

    @property
    def done(self) -> bool:
        return self.status == "done"


class ActionError(Exception):
    """The action cannot go ahead; the message says why, in words."""


class AlreadyDone(Exception):
    """Shopify shows the action as done already (by someone in the admin, an app, or an earlier click)."""


class UnderWay(AlreadyDone):
    """Shopify is doing it in the background (an order's cancellation in flight): asking again must not send it
    again, though Shopify has not confirmed it yet."""


@dataclass(frozen=True, slots=True)
class _Mutation:
    document: str
    variables: dict[str, Any]


class _WouldSend(Exception):
    """Raised instead of sending while an action is only checked (see Actions._settle_lost_answer)."""

    def __init__(self, mutation: _Mutation):
        self.mutation = mutation


class _AnswerLost(ShopifyUnavailable):
    """A mutation was sent and Shopify's answer never came (timeout, dropped connection, 5xx): it may have applied."""

    def __init__(self, mutation: _Mutation, cause: ShopifyUnavailable):
        super().__init__(str(cause))
        self.mutation = mutation
        self.cause = cause


# Set while an action's handler runs only to see what it would send; per task, so concurrent clicks are unaffected.
_CHECK_ONLY: ContextVar[bool] = ContextVar("check_only", default=False)
# The order after the action, set by a handler whose mutation's payload holds all that changed (archive, unarchive):
# then the alert catches up from it, without reading the order again.
_AFTER: ContextVar[Order | None] = ContextVar("after", default=None)


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
        self._handlers: dict[str, Callable[[ActionRequest, Order], Awaitable[str]]] = {
            "fulfill": self._fulfill,
            "request_fulfillment": self._request_fulfillment,
            "cancel_request": self._cancel_request,
            "release_hold": self._release_hold,
            "archive": self._archive,
            "unarchive": self._unarchive,
            "notify_customer": self._notify_customer,
            "cancel_order": self._cancel_order,
            "snooze": self._snooze,
            "unfulfill": self._unfulfill,
        }

    async def run(self, request: ActionRequest) -> Outcome:
        started = self.clock()
        if request.action not in self._handlers:
            outcome = Outcome("refused", "orderbot does not know that action.")
        elif not await self.permissions.may(request.actor, request.action):
            outcome = Outcome("refused", self.permissions.refusal(request.action))
        elif (held := await self.store.lock_action(request.order_id, request.action, request.actor)) is not None:
            outcome = Outcome("busy", f"<@{held['actor']}> is already doing this; the alert updates when it is done.")
        else:
            try:
                if request.in_bulk:
                    outcome, error = await self._carry_out(request)
                else:
                    with urgent():  # a person is waiting: ahead of scans and bulk runs for Shopify's budget
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

    async def _carry_out(self, request: ActionRequest) -> tuple[Outcome, str | None]:
        known = await self.store.get_order(request.order_id)
        name = known.name if known else request.order_id  # until Shopify's copy is read: a failed read names it too
        order: Order | None = None
        after = _AFTER.set(None)
        try:
            order = await self._current_order(request)
            name = order.name
            detail = await self._handlers[request.action](request, order)
            changed = _AFTER.get()
        except AlreadyDone as exc:
            if request.action != "snooze":
                await self.service.store_and_classify(order)  # what we showed was out of date: the alert catches up
            return Outcome("already", str(exc)), None
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
        finally:
            _AFTER.reset(after)
        reply = action_reply(request.action, request.actor, detail or None, order_name=name)
        resolution = action_resolution(request.action, request.actor, detail or None, order_name=name)
        return Outcome("done", reply, in_thread=await self._after(request, reply, resolution, changed)), None

    async def _settle_lost_answer(
        self, request: ActionRequest, name: str, lost: _AnswerLost
    ) -> tuple[Outcome, str | None]:
        """Shopify may or may not have applied a mutation whose answer was lost; sending it again could do it twice
        (a second fulfilment, a second cancellation). Re-read the order and run the action's own checks against it
        without sending anything: if they would send the very same mutation, it did not apply; if they find nothing
        to do, or something else to do next, it did. One Shopify does in the background (a cancellation) may be under
        way without showing yet: the person is told so, and it is followed until Shopify settles it."""
        error = f"answer lost: {lost.cause}"
        try:
            current = await self.service.shopify.fetch_order(request.order_id)
        except ShopifyError as exc:
            log.warning("could not re-read %s after a lost answer to %s: %s", name, request.action, exc)
            current = None
        applied: bool | None = None
        under_way = False
        if current is not None:
            token = _CHECK_ONLY.set(True)
            try:
                await self._handlers[request.action](request, current)
                applied = True  # nothing left to send
            except UnderWay:
                applied = under_way = True
            except AlreadyDone:
                applied = True
            except _WouldSend as would:
                applied = would.mutation != lost.mutation
            except (ActionError, ShopifyError, MailError):
                applied = None
            finally:
                _CHECK_ONLY.reset(token)
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
        return Outcome("done", reply, in_thread=await self._after(request, reply, resolution)), None

    async def _catch_up(self, request: ActionRequest) -> None:
        """Show on the alert whatever did change before a mutation was refused; best effort."""
        try:
            await self.service.refresh_order(request.order_id)
        except ShopifyError as exc:
            log.warning("could not re-read %s after a refused %s: %s", request.order_id, request.action, exc)

    async def _current_order(self, request: ActionRequest) -> Order:
        """The order as Shopify has it now (as stored, for a snooze, which changes nothing in Shopify, and while a
        batch check finds the stored copy current). Only a fulfilment reads its line items."""
        known = await self.store.get_order(request.order_id)
        if known is None:
            raise ActionError("orderbot does not know that order; check the order number.")
        if request.action == "snooze" or self.service.shopify is None:
            return known
        if request.checked is not None and request.checked.matches(known):
            return known
        if request.action == "fulfill":
            current = await self.service.shopify.fetch_order(request.order_id)
        else:
            current = await self.service.shopify.fetch_order_without_lines(request.order_id)
        if current is None:
            raise ActionError(f"Shopify no longer has {known.name}; it may have been deleted.")
        return current

    async def _after(
        self, request: ActionRequest, reply: str, resolution: str | None = None, changed: Order | None = None
    ) -> bool:
        """Bring the stored order, its verdict and its alert up to date (`resolution`: what the alert says resolved
        it, if it did; default `reply`; `changed`: the order after the action, as its mutation's payload showed it,
        else it is read again), and tell the alert's thread; False when the thread reply could not be queued (the
        database stayed locked)."""
        if request.action == "snooze":
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
                        request.order_id, resolution=resolution or reply, in_bulk=request.in_bulk
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

    # --- the actions: each checks Shopify's current state, then acts; returns a detail for the thread reply ---

    async def _fulfill(self, request: ActionRequest, order: Order) -> str:
        """Ship what is left, with tracking; or, when everything shipped without a tracking number, add it."""
        tracking = {
            key: value
            for key, value in (
                ("number", request.inputs.get("tracking_number")),
                ("company", request.inputs.get("tracking_company")),
                ("url", request.inputs.get("tracking_url")),
            )
            if value
        }
        notify = bool(request.inputs.get("notify_customer"))
        fulfillable = order.fulfillable()
        if not fulfillable:
            return await self._add_tracking(order, tracking, notify)
        by_location: dict[str | None, list[FulfillmentOrder]] = {}
        for fo in fulfillable:  # one fulfillment per location: Shopify ships one place's items at a time
            by_location.setdefault(fo.location, []).append(fo)
        for fos in by_location.values():
            fulfillment: dict[str, Any] = {
                "lineItemsByFulfillmentOrder": [{"fulfillmentOrderId": fo.id} for fo in fos],
                "notifyCustomer": notify,
            }
            if tracking:
                fulfillment["trackingInfo"] = tracking
            await self._mutate(ops.FULFILLMENT_CREATE, {"fulfillment": fulfillment}, "fulfillmentCreate")
        shipped = f"{tracking.get('company', '')} {tracking['number']}".strip() if "number" in tracking else None
        parts = [f"tracking {shipped}" if shipped else "no tracking number"]
        parts.append("customer notified" if notify else "customer not notified")
        return ", ".join(parts)

    async def _add_tracking(self, order: Order, tracking: dict[str, str], notify: bool) -> str:
        untracked = order.shipments_without_tracking()
        if not untracked:
            raise AlreadyDone(f"Nothing is left to fulfil on {order.name}: it was fulfilled already.")
        if "number" not in tracking:
            raise ActionError(f"{order.name} has shipped already; enter the tracking number to add it.")
        for fulfillment in untracked:
            variables = {"fulfillmentId": fulfillment.id, "trackingInfoInput": tracking, "notifyCustomer": notify}
            await self._mutate(ops.TRACKING_INFO_UPDATE, variables, "fulfillmentTrackingInfoUpdate")
        shipped = f"{tracking.get('company', '')} {tracking['number']}".strip()
        return f"added tracking {shipped} to the shipment, " + (
            "customer notified" if notify else "customer not notified"
        )

    async def _request_fulfillment(self, request: ActionRequest, order: Order) -> str:
        requestable = [fo for fo in _open(order) if "REQUEST_FULFILLMENT" in fo.supported_actions]
        if not requestable:
            raise AlreadyDone(f"{order.name} has no fulfillment left to request: it was requested or shipped already.")
        for fo in requestable:
            variables = {"id": fo.id, "message": request.inputs.get("message"), "notifyCustomer": False}
            await self._mutate(ops.FULFILLMENT_REQUEST_SUBMIT, variables, "fulfillmentOrderSubmitFulfillmentRequest")
        return _services(requestable)

    async def _cancel_request(self, request: ActionRequest, order: Order) -> str:
        cancellable = [fo for fo in _open(order) if "REQUEST_CANCELLATION" in fo.supported_actions]
        if not cancellable:
            if any(fo.request_status == "CANCELLATION_REQUESTED" for fo in order.fulfillment_orders or ()):
                raise AlreadyDone(f"A cancellation was already requested for {order.name}; waiting for the service.")
            raise AlreadyDone(f"{order.name} has no fulfillment request left to cancel.")
        message = request.inputs.get("message") or "Cancelled from orderbot"
        for fo in cancellable:
            await self._mutate(
                ops.CANCELLATION_REQUEST_SUBMIT,
                {"id": fo.id, "message": message},
                "fulfillmentOrderSubmitCancellationRequest",
            )
        return f"{_services(cancellable)} may still ship if it has started"

    async def _release_hold(self, request: ActionRequest, order: Order) -> str:
        held = [fo for fo in order.fulfillment_orders or () if fo.holds and "RELEASE_HOLD" in fo.supported_actions]
        if not held:
            raise AlreadyDone(f"{order.name} is not on hold any more.")
        for fo in held:
            variables = {"id": fo.id, "holdIds": [hold.id for hold in fo.holds]}
            await self._mutate(ops.HOLD_RELEASE, variables, "fulfillmentOrderReleaseHold")
        reasons = sorted({hold.reason.replace("_", " ").lower() for fo in held for hold in fo.holds})
        return ", ".join(reasons)

    async def _archive(self, request: ActionRequest, order: Order) -> str:
        if order.closed:
            raise AlreadyDone(f"{order.name} is archived already.")
        result = await self._mutate(ops.ORDER_CLOSE, {"input": {"id": order.id}}, "orderClose")
        _changed_to(order, result)
        return ""

    async def _unarchive(self, request: ActionRequest, order: Order) -> str:
        if not order.closed:
            raise AlreadyDone(f"{order.name} is not archived.")
        if order.cancelled:
            raise ActionError(f"{order.name} is cancelled; Shopify does not reopen cancelled orders.")
        result = await self._mutate(ops.ORDER_OPEN, {"input": {"id": order.id}}, "orderOpen")
        _changed_to(order, result)
        return ""

    async def _notify_customer(self, request: ActionRequest, order: Order) -> str:
        if self.mailer is None:
            raise ActionError(NO_MAIL)
        email = order.customer.email if order.customer else None
        if not email:
            raise ActionError(f"{order.name} has no customer email address, so there is no one to write to.")
        last = await self.store.last_action(order.id, "notify_customer", outcome="done")
        if last and last["age"] < NOTIFY_AGAIN_AFTER:
            raise AlreadyDone(f"<@{last['actor']}> emailed the customer of {order.name} {_ago(last['age'])}.")
        await self._refuse_if_a_notice_may_have_gone_out(request, order, last)
        subject = str(request.inputs.get("subject") or f"About your order {order.name}").strip()
        body = str(request.inputs.get("message") or "").strip()
        if not body:
            raise ActionError("The message is empty; write what the customer should know.")
        if _CHECK_ONLY.get():  # checking must never email anyone
            raise _WouldSend(_Mutation("email", {"to": email}))
        await self.mailer.send(to=email, subject=subject, body=body)
        try:  # the email is out: a tag Shopify refuses must not make it look unsent (and invite a second one)
            await self._mutate(ops.TAGS_ADD, {"id": order.id, "tags": [NOTIFIED_TAG]}, "tagsAdd")
        except ShopifyError as exc:
            log.warning("notified the customer of %s, but could not tag the order: %s", order.name, exc)
            return f"subject “{subject}”; the {NOTIFIED_TAG} tag could not be added: {exc}"
        return f"subject “{subject}”"

    async def _refuse_if_a_notice_may_have_gone_out(
        self, request: ActionRequest, order: Order, last_done: dict[str, Any] | None
    ) -> None:
        """An email cut short by a restart, or taken by the mail server that then did not confirm it, may have reached
        the customer: refuse a second one for a while (a resumed bulk run, a whole day) rather than send it twice."""
        cut = await self.store.last_action(order.id, "notify_customer", outcome="interrupted")
        unconfirmed = await self.store.last_action(order.id, "notify_customer", outcome="failed")
        if unconfirmed and not str(unconfirmed.get("error") or "").startswith(MAYBE_SENT):
            unconfirmed = None
        doubtful = [row for row in (cut, unconfirmed) if row and (last_done is None or row["id"] > last_done["id"])]
        if not doubtful:
            return
        latest = max(doubtful, key=lambda row: row["id"])
        if latest["age"] >= (INTERRUPTED_NOTICE_GUARD if request.in_bulk else NOTIFY_AGAIN_AFTER):
            return
        how = "orderbot stopped while emailing" if latest is cut else "the mail server did not confirm the email to"
        raise ActionError(
            f"{how} the customer of {order.name} {_ago(latest['age'])}, so the email may have gone out. "
            "Check your sent mail before sending another."
        )

    async def _cancel_order(self, request: ActionRequest, order: Order) -> str:
        """Shopify cancels in the background: the request is stored before orderCancel is sent (a lost answer may
        have started it) and followed until Shopify settles it (bot/flows/cancellations.py)."""
        if order.cancelled:
            raise AlreadyDone(f"{order.name} is cancelled already.")
        in_flight = await self.cancellations.in_flight(order.id)
        if in_flight is not None:
            asked = _ago(self.service.now() - in_flight["requested_at"])
            raise UnderWay(
                f"Shopify is already cancelling {order.name}: <@{in_flight['actor']}> asked {asked}. "
                "The alert updates when it is done."
            )
        reason = str(request.inputs.get("reason") or "OTHER")
        if reason not in CANCEL_REASONS:  # Shopify's OrderCancelReason
            raise ActionError(f"“{reason}” is not a reason Shopify accepts; pick one from the list.")
        refund = bool(request.inputs.get("refund"))
        variables: dict[str, Any] = {
            "orderId": order.id,
            "reason": reason,
            "restock": bool(request.inputs.get("restock")),
            "notifyCustomer": bool(request.inputs.get("notify_customer")),
            "staffNote": (request.inputs.get("staff_note") or None),
            "refundMethod": {"originalPaymentMethodsRefund": True} if refund else None,
        }
        detail = f"reason {reason.lower()}, " + ("refunded to the original payment method" if refund else "no refund")
        if _CHECK_ONLY.get():
            raise _WouldSend(_Mutation(ops.ORDER_CANCEL, variables))
        await self.cancellations.requested(order.id, request.actor, detail)
        try:
            result = await self._mutate(ops.ORDER_CANCEL, variables, "orderCancel")
        except _AnswerLost:
            raise  # it may have started: it stays in flight, followed, until Shopify settles it
        except (ShopifyError, ActionError):
            await self.cancellations.withdrawn(order.id)  # refused, or never sent
            raise
        await self.cancellations.started(order.id, (result.get("job") or {}).get("id"))
        return detail

    async def _snooze(self, request: ActionRequest, order: Order) -> str:
        choice = str(request.inputs.get("for") or "")
        try:
            span = parse_duration(choice)
        except ValueError as exc:
            raise ActionError(f"“{choice}” is not a snooze length; use 4h, 1d, 3d or 1w.") from exc
        if span <= timedelta(0) or span > timedelta(days=30):
            raise ActionError("Snooze for between a minute and 30 days.")
        until = self.service.now() + span
        await self.store.snooze(order.id, until, request.actor)
        return f"for {format_duration(span)}, until {until:%a %d %b %H:%M} UTC"

    async def _unfulfill(self, request: ActionRequest, order: Order) -> str:
        shipped = [f for f in order.fulfillments if f.status == "SUCCESS"]
        if not shipped:
            raise AlreadyDone(f"{order.name} has no fulfillment to cancel; it is unfulfilled already.")
        latest = max(shipped, key=lambda f: f.created_at)
        await self._mutate(ops.FULFILLMENT_CANCEL, {"id": latest.id}, "fulfillmentCancel")
        numbers = [t.number for t in latest.tracking if t.number]
        return f"the shipment with tracking {', '.join(numbers)}" if numbers else ""

    async def _mutate(self, document: str, variables: dict[str, Any], payload: str) -> dict[str, Any]:
        if self.service.shopify is None:
            raise ActionError("orderbot has no Shopify credentials; set SHOPIFY_SHOP and SHOPIFY_ACCESS_TOKEN.")
        mutation = _Mutation(document, variables)
        if _CHECK_ONLY.get():
            raise _WouldSend(mutation)
        try:
            return await self.service.shopify.mutate(document, variables, payload)
        except ShopifyUnavailable as exc:
            raise _AnswerLost(mutation, exc) from exc


NO_MAIL = "Email is not set up. Set SMTP_URL and SMTP_FROM for orderbot, then try again."


def _changed_to(order: Order, payload: dict[str, Any]) -> None:
    """Note the order after orderClose or orderOpen: `order` (read just before) with the archived state and update
    time the payload shows; nothing else changes. Without them in the payload, the order is read again."""
    shown = payload.get("order") or {}
    updated_at = parse_time(shown.get("updatedAt"))
    if updated_at is not None and "closedAt" in shown:
        _AFTER.set(replace(order, closed_at=parse_time(shown["closedAt"]), updated_at=updated_at))


def _open(order: Order) -> list[FulfillmentOrder]:
    return [fo for fo in order.fulfillment_orders or () if fo.status in _OPEN_FO]


def _services(fos: list[FulfillmentOrder]) -> str:
    names = sorted({fo.service or fo.location or "the fulfillment service" for fo in fos})
    return " and ".join(names)


def _ago(age: timedelta) -> str:
    return "just now" if age < timedelta(minutes=1) else f"{format_duration(age)} ago"
