"""Why an order is stuck: `classify(order, now, policy) -> Verdict`. Pure: no I/O, `now` passed in (aware UTC).

The steps, each a small function:
1. exclusions, in order: cancelled, a cancellation in flight (Shopify cancels in the background), closed (archived),
   test, ignore tag, snoozed;
2. matches: every condition of REASONS found on the order, each with the time it started (`since`);
3. timing: a match is stuck once its threshold has passed (`due_at`), critical once it has passed twice;
4. the verdict: the first stuck reason in `REASONS` order (or, when none is stuck yet, the reason due first),
   with the others in `other_reasons`, an explanation, next steps, and the actions the fulfillment orders allow.

Where `since` comes from (the best the Order model carries):
- unfulfilled_overdue: the order's created_at (no processed_at in the model); a SCHEDULED FO's fulfill_at once passed.
- partially_fulfilled: the latest fulfillment's created_at (when the last part shipped); else the FO's updated_at.
- payment_pending: the order's created_at (its payment began then); for an AWAITING_PAYMENT hold, the FO's updated_at.
- out_of_stock, on_hold: the FO's updated_at (a hold carries no time of its own; placing it updates the FO).
- request_pending, request_rejected, and awaiting_tracking on an ACCEPTED request: the FO's updated_at (the last
  change of request status; the model has no request sentAt).
- awaiting_tracking on a fulfillment without a tracking number: the oldest such fulfillment's created_at.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import NamedTuple

from bot.domain.durations import parse_duration
from bot.domain.orders import FINISHED_FO_STATUSES, LIVE_FULFILLMENT_STATUSES, FulfillmentOrder, Hold, Order

NOT_STUCK = (
    "ok",
    "cancelled",
    "cancelling",
    "closed",
    "test",
    "ignored",
    "snoozed",
    "scheduled",
    "waiting",
    "unknown",
)
SEVERITIES = ("none", "warning", "critical")
DEFAULT_IGNORE_TAG = "orderbot-ignore"
THRESHOLD_PREFIX = "threshold."

# An AUTHORIZED payment is critical from a day before it expires: when Shopify gives the authorization's expiry
# (authorizationExpiresAt, which it gives on Shopify Plus only), that one, else the usual 7 days after the order.
AUTHORIZATION_LIFETIME = timedelta(days=7)
AUTHORIZATION_MARGIN = timedelta(days=1)


# FulfillmentHoldReason -> (why, in words; first step). AWAITING_PAYMENT and INVENTORY_OUT_OF_STOCK are reasons of
# their own (payment_pending, out_of_stock).
_HOLDS = {
    "HIGH_RISK_OF_FRAUD": ("it may be fraudulent", "Review the fraud analysis before shipping"),
    "INCORRECT_ADDRESS": ("the shipping address looks wrong", "Confirm the address with the customer"),
    "UNKNOWN_DELIVERY_DATE": ("the delivery date is not known yet", "Agree a delivery date with the customer"),
    "ONLINE_STORE_POST_PURCHASE_CROSS_SELL": (
        "the customer may still add a post-purchase offer",
        "Check the post-purchase offer has finished",
    ),
    "AWAITING_RETURN_ITEMS": ("it waits for returned items", "Check whether the return has arrived"),
    "OTHER": ("someone put it on hold", "Find out who held it and why"),
}
_UNKNOWN_HOLD = ("of a hold Shopify gave no reason for", "Find out who held it and why")

# displayFinancialStatus -> (sentence start, first step).
_PAYMENTS = {
    "PENDING": ("Payment has been pending", "Check the payment status in Shopify"),
    "AUTHORIZED": (
        "Payment has been authorized but not captured",
        "Capture the payment before the authorization expires",
    ),
    "PARTIALLY_PAID": ("The order has been only partly paid", "Collect the outstanding balance"),
}
_HELD_FOR_PAYMENT = ("Shipping has been on hold awaiting payment", "Check the payment status in Shopify")

_REFUSED = {
    "REJECTED": "rejected the fulfillment request",
    "CANCELLATION_REJECTED": "refused to cancel the fulfillment request",
}
_PENDING_REQUEST = {"SUBMITTED": "fulfillment request", "CANCELLATION_REQUESTED": "cancellation request"}
_UNTRACKED = {
    "event": "Items were marked as shipped",
    "source": "your shipping app or carrier",
    "then": "Add the number to the shipment (Add tracking)",
}
# FulfillmentHoldReason -> reason id, where the hold is not simply on_hold.
_HOLD_REASONS = {"INVENTORY_OUT_OF_STOCK": "out_of_stock", "AWAITING_PAYMENT": "payment_pending"}

_DONE_ORDER = frozenset({"FULFILLED", "RESTOCKED"})


class _Match(NamedTuple):
    """A condition found on the order, and when it started. The words come later, for the chosen reason only."""

    priority: int  # the reason's index in REASONS
    since: datetime
    fo: FulfillmentOrder | None = None
    hold: Hold | None = None
    due_at: datetime | None = None  # replaces since + threshold (an FO's fulfillBy)
    critical_at: datetime | None = None  # critical sooner than twice the threshold (an authorization's expiry)


# --- wording: the facts that fill each reason's templates ---------------------------------------------------------


def _service(match: _Match) -> str:
    return (match.fo.service if match.fo else None) or "the fulfillment service"


def _at(match: _Match, word: str) -> str:
    return f" {word} {match.fo.location}" if match.fo and match.fo.location else ""


def _notes(match: _Match) -> str:
    return f' (note: "{match.hold.notes}")' if match.hold and match.hold.notes else ""


def _rejected_facts(order: Order, match: _Match, now: datetime) -> dict[str, str]:
    fo = match.fo
    refused = "gave up on the order" if fo.status == "INCOMPLETE" else _REFUSED[fo.request_status]
    return {"service": _service(match), "refused": refused}


def _payment_facts(order: Order, match: _Match, now: datetime) -> dict[str, str]:
    if match.hold:
        payment, pay_step = _HELD_FOR_PAYMENT
        return {"payment": payment, "pay_step": pay_step, "detail": _notes(match)}
    payment, pay_step = _PAYMENTS[order.financial_status]
    detail = ""
    if order.financial_status == "AUTHORIZED":
        expires = order.authorization_expires_at
        if expires is None:
            expires = match.since + AUTHORIZATION_LIFETIME
            left = f"capture it within {_in_words(expires - now)}" if expires > now else "it has probably expired"
            detail = f"; authorizations usually expire after 7 days, so {left}"
        elif expires > now:
            detail = f"; the authorization expires on {_when(expires)}, so capture it within {_in_words(expires - now)}"
        else:
            detail = f"; the authorization expired on {_when(expires)}"
    return {"payment": payment, "pay_step": pay_step, "detail": detail}


def _out_of_stock_facts(order: Order, match: _Match, now: datetime) -> dict[str, str]:
    return {"at": _at(match, "at"), "notes": _notes(match)}


def _on_hold_facts(order: Order, match: _Match, now: datetime) -> dict[str, str]:
    hold, step = _HOLDS.get(match.hold.reason, _UNKNOWN_HOLD) if match.hold else _UNKNOWN_HOLD
    return {"at": _at(match, "at"), "hold": hold, "hold_step": step, "notes": _notes(match)}


def _unfulfilled_facts(order: Order, match: _Match, now: datetime) -> dict[str, str]:
    fo = match.fo
    at = _at(match, "from")
    if fo.service:
        todo, ship_step = f"has not been sent to {fo.service} yet", f"Request fulfillment from {fo.service}"
    else:
        todo, ship_step = f"nobody has shipped it{at} yet", f"Ship it{at} and add the tracking number"
    return {
        "started": "was due to ship" if fo.status == "SCHEDULED" else "was placed",
        "todo": todo,
        "ship_step": ship_step,
        "deadline": f" (ship by {_when(fo.fulfill_by)})" if fo.fulfill_by else "",
    }


def _partial_facts(order: Order, match: _Match, now: datetime) -> dict[str, str]:
    remaining = match.fo.remaining_quantity
    count = f" ({remaining} item{'s' if remaining != 1 else ''})" if remaining else ""
    return {"at": _at(match, "from"), "count": count}


def _pending_facts(order: Order, match: _Match, now: datetime) -> dict[str, str]:
    return {"service": _service(match), "request": _PENDING_REQUEST[match.fo.request_status]}


def _tracking_facts(order: Order, match: _Match, now: datetime) -> dict[str, str]:
    if match.fo is None:
        return _UNTRACKED
    service = _service(match)
    return {
        "event": f"{service[0].upper()}{service[1:]} accepted the order",
        "source": service,
        "then": f"Ask {service} why it has not shipped, or cancel the request and ship it yourself",
    }


def _in_words(span: timedelta) -> str:
    """A span as a shop worker says it, rounded down: minutes under an hour, hours under three days, then days."""
    minutes = span // _MINUTE  # whole minutes, floored; negative spans say 0 minutes
    if minutes < 60:
        if minutes > 1:
            return f"{minutes} minutes"
        return "1 minute" if minutes == 1 else "0 minutes"
    if minutes < 72 * 60:
        hours = minutes // 60
        return "1 hour" if hours == 1 else f"{hours} hours"
    return f"{minutes // 1440} days"  # at least 3


_MINUTE = timedelta(minutes=1)


def _when(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%d %b %H:%M} UTC"


@dataclass(frozen=True, slots=True)
class _Spec:
    """One row per reason. Templates are filled from the match's facts plus `age` (how long the condition lasts)."""

    title: str
    threshold: timedelta
    explanation: str
    next_steps: tuple[str, ...]
    actions: tuple[str, ...]  # reason-specific orderbot actions, before the generic ones
    facts: Callable[[Order, _Match, datetime], Mapping[str, str]]


