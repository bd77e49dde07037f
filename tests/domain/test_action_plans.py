"""Each action's plan against an order: the steps it would send, "already done", or a refusal, with their words."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.action_plans import (
    INTERRUPTED_NOTICE_GUARD,
    MAYBE_SENT,
    NO_MAIL,
    NOTIFIED_TAG,
    NOTIFY_AGAIN_AFTER,
    PLANNERS,
    AlreadyDone,
    CancellationInFlight,
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
from bot.domain.orders import (
    Customer,
    Fulfillment,
    FulfillmentOrder,
    FulfillmentOrderLine,
    Hold,
    Money,
    Order,
    Tracking,
)
from bot.shopify import operations

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)
FACTS = Facts(now=NOW, email_configured=True)
ORDER_ID = "gid://shopify/Order/1"


def fo(number: int, *, location: str = "Main", status: str = "OPEN", **fields) -> FulfillmentOrder:
    return FulfillmentOrder(
        id=f"gid://shopify/FulfillmentOrder/{number}",
        status=status,
        request_status=fields.pop("request_status", "UNSUBMITTED"),
        created_at=NOW,
        updated_at=NOW,
        location=location,
        supported_actions=fields.pop("supported_actions", ("CREATE_FULFILLMENT",)),
        **fields,
    )


def shipment(number: int, *, tracking: tuple[Tracking, ...] = (), hours_ago: int = 1) -> Fulfillment:
    at = NOW - timedelta(hours=hours_ago)
    return Fulfillment(f"gid://shopify/Fulfillment/{number}", "SUCCESS", at, at, tracking)


def order(**fields) -> Order:
    return Order(
        id=ORDER_ID,
        name="#1001",
        created_at=NOW - timedelta(days=3),
        updated_at=NOW - timedelta(days=1),
        fulfillment_status="UNFULFILLED",
        total=Money("10.00", "USD"),
        customer=Customer("Ada", "ada@example.com"),
        **{"financial_status": "PAID", **fields},
    )


def mutations(plan: Plan) -> list[tuple[str, dict]]:
    return [(step.operation, dict(step.variables)) for step in plan.steps if isinstance(step, Mutation)]


# --- every planned mutation is a document orderbot has ------------------------------------------------------------


AUTHORIZED = order(
    financial_status="AUTHORIZED",
    capturable=True,
    capturable_amount=Money("54.90", "EUR"),
    authorization_id="gid://shopify/OrderTransaction/7",
    can_mark_as_paid=True,
)
BANK_DEPOSIT = order(financial_status="PENDING", can_mark_as_paid=True, payment_gateways=("Bank Deposit",))
REQUESTABLE = fo(1, supported_actions=("REQUEST_FULFILLMENT",))
REQUESTED = fo(1, supported_actions=("REQUEST_CANCELLATION",))
HELD = fo(1, holds=(Hold("h", "OTHER"),), supported_actions=("RELEASE_HOLD",))
WAREHOUSE, STORE = "gid://shopify/Location/1", "gid://shopify/Location/2"
STOCK_HOLD = Hold("gid://shopify/FulfillmentHold/9", "INVENTORY_OUT_OF_STOCK")
OUT_OF_STOCK = fo(
    1,
    status="ON_HOLD",
    location_id=WAREHOUSE,
    holds=(STOCK_HOLD,),
    supported_actions=("RELEASE_HOLD", "HOLD", "MOVE"),
    lines=(FulfillmentOrderLine("gid://shopify/FulfillmentOrderLineItem/1", "Blanket", "B-1", 2, 2),),
)
TO_STORE = {
    "fulfillment_order_id": OUT_OF_STOCK.id,
    "location_id": STORE,
    "location_name": "Store",
    "release_hold": True,
}
PLANNED = [
    plan_action("fulfill", order(fulfillment_orders=(fo(1),)), {"tracking_number": "1Z"}, FACTS),
    plan_action("fulfill", order(fulfillments=(shipment(1),)), {"tracking_number": "1Z"}, FACTS),
    plan_action("request_fulfillment", order(fulfillment_orders=(REQUESTABLE,)), {}, FACTS),
    plan_action("cancel_request", order(fulfillment_orders=(REQUESTED,)), {}, FACTS),
    plan_action("release_hold", order(fulfillment_orders=(HELD,)), {}, FACTS),
    plan_action("archive", order(), {}, FACTS),
    plan_action("unarchive", order(closed_at=NOW), {}, FACTS),
    plan_action("notify_customer", order(), {"message": "Soon."}, FACTS),
    plan_action("cancel_order", order(), {"reason": "CUSTOMER"}, FACTS),
    plan_action("unfulfill", order(fulfillments=(shipment(1),)), {}, FACTS),
    plan_action("capture_payment", AUTHORIZED, {}, FACTS),
    plan_action("mark_as_paid", BANK_DEPOSIT, {}, FACTS),
    plan_action("delete", order(closed_at=NOW), {}, FACTS),
    plan_action("move", order(fulfillment_orders=(OUT_OF_STOCK,)), TO_STORE, FACTS),
]


@pytest.mark.parametrize("plan", PLANNED, ids=[str(i) for i in range(len(PLANNED))])
def test_each_planned_mutation_names_a_document_and_its_payload(plan):
    assert isinstance(plan, Plan) and mutations(plan)
    for step in plan.steps:
        if isinstance(step, Mutation):
            document = operations.ALL_DOCUMENTS[step.operation]
            assert document.lstrip().startswith("mutation") and f"  {step.payload}(" in document


def test_every_action_has_a_planner():
    assert set(PLANNERS) == {
        "fulfill",
        "request_fulfillment",
        "cancel_request",
        "release_hold",
        "archive",
        "unarchive",
        "notify_customer",
        "cancel_order",
        "snooze",
        "unfulfill",
        "capture_payment",
        "mark_as_paid",
        "delete",
        "move",
    }


# --- fulfil -------------------------------------------------------------------------------------------------------


def test_fulfil_ships_each_location_apart_with_the_tracking_given():
    fos = (fo(1, location="Main"), fo(2, location="Annex"), fo(3, location="Main"))
    inputs = {"tracking_number": "1Z999", "tracking_company": "UPS", "notify_customer": True}
    plan = plan_action("fulfill", order(fulfillment_orders=fos), inputs, FACTS)
    tracking = {"number": "1Z999", "company": "UPS"}
    assert mutations(plan) == [
        (
            "FulfillmentCreate",
            {
                "fulfillment": {
                    "lineItemsByFulfillmentOrder": [
                        {"fulfillmentOrderId": fos[0].id},
                        {"fulfillmentOrderId": fos[2].id},
                    ],
                    "notifyCustomer": True,
                    "trackingInfo": tracking,
                }
            },
        ),
        (
            "FulfillmentCreate",
            {
                "fulfillment": {
                    "lineItemsByFulfillmentOrder": [{"fulfillmentOrderId": fos[1].id}],
                    "notifyCustomer": True,
                    "trackingInfo": tracking,
                }
            },
        ),
    ]
    assert plan.detail == "tracking UPS 1Z999, customer notified"


def test_fulfil_without_tracking_says_so():
    plan = plan_action("fulfill", order(fulfillment_orders=(fo(1),)), {}, FACTS)
    assert "trackingInfo" not in mutations(plan)[0][1]["fulfillment"]
    assert plan.detail == "no tracking number, customer not notified"


def test_fulfil_of_a_shipped_order_adds_the_missing_tracking_or_says_what_is_needed():
    shipped = order(fulfillments=(shipment(7),))
    plan = plan_action("fulfill", shipped, {"tracking_number": "1Z", "notify_customer": True}, FACTS)
    assert mutations(plan) == [
        (
            "TrackingInfoUpdate",
            {
                "fulfillmentId": "gid://shopify/Fulfillment/7",
                "trackingInfoInput": {"number": "1Z"},
                "notifyCustomer": True,
            },
        )
    ]
    assert plan.detail == "added tracking 1Z to the shipment, customer notified"
    assert plan_action("fulfill", shipped, {}, FACTS) == Refused(
        "#1001 has shipped already; enter the tracking number to add it."
    )


def test_fulfil_of_a_tracked_shipment_is_already_done():
    tracked = order(fulfillments=(shipment(7, tracking=(Tracking("1Z", "UPS", None),)),))
    assert plan_action("fulfill", tracked, {"tracking_number": "2Z"}, FACTS) == AlreadyDone(
        "Nothing is left to fulfil on #1001: it was fulfilled already."
    )


# --- fulfillment requests and holds ----------------------------------------------------------------------------------


def test_request_fulfillment_of_each_requestable_fulfillment_order():
    fos = (
        fo(1, service="ShipBob", supported_actions=("REQUEST_FULFILLMENT",)),
        fo(2, status="CLOSED", supported_actions=("REQUEST_FULFILLMENT",)),
    )
    plan = plan_action("request_fulfillment", order(fulfillment_orders=fos), {"message": "Rush"}, FACTS)
    assert mutations(plan) == [
        ("FulfillmentRequestSubmit", {"id": fos[0].id, "message": "Rush", "notifyCustomer": False})
    ]
    assert plan.detail == "ShipBob"
    assert plan_action("request_fulfillment", order(fulfillment_orders=fos[1:]), {}, FACTS) == AlreadyDone(
        "#1001 has no fulfillment left to request: it was requested or shipped already."
    )


def test_cancel_request_sends_a_message_or_finds_one_asked_for():
    asked = fo(1, service="ShipBob", supported_actions=("REQUEST_CANCELLATION",))
    plan = plan_action("cancel_request", order(fulfillment_orders=(asked,)), {}, FACTS)
    assert mutations(plan) == [("CancellationRequestSubmit", {"id": asked.id, "message": "Cancelled from orderbot"})]
    assert plan.detail == "ShipBob may still ship if it has started"
    pending = fo(1, request_status="CANCELLATION_REQUESTED", supported_actions=())
    assert plan_action("cancel_request", order(fulfillment_orders=(pending,)), {}, FACTS) == AlreadyDone(
        "A cancellation was already requested for #1001; waiting for the service."
    )
    assert plan_action("cancel_request", order(fulfillment_orders=()), {}, FACTS) == AlreadyDone(
        "#1001 has no fulfillment request left to cancel."
    )


def test_release_hold_releases_every_hold_and_names_their_reasons():
    held = fo(1, holds=(Hold("h1", "AWAITING_PAYMENT"), Hold("h2", "OTHER")), supported_actions=("RELEASE_HOLD",))
    plan = plan_action("release_hold", order(fulfillment_orders=(held,)), {}, FACTS)
    assert mutations(plan) == [("HoldRelease", {"id": held.id, "holdIds": ["h1", "h2"]})]
    assert plan.detail == "awaiting payment, other"
    assert plan_action("release_hold", order(fulfillment_orders=(fo(1),)), {}, FACTS) == AlreadyDone(
        "#1001 is not on hold any more."
    )


# --- archive ------------------------------------------------------------------------------------------------------


def test_archive_and_unarchive_take_the_order_after_from_their_answer():
    (close,) = plan_action("archive", order(), {}, FACTS).steps
    assert close == Mutation("OrderClose", "orderClose", {"input": {"id": ORDER_ID}}, shows_order_after=True)
    (reopen,) = plan_action("unarchive", order(closed_at=NOW), {}, FACTS).steps
    assert reopen == Mutation("OrderOpen", "orderOpen", {"input": {"id": ORDER_ID}}, shows_order_after=True)


def test_archive_and_unarchive_when_there_is_nothing_to_do():
    assert plan_action("archive", order(closed_at=NOW), {}, FACTS) == AlreadyDone("#1001 is archived already.")
    assert plan_action("unarchive", order(), {}, FACTS) == AlreadyDone("#1001 is not archived.")
    assert plan_action("unarchive", order(closed_at=NOW, cancelled_at=NOW), {}, FACTS) == Refused(
        "#1001 is cancelled; Shopify does not reopen cancelled orders."
    )


def test_the_order_after_an_archive_is_the_order_read_before_with_what_the_answer_shows():
    before = order(fulfillment_orders=(fo(1),))
    later = NOW + timedelta(seconds=5)
    shown = {"order": {"id": ORDER_ID, "closed": True, "closedAt": later.isoformat(), "updatedAt": later.isoformat()}}
    assert order_after(before, shown) == replace(before, closed_at=later, updated_at=later)
    reopened = {"order": {"closedAt": None, "updatedAt": later.isoformat()}}
    assert order_after(replace(before, closed_at=NOW), reopened) == replace(before, updated_at=later)
    assert order_after(before, {"order": {"closedAt": later.isoformat()}}) is None
    assert order_after(before, {}) is None


# --- notify -------------------------------------------------------------------------------------------------------


def notice(number: int, *, minutes_ago: float, error: str | None = None) -> PastNotice:
    return PastNotice(number, "U0SAM", timedelta(minutes=minutes_ago), error)


def notify(notices: Notices | None = None, *, in_bulk: bool = False, **inputs):
    facts = replace(FACTS, notices=notices or Notices(), in_bulk=in_bulk)
    return plan_action("notify_customer", order(), {"message": "It ships Monday.", **inputs}, facts)


def test_notify_emails_the_customer_then_tags_the_order_without_failing_on_the_tag():
    plan = notify(subject="  Your order  ")
    email, tag = plan.steps
    assert email == Email("ada@example.com", "Your order", "It ships Monday.")
    assert tag == Mutation(
        "TagsAdd",
        "tagsAdd",
        {"id": ORDER_ID, "tags": [NOTIFIED_TAG]},
        if_refused="the orderbot-notified tag could not be added",
    )
    assert plan.detail == "subject “Your order”"
    assert plan.first_sent == email
    assert notify().steps[0] == Email("ada@example.com", "About your order #1001", "It ships Monday.")


def test_notify_is_refused_without_email_an_address_or_a_message():
    assert plan_action("notify_customer", order(), {"message": "Hi"}, Facts(now=NOW)) == Refused(NO_MAIL)
    nobody = replace(order(), customer=Customer("Ada", None))
    assert plan_action("notify_customer", nobody, {"message": "Hi"}, FACTS) == Refused(
        "#1001 has no customer email address, so there is no one to write to."
    )
    assert notify(message="  ") == Refused("The message is empty; write what the customer should know.")


def test_a_second_notice_soon_after_one_is_taken_for_a_double_click():
    assert notify(Notices(done=notice(3, minutes_ago=0.5))) == AlreadyDone(
        "<@U0SAM> emailed the customer of #1001 just now."
    )
    assert notify(Notices(done=notice(3, minutes_ago=4))) == AlreadyDone(
        "<@U0SAM> emailed the customer of #1001 4m ago."
    )
    assert isinstance(notify(Notices(done=notice(3, minutes_ago=NOTIFY_AGAIN_AFTER.total_seconds() / 60))), Plan)


def test_a_notice_that_may_have_gone_out_holds_the_next_one_back():
    cut = Notices(interrupted=notice(4, minutes_ago=2))
    assert notify(cut) == Refused(
        "orderbot stopped while emailing the customer of #1001 2m ago, so the email may have gone out. "
        "Check your sent mail before sending another."
    )
    unconfirmed = Notices(failed=notice(4, minutes_ago=2, error=f"{MAYBE_SENT}: no answer"))
    assert notify(unconfirmed) == Refused(
        "the mail server did not confirm the email to the customer of #1001 2m ago, so the email may have "
        "gone out. Check your sent mail before sending another."
    )


def test_a_notice_surely_not_sent_or_older_than_the_guard_holds_nothing_back():
    assert isinstance(notify(Notices(failed=notice(4, minutes_ago=2, error="refused by the server"))), Plan)
    assert isinstance(notify(Notices(done=notice(5, minutes_ago=20), interrupted=notice(4, minutes_ago=30))), Plan)
    assert isinstance(notify(Notices(interrupted=notice(4, minutes_ago=11))), Plan)
    hours = Notices(interrupted=notice(4, minutes_ago=120))
    assert isinstance(notify(hours, in_bulk=True), Refused), "a resumed bulk run waits a day"
    day = Notices(interrupted=notice(4, minutes_ago=INTERRUPTED_NOTICE_GUARD.total_seconds() / 60))
    assert isinstance(notify(day, in_bulk=True), Plan)


# --- cancel -------------------------------------------------------------------------------------------------------


def test_cancel_order_records_the_request_before_sending_it():
    inputs = {"reason": "FRAUD", "restock": True, "refund": "original", "staff_note": "chargeback"}
    plan = plan_action("cancel_order", order(), inputs, FACTS)
    detail = "reason fraud, refunded to the original payment method"
    assert plan.steps == (
        RecordCancellation(detail),
        Mutation(
            "OrderCancel",
            "orderCancel",
            {
                "orderId": ORDER_ID,
                "reason": "FRAUD",
                "restock": True,
                "notifyCustomer": False,
                "staffNote": "chargeback",
                "refundMethod": {"originalPaymentMethodsRefund": True},
            },
        ),
    )
    assert plan.detail == detail and plan.first_sent == plan.steps[1]
    plain = plan_action("cancel_order", order(), {}, FACTS)
    assert plain.detail == "reason other, no refund"
    assert mutations(plain)[0][1]["refundMethod"] is None and mutations(plain)[0][1]["staffNote"] is None
    credit = plan_action("cancel_order", order(), {"refund": "store_credit"}, FACTS)
    assert credit.detail == "reason other, refunded as store credit"
    assert mutations(credit)[0][1]["refundMethod"] == {"storeCreditRefund": {}}
    assert plan_action("cancel_order", order(), {"refund": "cash"}, FACTS) == Refused(
        "“cash” is not a way to refund; pick one from the list."
    )


def test_cancel_order_already_cancelled_under_way_or_with_a_reason_shopify_does_not_know():
    assert plan_action("cancel_order", order(cancelled_at=NOW), {}, FACTS) == AlreadyDone("#1001 is cancelled already.")
    asked = CancellationInFlight("U0ALEX", NOW - timedelta(minutes=3))
    assert plan_action("cancel_order", order(), {}, replace(FACTS, cancellation=asked)) == AlreadyDone(
        "Shopify is already cancelling #1001: <@U0ALEX> asked 3m ago. The alert updates when it is done.",
        under_way=True,
    )
    assert plan_action("cancel_order", order(), {"reason": "BORED"}, FACTS) == Refused(
        "“BORED” is not a reason Shopify accepts; pick one from the list."
    )


# --- snooze and unfulfil ------------------------------------------------------------------------------------------


def test_snooze_until_now_plus_the_span_chosen():
    plan = plan_action("snooze", order(), {"for": "1d"}, FACTS)
    assert plan.steps == (Snooze(NOW + timedelta(days=1)),)
    assert plan.detail == "for 1d, until Sat 28 Nov 12:00 UTC"
    assert plan.first_sent is None


@pytest.mark.parametrize(
    ("choice", "refusal"),
    [
        ("soon", "“soon” is not a snooze length; use 4h, 1d, 3d or 1w."),
        ("", "“” is not a snooze length; use 4h, 1d, 3d or 1w."),
        ("31d", "Snooze for between a minute and 30 days."),
    ],
)
def test_snooze_lengths_refused(choice, refusal):
    assert plan_action("snooze", order(), {"for": choice}, FACTS) == Refused(refusal)


def test_unfulfil_cancels_the_latest_shipment():
    older = shipment(1, hours_ago=5)
    latest = shipment(2, tracking=(Tracking("1Z", "UPS", None), Tracking(None, None, "https://x")), hours_ago=1)
    plan = plan_action("unfulfill", order(fulfillments=(latest, older)), {}, FACTS)
    assert mutations(plan) == [("FulfillmentCancel", {"id": latest.id})]
    assert plan.detail == "the shipment with tracking 1Z"
    assert plan_action("unfulfill", order(fulfillments=(older,)), {}, FACTS).detail == ""
    assert plan_action("unfulfill", order(), {}, FACTS) == AlreadyDone(
        "#1001 has no fulfillment to cancel; it is unfulfilled already."
    )


# --- a lost answer ------------------------------------------------------------------------------------------------


def test_a_lost_answer_applied_unless_the_new_plan_would_send_the_same_mutation_first():
    main, annex = fo(1, location="Main"), fo(2, location="Annex")
    inputs = {"tracking_number": "1Z"}
    first, second = plan_action("fulfill", order(fulfillment_orders=(main, annex)), inputs, FACTS).steps
    neither = plan_action("fulfill", order(fulfillment_orders=(main, annex)), inputs, FACTS)
    only_annex_left = plan_action("fulfill", order(fulfillment_orders=(annex,)), inputs, FACTS)
    assert lost_answer_applied(neither, first) is False
    assert lost_answer_applied(only_annex_left, first) is True
    assert lost_answer_applied(only_annex_left, second) is False, "the first applied, the second (lost) did not"
    shipped = plan_action(
        "fulfill", order(fulfillments=(shipment(1, tracking=(Tracking("1Z", None, None),)),)), inputs, FACTS
    )
    assert lost_answer_applied(shipped, second) is True


def test_a_lost_cancellation_under_way_applied_and_a_refused_replan_cannot_tell():
    (_, cancel) = plan_action("cancel_order", order(), {}, FACTS).steps
    in_flight = replace(FACTS, cancellation=CancellationInFlight("U0ALEX", NOW))
    assert lost_answer_applied(plan_action("cancel_order", order(), {}, in_flight), cancel) is True
    assert lost_answer_applied(Refused("Shopify no longer accepts that."), cancel) is None


# --- payment ------------------------------------------------------------------------------------------------------


def test_capture_takes_all_the_authorization_holds_in_the_customers_currency():
    plan = plan_action("capture_payment", AUTHORIZED, {}, FACTS)
    assert mutations(plan) == [
        (
            "OrderCapture",
            {
                "input": {
                    "id": ORDER_ID,
                    "parentTransactionId": "gid://shopify/OrderTransaction/7",
                    "amount": "54.90",
                    "currency": "EUR",
                }
            },
        )
    ]
    assert plan.detail == "54.90 EUR"


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        pytest.param(
            replace(AUTHORIZED, financial_status="PAID", capturable=False),
            AlreadyDone("The payment for #1001 was captured already."),
            id="captured",
        ),
        pytest.param(
            BANK_DEPOSIT,
            Refused("Shopify shows no authorized payment to capture on #1001. Check its payment in Shopify."),
            id="nothing-authorized",
        ),
        pytest.param(
            replace(AUTHORIZED, capturable=False, financial_status="VOIDED", cancelled_at=NOW),
            Refused("#1001 is cancelled; there is no payment left to capture."),
            id="cancelled",
        ),
    ],
)
def test_capture_of_an_order_with_nothing_to_capture(subject, expected):
    assert plan_action("capture_payment", subject, {}, FACTS) == expected


def test_mark_as_paid_records_a_manual_payment():
    plan = plan_action("mark_as_paid", BANK_DEPOSIT, {}, FACTS)
    assert mutations(plan) == [("OrderMarkAsPaid", {"input": {"id": ORDER_ID}})]
    assert plan.detail == "Bank Deposit"


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        pytest.param(
            replace(BANK_DEPOSIT, financial_status="PAID", can_mark_as_paid=False),
            AlreadyDone("#1001 is paid already."),
            id="paid",
        ),
        pytest.param(
            AUTHORIZED,
            Refused("#1001 has an authorized payment: capture it instead, so the customer is charged."),
            id="authorized",
        ),
        pytest.param(
            replace(BANK_DEPOSIT, can_mark_as_paid=False, payment_gateways=("shopify_payments",)),
            Refused(
                "Shopify does not let #1001 be marked as paid (a payment may still be processing). Check its "
                "payment in Shopify."
            ),
            id="card-processing",
        ),
    ],
)
def test_mark_as_paid_where_shopify_would_not(subject, expected):
    assert plan_action("mark_as_paid", subject, {}, FACTS) == expected


def test_a_lost_capture_answer_applied_when_the_order_shows_it_paid():
    plan = plan_action("capture_payment", AUTHORIZED, {}, FACTS)
    paid = replace(AUTHORIZED, financial_status="PAID", capturable=False, capturable_amount=Money("0.00", "EUR"))
    assert lost_answer_applied(plan_action("capture_payment", paid, {}, FACTS), plan.first_sent) is True
    assert lost_answer_applied(plan_action("capture_payment", AUTHORIZED, {}, FACTS), plan.first_sent) is False


# --- delete -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "subject", [order(closed_at=NOW), order(cancelled_at=NOW, closed_at=NOW)], ids=["archived", "cancelled"]
)
def test_delete_an_archived_or_cancelled_order(subject):
    plan = plan_action("delete", subject, {}, FACTS)
    assert mutations(plan) == [("OrderDelete", {"orderId": ORDER_ID})]
    assert plan.steps[0].removes_order


def test_delete_refuses_an_open_order():
    assert plan_action("delete", order(), {}, FACTS) == Refused(
        "#1001 is open; Shopify deletes only archived or cancelled orders. Archive or cancel it first."
    )


# --- move ---------------------------------------------------------------------------------------------------------


def test_move_sends_the_fulfillment_order_to_the_location_then_releases_its_stock_hold():
    plan = plan_action("move", order(fulfillment_orders=(OUT_OF_STOCK,)), TO_STORE, FACTS)
    assert mutations(plan) == [
        ("FulfillmentOrderMove", {"id": OUT_OF_STOCK.id, "newLocationId": STORE}),
        ("HoldRelease", {"id": OUT_OF_STOCK.id, "holdIds": [STOCK_HOLD.id]}),
    ]
    assert plan.steps[1].if_refused == "the out-of-stock hold could not be released"  # the move stands
    assert plan.detail == "to Store, out-of-stock hold released"


def test_move_keeps_the_hold_when_asked_to_or_when_part_of_it_shipped():
    kept = plan_action("move", order(fulfillment_orders=(OUT_OF_STOCK,)), {**TO_STORE, "release_hold": False}, FACTS)
    assert [name for name, _ in mutations(kept)] == ["FulfillmentOrderMove"]
    assert kept.detail == "to Store; still on hold for stock: release the hold once it can ship"
    part_shipped = replace(OUT_OF_STOCK, lines=(replace(OUT_OF_STOCK.lines[0], remaining=1),))
    split = plan_action("move", order(fulfillment_orders=(part_shipped,)), TO_STORE, FACTS)
    assert [name for name, _ in mutations(split)] == ["FulfillmentOrderMove"], "the moved items are a new FO"
    plain = replace(OUT_OF_STOCK, status="OPEN", holds=(), supported_actions=("CREATE_FULFILLMENT", "MOVE"))
    assert plan_action("move", order(fulfillment_orders=(plain,)), TO_STORE, FACTS).detail == "to Store"


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        (replace(OUT_OF_STOCK, location_id=STORE), AlreadyDone("#1001 ships from Store already.")),
        (
            replace(OUT_OF_STOCK, status="CLOSED", supported_actions=()),
            AlreadyDone("Nothing of #1001 is left to move: it shipped or was cancelled."),
        ),
        (
            replace(OUT_OF_STOCK, status="OPEN", request_status="SUBMITTED", service="ShipBob", holds=(),
                    supported_actions=("REQUEST_CANCELLATION",)),
            Refused("ShipBob has the fulfillment request for #1001, so Shopify does not move it. Cancel the request "
                    "first."),
        ),
        (
            replace(OUT_OF_STOCK, status="IN_PROGRESS", supported_actions=("CREATE_FULFILLMENT",)),
            Refused("Shopify does not let #1001 move while it is in progress. Check the order in Shopify."),
        ),
        (
            replace(OUT_OF_STOCK, id="gid://shopify/FulfillmentOrder/77"),
            Refused("#1001 has no such fulfillment order any more; open the form again from the alert."),
        ),
    ],
    ids=["at-the-location-already", "closed", "requested-at-a-service", "in-progress", "another-fo"],
)  # fmt: skip
def test_move_where_shopify_would_not_or_it_is_done(subject, expected):
    assert plan_action("move", order(fulfillment_orders=(subject,)), TO_STORE, FACTS) == expected


def test_a_lost_move_applied_when_the_fulfillment_order_is_at_the_new_location_or_its_items_moved_on():
    (move, _) = plan_action("move", order(fulfillment_orders=(OUT_OF_STOCK,)), TO_STORE, FACTS).steps
    replan = lambda *fos: plan_action("move", order(fulfillment_orders=fos), TO_STORE, FACTS)  # noqa: E731
    assert lost_answer_applied(replan(OUT_OF_STOCK), move) is False
    assert lost_answer_applied(replan(replace(OUT_OF_STOCK, location_id=STORE)), move) is True
    # Part of it had shipped: the original closed, the items in a new fulfillment order at the store.
    closed = replace(OUT_OF_STOCK, status="CLOSED", supported_actions=())
    moved = replace(OUT_OF_STOCK, id="gid://shopify/FulfillmentOrder/2", location_id=STORE)
    assert replan(closed, moved) == AlreadyDone("#1001 ships from Store already.")
    assert lost_answer_applied(replan(closed, moved), move) is True
