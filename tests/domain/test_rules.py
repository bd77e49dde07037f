"""classify(): one table row per situation, built from small Order builders; times relative to a fixed NOW."""

from __future__ import annotations

import pickle
from dataclasses import FrozenInstanceError, replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.alerts import alert_state
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
from bot.domain.rules import DEFAULT_THRESHOLDS, REASON_TITLES, REASONS, Policy, Verdict, classify, needs_watching

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
H = timedelta(hours=1)
D = timedelta(days=1)
GENERIC = ("notify_customer", "snooze", "archive", "cancel_order")  # for a stuck order whose customer has an email
ALL_FO_ACTIONS = ("CREATE_FULFILLMENT", "REQUEST_FULFILLMENT", "REQUEST_CANCELLATION", "RELEASE_HOLD")


# --- builders -----------------------------------------------------------------------------------------------------


def fo(
    status: str = "OPEN",
    request: str = "UNSUBMITTED",
    *,
    ago: timedelta = H,
    service: str | None = None,
    holds: tuple[Hold, ...] = (),
    actions: tuple[str, ...] = ALL_FO_ACTIONS,
    fulfill_at: datetime | None = None,
    fulfill_by: datetime | None = None,
    remaining: int = 2,
    total: int = 2,
    number: int = 1,
) -> FulfillmentOrder:
    """A fulfillment order last updated `ago` before NOW."""
    return FulfillmentOrder(
        id=f"gid://shopify/FulfillmentOrder/{number}",
        status=status,
        request_status=request,
        created_at=NOW - 30 * D,
        updated_at=NOW - ago,
        location="Main warehouse" if service is None else f"{service} location",
        service=service,
        fulfill_at=fulfill_at,
        fulfill_by=fulfill_by,
        holds=holds,
        supported_actions=actions,
        lines=(
            FulfillmentOrderLine(f"gid://shopify/FulfillmentOrderLineItem/{number}", "Mug", "MUG-1", remaining, total),
        ),
    )


def held(reason: str, *, ago: timedelta = H, notes: str | None = None, **kwargs) -> FulfillmentOrder:
    return fo("ON_HOLD", ago=ago, holds=(Hold("gid://shopify/FulfillmentHold/1", reason, notes),), **kwargs)


def shipped(ago: timedelta, *, tracking: str | None = "1Z999", number: int = 1) -> Fulfillment:
    return Fulfillment(
        id=f"gid://shopify/Fulfillment/{number}",
        status="SUCCESS",
        created_at=NOW - ago,
        updated_at=NOW - ago,
        tracking=(Tracking(tracking, "UPS", None),) if tracking else (),
    )


def order(
    *fos: FulfillmentOrder,
    ago: timedelta = H,
    unknown: bool = False,
    financial: str = "PAID",
    fulfillment: str = "UNFULFILLED",
    fulfillments: tuple[Fulfillment, ...] = (),
    tags: tuple[str, ...] = (),
    test: bool = False,
    closed: bool = False,
    cancelled: bool = False,
    email: str | None = "ann@example.com",
    authorization_expires: datetime | None = None,
) -> Order:
    """An order placed `ago` before NOW; `unknown=True` leaves its fulfillment orders unfetched (None)."""
    return Order(
        id="gid://shopify/Order/1001",
        name="#1001",
        created_at=NOW - ago,
        updated_at=NOW - MIN,
        financial_status=financial,
        fulfillment_status=fulfillment,
        total=Money("20.00", "EUR"),
        closed_at=NOW - MIN if closed else None,
        cancelled_at=NOW - MIN if cancelled else None,
        test=test,
        tags=tags,
        customer=Customer("Ann", email),
        fulfillments=fulfillments,
        fulfillment_orders=None if unknown else fos,
        authorization_expires_at=authorization_expires,
    )


def policy(**thresholds: timedelta) -> Policy:
    return Policy(thresholds=thresholds)


def case(id: str, subject: Order, *, pol: Policy | None = None, snoozed: datetime | None = None, **expected):
    return pytest.param(subject, pol or Policy(), snoozed, expected, id=id)


def check(verdict: Verdict, expected: dict) -> None:
    says = expected.pop("says", ())
    for name, value in expected.items():
        assert getattr(verdict, name) == value, f"{name}: {getattr(verdict, name)!r} != {value!r}"
    for text in (says,) if isinstance(says, str) else says:
        assert text in verdict.explanation
    assert verdict.stuck == (verdict.status in REASONS)
    assert (verdict.severity == "none") == (not verdict.stuck)


# --- each reason around its threshold -----------------------------------------------------------------------------

