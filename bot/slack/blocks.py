"""Block Kit builders: what every Slack view shares. The ids Slack sends back (buttons, the snooze menu, modals and
their inputs), the payloads that check Slack's limits, and small text helpers. The alert is drawn in alert_blocks.py,
the three modals in modal_blocks.py, `/orders` answers in command_blocks.py, bulk runs in bulk_blocks.py and the
digest in digest_blocks.py.

Pure: no I/O, `now` passed in. Every builder makes slack_sdk models and returns plain dicts for the Web API through
`message_payload` or `modal_view`: `to_dict()` checks each element's limits, and those two also check the block count
Slack allows (50 in a message, 100 in a modal), which slack_sdk does not.

Text: mrkdwn fields escape shop and user text with `escape_mrkdwn`; plain_text fields (buttons, labels, confirm
dialogs) are shown as they are. Lists that could grow with the order (lines, tracking numbers, holds) are cut with
"and N more", and long strings are clipped, so the largest order Shopify returns still fits.

The one-line replies (after an action, a refusal) are worded in bot/domain/action_words.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from slack_sdk.models.blocks import (
    Block,
    ConfirmObject,
    ContextBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.domain.mrkdwn import clip, safe
from bot.domain.orders import FulfillmentOrder, Order
from bot.domain.redaction import NO_CUSTOMER

MESSAGE_BLOCK_LIMIT = 50
MODAL_BLOCK_LIMIT = 100
PRIVATE_METADATA_LIMIT = 3000
_SECTION_TEXT_LIMIT = 3000
_MODAL_TITLE_LIMIT = 24
_CONFIRM_TITLE_LIMIT = 100
_CONFIRM_TEXT_LIMIT = 300

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
CAPTURE_PAYMENT = "capture_payment"
MARK_AS_PAID = "mark_as_paid"
DELETE = "delete"  # on a resolved alert of an archived or cancelled order
MOVE = "move"  # opens the Move form, whose locations are read from Shopify as it opens
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
    CAPTURE_PAYMENT,
    MARK_AS_PAID,
    DELETE,
    MOVE,
)
# The snooze select's option values are f"{order.id}|{code}".
SNOOZE_CHOICES = {"4h": "4 hours", "1d": "1 day", "3d": "3 days", "1w": "1 week"}

# Modal callback ids (docs/architecture.md, "Slack ids").
FULFILL_MODAL = "fulfill_modal"
NOTIFY_MODAL = "notify_modal"
CANCEL_ORDER_MODAL = "cancel_order_modal"
MOVE_MODAL = "move_modal"
BULK_CANCEL_MODAL = "bulk_cancel_modal"  # the one form of a bulk cancel, for every order of the run

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
REFUND = "refund"  # radio buttons: a key of action_words.REFUND_CHOICES
STAFF_NOTE = "staff_note"
LOCATION = "location"  # the Move form's radio buttons: each option's value is a location id
RELEASE_STOCK_HOLD = "release_stock_hold"
CONFIRM_COUNT = "confirm_count"  # a bulk cancel of many orders: the number of orders, typed
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

# How many items of a list to show before "and N more".
LIST_LIMIT = 3


# --- text helpers ---------------------------------------------------------------------------------------------------


def first_items(items: Sequence[str], limit: int = LIST_LIMIT) -> list[str]:
    """The first `limit` items, then "and N more" for the rest."""
    if len(items) <= limit:
        return list(items)
    return [*items[:limit], f"and {len(items) - limit} more"]


def unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def bullets(items: Iterable[str]) -> str:
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
    *, callback_id: str, title: str, submit: str | None, close: str, blocks: Sequence[Block], private_metadata: str
) -> dict:
    """A modal view for views.open. `private_metadata` is the caller's opaque routing data; without `submit`, a
    modal that only tells something (it may have no inputs then)."""
    if len(private_metadata) > PRIVATE_METADATA_LIMIT:
        raise ValueError(
            f"private_metadata has {len(private_metadata)} characters; Slack allows at most {PRIVATE_METADATA_LIMIT}"
        )
    _within(blocks, MODAL_BLOCK_LIMIT, "A modal")
    return View(
        type="modal",
        callback_id=callback_id,
        title=PlainTextObject(text=clip(title, _MODAL_TITLE_LIMIT)),
        submit=PlainTextObject(text=submit) if submit else None,
        close=PlainTextObject(text=close),
        blocks=list(blocks),
        private_metadata=private_metadata,
    ).to_dict()


def section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=clip(text, _SECTION_TEXT_LIMIT)))


def context(lines: Iterable[str]) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=clip(line, _SECTION_TEXT_LIMIT)) for line in lines])


# --- facts about an order that more than one view shows -------------------------------------------------------------


def place_name(fo: FulfillmentOrder) -> str:
    """Who ships a fulfillment order: its fulfillment service, else its location (unescaped)."""
    if fo.service:
        return f"{fo.service} (fulfillment service)"
    return fo.location or "an unnamed location"


def customer_name(order: Order) -> str:
    """The customer's name (else email), escaped for mrkdwn; NO_CUSTOMER when the order has none."""
    customer = order.customer
    name = customer and (customer.name or customer.email)
    return safe(name) if name else NO_CUSTOMER


# --- confirm dialogs ------------------------------------------------------------------------------------------------


def confirm(title: str, text: str, confirm: str, deny: str, style: str | None = None) -> ConfirmObject:
    return ConfirmObject(
        title=PlainTextObject(text=clip(title, _CONFIRM_TITLE_LIMIT)),
        text=PlainTextObject(text=clip(text, _CONFIRM_TEXT_LIMIT)),
        confirm=PlainTextObject(text=confirm),
        deny=PlainTextObject(text=deny),
        style=style,
    )