# In priority order (REASONS): what a person must act on first comes first. A refusal nobody else will fix, money
# that may be lost, stock, other holds, then work the store itself owes (shipping, the rest of a shipment), and last
# chasing an app that has the order.
_SPECS: dict[str, _Spec] = {
    "request_rejected": _Spec(
        "Request rejected",
        timedelta(0),
        "{service} {refused} {age} ago.",
        (
            "Ask {service} what went wrong",
            "Ship it yourself or request fulfillment again",
            "Tell the customer about the delay",
        ),
        ("fulfill", "request_fulfillment"),
        _rejected_facts,
    ),
    "payment_pending": _Spec(
        "Payment pending",
        timedelta(hours=72),
        "{payment} for {age}{detail}.",
        ("{pay_step}", "Contact the customer if the payment failed", "Cancel the order if it will not be paid"),
        (),
        _payment_facts,
    ),
    "out_of_stock": _Spec(
        "Out of stock",
        timedelta(hours=24),
        "This order has been on hold for {age} because items are out of stock{at}{notes}.",
        (
            "Restock, or move the order to a location that has stock",
            "Release the hold once it can ship",
            "Tell the customer about the delay",
        ),
        ("move", "release_hold"),
        _out_of_stock_facts,
    ),
    "on_hold": _Spec(
        "On hold",
        timedelta(hours=24),
        "This order has been on hold{at} for {age} because {hold}{notes}.",
        ("{hold_step}", "Release the hold once it is sorted", "Tell the customer if it will be late"),
        ("release_hold",),
        _on_hold_facts,
    ),
    "unfulfilled_overdue": _Spec(
        "Unfulfilled",
        timedelta(hours=48),
        "This order {started} {age} ago and {todo}{deadline}.",
        ("{ship_step}", "Tell the customer if it will be late"),
        ("fulfill", "request_fulfillment"),
        _unfulfilled_facts,
    ),
    "partially_fulfilled": _Spec(
        "Partially fulfilled",
        timedelta(hours=72),
        "Part of this order shipped {age} ago, but the rest{count} has not shipped{at}.",
        ("Ship the remaining items{at}", "Tell the customer what is still to come"),
        ("fulfill", "request_fulfillment"),
        _partial_facts,
    ),
    "request_pending": _Spec(
        "Request pending",
        timedelta(hours=24),
        "{service} has not answered the {request} for {age}.",
        (
            "Check that {service} received the order",
            "Contact {service} support if it is not synced",
            "Cancel the request and ship it yourself if needed",
        ),
        ("cancel_request",),
        _pending_facts,
    ),
    "awaiting_tracking": _Spec(
        "Awaiting tracking",
        timedelta(hours=72),
        "{event} {age} ago, but no tracking number has arrived.",
        (
            "Check {source} for the tracking number",
            "{then}",
            "Tell the customer about the delay",
        ),
        ("fulfill", "cancel_request"),
        _tracking_facts,
    ),
}
REASONS = tuple(_SPECS)
REASON_TITLES: Mapping[str, str] = MappingProxyType({reason: _SPECS[reason].title for reason in REASONS})
DEFAULT_THRESHOLDS: Mapping[str, timedelta] = MappingProxyType({reason: _SPECS[reason].threshold for reason in REASONS})