# Rows: (id, order, expected Verdict fields; `says` = fragments of the explanation). fmt: off keeps one row a few lines.
# fmt: off
THRESHOLD_CASES = [
    # unfulfilled_overdue: since the order was placed, 48h.
    case("unfulfilled-just-before-48h", order(fo(), ago=48 * H - MIN),
         status="waiting", reason="unfulfilled_overdue", stuck=False, severity="none",
         since=NOW - 48 * H + MIN, due_at=NOW + MIN,
         actions=("fulfill", "request_fulfillment", "notify_customer", "archive", "cancel_order"),
         says=("nobody has shipped it from Main warehouse yet",
               "; it counts as stuck in 1 minute if nothing changes.")),
    case("unfulfilled-at-48h", order(fo(), ago=48 * H),
         status="unfulfilled_overdue", severity="warning", due_at=NOW),
    case("unfulfilled-just-after-48h", order(fo(), ago=48 * H + MIN),
         status="unfulfilled_overdue", reason="unfulfilled_overdue", stuck=True, severity="warning",
         since=NOW - 48 * H - MIN, due_at=NOW - MIN, other_reasons=(),
         actions=("fulfill", "request_fulfillment", *GENERIC),
         next_steps=("Ship it from Main warehouse and add the tracking number", "Tell the customer if it will be late"),
         explanation="This order was placed 48 hours ago and nobody has shipped it from Main warehouse yet."),
    case("unfulfilled-just-before-96h-warning", order(fo(), ago=96 * H - MIN),
         status="unfulfilled_overdue", severity="warning"),
    case("unfulfilled-past-96h-critical", order(fo(), ago=96 * H + MIN),
         status="unfulfilled_overdue", severity="critical"),
    case("unfulfilled-app-never-requested", order(fo(service="DSers"), ago=3 * D),
         status="unfulfilled_overdue",
         next_steps=("Request fulfillment from DSers", "Tell the customer if it will be late"),
         says="has not been sent to DSers yet"),
    case("unfulfilled-after-cancellation-accepted",
         order(fo(request="CANCELLATION_ACCEPTED", service="DSers"), ago=3 * D),
         status="unfulfilled_overdue", since=NOW - 3 * D),
    # fulfillBy replaces the 48h deadline.
    case("fulfill-by-passed-before-48h", order(fo(fulfill_by=NOW - MIN), ago=10 * H),
         status="unfulfilled_overdue", severity="warning", since=NOW - 10 * H, due_at=NOW - MIN,
         says="(ship by 10 Mar 11:59 UTC)"),
    case("fulfill-by-ahead-after-48h", order(fo(fulfill_by=NOW + H), ago=60 * H),
         status="waiting", reason="unfulfilled_overdue", due_at=NOW + H),
    case("fulfill-by-passed-by-more-than-48h-critical", order(fo(fulfill_by=NOW - 48 * H - MIN), ago=5 * D),
         status="unfulfilled_overdue", severity="critical", due_at=NOW - 48 * H - MIN),
    # out_of_stock: since the FO was held (its updated_at), 24h.
    case("out-of-stock-just-before-24h", order(held("INVENTORY_OUT_OF_STOCK", ago=24 * H - MIN), ago=5 * D),
         status="waiting", reason="out_of_stock", since=NOW - 24 * H + MIN, due_at=NOW + MIN,
         actions=("release_hold", "notify_customer", "archive", "cancel_order")),
    case("out-of-stock-just-after-24h",
         order(held("INVENTORY_OUT_OF_STOCK", ago=24 * H + MIN, notes="back Friday"), ago=5 * D),
         status="out_of_stock", severity="warning", since=NOW - 24 * H - MIN, due_at=NOW - MIN,
         actions=("release_hold", *GENERIC),
         explanation='This order has been on hold for 24 hours because items are out of stock at Main warehouse'
                     ' (note: "back Friday").'),
    case("out-of-stock-movable-offers-move-first",
         order(held("INVENTORY_OUT_OF_STOCK", ago=2 * D, actions=("RELEASE_HOLD", "HOLD", "MOVE")), ago=5 * D),
         status="out_of_stock", actions=("move", "release_hold", *GENERIC)),
    case("out-of-stock-past-48h-critical", order(held("INVENTORY_OUT_OF_STOCK", ago=48 * H + MIN), ago=5 * D),
         status="out_of_stock", severity="critical"),
    # on_hold: any other hold reason, 24h.
    case("on-hold-just-before-24h", order(held("INCORRECT_ADDRESS", ago=24 * H - MIN), ago=5 * D),
         status="waiting", reason="on_hold", due_at=NOW + MIN),
    case("on-hold-address-just-after-24h", order(held("INCORRECT_ADDRESS", ago=24 * H + MIN), ago=5 * D),
         status="on_hold", severity="warning", since=NOW - 24 * H - MIN,
         next_steps=("Confirm the address with the customer", "Release the hold once it is sorted",
                     "Tell the customer if it will be late"),
         explanation="This order has been on hold at Main warehouse for 24 hours"
                     " because the shipping address looks wrong."),
    case("on-hold-fraud", order(held("HIGH_RISK_OF_FRAUD", ago=2 * D), ago=5 * D),
         status="on_hold", says="because it may be fraudulent"),
    case("on-hold-without-hold-details", order(fo("ON_HOLD", ago=2 * D), ago=5 * D),
         status="on_hold", says="a hold Shopify gave no reason for"),
    case("on-hold-past-48h-critical", order(held("OTHER", ago=48 * H + MIN), ago=5 * D),
         status="on_hold", severity="critical"),
    # payment_pending: since the order was placed, 72h; an authorization is void after about 7 days.
    case("payment-pending-just-before-72h", order(ago=72 * H - MIN, financial="PENDING"),
         status="waiting", reason="payment_pending", due_at=NOW + MIN),
    case("payment-pending-just-after-72h", order(fo(), ago=72 * H + MIN, financial="PENDING"),
         status="payment_pending", severity="warning", since=NOW - 72 * H - MIN, due_at=NOW - MIN,
         other_reasons=("unfulfilled_overdue",), actions=GENERIC,
         explanation="Payment has been pending for 3 days."),
    case("payment-pending-past-144h-critical", order(ago=144 * H + MIN, financial="PENDING"),
         status="payment_pending", severity="critical"),
    case("payment-authorized-warns-of-expiry", order(fo(), ago=4 * D, financial="AUTHORIZED"),
         status="payment_pending", severity="warning",
         next_steps=("Capture the payment before the authorization expires",
                     "Contact the customer if the payment failed", "Cancel the order if it will not be paid"),
         explanation="Payment has been authorized but not captured for 4 days; authorizations usually expire after"
                     " 7 days, so capture it within 3 days."),
    case("payment-authorized-near-expiry-critical-before-twice-threshold",
         order(fo(), ago=6 * D + MIN, financial="AUTHORIZED"), pol=policy(payment_pending=5 * D),
         status="payment_pending", severity="critical", due_at=NOW - D - MIN),
    case("payment-pending-same-age-only-warning",
         order(fo(), ago=6 * D + MIN, financial="PENDING"), pol=policy(payment_pending=5 * D),
         status="payment_pending", severity="warning"),
    case("payment-authorized-expired", order(fo(), ago=8 * D, financial="AUTHORIZED"),
         status="payment_pending", severity="critical", says="so it has probably expired"),
    # ... unless Shopify gives the authorization's expiry: critical a day before it, and stuck by then at the latest.
    case("payment-authorized-expiry-from-shopify",
         order(fo(), ago=4 * D, financial="AUTHORIZED", authorization_expires=NOW + 2 * D),
         status="payment_pending", severity="warning",
         explanation="Payment has been authorized but not captured for 4 days; the authorization expires on"
                     " 12 Mar 12:00 UTC, so capture it within 48 hours."),
    case("payment-authorized-expiring-soon-is-stuck-and-critical-before-the-threshold",
         order(fo(), ago=D, financial="AUTHORIZED", authorization_expires=NOW + 12 * H),
         status="payment_pending", severity="critical", due_at=NOW - 12 * H, says="capture it within 12 hours"),
    case("payment-authorized-long-expiry-not-critical-where-the-guess-would-be",
         order(fo(), ago=6 * D + MIN, financial="AUTHORIZED", authorization_expires=NOW + 20 * D),
         pol=policy(payment_pending=5 * D), status="payment_pending", severity="warning"),
    case("payment-authorized-expired-per-shopify",
         order(fo(), ago=4 * D, financial="AUTHORIZED", authorization_expires=NOW - H),
         status="payment_pending", severity="critical", says="; the authorization expired on 10 Mar 11:00 UTC."),
    case("payment-partially-paid", order(fo(), ago=4 * D, financial="PARTIALLY_PAID"),
         status="payment_pending", says="The order has been only partly paid for 4 days."),
    case("payment-hold-awaiting-payment", order(held("AWAITING_PAYMENT", ago=72 * H + MIN), ago=10 * D),
         status="payment_pending", since=NOW - 72 * H - MIN, says="Shipping has been on hold awaiting payment"),
    case("payment-pending-on-fulfilled-order-is-ok",
         order(fo("CLOSED", "CLOSED", remaining=0, actions=()), ago=10 * D, financial="PENDING",
               fulfillment="FULFILLED", fulfillments=(shipped(9 * D),)),
         status="ok"),
    # request_pending: since the request was sent (FO updated_at), 24h.
    case("request-pending-just-before-24h",
         order(fo("OPEN", "SUBMITTED", service="DSers", ago=24 * H - MIN), ago=5 * D),
         status="waiting", reason="request_pending", due_at=NOW + MIN),
    case("request-pending-just-after-24h",
         order(fo("OPEN", "SUBMITTED", service="DSers", ago=24 * H + MIN), ago=5 * D),
         status="request_pending", severity="warning", since=NOW - 24 * H - MIN,
         actions=("cancel_request", *GENERIC),
         next_steps=("Check that DSers received the order", "Contact DSers support if it is not synced",
                     "Cancel the request and ship it yourself if needed"),
         explanation="DSers has not answered the fulfillment request for 24 hours."),
    case("request-pending-past-48h-critical",
         order(fo("OPEN", "SUBMITTED", service="DSers", ago=48 * H + MIN), ago=5 * D),
         status="request_pending", severity="critical"),
    case("cancellation-request-unanswered",
         order(fo("IN_PROGRESS", "CANCELLATION_REQUESTED", service="DSers", ago=2 * D), ago=5 * D),
         status="request_pending", says="DSers has not answered the cancellation request"),
    # request_rejected: stuck and critical at once.
    case("request-rejected-at-once-critical",
         order(fo("OPEN", "REJECTED", service="DSers", ago=MIN), ago=5 * D),
         status="request_rejected", severity="critical", since=NOW - MIN, due_at=NOW - MIN,
         actions=("fulfill", "request_fulfillment", *GENERIC),
         explanation="DSers rejected the fulfillment request 1 minute ago."),
    case("cancellation-rejected",
         order(fo("IN_PROGRESS", "CANCELLATION_REJECTED", service="DSers", ago=H), ago=5 * D),
         status="request_rejected", says="DSers refused to cancel the fulfillment request"),
    case("service-gave-up-incomplete", order(fo("INCOMPLETE", "ACCEPTED", service="DSers", ago=H), ago=5 * D),
         status="request_rejected", says="DSers gave up on the order"),
    # awaiting_tracking: since the app accepted (FO updated_at), or the oldest fulfillment without tracking, 72h.
    case("accepted-no-tracking-just-before-72h",
         order(fo("IN_PROGRESS", "ACCEPTED", service="DSers", ago=72 * H - MIN), ago=5 * D),
         status="waiting", reason="awaiting_tracking", due_at=NOW + MIN),
    case("accepted-no-tracking-just-after-72h",
         order(fo("IN_PROGRESS", "ACCEPTED", service="DSers", ago=72 * H + MIN), ago=5 * D),
         status="awaiting_tracking", severity="warning", since=NOW - 72 * H - MIN,
         actions=("fulfill", "cancel_request", *GENERIC),
         next_steps=("Check DSers for the tracking number",
                     "Ask DSers why it has not shipped, or cancel the request and ship it yourself",
                     "Tell the customer about the delay"),
         explanation="DSers accepted the order 3 days ago, but no tracking number has arrived."),
    case("accepted-no-tracking-past-144h-critical",
         order(fo("IN_PROGRESS", "ACCEPTED", service="DSers", ago=144 * H + MIN), ago=7 * D),
         status="awaiting_tracking", severity="critical"),
    case("fulfillment-without-tracking-oldest-counts",
         order(fo("CLOSED", "CLOSED", remaining=0, actions=()), ago=10 * D, fulfillment="FULFILLED",
               fulfillments=(shipped(72 * H - MIN, tracking=None, number=2), shipped(72 * H + MIN, tracking=None))),
         status="awaiting_tracking", since=NOW - 72 * H - MIN, due_at=NOW - MIN,
         actions=("fulfill", *GENERIC),  # the closed FO supports nothing; "fulfill" adds tracking to the shipment
         next_steps=("Check your shipping app or carrier for the tracking number",
                     "Add the number to the shipment (Add tracking)", "Tell the customer about the delay"),
         says="Items were marked as shipped 3 days ago"),
    case("fulfillment-with-tracking-is-ok",
         order(fo("CLOSED", "CLOSED", remaining=0, actions=()), ago=10 * D, fulfillment="FULFILLED",
               fulfillments=(shipped(9 * D),)),
         status="ok", reason=None, actions=(), explanation="Nothing is waiting to ship."),
    # partially_fulfilled: since the last part shipped, 72h.
    case("partial-just-before-72h",
         order(fo(remaining=1), ago=10 * D, fulfillment="PARTIALLY_FULFILLED", fulfillments=(shipped(72 * H - MIN),)),
         status="waiting", reason="partially_fulfilled", since=NOW - 72 * H + MIN, due_at=NOW + MIN),
    case("partial-just-after-72h",
         order(fo(remaining=1), ago=10 * D, fulfillment="PARTIALLY_FULFILLED",
               fulfillments=(shipped(8 * D, number=2), shipped(72 * H + MIN))),
         status="partially_fulfilled", severity="warning", since=NOW - 72 * H - MIN,
         explanation="Part of this order shipped 3 days ago,"
                     " but the rest (1 item) has not shipped from Main warehouse."),
    case("partial-past-144h-critical",
         order(fo(remaining=1), ago=10 * D, fulfillment="PARTIALLY_FULFILLED", fulfillments=(shipped(144 * H + MIN),)),
         status="partially_fulfilled", severity="critical"),
    case("partial-from-fo-lines", order(fo(remaining=1, total=3), ago=10 * D, fulfillments=(shipped(4 * D),)),
         status="partially_fulfilled", severity="warning", says="the rest (1 item)"),
]
# fmt: on


