"""Block Kit builders: the alert (stuck, snoozed, resolved, waiting) and the three modals.

Pure: no I/O, `now` passed in. Every builder makes slack_sdk models and returns plain dicts for the Web API through
`message_payload` or `modal_view`: `to_dict()` checks each element's limits, and those two also check the block count
Slack allows (50 in a message, 100 in a modal), which slack_sdk does not.

Text: mrkdwn fields escape shop and user text with `escape_mrkdwn`; plain_text fields (buttons, labels, confirm
dialogs) are shown as they are. Lists that could grow with the order (lines, tracking numbers, holds) are cut with
"and N more", and long strings are clipped, so the largest order Shopify returns still fits.

The one-line replies (after an action, a refusal) are worded in bot/domain/action_words.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    CheckboxesElement,
    ConfirmObject,
    ContextBlock,
    InputBlock,
    InteractiveElement,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
    UrlInputElement,
)
from slack_sdk.models.views import View

from bot.domain.action_words import CANCEL_REASONS
from bot.domain.durations import format_duration
from bot.domain.mrkdwn import NAME_LIMIT, clip, escape_mrkdwn, person, safe
from bot.domain.orders import FINISHED_FO_STATUSES, LIVE_FULFILLMENT_STATUSES, FulfillmentOrder, Order
from bot.domain.redaction import NO_CUSTOMER
from bot.domain.rules import REASON_TITLES, Verdict

MESSAGE_BLOCK_LIMIT = 50
MODAL_BLOCK_LIMIT = 100
PRIVATE_METADATA_LIMIT = 3000
_SECTION_TEXT_LIMIT = 3000
_MODAL_TITLE_LIMIT = 24
_CONFIRM_TITLE_LIMIT = 100
_CONFIRM_TEXT_LIMIT = 300
_BUTTON_TEXT_LIMIT = 75

# Button and select action ids (docs/commands.md, manifest.yml). Each carries the order's GraphQL id in its value.
FULFILL = "fulfill"
REQUEST_FULFILLMENT = "request_fulfillment"
CANCEL_REQUEST = "cancel_request"
RELEASE_HOLD = "release_hold"
ARCHIVE = "archive"
UNARCHIVE = "unarchive"
NOTIFY_CUSTOMER = "notify_customer"
CANCEL_ORDER = "cancel_order"
SNOOZE = "snooze"
UNFULFILL = "unfulfill"  # no button: `/orders unfulfill` only (cancels a fulfillment; Shopify's only way back)
ACTION_IDS = (
    FULFILL,
    REQUEST_FULFILLMENT,
    CANCEL_REQUEST,
    RELEASE_HOLD,
    ARCHIVE,
    UNARCHIVE,
    NOTIFY_CUSTOMER,
    CANCEL_ORDER,
    SNOOZE,
)
# The snooze select's option values are f"{order.id}|{code}".
SNOOZE_CHOICES = {"4h": "4 hours", "1d": "1 day", "3d": "3 days", "1w": "1 week"}

# Modal callback ids (docs/architecture.md, "Slack ids").
FULFILL_MODAL = "fulfill_modal"
NOTIFY_MODAL = "notify_modal"
CANCEL_ORDER_MODAL = "cancel_order_modal"

# Modal inputs: each input block's block_id equals its element's action_id, so a submitted value is at
# `view.state.values[ID][ID]`. A checkbox input's single option has the value ID; it is ticked when
# `selected_options` is not empty.
TRACKING_NUMBER = "tracking_number"
TRACKING_COMPANY = "tracking_company"
TRACKING_URL = "tracking_url"
NO_TRACKING = "no_tracking"
# NOTIFY_CUSTOMER (above) is also the "email the customer" checkbox of fulfill_modal and cancel_order_modal.
SUBJECT = "subject"
MESSAGE = "message"
REASON = "reason"
RESTOCK = "restock"
REFUND = "refund"
STAFF_NOTE = "staff_note"
MESSAGE_MAX_LENGTH = 3000
SUBJECT_MAX_LENGTH = 200
STAFF_NOTE_MAX_LENGTH = 255

# Carriers as Shopify spells them (FulfillmentTrackingInfo.company), so Shopify builds the tracking link itself.
# OTHER_CARRIER means "not in this list": send no company, and a tracking URL if there is one.
OTHER_CARRIER = "Other"
TRACKING_COMPANIES = (
    "UPS",
    "USPS",
    "FedEx",
    "DHL Express",
    "PostNord SE",
    "PostNord DK",
    "PostNord NO",
    "Royal Mail",
    "Canada Post",
    "Australia Post",
    OTHER_CARRIER,
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

# How many items of a list to show before "and N more", and how long one name may be.
_LIST_LIMIT = 3
_LINES_PER_FULFILLMENT_ORDER = 8
_NOTE_LIMIT = 100


# --- text helpers ---------------------------------------------------------------------------------------------------


def _first(items: Sequence[str], limit: int = _LIST_LIMIT) -> list[str]:
    if len(items) <= limit:
        return list(items)
    return [*items[:limit], f"and {len(items) - limit} more"]


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _bullets(items: Iterable[str]) -> str:
    return "\n".join(f"• {item}" for item in items)


def slack_date(moment: datetime) -> str:
    """The moment in each reader's own time zone, e.g. "Yesterday at 14:05", with a UTC fallback."""
    fallback = f"{moment.astimezone(UTC):%d %b %Y %H:%M} UTC"
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} at {{time}}|{fallback}>"