# Action id -> the FulfillmentOrderAction that must be supported by one of the verdict's fulfillment orders.
_FO_ACTIONS = {
    "fulfill": "CREATE_FULFILLMENT",
    "request_fulfillment": "REQUEST_FULFILLMENT",
    "cancel_request": "REQUEST_CANCELLATION",
    "release_hold": "RELEASE_HOLD",
    "move": "MOVE",
}


@dataclass(frozen=True, slots=True)
class Verdict:
    """What `classify` decided.

    status: a reason id when stuck, else one of NOT_STUCK. reason: set when stuck or waiting. since: when the
    condition started. due_at: when it became (or becomes) stuck; for snoozed/scheduled, when to look again.
    severity: one of SEVERITIES. actions: orderbot action ids, in the order the buttons should appear.
    other_reasons: other reasons in the same state (stuck, or waiting), in REASONS order.
    """

    status: str
    stuck: bool = False
    reason: str | None = None
    since: datetime | None = None
    due_at: datetime | None = None
    severity: str = "none"
    explanation: str = ""
    next_steps: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()
    other_reasons: tuple[str, ...] = ()

    def stuck_for(self, now: datetime) -> timedelta | None:
        """How long the stuck condition has lasted (now - since); None when not stuck."""
        return now - self.since if self.stuck and self.since is not None else None