@pytest.mark.parametrize(("subject", "pol", "snoozed", "expected"), THRESHOLD_CASES)
def test_reasons_around_their_thresholds(subject: Order, pol: Policy, snoozed, expected: dict) -> None:
    check(classify(subject, NOW, pol, snoozed), expected)


# --- scheduled, exclusions, snooze, unknown -------------------------------------------------------------------------

REJECTED = fo("OPEN", "REJECTED", service="DSers", ago=H)  # stuck at once: shows that exclusions beat reasons

# fmt: off
STATE_CASES = [
    case("scheduled-before-fulfill-at", order(fo("SCHEDULED", fulfill_at=NOW + H), ago=10 * D),
         status="scheduled", reason=None, stuck=False, due_at=NOW + H, actions=(),
         explanation="Shipping is scheduled for 10 Mar 13:00 UTC."),
    case("scheduled-just-after-fulfill-at-is-open", order(fo("SCHEDULED", fulfill_at=NOW - MIN), ago=10 * D),
         status="waiting", reason="unfulfilled_overdue", since=NOW - MIN, due_at=NOW + 48 * H - MIN,
         says="This order was due to ship 1 minute ago"),
    case("scheduled-48h-after-fulfill-at-is-stuck",
         order(fo("SCHEDULED", fulfill_at=NOW - 48 * H - MIN), ago=10 * D),
         status="unfulfilled_overdue", severity="warning", since=NOW - 48 * H - MIN),
    case("cancelled", order(REJECTED, cancelled=True),
         status="cancelled", stuck=False, reason=None, actions=(), explanation="The order is cancelled."),
    case("closed", order(REJECTED, closed=True), status="closed", explanation="The order is archived."),
    case("test", order(REJECTED, test=True), status="test"),
    case("test-included-by-policy", order(REJECTED, test=True), pol=Policy(include_test_orders=True),
         status="request_rejected"),
    case("ignore-tag-any-case", order(REJECTED, tags=("vip", "OrderBot-Ignore")), status="ignored"),
    case("custom-ignore-tag", order(REJECTED, tags=("hold-off",)), pol=Policy(ignore_tag="Hold-Off"),
         status="ignored"),
    case("default-tag-not-ignored-with-custom", order(REJECTED, tags=("orderbot-ignore",)),
         pol=Policy(ignore_tag="x"), status="request_rejected"),
    case("snoozed", order(REJECTED), snoozed=NOW + H,
         status="snoozed", due_at=NOW + H, explanation="Snoozed for another 1 hour."),
    case("snooze-ends-exactly-now", order(REJECTED), snoozed=NOW, status="request_rejected"),
    case("snooze-expired", order(REJECTED), snoozed=NOW - MIN, status="request_rejected"),
    # The order of exclusions: cancelled, closed, test, ignore tag, snoozed.
    case("cancelled-beats-closed", order(REJECTED, cancelled=True, closed=True), status="cancelled"),
    case("closed-beats-test", order(REJECTED, closed=True, test=True), status="closed"),
    case("test-beats-ignored", order(REJECTED, test=True, tags=("orderbot-ignore",)), status="test"),
    case("ignored-beats-snoozed", order(REJECTED, tags=("orderbot-ignore",)), snoozed=NOW + H, status="ignored"),
    # Fulfillment orders not fetched yet: decide from the order's own fields where they suffice.
    case("unknown-fos", order(unknown=True, ago=10 * D), status="unknown", reason=None, due_at=None),
    case("unknown-fos-cancelled", order(unknown=True, cancelled=True), status="cancelled"),
    case("unknown-fos-closed", order(unknown=True, closed=True), status="closed"),
    case("unknown-fos-test", order(unknown=True, test=True), status="test"),
    case("unknown-fos-ignored", order(unknown=True, tags=("orderbot-ignore",)), status="ignored"),
    case("unknown-fos-payment-pending", order(unknown=True, ago=72 * H + MIN, financial="PENDING"),
         status="payment_pending", since=NOW - 72 * H - MIN),
    case("unknown-fos-fulfilled", order(unknown=True, fulfillment="FULFILLED", fulfillments=(shipped(D),)),
         status="ok"),
    case("unknown-fos-untracked-fulfillment",
         order(unknown=True, fulfillment="FULFILLED", fulfillments=(shipped(4 * D, tracking=None),)),
         status="awaiting_tracking", since=NOW - 4 * D, actions=("fulfill", *GENERIC)),
    case("no-fos-nothing-to-ship", order(ago=10 * D), status="ok"),
    case("cancelled-fo-nothing-to-ship", order(fo("CANCELLED", "CLOSED"), ago=10 * D), status="ok"),
]
# fmt: on


