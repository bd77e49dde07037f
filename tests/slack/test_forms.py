"""Submitted modals read into an action's inputs, or the one-sentence errors Slack shows under each input."""

from __future__ import annotations

import pytest

from bot.sandbox.slack_payloads import input_values
from bot.slack.forms import bulk_cancel_form, cancel_order_form, fulfill_form, move_form, notify_form


def values(**inputs: tuple[str, object]) -> dict:
    """Slack's state.values, each input in a block named like its action id (as modal_blocks.py builds them)."""
    return input_values({name: {name: spec} for name, spec in inputs.items()})


def test_a_tracking_number_with_a_known_carrier():
    form = fulfill_form(
        values(
            tracking_number=("plain_text_input", "  1Z999AA10123456784 "),
            tracking_company=("static_select", "UPS"),
            tracking_url=("url_text_input", None),
            no_tracking=("checkboxes", []),
            notify_customer=("checkboxes", ["notify_customer"]),
        )
    )
    assert form.errors == {}
    assert form.inputs == {
        "tracking_number": "1Z999AA10123456784",
        "tracking_company": "UPS",
        "tracking_url": None,
        "notify_customer": True,
    }


@pytest.mark.parametrize(
    ("inputs", "field", "says"),
    [
        ({"tracking_number": ("plain_text_input", ""), "no_tracking": ("checkboxes", [])}, "tracking_number", "tick"),
        ({"tracking_number": ("plain_text_input", None)}, "tracking_number", "to add to the shipment"),
        ({"tracking_number": ("plain_text_input", "9" * 256)}, "tracking_number", "at most 255"),
        (
            {"tracking_number": ("plain_text_input", "1Z"), "tracking_url": ("url_text_input", "javascript:alert(1)")},
            "tracking_url",
            "https://",
        ),
        (
            {
                "tracking_number": ("plain_text_input", "1Z"),
                "tracking_url": ("url_text_input", "https://t.co/" + "x" * 2000),
            },
            "tracking_url",
            "at most 2,000",
        ),
        (
            {"tracking_number": ("plain_text_input", "1Z"), "tracking_company": ("static_select", "<!channel>")},
            "tracking_company",
            "from the list",
        ),
    ],
    ids=[
        "empty-without-the-box",
        "empty-on-the-add-tracking-form",
        "too-long",
        "not-a-web-address",
        "link-too-long",
        "carrier-not-offered",
    ],
)
def test_fulfill_errors_name_the_input_and_say_what_to_do(inputs, field, says):
    form = fulfill_form(values(**inputs))
    assert list(form.errors) == [field] and says in form.errors[field]


def test_no_tracking_ticked_and_other_carrier_send_neither_number_nor_company():
    form = fulfill_form(
        values(
            tracking_number=("plain_text_input", None),
            no_tracking=("checkboxes", ["no_tracking"]),
            tracking_company=("static_select", "Other"),
        )
    )
    assert form.errors == {} and form.inputs["tracking_number"] is None and form.inputs["tracking_company"] is None


@pytest.mark.parametrize(
    ("subject", "message", "fields"),
    [
        ("Your order", "Hi", []),
        ("", "Hi", ["subject"]),
        ("S", "  ", ["message"]),
        ("S" * 201, "x" * 3001, ["subject", "message"]),
    ],
)
def test_notify_needs_a_subject_and_a_message_within_slacks_limits(subject, message, fields):
    form = notify_form(values(subject=("plain_text_input", subject), message=("plain_text_input", message)))
    assert list(form.errors) == fields


def test_cancel_needs_one_of_shopifys_reasons_and_a_short_note():
    good = cancel_order_form(
        values(reason=("static_select", "FRAUD"), restock=("checkboxes", ["restock"]), refund=("radio_buttons", "none"))
    )
    assert good.errors == {}
    assert good.inputs == {
        "reason": "FRAUD",
        "restock": True,
        "refund": "none",
        "notify_customer": False,
        "staff_note": None,
    }
    credit = cancel_order_form(values(reason=("static_select", "FRAUD"), refund=("radio_buttons", "store_credit")))
    assert credit.errors == {} and credit.inputs["refund"] == "store_credit"
    assert cancel_order_form(values(reason=("static_select", "FRAUD"))).inputs["refund"] == "none"
    assert cancel_order_form(values(reason=("static_select", "FRAUD"), refund=("radio_buttons", "cash"))).errors == {
        "refund": "Pick how to refund, or “No refund”."
    }
    forged = cancel_order_form(values(reason=("static_select", "BECAUSE"), staff_note=("plain_text_input", "n" * 256)))
    assert set(forged.errors) == {"reason", "staff_note"}
    assert cancel_order_form({}).errors == {"reason": "Pick a reason."}


def test_move_takes_a_location_the_form_offered_by_its_id_and_the_hold_box():
    offered = {"gid://shopify/Location/2": "Store"}
    values = input_values(
        {
            "location": {"location": ("radio_buttons", "gid://shopify/Location/2")},
            "release_stock_hold": {"release_stock_hold": ("checkboxes", ["release_stock_hold"])},
        }
    )
    assert move_form(values, "gid://shopify/FulfillmentOrder/1", offered).inputs == {
        "fulfillment_order_id": "gid://shopify/FulfillmentOrder/1",
        "location_id": "gid://shopify/Location/2",
        "location_name": "Store",
        "release_hold": True,
    }
    elsewhere = input_values({"location": {"location": ("radio_buttons", "gid://shopify/Location/9")}})
    assert move_form(elsewhere, "gid://shopify/FulfillmentOrder/1", offered).errors == {
        "location": "Pick a location from the list."
    }
    assert move_form(values, None, None).errors  # metadata without the Move form's fields


def test_a_bulk_cancel_of_more_than_20_orders_needs_the_number_typed():
    choices = {"reason": ("static_select", "CUSTOMER"), "refund": ("radio_buttons", "original")}
    few = bulk_cancel_form(values(**choices), total=20, confirm_over=20)
    assert few.errors == {}
    assert few.inputs == {"reason": "CUSTOMER", "restock": False, "refund": "original", "notify_customer": False}
    many = {**choices}
    assert bulk_cancel_form(values(**many), total=25, confirm_over=20).errors == {
        "confirm_count": "Type 25, the number of orders, to cancel them."
    }
    wrong = bulk_cancel_form(values(**many, confirm_count=("plain_text_input", "24")), total=25, confirm_over=20)
    assert wrong.errors == {"confirm_count": "That is 24, not 25. Type 25 to cancel all 25 orders, or close the form."}
    for typed in ("25", " 25 ", "25 orders"):
        typed_form = values(**many, confirm_count=("plain_text_input", typed))
        assert bulk_cancel_form(typed_form, total=25, confirm_over=20).errors == {}, typed
    thousands = values(**many, confirm_count=("plain_text_input", "1,200"))
    assert bulk_cancel_form(thousands, total=1200, confirm_over=20).errors == {}
    no_reason = values(confirm_count=("plain_text_input", "25"))
    assert set(bulk_cancel_form(no_reason, total=25, confirm_over=20).errors) == {"reason"}