PAYMENT_ACTIONS_SETTING = "payment_actions"
_PAYMENT_ACTIONS_FOR = ("admins", "everyone")
ALERT_BURST_SETTING = "alert_burst"
DEFAULT_ALERT_BURST = 20


@dataclass(frozen=True, slots=True)
class Policy:
    thresholds: Mapping[str, timedelta] = field(default_factory=lambda: DEFAULT_THRESHOLDS)
    ignore_tag: str = DEFAULT_IGNORE_TAG
    include_test_orders: bool = False
    # Who may capture a payment or mark an order as paid: "admins" (SLACK_ADMINS), or "everyone".
    payment_actions_for: str = "admins"
    # At most this many new alerts per scan, the most urgent first (bot/domain/burst.py); the others wait.
    alert_burst: int = DEFAULT_ALERT_BURST

    def __post_init__(self) -> None:
        unknown = sorted(set(self.thresholds) - set(REASONS))
        if unknown:
            raise ValueError(f"unknown reason {unknown[0]!r} in thresholds; use one of {', '.join(REASONS)}")
        negative = [reason for reason, value in self.thresholds.items() if value < timedelta(0)]
        if negative:
            raise ValueError(f"the threshold for {negative[0]} must not be negative")
        if not self.ignore_tag.strip():
            raise ValueError("ignore_tag must not be empty")
        if self.payment_actions_for not in _PAYMENT_ACTIONS_FOR:
            raise ValueError(f"payment_actions_for must be one of {', '.join(_PAYMENT_ACTIONS_FOR)}")
        if self.alert_burst < 1:
            raise ValueError("alert_burst must be at least 1")
        object.__setattr__(self, "thresholds", MappingProxyType({**DEFAULT_THRESHOLDS, **self.thresholds}))

    @classmethod
    def from_settings(cls, settings: Mapping[str, str]) -> Policy:
        """Read `threshold.<reason>` ("48h"; "0" for at once), `ignore_tag`, `include_test_orders` ("true"/"false"),
        `payment_actions` ("admins"/"everyone": who may capture payments and mark orders as paid), `alert_burst` (a
        whole number, at least 1: new alerts per scan).

        Other keys are left to their owners. Raises ValueError naming the key for a bad value.
        """
        thresholds = {}
        for key, value in settings.items():
            if key.startswith(THRESHOLD_PREFIX):
                reason = key.removeprefix(THRESHOLD_PREFIX)
                if reason not in DEFAULT_THRESHOLDS:
                    raise ValueError(f"{key}: unknown reason {reason!r}; use one of {', '.join(REASONS)}")
                thresholds[reason] = _parse_threshold(key, value)
        ignore_tag = settings.get("ignore_tag", DEFAULT_IGNORE_TAG).strip()
        if not ignore_tag:
            raise ValueError("ignore_tag: must not be empty")
        payment_actions_for = settings.get(PAYMENT_ACTIONS_SETTING, "admins").strip().lower()
        if payment_actions_for not in _PAYMENT_ACTIONS_FOR:
            raise ValueError(f"{PAYMENT_ACTIONS_SETTING}: {payment_actions_for!r} is not admins or everyone")
        return cls(
            thresholds,
            ignore_tag,
            _parse_bool("include_test_orders", settings.get("include_test_orders")),
            payment_actions_for,
            _parse_alert_burst(settings.get(ALERT_BURST_SETTING)),
        )

    def to_settings(self) -> dict[str, str]:
        """The inverse of `from_settings`: every key, exactly."""
        settings = {THRESHOLD_PREFIX + reason: _format_threshold(self.thresholds[reason]) for reason in REASONS}
        settings["ignore_tag"] = self.ignore_tag
        settings["include_test_orders"] = "true" if self.include_test_orders else "false"
        settings[PAYMENT_ACTIONS_SETTING] = self.payment_actions_for
        settings[ALERT_BURST_SETTING] = str(self.alert_burst)
        return settings