@pytest.mark.parametrize(("subject", "pol", "snoozed", "expected"), STATE_CASES)
def test_states_and_exclusions(subject: Order, pol: Policy, snoozed, expected: dict) -> None:
    check(classify(subject, NOW, pol, snoozed), expected)


def test_a_cancellation_in_flight_is_watched_not_stuck_until_shopify_shows_the_order_cancelled() -> None:
    """Shopify cancels in the background: meanwhile nothing is offered (no second cancel), and the alert waits."""
    asked = NOW - MIN
    cancelling = classify(order(REJECTED), NOW, Policy(), cancelling_since=asked)
    check(cancelling, {"status": "cancelling", "stuck": False, "reason": None, "actions": ()})
    assert "Cancellation requested" in cancelling.explanation
    assert alert_state(cancelling) == "waiting"
    assert classify(order(REJECTED, cancelled=True), NOW, Policy(), cancelling_since=asked).status == "cancelled"
    archived = classify(order(REJECTED, closed=True), NOW, Policy(), NOW + H, cancelling_since=asked)
    assert archived.status == "cancelling", "a cancellation in flight says more than archived or snoozed"


# --- several reasons, and the actions offered -----------------------------------------------------------------------

OUT_OF_STOCK = held("INVENTORY_OUT_OF_STOCK", ago=25 * H, actions=("RELEASE_HOLD",), number=1)
SUBMITTED = fo("OPEN", "SUBMITTED", service="DSers", ago=25 * H, actions=("REQUEST_CANCELLATION",), number=2)
SUBMITTED_RECENTLY = fo("OPEN", "SUBMITTED", service="DSers", ago=H, number=2)

