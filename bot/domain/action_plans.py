"""What an action on one order would do, decided from the order as Shopify shows it now and the facts read just
before: a `Plan` (the steps to carry out, in order, and the detail for the thread reply), `AlreadyDone` (with its
words), or `Refused` (with its words). Pure: bot/flows/actions.py reads the order and the facts, asks `plan_action`,
and carries the plan out; when Shopify's answer to a step is lost, it re-reads the order and plans again, and the
new plan tells whether the lost step applied (it did unless the new plan would send it again).

Each planner takes the order, the person's inputs (from a form or `/orders`) and the `Facts`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from bot.domain.action_words import CANCEL_REASONS, REFUND_DETAILS
from bot.domain.durations import format_duration, parse_duration
from bot.domain.moves import out_of_stock_holds
from bot.domain.orders import FINISHED_FO_STATUSES, FulfillmentOrder, Order, parse_time

NOTIFIED_TAG = "orderbot-notified"
NOTIFY_AGAIN_AFTER = timedelta(minutes=10)  # a second "notify" inside this window is taken for a double click
# A notice cut short by a crash, or not confirmed by the mail server, may have been sent: a resumed bulk run skips
# that customer for this long (a person clicking again is held back for NOTIFY_AGAIN_AFTER).
INTERRUPTED_NOTICE_GUARD = timedelta(days=1)
MAYBE_SENT = "may have been sent"  # starts the audit error of a notice the mail server took but did not confirm
NO_MAIL = "Email is not set up. Set SMTP_URL and SMTP_FROM for orderbot, then try again."
LONGEST_SNOOZE = timedelta(days=30)
_OPEN_FO = frozenset({"OPEN", "IN_PROGRESS"})
# Request statuses that keep a fulfillment order with its fulfillment service: Shopify does not move it.
_REQUESTED = frozenset({"SUBMITTED", "ACCEPTED", "CANCELLATION_REQUESTED", "CANCELLATION_REJECTED"})
# A cancellation's refund, as the form offers it → orderCancel's `refundMethod` (OrderCancelRefundMethodInput). An
# authorized payment is voided whichever is chosen.
REFUND_METHODS: Mapping[str, Mapping[str, Any] | None] = {
    "original": {"originalPaymentMethodsRefund": True},
    "store_credit": {"storeCreditRefund": {}},
    "none": None,
}


# --- what a plan holds ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Mutation:
    """One Shopify mutation: its document by operation name (a key of bot/shopify/operations.py's ALL_DOCUMENTS),
    the field its answer comes in, and its variables."""

    operation: str
    payload: str
    variables: Mapping[str, Any]
    # Its answer shows all the action changes on the order (orderClose, orderOpen): the order after it is taken from
    # there (`order_after`) instead of being read again.
    shows_order_after: bool = False
    # Set when what went before cannot be undone (an email is out): Shopify refusing this step does not fail the
    # action, and the detail adds these words and Shopify's error.
    if_refused: str | None = None
    # Once it applies Shopify no longer has the order (orderDelete): a re-read that finds none shows it did, and the
    # order is forgotten, its alert saying who deleted it.
    removes_order: bool = False


@dataclass(frozen=True, slots=True)
class Email:
    to: str
    subject: str
    body: str


@dataclass(frozen=True, slots=True)
class RecordCancellation:
    """Store the cancellation request before orderCancel, the next step, is sent: a lost answer may have started it,
    so from then on the order shows as being cancelled and is followed until Shopify settles it. `detail` is what the
    thread says of it once it is cancelled."""

    detail: str


@dataclass(frozen=True, slots=True)
class Snooze:
    until: datetime


Step = Mutation | Email | RecordCancellation | Snooze


@dataclass(frozen=True, slots=True)
class Plan:
    steps: tuple[Step, ...]
    detail: str = ""  # for the thread reply, e.g. "tracking UPS 1Z999, customer notified"; "" for none

    @property
    def first_sent(self) -> Mutation | Email | None:
        """The first step that goes out to Shopify or the customer."""
        return next((step for step in self.steps if isinstance(step, Mutation | Email)), None)


@dataclass(frozen=True, slots=True)
class AlreadyDone:
    """Shopify shows the action as done already (by someone in the admin, an app, or an earlier click)."""

    message: str
    # Shopify is doing it in the background (an order's cancellation in flight): asking again must not send it
    # again, though Shopify has not confirmed it yet.
    under_way: bool = False


@dataclass(frozen=True, slots=True)
class Refused:
    """The action cannot go ahead; the message says why, and what to do instead."""

    message: str


Decision = Plan | AlreadyDone | Refused


# --- what the executor read besides the order -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PastNotice:
    """An earlier notify_customer audit row: its id (a later row has a higher one), who asked, how long ago, and its
    error."""

    id: int
    actor: str
    age: timedelta
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Notices:
    """The order's latest notify_customer audit rows: done, interrupted (cut short by a stop) and failed."""

    done: PastNotice | None = None
    interrupted: PastNotice | None = None
    failed: PastNotice | None = None


@dataclass(frozen=True, slots=True)
class CancellationInFlight:
    actor: str
    requested_at: datetime


@dataclass(frozen=True, slots=True)
class Facts:
    now: datetime
    email_configured: bool = False
    in_bulk: bool = False  # one order of a bulk run
    notices: Notices = field(default_factory=Notices)  # read for notify_customer
    cancellation: CancellationInFlight | None = None  # read for cancel_order


# --- the planners -----------------------------------------------------------------------------------------------


def plan_fulfill(order: Order, inputs: Mapping[str, Any], facts: Facts) -> Decision:
    """Ship what is left, with tracking, one fulfillment per location (Shopify ships one place's items at a time);
    or, when everything shipped without a tracking number, add it."""
    tracking = {
        key: value
        for key, value in (
            ("number", inputs.get("tracking_number")),
            ("company", inputs.get("tracking_company")),
            ("url", inputs.get("tracking_url")),
        )
        if value
    }
    notify = bool(inputs.get("notify_customer"))
    fulfillable = order.fulfillable()
    if not fulfillable:
        return _add_tracking(order, tracking, notify)
    by_location: dict[str | None, list[FulfillmentOrder]] = {}
    for fo in fulfillable:
        by_location.setdefault(fo.location, []).append(fo)
    steps = []
    for fos in by_location.values():
        fulfillment: dict[str, Any] = {
            "lineItemsByFulfillmentOrder": [{"fulfillmentOrderId": fo.id} for fo in fos],
            "notifyCustomer": notify,
        }
        if tracking:
            fulfillment["trackingInfo"] = tracking
        steps.append(Mutation("FulfillmentCreate", "fulfillmentCreate", {"fulfillment": fulfillment}))
    shipped = f"{tracking.get('company', '')} {tracking['number']}".strip() if "number" in tracking else None
    parts = [f"tracking {shipped}" if shipped else "no tracking number"]
    parts.append("customer notified" if notify else "customer not notified")
    return Plan(tuple(steps), ", ".join(parts))


def _add_tracking(order: Order, tracking: dict[str, str], notify: bool) -> Decision:
    untracked = order.shipments_without_tracking()
    if not untracked:
        return AlreadyDone(f"Nothing is left to fulfil on {order.name}: it was fulfilled already.")
    if "number" not in tracking:
        return Refused(f"{order.name} has shipped already; enter the tracking number to add it.")
    steps = tuple(
        Mutation(
            "TrackingInfoUpdate",
            "fulfillmentTrackingInfoUpdate",
            {"fulfillmentId": fulfillment.id, "trackingInfoInput": tracking, "notifyCustomer": notify},
        )
        for fulfillment in untracked
    )
    shipped = f"{tracking.get('company', '')} {tracking['number']}".strip()
    notified = "customer notified" if notify else "customer not notified"
    return Plan(steps, f"added tracking {shipped} to the shipment, {notified}")


def plan_request_fulfillment(order: Order, inputs: Mapping[str, Any], facts: Facts) -> Decision:
    requestable = [fo for fo in _open(order) if "REQUEST_FULFILLMENT" in fo.supported_actions]
    if not requestable:
        return AlreadyDone(f"{order.name} has no fulfillment left to request: it was requested or shipped already.")
    steps = tuple(
        Mutation(
            "FulfillmentRequestSubmit",
            "fulfillmentOrderSubmitFulfillmentRequest",
            {"id": fo.id, "message": inputs.get("message"), "notifyCustomer": False},
        )
        for fo in requestable
    )
    return Plan(steps, _services(requestable))


def plan_cancel_request(order: Order, inputs: Mapping[str, Any], facts: Facts) -> Decision:
    cancellable = [fo for fo in _open(order) if "REQUEST_CANCELLATION" in fo.supported_actions]
    if not cancellable:
        if any(fo.request_status == "CANCELLATION_REQUESTED" for fo in order.fulfillment_orders or ()):
            return AlreadyDone(f"A cancellation was already requested for {order.name}; waiting for the service.")
        return AlreadyDone(f"{order.name} has no fulfillment request left to cancel.")
    message = inputs.get("message") or "Cancelled from orderbot"
    steps = tuple(
        Mutation(
            "CancellationRequestSubmit",
            "fulfillmentOrderSubmitCancellationRequest",
            {"id": fo.id, "message": message},
        )
        for fo in cancellable
    )
    return Plan(steps, f"{_services(cancellable)} may still ship if it has started")


def plan_release_hold(order: Order, inputs: Mapping[str, Any], facts: Facts) -> Decision:
    held = [fo for fo in order.fulfillment_orders or () if fo.holds and "RELEASE_HOLD" in fo.supported_actions]
    if not held:
        return AlreadyDone(f"{order.name} is not on hold any more.")
    steps = tuple(
        Mutation("HoldRelease", "fulfillmentOrderReleaseHold", {"id": fo.id, "holdIds": [hold.id for hold in fo.holds]})
        for fo in held
    )
    reasons = sorted({hold.reason.replace("_", " ").lower() for fo in held for hold in fo.holds})
    return Plan(steps, ", ".join(reasons))


def plan_archive(order: Order, inputs: Mapping[str, Any], facts: Facts) -> Decision:
    if order.closed:
        return AlreadyDone(f"{order.name} is archived already.")
    return Plan((Mutation("OrderClose", "orderClose", {"input": {"id": order.id}}, shows_order_after=True),))


def plan_unarchive(order: Order, inputs: Mapping[str, Any], facts: Facts) -> Decision:
    if not order.closed:
        return AlreadyDone(f"{order.name} is not archived.")
    if order.cancelled:
        return Refused(f"{order.name} is cancelled; Shopify does not reopen cancelled orders.")
    return Plan((Mutation("OrderOpen", "orderOpen", {"input": {"id": order.id}}, shows_order_after=True),))


def order_after(order: Order, payload: Mapping[str, Any]) -> Order | None:
    """The order after orderClose or orderOpen: `order` (read just before) with the archived state and update time
    the payload shows; nothing else changes. None when the payload does not show them (then read the order again)."""
    shown = payload.get("order") or {}
    updated_at = parse_time(shown.get("updatedAt"))
    if updated_at is None or "closedAt" not in shown:
        return None
    return replace(order, closed_at=parse_time(shown["closedAt"]), updated_at=updated_at)


def plan_notify_customer(order: Order, inputs: Mapping[str, Any], facts: Facts) -> Decision:
    """Email the customer, then tag the order NOTIFIED_TAG; a tag Shopify refuses must not make the email look
    unsent (and invite a second one)."""
    if not facts.email_configured:
        return Refused(NO_MAIL)
    email = order.customer.email if order.customer else None
    if not email:
        return Refused(f"{order.name} has no customer email address, so there is no one to write to.")
    last = facts.notices.done
    if last and last.age < NOTIFY_AGAIN_AFTER:
        return AlreadyDone(f"<@{last.actor}> emailed the customer of {order.name} {_ago(last.age)}.")
    doubt = _notice_in_doubt(order, facts)
    if doubt is not None:
        return doubt
    subject = str(inputs.get("subject") or f"About your order {order.name}").strip()
    body = str(inputs.get("message") or "").strip()
    if not body:
        return Refused("The message is empty; write what the customer should know.")
    tag = Mutation(
        "TagsAdd",
        "tagsAdd",
        {"id": order.id, "tags": [NOTIFIED_TAG]},
        if_refused=f"the {NOTIFIED_TAG} tag could not be added",
    )
    return Plan((Email(email, subject, body), tag), f"subject “{subject}”")


def _notice_in_doubt(order: Order, facts: Facts) -> Refused | None:
    """An email cut short by a restart, or taken by the mail server that then did not confirm it, may have reached
    the customer: refuse a second one for a while (a resumed bulk run, a whole day) rather than send it twice."""
    notices = facts.notices
    cut = notices.interrupted
    unconfirmed = notices.failed if notices.failed and (notices.failed.error or "").startswith(MAYBE_SENT) else None
    last_done = notices.done
    doubtful = [row for row in (cut, unconfirmed) if row and (last_done is None or row.id > last_done.id)]
    if not doubtful:
        return None
    latest = max(doubtful, key=lambda row: row.id)
    if latest.age >= (INTERRUPTED_NOTICE_GUARD if facts.in_bulk else NOTIFY_AGAIN_AFTER):
        return None
    how = "orderbot stopped while emailing" if latest is cut else "the mail server did not confirm the email to"
    return Refused(
        f"{how} the customer of {order.name} {_ago(latest.age)}, so the email may have gone out. "
        "Check your sent mail before sending another."
    )


def plan_cancel_order(order: Order, inputs: Mapping[str, Any], facts: Facts) -> Decision:
    """Shopify cancels in the background: the request is recorded before orderCancel is sent, and followed until
    Shopify settles it (bot/flows/cancellations.py)."""
    if order.cancelled:
        return AlreadyDone(f"{order.name} is cancelled already.")
    in_flight = facts.cancellation
    if in_flight is not None:
        asked = _ago(facts.now - in_flight.requested_at)
        return AlreadyDone(
            f"Shopify is already cancelling {order.name}: <@{in_flight.actor}> asked {asked}. "
            "The alert updates when it is done.",
            under_way=True,
        )
    reason = str(inputs.get("reason") or "OTHER")
    if reason not in CANCEL_REASONS:  # Shopify's OrderCancelReason
        return Refused(f"“{reason}” is not a reason Shopify accepts; pick one from the list.")
    refund = str(inputs.get("refund") or "none")
    if refund not in REFUND_METHODS:
        return Refused(f"“{refund}” is not a way to refund; pick one from the list.")
    variables: dict[str, Any] = {
        "orderId": order.id,
        "reason": reason,
        "restock": bool(inputs.get("restock")),
        "notifyCustomer": bool(inputs.get("notify_customer")),
        "staffNote": (inputs.get("staff_note") or None),
        "refundMethod": REFUND_METHODS[refund],
    }
    detail = f"reason {reason.lower()}, {REFUND_DETAILS[refund]}"
    return Plan((RecordCancellation(detail), Mutation("OrderCancel", "orderCancel", variables)), detail)


def plan_snooze(order: Order, inputs: Mapping[str, Any], facts: Facts) -> Decision:
    choice = str(inputs.get("for") or "")
    try:
        span = parse_duration(choice)
    except ValueError:
        return Refused(f"“{choice}” is not a snooze length; use 4h, 1d, 3d or 1w.")
    if span <= timedelta(0) or span > LONGEST_SNOOZE:
        return Refused("Snooze for between a minute and 30 days.")
    until = facts.now + span
    return Plan((Snooze(until),), f"for {format_duration(span)}, until {until:%a %d %b %H:%M} UTC")


def plan_unfulfill(order: Order, inputs: Mapping[str, Any], facts: Facts) -> Decision:
    """Cancel the latest shipment: Shopify's only way back from fulfilled."""
    shipped = [f for f in order.fulfillments if f.status == "SUCCESS"]
    if not shipped:
        return AlreadyDone(f"{order.name} has no fulfillment to cancel; it is unfulfilled already.")
    latest = max(shipped, key=lambda f: f.created_at)
    numbers = [t.number for t in latest.tracking if t.number]
    detail = f"the shipment with tracking {', '.join(numbers)}" if numbers else ""
    return Plan((Mutation("FulfillmentCancel", "fulfillmentCancel", {"id": latest.id}),), detail)


_PAID = frozenset({"PAID", "PARTIALLY_REFUNDED", "REFUNDED"})


def plan_capture_payment(order: Order, inputs: Mapping[str, Any], facts: Facts) -> Decision:
    """Capture all the authorization holds, in the customer's currency (which Shopify wants named when it differs
    from the shop's)."""
    amount, authorization = order.capturable_amount, order.authorization_id
    if not order.capturable or amount is None or authorization is None:
        if order.financial_status in _PAID or order.financial_status == "PARTIALLY_PAID":
            return AlreadyDone(f"The payment for {order.name} was captured already.")
        if order.cancelled:
            return Refused(f"{order.name} is cancelled; there is no payment left to capture.")
        return Refused(f"Shopify shows no authorized payment to capture on {order.name}. Check its payment in Shopify.")
    capture = {"id": order.id, "parentTransactionId": authorization, "amount": amount.amount}
    if amount.currency:
        capture["currency"] = amount.currency
    return Plan((Mutation("OrderCapture", "orderCapture", {"input": capture}),), f"{amount.amount} {amount.currency}")


def plan_mark_as_paid(order: Order, inputs: Mapping[str, Any], facts: Facts) -> Decision:
    """Record a payment received outside Shopify (a bank deposit, cash on delivery) for what is outstanding."""
    if order.financial_status in _PAID:
        return AlreadyDone(f"{order.name} is paid already.")
    if order.cancelled:
        return Refused(f"{order.name} is cancelled; Shopify does not mark cancelled orders as paid.")
    if order.capturable:
        return Refused(f"{order.name} has an authorized payment: capture it instead, so the customer is charged.")
    if not order.can_mark_as_paid:
        return Refused(
            f"Shopify does not let {order.name} be marked as paid (a payment may still be processing). Check its "
            "payment in Shopify."
        )
    methods = ", ".join(order.payment_gateways)
    return Plan((Mutation("OrderMarkAsPaid", "orderMarkAsPaid", {"input": {"id": order.id}}),), methods)


def plan_delete(order: Order, inputs: Mapping[str, Any], facts: Facts) -> Decision:
    """Delete the order in Shopify, for good. Shopify deletes only archived or cancelled orders."""
    if not (order.closed or order.cancelled):
        return Refused(
            f"{order.name} is open; Shopify deletes only archived or cancelled orders. Archive or cancel it first."
        )
    return Plan((Mutation("OrderDelete", "orderDelete", {"orderId": order.id}, removes_order=True),))


def plan_move(order: Order, inputs: Mapping[str, Any], facts: Facts) -> Decision:
    """Assign a fulfillment order (`fulfillment_order_id`, chosen when the form opened) to another location
    (`location_id`, named `location_name`): every item still to ship moves. Then, with `release_hold`, release its
    out-of-stock holds, which a move leaves in place: only when the whole fulfillment order moves (none of it
    shipped), for then it keeps its id; else the moved items are in a new one, whose hold is released from its alert."""
    fo_id, target = str(inputs.get("fulfillment_order_id") or ""), str(inputs.get("location_id") or "")
    place = str(inputs.get("location_name") or "the chosen location")
    fos = order.fulfillment_orders or ()
    fo = next((f for f in fos if f.id == fo_id), None)
    if fo is None or not target:
        return Refused(f"{order.name} has no such fulfillment order any more; open the form again from the alert.")
    if fo.location_id == target:
        return AlreadyDone(f"{order.name} ships from {place} already.")
    if fo.status in FINISHED_FO_STATUSES and any(
        f.location_id == target and f.status not in FINISHED_FO_STATUSES for f in fos
    ):
        return AlreadyDone(f"{order.name} ships from {place} already.")  # moved with a part shipped: a new one
    if "MOVE" not in fo.supported_actions:
        if fo.status in FINISHED_FO_STATUSES:
            return AlreadyDone(f"Nothing of {order.name} is left to move: it shipped or was cancelled.")
        if fo.request_status in _REQUESTED:
            return Refused(
                f"{fo.service or 'The fulfillment service'} has the fulfillment request for {order.name}, so Shopify "
                "does not move it. Cancel the request first."
            )
        state = fo.status.lower().replace("_", " ")
        return Refused(f"Shopify does not let {order.name} move while it is {state}. Check the order in Shopify.")
    steps: list[Step] = [
        Mutation("FulfillmentOrderMove", "fulfillmentOrderMove", {"id": fo.id, "newLocationId": target})
    ]
    detail = f"to {place}"
    holds = out_of_stock_holds(fo)
    whole = all(line.remaining == line.total for line in fo.lines)
    if inputs.get("release_hold") and holds and whole:
        release = Mutation(
            "HoldRelease",
            "fulfillmentOrderReleaseHold",
            {"id": fo.id, "holdIds": holds},
            if_refused="the out-of-stock hold could not be released",
        )
        steps.append(release)
        detail += ", out-of-stock hold released"
    elif holds:
        detail += "; still on hold for stock: release the hold once it can ship"
    return Plan(tuple(steps), detail)


Planner = Callable[[Order, Mapping[str, Any], Facts], Decision]
PLANNERS: Mapping[str, Planner] = {
    "fulfill": plan_fulfill,
    "request_fulfillment": plan_request_fulfillment,
    "cancel_request": plan_cancel_request,
    "release_hold": plan_release_hold,
    "archive": plan_archive,
    "unarchive": plan_unarchive,
    "notify_customer": plan_notify_customer,
    "cancel_order": plan_cancel_order,
    "snooze": plan_snooze,
    "unfulfill": plan_unfulfill,
    "capture_payment": plan_capture_payment,
    "mark_as_paid": plan_mark_as_paid,
    "delete": plan_delete,
    "move": plan_move,
}


def plan_action(action: str, order: Order, inputs: Mapping[str, Any], facts: Facts) -> Decision:
    """What `action` (a key of PLANNERS) would do to `order` now."""
    return PLANNERS[action](order, inputs, facts)


def lost_answer_applied(replanned: Decision, lost: Mutation) -> bool | None:
    """Whether a mutation whose answer was lost applied, judged by the plan made again against the order read anew:
    not if that plan would send the very same mutation first; it did if the plan finds the action done (or under
    way), or would send something else first; None (cannot tell) if the plan is refused."""
    if isinstance(replanned, Refused):
        return None
    if isinstance(replanned, AlreadyDone):
        return True
    return replanned.first_sent != lost


def _open(order: Order) -> list[FulfillmentOrder]:
    return [fo for fo in order.fulfillment_orders or () if fo.status in _OPEN_FO]


def _services(fos: list[FulfillmentOrder]) -> str:
    names = sorted({fo.service or fo.location or "the fulfillment service" for fo in fos})
    return " and ".join(names)


def _ago(age: timedelta) -> str:
    return "just now" if age < timedelta(minutes=1) else f"{format_duration(age)} ago"
