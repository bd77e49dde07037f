"""The modals: mark as fulfilled (or add tracking), email the customer, cancel the order, move it to another
location, and cancel many orders (a bulk cancel's one form). Each input block's block_id equals its element's
action_id (blocks.py lists them; forms.py reads what was submitted). Pure: no I/O.
"""

from __future__ import annotations

from slack_sdk.models.blocks import (
    Block,
    CheckboxesElement,
    InputBlock,
    InteractiveElement,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    RadioButtonsElement,
    SectionBlock,
    StaticSelectElement,
    UrlInputElement,
)

from bot.domain.action_words import CANCEL_REASONS, REFUND_CHOICES
from bot.domain.moves import LocationForMove, out_of_stock_holds
from bot.domain.mrkdwn import clip, escape_mrkdwn, safe
from bot.domain.orders import FulfillmentOrder, Order
from bot.slack.blocks import (
    BULK_CANCEL_MODAL,
    CANCEL_ORDER_MODAL,
    CONFIRM_COUNT,
    FULFILL_MODAL,
    LOCATION,
    MESSAGE,
    MESSAGE_MAX_LENGTH,
    MOVE_MODAL,
    NO_TRACKING,
    NOTIFY_CUSTOMER,
    NOTIFY_MODAL,
    OTHER_CARRIER,
    REASON,
    REFUND,
    RELEASE_STOCK_HOLD,
    RESTOCK,
    STAFF_NOTE,
    STAFF_NOTE_MAX_LENGTH,
    SUBJECT,
    SUBJECT_MAX_LENGTH,
    TRACKING_COMPANIES,
    TRACKING_COMPANY,
    TRACKING_NUMBER,
    TRACKING_URL,
    bullets,
    context,
    customer_name,
    first_items,
    modal_view,
    place_name,
    section,
)

_LINES_PER_FULFILLMENT_ORDER = 8
_RADIO_OPTION_LIMIT = 10  # Slack's most for radio buttons
_OPTION_TEXT_LIMIT = 75


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
    items = first_items(lines, _LINES_PER_FULFILLMENT_ORDER) if lines else ["Every item still to ship"]
    return section(f"*From {safe(place_name(fo))}*\n{bullets(items)}")


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
    intro = f"*{safe(order.name)}* · {customer_name(order)}\n{what}"
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


def _cancel_choices(customers: str) -> list[Block]:
    """What a cancellation asks, for one order or many: the reason, restock, the refund, and the customer email
    (`customers`: "the customer" or "each customer")."""
    reasons = [Option(value=value, text=label) for value, label in CANCEL_REASONS.items()]
    refunds = [Option(value=value, text=label) for value, label in REFUND_CHOICES.items()]
    return [
        _input(
            REASON,
            "Why cancel?",
            StaticSelectElement(action_id=REASON, placeholder="Choose a reason", options=reasons),
            optional=False,
        ),
        _checkbox(RESTOCK, "Stock", "Restock the items", checked=True),
        _input(
            REFUND,
            "Refund",
            RadioButtonsElement(action_id=REFUND, options=refunds, initial_option=refunds[0]),
            optional=False,
            hint="An authorized payment that was never captured is voided whichever you pick.",
        ),
        _checkbox(NOTIFY_CUSTOMER, "Customer", f"Email {customers} that the order is cancelled", checked=True),
    ]