# fmt: off
PRIORITY_CASES = [
    case("hold-before-request-pending", order(OUT_OF_STOCK, SUBMITTED, ago=5 * D),
         status="out_of_stock", other_reasons=("request_pending",),
         actions=("release_hold", *GENERIC)),  # not cancel_request: only the other FO supports it
    case("rejected-before-everything",
         order(OUT_OF_STOCK, replace(SUBMITTED, request_status="REJECTED"), ago=5 * D, financial="PENDING"),
         status="request_rejected", other_reasons=("payment_pending", "out_of_stock"),
         actions=GENERIC),  # the rejected FO supports neither CREATE_FULFILLMENT nor REQUEST_FULFILLMENT here
    case("waiting-reason-not-among-stuck-others", order(fo(), SUBMITTED_RECENTLY, ago=3 * D),
         status="unfulfilled_overdue", other_reasons=()),
    case("waiting-picks-the-reason-due-first", order(fo(), replace(SUBMITTED_RECENTLY, updated_at=NOW - 23 * H),
                                                     ago=40 * H),
         status="waiting", reason="request_pending", due_at=NOW + H, other_reasons=("unfulfilled_overdue",)),
    case("two-holds-on-one-fo",
         order(fo("ON_HOLD", ago=2 * D, holds=(Hold("h1", "HIGH_RISK_OF_FRAUD"), Hold("h2", "INVENTORY_OUT_OF_STOCK"))),
               ago=5 * D),
         status="out_of_stock", other_reasons=("on_hold",)),
    case("same-reason-on-two-fos-first-due-wins",
         order(fo("OPEN", "SUBMITTED", service="DSers", ago=2 * D),
               fo("OPEN", "SUBMITTED", service="ShipBob", ago=5 * D, number=2), ago=6 * D),
         status="request_pending", since=NOW - 5 * D, other_reasons=(),
         explanation="ShipBob has not answered the fulfillment request for 5 days."),
    case("actions-filtered-by-supported-actions", order(fo(actions=("REQUEST_FULFILLMENT",)), ago=3 * D),
         status="unfulfilled_overdue", actions=("request_fulfillment", *GENERIC)),
    case("no-email-no-notify", order(fo(), ago=3 * D, email=None),
         actions=("fulfill", "request_fulfillment", "snooze", "archive", "cancel_order")),
    case("order-level-reason-offers-any-fo-action", order(fo(actions=("CREATE_FULFILLMENT",)), ago=5 * D,
                                                        financial="PENDING"),
         status="payment_pending", actions=GENERIC),  # payment has no FO action of its own
]
# fmt: on


