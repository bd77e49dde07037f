"""How orderbot words what people do to orders: the thread reply once an action is done, what a resolved alert says
resolved it, a cancellation's news, a failure and a refusal. Each is one mrkdwn line; shop and user text in it is
escaped here. Also the reasons Shopify accepts for cancelling an order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from bot.domain.durations import format_duration
from bot.domain.mrkdwn import person, safe

_DETAIL_LIMIT = 1500  # half of what a message's text may hold

# OrderCancelReason -> label.
CANCEL_REASONS = {
    "CUSTOMER": "The customer asked to cancel",
    "DECLINED": "The payment was declined",
    "FRAUD": "The order is fraudulent",
    "INVENTORY": "Items are out of stock",
    "STAFF": "A staff mistake",
    "OTHER": "Another reason",
}
# How a cancelled order's payment goes back (action_plans.REFUND_METHODS: what each sends), as a form offers it
# and as the audit log and the thread reply say it once done.
REFUND_CHOICES = {
    "original": "Refund to the original payment method",
    "store_credit": "Refund as store credit",
    "none": "No refund",
}
REFUND_DETAILS = {
    "original": "refunded to the original payment method",
    "store_credit": "refunded as store credit",
    "none": "no refund",
}


@dataclass(frozen=True, slots=True)
class _Words:
    """How to say an action: done (past tense), attempted (infinitive), and what to add once it is done; `resolved`,
    for an action Shopify completes in the background, is what it ends as (the alert says it once it has)."""

    done: str
    attempt: str
    after: str = ""
    resolved: str = ""


_ACTION_WORDS = {
    "fulfill": _Words("marked {order} as fulfilled", "mark {order} as fulfilled"),
    "request_fulfillment": _Words("asked the fulfillment service to ship {order}", "request fulfillment of {order}"),
    "cancel_request": _Words(
        "asked the fulfillment service to cancel its request for {order}",
        "cancel the fulfillment request for {order}",
        " The service may still ship it if it has already started.",
    ),
    "release_hold": _Words("released the hold on {order}", "release the hold on {order}"),
    "archive": _Words("archived {order}", "archive {order}", " Its fulfillment status has not changed."),
    "unarchive": _Words("unarchived {order}", "unarchive {order}"),
    "notify_customer": _Words("emailed the customer about {order}", "email the customer about {order}"),
    "cancel_order": _Words(
        "asked Shopify to cancel {order}",
        "cancel {order}",
        " Shopify does it in the background; the alert updates when it is done.",
        resolved="cancelled {order}",
    ),
    "snooze": _Words("snoozed {order}", "snooze {order}", " orderbot will look at it again when the snooze ends."),
    "unfulfill": _Words(
        "cancelled the fulfillment of {order}", "cancel the fulfillment of {order}", " It is unfulfilled again."
    ),
    "capture_payment": _Words("captured the payment for {order}", "capture the payment for {order}"),
    "mark_as_paid": _Words("marked {order} as paid", "mark {order} as paid"),
    "move": _Words("moved {order}", "move {order} to another location"),
    "delete": _Words("deleted {order}", "delete {order}", " It is gone from Shopify; orderbot's log keeps its past."),
    # not order actions, but refused like them
    "bulk": _Words("ran a bulk action", "run an action on many orders at once"),
    "settings": _Words("changed orderbot's settings", "change orderbot's settings"),
}


def _words(action: str) -> _Words:
    words = _ACTION_WORDS.get(action)
    if words is None:
        raise ValueError(f"unknown action {action!r}; use one of {', '.join(_ACTION_WORDS)}")
    return words


def _order_words(order_name: str | None) -> str:
    return safe(order_name) if order_name else "this order"


def action_reply(action: str, actor_id: str, detail: str | None, *, order_name: str | None = None) -> str:
    """The thread reply after an action, naming who did it, e.g.
    "<@U0ADMIN> marked #1001 as fulfilled (UPS 1Z999, customer notified)." `detail` is plain text (escaped here)."""
    words = _words(action)
    said = f" ({safe(detail, _DETAIL_LIMIT)})" if detail else ""
    return f"{person(actor_id)} {words.done.format(order=_order_words(order_name))}{said}.{words.after}"


def action_resolution(action: str, actor_id: str, detail: str | None, *, order_name: str | None = None) -> str:
    """What a resolved alert says resolved it after an action: its thread reply, or for an action Shopify completes
    in the background (cancelling an order), what it ended as, e.g. "<@U0ADMIN> cancelled #1004 (reason …)."."""
    words = _words(action)
    if not words.resolved:
        return action_reply(action, actor_id, detail, order_name=order_name)
    said = f" ({safe(detail, _DETAIL_LIMIT)})" if detail else ""
    return f"{person(actor_id)} {words.resolved.format(order=_order_words(order_name))}{said}."


def cancellation_unanswered_reply(actor_id: str, *, order_name: str | None = None) -> str:
    """The thread reply when orderCancel's answer was lost and the order is not cancelled yet: it may be under way."""
    return (
        f"{person(actor_id)} asked Shopify to cancel {_order_words(order_name)}, and Shopify did not answer, so it may "
        "be cancelling it now. orderbot checks and updates the alert; do not cancel it again meanwhile."
    )


def cancellation_settled_reply(
    outcome: str, actor_id: str, *, order_name: str | None, waited: timedelta, job_known: bool
) -> str:
    """The thread reply once a cancellation in flight is settled: "cancelled" (Shopify shows it), "not_cancelled"
    (its job ran and the order is not cancelled), or "unconfirmed" (nothing confirmed it in the time orderbot waits;
    `job_known`: Shopify had answered with its job, else the request's answer was lost)."""
    order, who = _order_words(order_name), person(actor_id)
    if outcome == "cancelled":
        return f"Shopify has cancelled {order}, as {who} asked."
    if outcome == "not_cancelled":
        return (
            f"Shopify finished the cancellation {who} asked for, but {order} is not cancelled. Check the order in "
            "Shopify; the alert shows it as it is."
        )
    if job_known:
        return (
            f"Shopify has not finished cancelling {order} {format_duration(waited)} after {who} asked. Check the "
            "order in Shopify before you cancel it again."
        )
    return (
        f"Shopify has still not cancelled {order} {format_duration(waited)} after {who}'s request got no answer, so "
        "the request most likely never reached it. Check the order in Shopify, then cancel it again if it should be."
    )


def action_failed_reply(action: str, actor_id: str, error: str, *, order_name: str | None = None) -> str:
    """The thread reply when an action failed; `error` (Shopify's or the mail server's message) is plain text."""
    attempt = _words(action).attempt.format(order=_order_words(order_name))
    reason = safe(error, _DETAIL_LIMIT).rstrip(".")
    return f"{person(actor_id)} tried to {attempt}, but it did not work: {reason}."


def refusal(action: str, why: str) -> str:
    """The ephemeral answer when someone may not (or cannot) do an action now. `why` is mrkdwn written by the caller,
    and should say what to do instead, e.g. "only admins can. Ask one to add you to `SLACK_ADMINS`."."""
    return f"You can't {_words(action).attempt.format(order='this order')}: {why}"