def cancel_order_modal(order: Order, *, private_metadata: str) -> dict:
    """Cancel the order: a warning, then reason, restock, refund, customer email and a staff note."""
    warning = (
        f":warning: Cancelling *{safe(order.name)}* ({customer_name(order)}) cannot be undone. Shopify cancels it "
        "in the background, so it can take a minute; this order's alert updates when it is done."
    )
    blocks = [
        section(warning),
        *_cancel_choices("the customer"),
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


def move_waiting_modal(order: Order) -> dict:
    """Shown the moment Move is clicked (a trigger_id lasts 3 s), while Shopify is asked where the order may go."""
    text = f"Asking Shopify which locations can ship *{safe(order.name)}*…"
    return modal_view(
        callback_id=MOVE_MODAL,
        title=f"Move {order.name}",
        submit=None,
        close="Cancel",
        blocks=[section(text)],
        private_metadata="",
    )


def move_nowhere_modal(order: Order, why: str) -> dict:
    """The Move form when there is nothing to choose: why, and what to do instead (plain text, escaped here)."""
    return modal_view(
        callback_id=MOVE_MODAL,
        title=f"Move {order.name}",
        submit=None,
        close="Close",
        blocks=[section(escape_mrkdwn(why))],
        private_metadata="",
    )


def offered_locations(locations: list[LocationForMove]) -> dict[str, str]:
    """The locations the Move form lets one pick (id -> name, as shown): the first that can take the fulfillment
    order, as many as radio buttons hold. The listener keeps them in the form's signed metadata."""
    movable = [place for place in locations if place.movable][:_RADIO_OPTION_LIMIT]
    return {place.id: clip(place.name, _OPTION_TEXT_LIMIT) for place in movable}


def move_modal(order: Order, fo: FulfillmentOrder, locations: list[LocationForMove], *, private_metadata: str) -> dict:
    """Move: where it ships from now and what, the locations that can take every item (radio buttons, saying what
    each stocks), the ones that cannot and why, and whether to release the out-of-stock hold once moved (only when
    the whole fulfillment order moves, none of it shipped: then it keeps the hold, and its id)."""
    offered = offered_locations(locations)
    movable = [place for place in locations if place.id in offered]
    others = [place for place in locations if not place.movable]
    options = [
        Option(
            value=place.id,
            text=PlainTextObject(text=offered[place.id]),
            description=PlainTextObject(text=clip(place.words[:1].upper() + place.words[1:], _OPTION_TEXT_LIMIT)),
        )
        for place in movable
    ]
    intro = f"*{safe(order.name)}* · {customer_name(order)}\nShopify will ship these items from the location you pick."
    blocks = [
        section(intro),
        _to_ship(fo),
        _input(
            LOCATION,
            "Move to",
            RadioButtonsElement(action_id=LOCATION, options=options, initial_option=options[0]),
            optional=False,
            hint="Only locations that stock every item are listed.",
        ),
    ]
    if others:
        cannot = [f"{safe(place.name)} ({safe(place.words)})" for place in others]
        blocks.append(context(["*Cannot take it:* " + "; ".join(first_items(cannot))]))
    if out_of_stock_holds(fo) and all(line.remaining == line.total for line in fo.lines):
        blocks.append(
            _checkbox(RELEASE_STOCK_HOLD, "Hold", "Release the out-of-stock hold once it has moved", checked=True)
        )
    return modal_view(
        callback_id=MOVE_MODAL,
        title=f"Move {order.name}",
        submit="Move",
        close="Cancel",
        blocks=blocks,
        private_metadata=private_metadata,
    )


def bulk_cancel_modal(*, total: int, paid: str, confirm_over: int, private_metadata: str) -> dict:
    """A bulk cancel's one form: the choices for every order of the run and, past `confirm_over` orders, the number
    of orders typed to confirm (`paid`: what they add up to, e.g. "2,180.00 USD")."""
    orders = f"{total:,} order{'s' if total != 1 else ''}"
    warning = (
        f":warning: Cancelling *{orders}* ({safe(paid)}) cannot be undone. These choices apply to every one. Shopify "
        "cancels in the background: the summary in the alert channel counts each order as it completes."
    )
    blocks: list[Block] = [section(warning), *_cancel_choices("each customer")]
    if total > confirm_over:
        blocks.append(
            _input(
                CONFIRM_COUNT,
                f"Type {total} to cancel {orders}",
                PlainTextInputElement(action_id=CONFIRM_COUNT, placeholder=str(total), max_length=12),
                optional=False,
            )
        )
    return modal_view(
        callback_id=BULK_CANCEL_MODAL,
        title=f"Cancel {orders}",
        submit=f"Cancel {orders}",
        close="Keep them",
        blocks=blocks,
        private_metadata=private_metadata,
    )