@pytest.mark.parametrize(("subject", "pol", "snoozed", "expected"), PRIORITY_CASES)
def test_priority_and_actions(subject: Order, pol: Policy, snoozed, expected: dict) -> None:
    check(classify(subject, NOW, pol, snoozed), expected)


def test_order_level_reason_offers_the_actions_of_any_fo() -> None:
    verdict = classify(order(fo(actions=("CREATE_FULFILLMENT",)), ago=5 * D, financial="PENDING"), NOW, Policy())
    assert (verdict.status, verdict.actions) == ("payment_pending", GENERIC)  # payment has no FO action of its own


def test_an_unpaid_order_offers_what_shopify_allows_for_its_payment() -> None:
    """Capture for an authorized payment, mark as paid for a manual one (a bank deposit), neither otherwise."""
    pending = order(fo(), ago=5 * D, financial="AUTHORIZED")
    authorized = replace(
        pending, capturable=True, capturable_amount=Money("20.00", "EUR"), authorization_id="gid://shopify/T/1"
    )
    assert classify(authorized, NOW, Policy()).actions == ("capture_payment", *GENERIC)
    manual = replace(order(fo(), ago=5 * D, financial="PENDING"), can_mark_as_paid=True)
    assert classify(manual, NOW, Policy()).actions == ("mark_as_paid", *GENERIC)
    both = replace(authorized, can_mark_as_paid=True)  # Shopify would mark it paid by capturing: capture says so
    assert classify(both, NOW, Policy()).actions == ("capture_payment", *GENERIC)
    card_pending = order(fo(), ago=5 * D, financial="PENDING")  # a card payment still processing: nothing to do
    assert classify(card_pending, NOW, Policy()).actions == GENERIC


def test_policy_thresholds_are_used() -> None:
    subject = order(fo(), ago=2 * H)
    assert classify(subject, NOW, Policy()).status == "waiting"
    verdict = classify(subject, NOW, policy(unfulfilled_overdue=H))
    assert (verdict.status, verdict.due_at, verdict.severity) == ("unfulfilled_overdue", NOW - H, "critical")


def test_every_reason_has_one_to_three_steps_and_a_sentence() -> None:
    subjects = [p.values[0] for p in THRESHOLD_CASES]
    seen = set()
    for subject in subjects:
        verdict = classify(subject, NOW, Policy())
        if verdict.reason:
            seen.add(verdict.reason)
            assert 1 <= len(verdict.next_steps) <= 3
            assert verdict.explanation.endswith(".") and verdict.explanation.count(". ") == 0
            assert "{" not in verdict.explanation + "".join(verdict.next_steps)
    assert seen == set(REASONS)