def admin_url(order: Order, shop: str) -> str:
    """The order in the Shopify admin; `shop` is the my-store.myshopify.com domain."""
    handle = shop.removesuffix(".myshopify.com")
    return f"https://admin.shopify.com/store/{handle}/orders/{order.legacy_id}"


# --- payloads: the one place that checks block counts ---------------------------------------------------------------


def _within(blocks: Sequence[Block], limit: int, surface: str) -> None:
    if len(blocks) > limit:
        raise ValueError(f"{surface} has {len(blocks)} blocks; Slack allows at most {limit}")


def message_payload(text: str, blocks: Sequence[Block]) -> dict:
    """`{"text", "blocks"}` for chat.postMessage / chat.update; `text` is the notification fallback."""
    _within(blocks, MESSAGE_BLOCK_LIMIT, "A message")
    return {"text": clip(text, _SECTION_TEXT_LIMIT), "blocks": [block.to_dict() for block in blocks]}


def modal_view(
    *, callback_id: str, title: str, submit: str, close: str, blocks: Sequence[Block], private_metadata: str
) -> dict:
    """A modal view for views.open. `private_metadata` is the caller's opaque routing data."""
    if len(private_metadata) > PRIVATE_METADATA_LIMIT:
        raise ValueError(
            f"private_metadata has {len(private_metadata)} characters; Slack allows at most {PRIVATE_METADATA_LIMIT}"
        )
    _within(blocks, MODAL_BLOCK_LIMIT, "A modal")
    return View(
        type="modal",
        callback_id=callback_id,
        title=PlainTextObject(text=clip(title, _MODAL_TITLE_LIMIT)),
        submit=PlainTextObject(text=submit),
        close=PlainTextObject(text=close),
        blocks=list(blocks),
        private_metadata=private_metadata,
    ).to_dict()


def section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=clip(text, _SECTION_TEXT_LIMIT)))


def context(lines: Iterable[str]) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=clip(line, _SECTION_TEXT_LIMIT)) for line in lines])


# --- facts about an order -------------------------------------------------------------------------------------------


def _open_fulfillment_orders(order: Order) -> list[FulfillmentOrder]:
    return [fo for fo in order.fulfillment_orders or () if fo.status not in FINISHED_FO_STATUSES]


def _place(fo: FulfillmentOrder) -> str:
    if fo.service:
        return f"{fo.service} (fulfillment service)"
    return fo.location or "an unnamed location"


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


def _customer(order: Order) -> str:
    customer = order.customer
    name = customer and (customer.name or customer.email)
    return safe(name) if name else NO_CUSTOMER


def _order_line(order: Order, shop: str, marker: str) -> str:
    link = f"<{admin_url(order, shop)}|{safe(order.name)}>"
    total = f"{order.total.amount} {order.total.currency}".strip()
    return f"{marker} *{link}* · {_customer(order)} · {escape_mrkdwn(total)}"


# Other reasons not worth repeating under a reason that explains them (an unpaid order is not shipped on purpose).
_IMPLIED = {"payment_pending": ("unfulfilled_overdue",)}


