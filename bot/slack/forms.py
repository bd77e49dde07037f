"""Read a submitted modal's `view.state.values` into an action's inputs, or the errors to show on the modal. Pure.

Each reader returns a `Form`: `errors` maps an input's block id to one sentence (Slack shows it under the input,
`response_action: errors`); when there are none, `inputs` are what `actions.ActionRequest.inputs` expects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bot.domain.action_words import CANCEL_REASONS, REFUND_CHOICES
from bot.domain.bulk import typed_count
from bot.slack import blocks
from bot.slack.home_blocks import SETTING_VALUE

MAX_TRACKING_NUMBER = 255
MAX_TRACKING_URL = 2000  # the modal's URL input has no max_length of its own; a longer link is no carrier's
_WEB_ADDRESS = re.compile(r"^https?://\S+$")


@dataclass(frozen=True, slots=True)
class Form:
    inputs: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)


def fulfill_form(values: dict) -> Form:
    number = _text(values, blocks.TRACKING_NUMBER)
    url = _text(values, blocks.TRACKING_URL)
    errors = {}
    if not number and not _checked(values, blocks.NO_TRACKING):
        errors[blocks.TRACKING_NUMBER] = (
            "Enter a tracking number, or tick “Ship without a tracking number”."
            if _present(values, blocks.NO_TRACKING)
            else "Enter the tracking number to add to the shipment."  # the "Add tracking" form has no such box
        )
    elif len(number) > MAX_TRACKING_NUMBER:
        errors[blocks.TRACKING_NUMBER] = f"A tracking number is at most {MAX_TRACKING_NUMBER} characters."
    if url and not _WEB_ADDRESS.match(url):
        errors[blocks.TRACKING_URL] = "Enter a web address starting with https://, or leave it empty."
    elif len(url) > MAX_TRACKING_URL:
        errors[blocks.TRACKING_URL] = f"A tracking link is at most {MAX_TRACKING_URL:,} characters."
    company = _selected(values, blocks.TRACKING_COMPANY)
    if company is not None and company not in blocks.TRACKING_COMPANIES:  # Slack only sends the list's options
        errors[blocks.TRACKING_COMPANY] = "Pick a carrier from the list, or “Other”."
    inputs = {
        "tracking_number": number or None,
        "tracking_company": None if company == blocks.OTHER_CARRIER else company,
        "tracking_url": url or None,
        "notify_customer": _checked(values, blocks.NOTIFY_CUSTOMER),
    }
    return Form(inputs, errors)


def notify_form(values: dict) -> Form:
    subject, message = _text(values, blocks.SUBJECT), _text(values, blocks.MESSAGE)
    errors = {}
    if not subject or len(subject) > blocks.SUBJECT_MAX_LENGTH:
        errors[blocks.SUBJECT] = f"Write a subject of at most {blocks.SUBJECT_MAX_LENGTH} characters."
    if not message or len(message) > blocks.MESSAGE_MAX_LENGTH:
        errors[blocks.MESSAGE] = f"Write a message of at most {blocks.MESSAGE_MAX_LENGTH} characters."
    return Form({"subject": subject, "message": message}, errors)


def cancel_order_form(values: dict) -> Form:
    choices = _cancel_choices(values)
    note = _text(values, blocks.STAFF_NOTE)
    errors = dict(choices.errors)
    if len(note) > blocks.STAFF_NOTE_MAX_LENGTH:
        errors[blocks.STAFF_NOTE] = f"A staff note is at most {blocks.STAFF_NOTE_MAX_LENGTH} characters."
    return Form({**choices.inputs, "staff_note": note or None}, errors)


def bulk_cancel_form(values: dict, *, total: int, confirm_over: int) -> Form:
    """A bulk cancel's choices for every order; past `confirm_over` orders, `total` typed to confirm."""
    choices = _cancel_choices(values)
    errors = dict(choices.errors)
    if total > confirm_over:
        typed = typed_count(_text(values, blocks.CONFIRM_COUNT))
        if typed is None:
            errors[blocks.CONFIRM_COUNT] = f"Type {total}, the number of orders, to cancel them."
        elif typed != total:
            errors[blocks.CONFIRM_COUNT] = (
                f"That is {typed:,}, not {total:,}. Type {total} to cancel all {total:,} orders, or close the form."
            )
    return Form(choices.inputs, errors)


def _cancel_choices(values: dict) -> Form:
    reason = _selected(values, blocks.REASON)
    refund = _selected(values, blocks.REFUND) or "none"  # Slack sends the initial choice; without one, no money moves
    errors = {}
    if reason not in CANCEL_REASONS:
        errors[blocks.REASON] = "Pick a reason."
    if refund not in REFUND_CHOICES:
        errors[blocks.REFUND] = "Pick how to refund, or “No refund”."
    inputs = {
        "reason": reason,
        "restock": _checked(values, blocks.RESTOCK),
        "refund": refund,
        "notify_customer": _checked(values, blocks.NOTIFY_CUSTOMER),
    }
    return Form(inputs, errors)


def move_form(values: dict, fulfillment_order_id: str | None, locations: dict[str, str] | None) -> Form:
    """The Move form: the location picked, by id, among those the form offered (`locations`: id -> name, kept in its
    signed metadata with the fulfillment order it moves)."""
    offered = locations or {}
    location_id = _selected(values, blocks.LOCATION)
    if location_id not in offered or not fulfillment_order_id:
        return Form({}, {blocks.LOCATION: "Pick a location from the list."})
    inputs = {
        "fulfillment_order_id": fulfillment_order_id,
        "location_id": location_id,
        "location_name": offered[location_id],
        "release_hold": _checked(values, blocks.RELEASE_STOCK_HOLD),
    }
    return Form(inputs)


def setting_form(values: dict) -> Form:
    """The Home tab's one-field settings form: `inputs["value"]`, checked further as `/orders settings set` checks
    it."""
    value = _text(values, SETTING_VALUE)
    return Form({"value": value}, {} if value else {SETTING_VALUE: "Type the new value."})


def _element(values: dict, action_id: str) -> dict:
    """An input's state, found by its action id whatever its block id."""
    for block in values.values():
        if isinstance(block, dict) and action_id in block:
            return block[action_id] or {}
    return {}


def _present(values: dict, action_id: str) -> bool:
    return any(isinstance(block, dict) and action_id in block for block in values.values())


def _text(values: dict, action_id: str) -> str:
    return str(_element(values, action_id).get("value") or "").strip()


def _selected(values: dict, action_id: str) -> str | None:
    return (_element(values, action_id).get("selected_option") or {}).get("value")


def _checked(values: dict, action_id: str) -> bool:
    return bool(_element(values, action_id).get("selected_options"))