def test_stuck_for() -> None:
    stuck = classify(order(fo(), ago=3 * D), NOW, Policy())
    assert stuck.stuck_for(NOW + H) == 3 * D + H
    assert classify(order(fo(), ago=H), NOW, Policy()).stuck_for(NOW) is None


def test_reasons_titles_and_defaults() -> None:
    assert REASONS == (
        "request_rejected",
        "payment_pending",
        "out_of_stock",
        "on_hold",
        "unfulfilled_overdue",
        "partially_fulfilled",
        "request_pending",
        "awaiting_tracking",
    )
    assert tuple(REASON_TITLES) == REASONS
    assert REASON_TITLES["awaiting_tracking"] == "Awaiting tracking"
    assert dict(DEFAULT_THRESHOLDS) == {
        "request_rejected": timedelta(0),
        "payment_pending": 72 * H,
        "out_of_stock": 24 * H,
        "on_hold": 24 * H,
        "unfulfilled_overdue": 48 * H,
        "partially_fulfilled": 72 * H,
        "request_pending": 24 * H,
        "awaiting_tracking": 72 * H,
    }


# --- Policy and settings --------------------------------------------------------------------------------------------


def test_policy_defaults_from_empty_settings() -> None:
    assert Policy.from_settings({}) == Policy()
    assert Policy().to_settings() == {
        "threshold.request_rejected": "0h",
        "threshold.payment_pending": "72h",
        "threshold.out_of_stock": "24h",
        "threshold.on_hold": "24h",
        "threshold.unfulfilled_overdue": "48h",
        "threshold.partially_fulfilled": "72h",
        "threshold.request_pending": "24h",
        "threshold.awaiting_tracking": "72h",
        "ignore_tag": "orderbot-ignore",
        "include_test_orders": "false",
        "payment_actions": "admins",
        "alert_burst": "20",
    }


def test_policy_settings_round_trip() -> None:
    custom = Policy(
        thresholds={"unfulfilled_overdue": 90 * MIN, "request_rejected": H, "awaiting_tracking": timedelta(seconds=45)},
        ignore_tag="skip",
        include_test_orders=True,
        payment_actions_for="everyone",
        alert_burst=50,
    )
    settings = custom.to_settings()
    assert settings["threshold.unfulfilled_overdue"] == "90m"
    assert Policy.from_settings(settings) == custom
    assert Policy.from_settings(settings).to_settings() == settings