def _facts(order: Order, verdict: Verdict) -> list[str]:
    """The context under a stuck alert: other reasons, who ships it, tracking, holds."""
    facts = []
    others = [r for r in verdict.other_reasons if r not in _IMPLIED.get(verdict.reason, ())]
    if others:
        facts.append("*Also:* " + ", ".join(REASON_TITLES[reason] for reason in others))
    fos = _open_fulfillment_orders(order) or list(order.fulfillment_orders or ())
    places = _unique(_place(fo) for fo in fos)
    if places:
        facts.append("*Ships from:* " + ", ".join(_first([safe(place) for place in places])))
    numbers = _unique(_tracking(order))
    tracking = ", ".join(_first([safe(number) for number in numbers])) if numbers else "no tracking number yet"
    facts.append(f"*Tracking:* {tracking}")
    holds = _unique(_holds(fos))
    if holds:
        facts.append("*Holds:* " + ", ".join(_first([safe(hold, 2 * _NOTE_LIMIT) for hold in holds])))
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
    user id); otherwise what orderbot is waiting for. Only a stuck alert has buttons.
    """
    if verdict.stuck:
        return _stuck_alert(order, verdict, shop, now)
    if resolution is not None:
        return _resolved_alert(order, shop, resolution, deleted=verdict.status == "deleted")
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
        section("*Next steps*\n" + _bullets(escape_mrkdwn(step) for step in verdict.next_steps)),
        context(_facts(order, verdict)),
    ]
    if verdict.actions:
        blocks.append(ActionsBlock(elements=[_action_element(action, order) for action in verdict.actions]))
    return message_payload(f"{safe(order.name)} is stuck: {title} ({lasted})", blocks)


def _resolved_alert(order: Order, shop: str, resolution: str, *, deleted: bool = False) -> dict:
    line = _order_line(order, shop, ":white_check_mark:")
    status = "" if deleted else f"\n{_final_status(order)}"  # a deleted order has no status left to give
    blocks = [section(f"{line}\n*Resolved:* {resolution}{status}")]
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


def confirm(title: str, text: str, confirm: str, deny: str, style: str | None = None) -> ConfirmObject:
    return ConfirmObject(
        title=PlainTextObject(text=clip(title, _CONFIRM_TITLE_LIMIT)),
        text=PlainTextObject(text=clip(text, _CONFIRM_TEXT_LIMIT)),
        confirm=PlainTextObject(text=confirm),
        deny=PlainTextObject(text=deny),
        style=style,
    )


def _confirm_cancel_request(order: Order) -> ConfirmObject:
    fos = [fo for fo in _open_fulfillment_orders(order) if "REQUEST_CANCELLATION" in fo.supported_actions]
    names = _unique(clip(fo.service or fo.location, NAME_LIMIT) for fo in fos if fo.service or fo.location)
    who = ", ".join(_first(names)) or "the fulfillment service"
    return confirm(
        f"Cancel the fulfillment request for {order.name}?",
        f"orderbot will ask {who} to cancel the request. {who} may still ship the order if it has already started, "
        "so check with them before you ship it yourself.",
        "Cancel request",
        "Keep request",
    )


def _confirm_release_hold(order: Order) -> ConfirmObject:
    fos = [fo for fo in _open_fulfillment_orders(order) if "RELEASE_HOLD" in fo.supported_actions]
    holds = _unique(_holds(fos))
    released = "; ".join(_first(holds)) if holds else "every hold on it"
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
}


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


# --- modals ---------------------------------------------------------------------------------------------------------


def _input(
    block_id: str, label: str, element: InteractiveElement, *, optional: bool, hint: str | None = None
) -> InputBlock:
    return InputBlock(
        block_id=block_id,
        label=PlainTextObject(text=label),
        element=element,
        optional=optional,
        hint=PlainTextObject(text=hint) if hint else None,
    )


def _checkbox(action_id: str, label: str, option_text: str, *, checked: bool) -> InputBlock:
    """An optional single checkbox."""
    option = Option(value=action_id, text=PlainTextObject(text=option_text))
    element = CheckboxesElement(action_id=action_id, options=[option], initial_options=[option] if checked else None)
    return _input(action_id, label, element, optional=True)


def _to_ship(fo: FulfillmentOrder) -> SectionBlock:
    lines = [
        f"{safe(line.title or line.sku or 'Untitled item')} × {line.remaining}" for line in fo.lines if line.remaining
    ]
    items = _first(lines, _LINES_PER_FULFILLMENT_ORDER) if lines else ["Every item still to ship"]
    return section(f"*From {safe(_place(fo))}*\n{_bullets(items)}")


def fulfill_modal(order: Order, *, private_metadata: str) -> dict:
    """Mark as fulfilled: what ships, then tracking number, carrier, URL, "no tracking", and the customer email.

    An empty tracking number is meant to be accepted only when NO_TRACKING is ticked; the submission handler checks.
    """
    fos = order.fulfillable()
    adding_tracking = order.needs_tracking_only()
    if fos:
        what = "Shopify will mark these items as shipped:"
    elif adding_tracking:
        what = "It has shipped without a tracking number. Enter it here and orderbot adds it to the shipment."
    else:
        what = "Nothing on this order can be fulfilled right now."
    intro = f"*{safe(order.name)}* · {_customer(order)}\n{what}"
    carriers = [Option(value=name, text=name) for name in TRACKING_COMPANIES]
    blocks = [
        section(intro),
        *(_to_ship(fo) for fo in fos),
        _input(
            TRACKING_NUMBER,
            "Tracking number",
            PlainTextInputElement(action_id=TRACKING_NUMBER, max_length=255),
            optional=True,
        ),
        _input(
            TRACKING_COMPANY,
            "Carrier",
            StaticSelectElement(action_id=TRACKING_COMPANY, placeholder="Choose a carrier", options=carriers),
            optional=True,
        ),
        _input(
            TRACKING_URL,
            "Tracking link",
            UrlInputElement(action_id=TRACKING_URL),
            optional=True,
            hint=f"Only needed when the carrier is {OTHER_CARRIER}: Shopify builds links for the others.",
        ),
    ]
    if not adding_tracking:  # it has shipped: only the number is missing
        blocks.append(_checkbox(NO_TRACKING, "No tracking number?", "Ship without a tracking number", checked=False))
    blocks.append(_checkbox(NOTIFY_CUSTOMER, "Customer", "Email the customer the shipping confirmation", checked=True))
    return modal_view(
        callback_id=FULFILL_MODAL,
        title="Add tracking" if adding_tracking else "Mark as fulfilled",
        submit="Add tracking" if adding_tracking else "Mark fulfilled",
        close="Cancel",
        blocks=blocks,
        private_metadata=private_metadata,
    )


def notify_modal(order: Order, *, to_email: str, subject: str, body: str, private_metadata: str) -> dict:
    """Email the customer: the recipient, then the subject and message, both editable."""
    name = order.customer.name if order.customer and order.customer.name else None
    recipient = f"{safe(name)} &lt;{safe(to_email)}&gt;" if name else safe(to_email)
    blocks = [
        section(f"*To:* {recipient}\n*About:* {safe(order.name)}"),
        _input(
            SUBJECT,
            "Subject",
            PlainTextInputElement(
                action_id=SUBJECT, initial_value=clip(subject, SUBJECT_MAX_LENGTH), max_length=SUBJECT_MAX_LENGTH
            ),
            optional=False,
        ),
        _input(
            MESSAGE,
            "Message",
            PlainTextInputElement(
                action_id=MESSAGE,
                multiline=True,
                initial_value=clip(body, MESSAGE_MAX_LENGTH),
                max_length=MESSAGE_MAX_LENGTH,
            ),
            optional=False,
        ),
        context(["orderbot sends this from the shop's email address and tags the order, so the team can see it."]),
    ]
    return modal_view(
        callback_id=NOTIFY_MODAL,
        title="Email the customer",
        submit="Send email",
        close="Cancel",
        blocks=blocks,
        private_metadata=private_metadata,
    )


def cancel_order_modal(order: Order, *, private_metadata: str) -> dict:
    """Cancel the order: a warning, then reason, restock, refund, customer email and a staff note."""
    reasons = [Option(value=value, text=label) for value, label in CANCEL_REASONS.items()]
    warning = (
        f":warning: Cancelling *{safe(order.name)}* ({_customer(order)}) cannot be undone. Shopify cancels it in the "
        "background, so it can take a minute; this order's alert updates when it is done."
    )
    blocks = [
        section(warning),
        _input(
            REASON,
            "Why cancel?",
            StaticSelectElement(action_id=REASON, placeholder="Choose a reason", options=reasons),
            optional=False,
        ),
        _checkbox(RESTOCK, "Stock", "Restock the items", checked=True),
        _checkbox(REFUND, "Refund", "Refund to the original payment method", checked=True),
        _checkbox(NOTIFY_CUSTOMER, "Customer", "Email the customer that the order is cancelled", checked=True),
        _input(
            STAFF_NOTE,
            "Note for staff",
            PlainTextInputElement(action_id=STAFF_NOTE, max_length=STAFF_NOTE_MAX_LENGTH),
            optional=True,
            hint="Kept on the order in Shopify; the customer does not see it.",
        ),
    ]
    return modal_view(
        callback_id=CANCEL_ORDER_MODAL,
        title=f"Cancel {order.name}",
        submit="Cancel order",
        close="Keep order",
        blocks=blocks,
        private_metadata=private_metadata,
    )