_ZERO = re.compile(r"^\s*0+\s*[smhdw]?\s*$", re.IGNORECASE)
_BOOLS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}


def _parse_threshold(key: str, value: str) -> timedelta:
    if _ZERO.match(value):  # parse_duration refuses zero; a threshold of zero means "stuck at once"
        return timedelta(0)
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ValueError(f"{key}: {exc}") from None


def _format_threshold(value: timedelta) -> str:
    """Exact, in the largest unit that divides it: 48h, 90m, 45s."""
    seconds = int(value.total_seconds())
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _parse_alert_burst(value: str | None) -> int:
    if value is None:
        return DEFAULT_ALERT_BURST
    try:
        burst = int(value.strip())
    except ValueError:
        raise ValueError(f"{ALERT_BURST_SETTING}: {value!r} is not a whole number") from None
    if burst < 1:
        raise ValueError(f"{ALERT_BURST_SETTING}: must be at least 1")
    return burst


def _parse_bool(key: str, value: str | None) -> bool:
    if value is None:
        return False
    try:
        return _BOOLS[value.strip().lower()]
    except KeyError:
        raise ValueError(f"{key}: {value!r} is not true or false") from None


# --- matching ---------------------------------------------------------------------------------------------------

_PRIORITY = {reason: priority for priority, reason in enumerate(REASONS)}
_PAYMENT, _OUT_OF_STOCK, _ON_HOLD, _UNFULFILLED, _PARTIAL, _PENDING, _TRACKING, _REJECTED = (
    _PRIORITY[reason]
    for reason in (
        "payment_pending",
        "out_of_stock",
        "on_hold",
        "unfulfilled_overdue",
        "partially_fulfilled",
        "request_pending",
        "awaiting_tracking",
        "request_rejected",
    )
)
_HOLD_PRIORITY = {hold: _PRIORITY[reason] for hold, reason in _HOLD_REASONS.items()}


