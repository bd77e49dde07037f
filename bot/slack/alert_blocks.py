"""The alert: one message per order, posted once and updated in place (stuck, snoozed, resolved, waiting), with
its buttons and their confirm dialogs. Pure: no I/O, `now` passed in; see blocks.py for how text is escaped and cut.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    InteractiveElement,
    Option,
    PlainTextObject,
    StaticSelectElement,
)

from bot.domain.alerts import resolved_actions
from bot.domain.durations import format_duration
from bot.domain.mrkdwn import NAME_LIMIT, clip, escape_mrkdwn, person, safe
from bot.domain.orders import FINISHED_FO_STATUSES, LIVE_FULFILLMENT_STATUSES, FulfillmentOrder, Order
from bot.domain.rules import REASON_TITLES, Verdict
from bot.slack.blocks import (
    ACTION_IDS,
    ARCHIVE,
    CANCEL_ORDER,
    CANCEL_REQUEST,
    CAPTURE_PAYMENT,
    DELETE,
    FULFILL,
    MARK_AS_PAID,
    MOVE,
    NOTIFY_CUSTOMER,
    RELEASE_HOLD,
    REQUEST_FULFILLMENT,
    SNOOZE,
    SNOOZE_CHOICES,
    UNARCHIVE,
    admin_url,
    bullets,
    confirm,
    context,
    customer_name,
    first_items,
    message_payload,
    place_name,
    section,
    slack_date,
    unique,
)

# FulfillmentHoldReason -> words.
_HOLD_NAMES = {
    "AWAITING_PAYMENT": "Awaiting payment",
    "HIGH_RISK_OF_FRAUD": "High risk of fraud",
    "INCORRECT_ADDRESS": "Incorrect address",
    "INVENTORY_OUT_OF_STOCK": "Out of stock",
    "UNKNOWN_DELIVERY_DATE": "Unknown delivery date",
    "ONLINE_STORE_POST_PURCHASE_CROSS_SELL": "Post-purchase offer",
    "AWAITING_RETURN_ITEMS": "Awaiting returned items",
    "OTHER": "Other",
}
# OrderDisplayFulfillmentStatus -> words.
_FULFILLMENT_WORDS = {
    "UNFULFILLED": "unfulfilled",
    "PARTIALLY_FULFILLED": "partially fulfilled",
    "FULFILLED": "fulfilled",
    "RESTOCKED": "restocked",
    "PENDING_FULFILLMENT": "pending fulfillment",
    "OPEN": "open",
    "IN_PROGRESS": "in progress",
    "ON_HOLD": "on hold",
    "SCHEDULED": "scheduled",
    "REQUEST_DECLINED": "request declined",
}
_SEVERITY_MARKERS = {"warning": ":warning:", "critical": ":rotating_light:"}
_QUIET_MARKERS = {
    "waiting": ":hourglass_flowing_sand:",
    "cancelling": ":hourglass_flowing_sand:",
    "scheduled": ":calendar:",
    "unknown": ":grey_question:",
}
_NOTE_LIMIT = 100  # how much of a hold's note to show


# --- facts about an order -------------------------------------------------------------------------------------------


def _open_fulfillment_orders(order: Order) -> list[FulfillmentOrder]:
    return [fo for fo in order.fulfillment_orders or () if fo.status not in FINISHED_FO_STATUSES]


def _hold_name(reason: str) -> str:
    return _HOLD_NAMES.get(reason) or reason.replace("_", " ").capitalize()


def _holds(fos: Iterable[FulfillmentOrder]) -> list[str]:
    """Each hold by its reason, with the note Shopify keeps for it (unescaped)."""
    return [
        f"{_hold_name(hold.reason)} (“{clip(hold.notes, _NOTE_LIMIT)}”)" if hold.notes else _hold_name(hold.reason)
        for fo in fos
        for hold in fo.holds
    ]


def _tracking(order: Order) -> list[str]:
    return [
        " ".join(part for part in (tracking.company, tracking.number) if part)
        for fulfillment in order.fulfillments
        if fulfillment.status in LIVE_FULFILLMENT_STATUSES
        for tracking in fulfillment.tracking
        if tracking.number
    ]


def _order_line(order: Order, shop: str, marker: str) -> str:
    link = f"<{admin_url(order, shop)}|{safe(order.name)}>"
    total = f"{order.total.amount} {order.total.currency}".strip()
    return f"{marker} *{link}* · {customer_name(order)} · {escape_mrkdwn(total)}"


# Other reasons not worth repeating under a reason that explains them (an unpaid order is not shipped on purpose).
_IMPLIED = {"payment_pending": ("unfulfilled_overdue",)}


def _facts(order: Order, verdict: Verdict) -> list[str]:
    """The context under a stuck alert: other reasons, who ships it, tracking, holds."""
    facts = []
    others = [r for r in verdict.other_reasons if r not in _IMPLIED.get(verdict.reason, ())]
    if others:
        facts.append("*Also:* " + ", ".join(REASON_TITLES[reason] for reason in others))
    fos = _open_fulfillment_orders(order) or list(order.fulfillment_orders or ())
    places = unique(place_name(fo) for fo in fos)
    if places:
        facts.append("*Ships from:* " + ", ".join(first_items([safe(place) for place in places])))
    numbers = unique(_tracking(order))
    tracking = ", ".join(first_items([safe(number) for number in numbers])) if numbers else "no tracking number yet"
    facts.append(f"*Tracking:* {tracking}")
    holds = unique(_holds(fos))
    if holds:
        facts.append("*Holds:* " + ", ".join(first_items([safe(hold, 2 * _NOTE_LIMIT) for hold in holds])))
    return facts


def _final_status(order: Order) -> str:
    fulfillment = _FULFILLMENT_WORDS.get(order.fulfillment_status, order.fulfillment_status.lower())
    if order.cancelled:  # Shopify archives a cancelled order too
        return "Now cancelled."
    if order.closed and order.fulfillment_status == "FULFILLED":
        return "Now fulfilled and archived."
    if order.closed:
        return f"Now archived; archiving leaves it {fulfillment}."
    return f"Now {fulfillment}."


# --- the alert ------------------------------------------------------------------------------------------------------


def alert_message(
    order: Order,
    verdict: Verdict,
    *,
    shop: str,
    now: datetime,
    resolution: str | None = None,
    snoozed_until: datetime | None = None,
    snoozed_by: str | None = None,
) -> dict:
    """The one alert of an order, posted once and then updated in place.

    In order of precedence: stuck (the reason, how long, what to do, and buttons for `verdict.actions`); resolved,
    when `resolution` is given (mrkdwn written by the caller, which may hold `<@U…>` mentions: escape shop text in it
    with `escape_mrkdwn`); snoozed, when `snoozed_until` is given or the verdict is "snoozed" (`snoozed_by`: a Slack
    user id); otherwise what orderbot is waiting for. A stuck alert has its verdict's buttons; a resolved one, Delete
    when Shopify can delete its order (archived or cancelled).
    """
    if verdict.stuck:
        return _stuck_alert(order, verdict, shop, now)
    if resolution is not None:
        return _resolved_alert(order, verdict, shop, resolution)
    until = snoozed_until or (verdict.due_at if verdict.status == "snoozed" else None)
    if until is not None:
        return _snoozed_alert(order, shop, until, snoozed_by)
    return _quiet_alert(order, verdict, shop)


def _stuck_alert(order: Order, verdict: Verdict, shop: str, now: datetime) -> dict:
    title = REASON_TITLES[verdict.reason]
    lasted = format_duration(now - verdict.since)
    critical = " (critical)" if verdict.severity == "critical" else ""
    headline = _order_line(order, shop, _SEVERITY_MARKERS.get(verdict.severity, ":warning:"))
    blocks: list[Block] = [
        section(f"{headline}\n*{title}* for {lasted}{critical}, since {slack_date(verdict.since)}"),
        section(escape_mrkdwn(verdict.explanation)),
        section("*Next steps*\n" + bullets(escape_mrkdwn(step) for step in verdict.next_steps)),
        context(_facts(order, verdict)),
    ]
    if verdict.actions:
        blocks.append(action_buttons(order, verdict.actions))
    return message_payload(f"{safe(order.name)} is stuck: {title} ({lasted})", blocks)


def _resolved_alert(order: Order, verdict: Verdict, shop: str, resolution: str) -> dict:
    line = _order_line(order, shop, ":white_check_mark:")
    deleted = verdict.status == "deleted"
    status = "" if deleted else f"\n{_final_status(order)}"  # a deleted order has no status left to give
    blocks: list[Block] = [section(f"{line}\n*Resolved:* {resolution}{status}")]
    actions = resolved_actions(verdict)
    if actions:
        blocks.append(ActionsBlock(elements=[_action_element(action, order) for action in actions]))
    return message_payload(f"{safe(order.name)} resolved: {resolution}", blocks)


def _snoozed_alert(order: Order, shop: str, until: datetime, snoozed_by: str | None) -> dict:
    by = f" by {person(snoozed_by)}" if snoozed_by else ""
    line = _order_line(order, shop, ":zzz:")
    text = f"{line}\nSnoozed until {slack_date(until)}{by}. orderbot will look at it again then."
    fallback = f"{safe(order.name)} is snoozed until {until.astimezone(UTC):%d %b %H:%M} UTC"
    return message_payload(fallback, [section(text)])


def _quiet_alert(order: Order, verdict: Verdict, shop: str) -> dict:
    line = _order_line(order, shop, _QUIET_MARKERS.get(verdict.status, ":information_source:"))
    blocks = [section(f"{line}\n{escape_mrkdwn(verdict.explanation)}")]
    return message_payload(f"{safe(order.name)}: {escape_mrkdwn(verdict.explanation)}", blocks)


# --- the alert's buttons --------------------------------------------------------------------------------------------


def _confirm_cancel_request(order: Order) -> ConfirmObject:
    fos = [fo for fo in _open_fulfillment_orders(order) if "REQUEST_CANCELLATION" in fo.supported_actions]
    names = unique(clip(fo.service or fo.location, NAME_LIMIT) for fo in fos if fo.service or fo.location)
    who = ", ".join(first_items(names)) or "the fulfillment service"
    return confirm(
        f"Cancel the fulfillment request for {order.name}?",
        f"orderbot will ask {who} to cancel the request. {who} may still ship the order if it has already started, "
        "so check with them before you ship it yourself.",
        "Cancel request",
        "Keep request",
    )


def _confirm_release_hold(order: Order) -> ConfirmObject:
    fos = [fo for fo in _open_fulfillment_orders(order) if "RELEASE_HOLD" in fo.supported_actions]
    holds = unique(_holds(fos))
    released = "; ".join(first_items(holds)) if holds else "every hold on it"
    return confirm(
        f"Release the hold on {order.name}?",
        f"This releases: {released}. The order can then be shipped.",
        "Release hold",
        "Keep on hold",
    )


def _confirm_archive(order: Order) -> ConfirmObject:
    return confirm(
        f"Archive {order.name}?",
        f"Archiving hides {order.name} from open orders in Shopify. It does not change its fulfillment status: nothing "
        "is shipped, refunded or cancelled. You can unarchive it later.",
        "Archive",
        "Go back",
    )


def _confirm_cancel_order(order: Order) -> ConfirmObject:
    return confirm(
        f"Cancel {order.name}?",
        "Next you choose the reason, the refund and the restock. Once you submit, the cancellation cannot be undone.",
        "Continue",
        "Go back",
        style="danger",
    )


def _confirm_capture_payment(order: Order) -> ConfirmObject:
    amount = order.capturable_amount
    money = f"{amount.amount} {amount.currency}".strip() if amount else "the authorized amount"
    expires = order.authorization_expires_at
    if expires is None:
        expiry = "Shopify gives no expiry for this authorization; most expire 7 days after the order."
    else:
        expiry = f"The authorization expires on {expires.astimezone(UTC):%d %b %Y %H:%M} UTC."
    return confirm(
        f"Capture {money} for {order.name}?",
        f"orderbot will capture {money}, the amount the customer's payment authorized, so the customer is charged. "
        f"{expiry}",
        "Capture",
        "Go back",
    )


def _confirm_mark_as_paid(order: Order) -> ConfirmObject:
    methods = ", ".join(order.payment_gateways)
    paid_by = f" ({methods})" if methods else ""
    return confirm(
        f"Mark {order.name} as paid?",
        f"Do this only once the money has arrived{paid_by}. Shopify records a payment for what is still owed; it "
        "charges no one.",
        "Mark as paid",
        "Go back",
    )


def _confirm_delete(order: Order) -> ConfirmObject:
    return confirm(
        f"Delete {order.name}?",
        f"Shopify deletes {order.name} for good: this cannot be undone. orderbot's log keeps what was done to it.",
        "Delete",
        "Go back",
        style="danger",
    )


@dataclass(frozen=True, slots=True)
class _Button:
    label: str
    style: str | None = None
    confirm: Callable[[Order], ConfirmObject] | None = None


_BUTTONS = {
    FULFILL: _Button("Mark as fulfilled", "primary"),
    REQUEST_FULFILLMENT: _Button("Request fulfillment"),
    CANCEL_REQUEST: _Button("Cancel request", confirm=_confirm_cancel_request),
    RELEASE_HOLD: _Button("Release hold", confirm=_confirm_release_hold),
    ARCHIVE: _Button("Archive", confirm=_confirm_archive),
    UNARCHIVE: _Button("Unarchive"),
    NOTIFY_CUSTOMER: _Button("Email customer"),
    CANCEL_ORDER: _Button("Cancel order", "danger", _confirm_cancel_order),
    CAPTURE_PAYMENT: _Button("Capture payment", "primary", _confirm_capture_payment),
    MARK_AS_PAID: _Button("Mark as paid", confirm=_confirm_mark_as_paid),
    DELETE: _Button("Delete", "danger", _confirm_delete),
    MOVE: _Button("Move…"),  # its form, listing where the order can go, is the confirmation
}


def action_buttons(order: Order, actions: Iterable[str]) -> ActionsBlock:
    """The buttons (and the snooze menu) for `actions` on `order`: the same ids, labels and confirm dialogs wherever
    they are drawn (the alert, the Home tab), so the same listeners answer them."""
    return ActionsBlock(elements=[_action_element(action, order) for action in actions])


def _action_element(action: str, order: Order) -> InteractiveElement:
    if action == SNOOZE:
        return StaticSelectElement(
            action_id=SNOOZE,
            placeholder=PlainTextObject(text="Snooze…"),
            options=[Option(value=f"{order.id}|{code}", text=label) for code, label in SNOOZE_CHOICES.items()],
        )
    button = _BUTTONS.get(action)
    if button is None:
        raise ValueError(f"unknown action {action!r}; use one of {', '.join(ACTION_IDS)}")
    label = "Add tracking" if action == FULFILL and order.needs_tracking_only() else button.label
    return ButtonElement(
        action_id=action,
        text=PlainTextObject(text=label),
        value=order.id,
        style=button.style,
        confirm=button.confirm(order) if button.confirm else None,
    )