def test_policy_reads_human_values_and_ignores_other_keys() -> None:
    parsed = Policy.from_settings(
        {
            "threshold.unfulfilled_overdue": "1d12h",
            "threshold.on_hold": "0",
            "ignore_tag": " Skip ",
            "include_test_orders": "Yes",
            "digest_time": "09:00",
        }
    )
    assert parsed.thresholds["unfulfilled_overdue"] == 36 * H
    assert parsed.thresholds["on_hold"] == timedelta(0)
    assert parsed.thresholds["payment_pending"] == 72 * H
    assert (parsed.ignore_tag, parsed.include_test_orders) == ("Skip", True)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        pytest.param({"threshold.unfulfilled_overdue": "soon"}, "threshold.unfulfilled_overdue", id="bad-duration"),
        pytest.param({"threshold.unfulfilled_overdue": "-5h"}, "threshold.unfulfilled_overdue", id="negative"),
        pytest.param({"threshold.lost_in_post": "1d"}, "threshold.lost_in_post", id="unknown-reason"),
        pytest.param({"include_test_orders": "maybe"}, "include_test_orders", id="bad-bool"),
        pytest.param({"ignore_tag": "  "}, "ignore_tag", id="empty-tag"),
        pytest.param({"payment_actions": "managers"}, "payment_actions", id="bad-payment-actions"),
        pytest.param({"alert_burst": "lots"}, "alert_burst", id="bad-alert-burst"),
        pytest.param({"alert_burst": "0"}, "alert_burst", id="no-alert-burst"),
    ],
)
def test_policy_bad_settings_name_the_key(settings: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Policy.from_settings(settings)


def test_policy_rejects_bad_thresholds_in_code() -> None:
    with pytest.raises(ValueError, match="lost_in_post"):
        Policy(thresholds={"lost_in_post": H})
    with pytest.raises(ValueError, match="on_hold"):
        Policy(thresholds={"on_hold": -H})


# --- Verdict: worded like one given its words at once, immutable, compared by its fields ------------------------


def test_classified_words_equal_words_given_at_once() -> None:
    subject = order(held("INCORRECT_ADDRESS", ago=24 * H + MIN), ago=5 * D)
    steps_first = classify(subject, NOW, Policy())
    assert steps_first.next_steps[0] == "Confirm the address with the customer"
    eager = Verdict(
        "on_hold",
        stuck=True,
        reason="on_hold",
        since=NOW - 24 * H - MIN,
        due_at=NOW - MIN,
        severity="warning",
        explanation="This order has been on hold at Main warehouse for 24 hours"
        " because the shipping address looks wrong.",
        next_steps=steps_first.next_steps,
        actions=("release_hold", *GENERIC),
    )
    unread = classify(subject, NOW, Policy())
    assert unread == eager and hash(unread) == hash(eager) and repr(unread) == repr(eager)
    assert steps_first == eager and steps_first.explanation == eager.explanation
    assert "explanation='This order has been on hold" in repr(eager)
    assert unread != classify(subject, NOW + H, Policy())  # the same fields but the words: "for 25 hours"
    assert pickle.loads(pickle.dumps(classify(subject, NOW, Policy()))) == eager


def test_verdict_is_immutable() -> None:
    verdict = classify(order(fo(), ago=3 * D), NOW, Policy())
    for name in ("status", "explanation", "next_steps"):
        with pytest.raises(FrozenInstanceError):
            setattr(verdict, name, "x")
    with pytest.raises(FrozenInstanceError):
        del verdict.status
    assert verdict.status == "unfulfilled_overdue" and verdict.explanation.startswith("This order was placed 3 days")


def test_switching_policies_uses_each_policys_settings() -> None:
    subject = order(fo(), ago=2 * H, tags=("skip",), test=True)
    strict = Policy(thresholds={"unfulfilled_overdue": H}, ignore_tag="other", include_test_orders=True)
    lenient = Policy(ignore_tag=" SKIP ", include_test_orders=True)
    for _ in range(2):
        assert classify(subject, NOW, strict).status == "unfulfilled_overdue"
        verdict = classify(subject, NOW, lenient)
        assert (verdict.status, verdict.explanation) == (
            "ignored",
            "The order is tagged  SKIP , so orderbot leaves it alone.",
        )
        assert classify(subject, NOW, Policy()).status == "test"
        assert classify(subject, NOW, Policy(include_test_orders=True)).status == "waiting"


@pytest.mark.parametrize(
    ("left", "words"),
    [
        (timedelta(seconds=30), "0 minutes"),
        (MIN, "1 minute"),
        (MIN + timedelta(seconds=59), "1 minute"),
        (59 * MIN, "59 minutes"),
        (H, "1 hour"),
        (2 * H - timedelta(microseconds=1), "1 hour"),
        (72 * H - MIN, "71 hours"),
        (72 * H, "3 days"),
        (30 * D + 23 * H, "30 days"),
    ],
)
def test_spans_in_words(left: timedelta, words: str) -> None:
    verdict = classify(order(REJECTED), NOW, Policy(), snoozed_until=NOW + left)
    assert verdict.explanation == f"Snoozed for another {words}."


# --- needs_watching: what reconciliation keeps checking --------------------------------------------------------

DONE_FO = fo("CLOSED", "CLOSED", remaining=0, actions=())


WATCH_CASES = [
    pytest.param(order(fo(), ago=5 * D), True, id="not-shipped"),
    pytest.param(order(ago=5 * D, unknown=True), True, id="not-shipped-fulfillment-orders-unknown"),
    pytest.param(order(fo(), ago=5 * D, cancelled=True, closed=True), False, id="cancelled"),
    pytest.param(order(fo(), ago=5 * D, closed=True), False, id="archived-before-shipping"),
    pytest.param(
        order(DONE_FO, ago=9 * D, fulfillment="FULFILLED", fulfillments=(shipped(8 * D),)), False, id="shipped"
    ),
    pytest.param(
        order(ago=9 * D, unknown=True, fulfillment="FULFILLED", fulfillments=(shipped(8 * D),)),
        False,
        id="shipped-known-from-a-webhook-only",
    ),
    pytest.param(
        order(DONE_FO, ago=400 * D, fulfillment="FULFILLED", fulfillments=(shipped(399 * D, tracking=None),)),
        True,
        id="shipped-without-tracking-however-long-ago",
    ),
    pytest.param(
        order(DONE_FO, fo("OPEN", number=2), ago=9 * D, fulfillment="FULFILLED", fulfillments=(shipped(8 * D),)),
        True,
        id="shipped-but-a-fulfillment-order-still-open",
    ),
    pytest.param(
        order(DONE_FO, ago=9 * D, financial="PENDING", fulfillment="FULFILLED", fulfillments=(shipped(8 * D),)),
        False,
        id="shipped-unpaid-no-payment-reason-applies",
    ),
    pytest.param(
        order(DONE_FO, ago=9 * D, financial="PENDING", fulfillment="UNFULFILLED"), True, id="all-closed-but-unpaid"
    ),
]


@pytest.mark.parametrize(("subject", "watched"), WATCH_CASES)
def test_needs_watching(subject: Order, watched: bool) -> None:
    assert needs_watching(subject) is watched


@pytest.mark.parametrize(
    "subject",
    [pytest.param(p.values[0], id=p.id) for p in THRESHOLD_CASES + STATE_CASES + PRIORITY_CASES + WATCH_CASES],
)
def test_an_order_with_nothing_to_watch_is_never_stuck_whatever_the_time_or_thresholds(subject: Order) -> None:
    """needs_watching agrees with classify: an order it lets go is not (and cannot become) stuck, waiting or unknown
    unless Shopify changes it."""
    if needs_watching(subject):
        return
    at_once = policy(**dict.fromkeys(REASONS, timedelta(0)))
    for now in (NOW, NOW + 30 * D, NOW + 400 * D):
        for pol in (Policy(), at_once):
            assert classify(subject, now, pol).status in ("ok", "cancelled", "closed", "test", "ignored")