def _matches(order: Order, now: datetime) -> list[_Match]:
    found = []
    if order.financial_status in _PAYMENTS and order.fulfillment_status not in _DONE_ORDER:
        created = order.created_at
        critical_at = None
        if order.financial_status == "AUTHORIZED":
            expires = order.authorization_expires_at or created + AUTHORIZATION_LIFETIME
            critical_at = expires - AUTHORIZATION_MARGIN
        found.append(_Match(_PAYMENT, created, critical_at=critical_at))
    fulfillments = order.fulfillments
    if fulfillments:
        untracked = None
        for f in fulfillments:
            if (
                f.status in LIVE_FULFILLMENT_STATUSES
                and not f.has_tracking
                and (untracked is None or f.created_at < untracked)  # the oldest; min keeps the first of equals
            ):
                untracked = f.created_at
        if untracked is not None:
            found.append(_Match(_TRACKING, untracked))
    for fo in order.fulfillment_orders or ():
        status = fo.status
        if status in FINISHED_FO_STATUSES:
            continue
        if status == "ON_HOLD":
            if fo.holds:
                for hold in fo.holds:
                    found.append(_Match(_HOLD_PRIORITY.get(hold.reason, _ON_HOLD), fo.updated_at, fo, hold))
            else:
                found.append(_Match(_ON_HOLD, fo.updated_at, fo))
            continue
        if status == "SCHEDULED" and (fo.fulfill_at is None or fo.fulfill_at > now):
            continue  # scheduled for later
        # By its request status.
        request = fo.request_status
        if status == "INCOMPLETE" or request in _REFUSED:
            found.append(_Match(_REJECTED, fo.updated_at, fo))
        elif request in _PENDING_REQUEST:
            found.append(_Match(_PENDING, fo.updated_at, fo))
        elif request == "ACCEPTED":
            found.append(_Match(_TRACKING, fo.updated_at, fo))
        # Nobody has it (UNSUBMITTED, CANCELLATION_ACCEPTED, CLOSED): the rest of a partial shipment, or not shipped.
        elif (
            order.fulfillment_status == "PARTIALLY_FULFILLED"
            or status == "IN_PROGRESS"
            or any(line.remaining < line.total for line in fo.lines)
        ):
            shipped = fo.updated_at
            first = True
            for f in fulfillments:
                if f.status in LIVE_FULFILLMENT_STATUSES and (first or f.created_at > shipped):
                    shipped = f.created_at
                    first = False
            found.append(_Match(_PARTIAL, shipped, fo))
        else:
            since = fo.fulfill_at if status == "SCHEDULED" and fo.fulfill_at else order.created_at
            found.append(_Match(_UNFULFILLED, since, fo, due_at=fo.fulfill_by))
    return found


def payment_actions(order: Order) -> tuple[str, ...]:
    """What Shopify lets staff do about an unpaid order: capture an authorized payment, else record one received by
    hand (a manual method: a bank deposit, cash on delivery)."""
    if order.capturable and order.capturable_amount is not None and order.authorization_id is not None:
        return ("capture_payment",)
    if order.can_mark_as_paid:
        return ("mark_as_paid",)
    return ()


def _scheduled_later(fo: FulfillmentOrder, now: datetime) -> bool:
    return fo.status == "SCHEDULED" and (fo.fulfill_at is None or fo.fulfill_at > now)


# --- what reconciliation keeps watching ---------------------------------------------------------------------------


def needs_watching(order: Order) -> bool:
    """Whether reconciliation must keep checking the order: whether some rule above can still find it stuck (or
    waiting, or unknown) without the order changing in Shopify. When one changes, Shopify tells orderbot anyway (a
    webhook, and the order's updatedAt, which the next scan asks for), so an order with nothing left to watch costs
    no scan anything.

    Nothing is left to watch once the order is cancelled or archived, or once all of these hold: it is fully shipped
    (FULFILLED or RESTOCKED: no payment reason applies then, and unknown fulfillment orders do not matter), each of
    its fulfillment orders is CLOSED or CANCELLED (none can be held, requested, scheduled or left to ship), and each
    of its live shipments has a tracking number (awaiting_tracking cannot match). A shipment without one is watched
    until the number arrives or the order is archived, however old: past its threshold it is stuck, open work whose
    alert must still turn critical, and resolve when the number comes even if that webhook is lost. There is no
    window after which it is dropped unseen; it costs no request on a regular scan (it is classified from the
    database), and a daily sweep re-reads it among a batch.
    """
    if order.cancelled or order.closed:
        return False
    if order.fulfillment_status not in _DONE_ORDER:
        return True
    if any(fo.status not in FINISHED_FO_STATUSES for fo in order.fulfillment_orders or ()):
        return True
    return any(f.status in LIVE_FULFILLMENT_STATUSES and not f.has_tracking for f in order.fulfillments)


# --- the verdict ------------------------------------------------------------------------------------------------

_CANCELLED = Verdict("cancelled", explanation="The order is cancelled.")
_CANCELLING = Verdict(
    "cancelling",
    explanation="Cancellation requested: Shopify cancels the order in the background. This alert updates when it is "
    "done.",
)
_CLOSED = Verdict("closed", explanation="The order is archived.")
_TEST = Verdict("test", explanation="This is a test order, and test orders are not checked.")
_OK = Verdict("ok", explanation="Nothing is waiting to ship.")
_UNKNOWN = Verdict(
    "unknown", explanation="Its fulfillment orders are not fetched yet, so orderbot cannot tell whether it is stuck."
)
_SPEC_BY_PRIORITY = tuple(_SPECS[reason] for reason in REASONS)
# Per priority: the reason's own actions, each with the FulfillmentOrderAction one of its FOs must support.
_SPECIFIC_ACTIONS = tuple(tuple((action, _FO_ACTIONS[action]) for action in spec.actions) for spec in _SPEC_BY_PRIORITY)
# (customer has an email, stuck) -> the generic actions of an order that is neither closed nor cancelled.
_GENERIC_ACTIONS = {
    (email, stuck): ("notify_customer",) * email + ("snooze",) * stuck + ("archive", "cancel_order")
    for email in (False, True)
    for stuck in (False, True)
}


def classify(
    order: Order,
    now: datetime,
    policy: Policy,
    snoozed_until: datetime | None = None,
    cancelling_since: datetime | None = None,
) -> Verdict:
    """Why `order` is stuck (or why not) at `now`. `cancelling_since`: when someone asked Shopify to cancel it, while
    Shopify has not yet (the order is watched, not stuck: cancelling it again must not be offered)."""
    # The exclusions, in order.
    if order.cancelled:
        return _CANCELLED
    if cancelling_since is not None:
        return _CANCELLING
    if order.closed:
        return _CLOSED
    if order.test and not policy.include_test_orders:
        return _TEST
    if order.has_tag(policy.ignore_tag):
        return Verdict("ignored", explanation=f"The order is tagged {policy.ignore_tag}, so orderbot leaves it alone.")
    if snoozed_until is not None and snoozed_until > now:
        return Verdict(
            "snoozed", due_at=snoozed_until, explanation=f"Snoozed for another {_in_words(snoozed_until - now)}."
        )
    matches = _matches(order, now)
    if matches:
        return _reason_verdict(order, now, matches, policy.thresholds)
    scheduled = [fo.fulfill_at for fo in order.fulfillment_orders or () if _scheduled_later(fo, now)]
    if scheduled:
        dates = [d for d in scheduled if d is not None]
        when = f" for {_when(min(dates))}" if dates else ""
        return Verdict("scheduled", due_at=min(dates, default=None), explanation=f"Shipping is scheduled{when}.")
    if order.fulfillment_orders is None and order.fulfillment_status not in _DONE_ORDER:
        return _UNKNOWN
    return _OK


def _due_at(match: _Match, thresholds: Mapping[str, timedelta]) -> datetime:
    """When the match becomes stuck: its threshold after `since` (or the FO's own deadline), sooner when it turns
    critical sooner (an authorization about to expire)."""
    due_at = match.due_at
    if due_at is None:
        due_at = match.since + thresholds[REASONS[match.priority]]
    if match.critical_at is not None and match.critical_at < due_at:
        due_at = match.critical_at
    return due_at


def _reason_verdict(order: Order, now: datetime, matches: list[_Match], thresholds: Mapping[str, timedelta]) -> Verdict:
    if len(matches) == 1:
        match = matches[0]
        due_at = _due_at(match, thresholds)
        others = ()
    else:
        first: dict[int, tuple[datetime, _Match]] = {}  # per priority: (due_at, the match due first)
        for candidate in matches:
            due_at = _due_at(candidate, thresholds)
            known = first.get(candidate.priority)
            if known is None or due_at < known[0]:
                first[candidate.priority] = (due_at, candidate)
        found = sorted(first)
        stuck_ones = [p for p in found if first[p][0] <= now]
        if stuck_ones:
            chosen = stuck_ones[0]
            others = tuple([REASONS[p] for p in stuck_ones[1:]])
        else:  # the reason due first (min keeps the first of equals, so priority breaks ties)
            chosen = min(found, key=lambda p: first[p][0])
            others = tuple([REASONS[p] for p in found if p != chosen])
        due_at, match = first[chosen]
    priority, since, fo = match.priority, match.since, match.fo
    stuck = due_at <= now
    if stuck:
        critical = due_at + thresholds[REASONS[priority]]
        if match.critical_at is not None and match.critical_at < critical:
            critical = match.critical_at
        severity = "critical" if now >= critical else "warning"
        status = REASONS[priority]
    else:
        severity = "none"
        status = "waiting"
    # The reason's own actions that its FOs (or, for an order-level reason, any FO) support, then the generic ones.
    specific = _SPECIFIC_ACTIONS[priority]
    if specific:
        if len(matches) == 1 and fo is not None:
            supported = fo.supported_actions
        else:
            fos = (
                [m.fo for m in matches if m.priority == priority and m.fo is not None] or order.fulfillment_orders or ()
            )
            supported = {action for f in fos for action in f.supported_actions}
        specific = tuple([action for action, needs in specific if needs in supported])
        if priority == _TRACKING and fo is None and "fulfill" not in specific:
            specific = ("fulfill", *specific)  # a shipment without tracking: "fulfill" adds the number to it
    elif priority == _PAYMENT:
        specific = payment_actions(order)
    customer = order.customer
    actions = specific + _GENERIC_ACTIONS[bool(customer and customer.email), stuck]
    spec = _SPEC_BY_PRIORITY[priority]
    facts = {**spec.facts(order, match, now), "age": _in_words(now - since)}
    explanation = spec.explanation.format_map(facts)
    if not stuck:
        explanation = f"{explanation[:-1]}; it counts as stuck in {_in_words(due_at - now)} if nothing changes."
    return Verdict(
        status,
        stuck,
        REASONS[priority],
        since,
        due_at,
        severity,
        explanation,
        tuple([step.format_map(facts) for step in spec.next_steps]),
        actions,
        others,
    )
